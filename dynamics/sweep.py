"""Parameter sweeps: every point of a grid integrated, one Dataset with a dimension per parameter.

    python -m dynamics.sweep eigenmodes --grid eta=0:0.3:61 --grid alpha_p=0.5,1,2,4 --out s.nc
    python -m dynamics.sweep linear_byol --grid eta=0:0.2:5 --grid seed=0:4 --workers 2
    python -m dynamics.sweep linear_byol --grid eta=0:0.2:5 --scheduler tcp://host:8786
    python -m dynamics.sweep ... --resume      # continue an interrupted sweep

Per point the file holds the final spectrum (``wp_eig_real``[, ``wp_eig_imag``, ``corr_eig``,
``s``, ``tau``] over ``mode``), which modes collapsed (``mode_collapsed``), their count and
fraction, ``time_to_converge`` (the time after which max|dy/dt| stays below ``--conv-tol``),
``converged`` and ``diverged``. The per-mode model (``eigenmodes``) is integrated for all grid
points at once by the vectorised stepper of :mod:`dynamics.batch_integrate`; any other scenario
runs point by point, in ``--workers`` processes or as tasks of a dask.distributed cluster
(``--scheduler ADDRESS``). Finished work units are kept in ``OUT.parts/`` (atomic files) until the
sweep is complete, so ``--resume`` continues where an interrupted sweep stopped.

Python: ``run_sweep("eigenmodes", ["eta=0:0.3:61"], out="s.nc")`` returns the Dataset.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from tqdm import tqdm

from dynamics import scenarios
from dynamics.grid import Grid
from dynamics.integrate import METHODS
from dynamics.models.eigenmodes import EigenmodeModel
from dynamics.simulate import RunSettings
from dynamics.sweep_matrix import run_point
from dynamics.sweep_modes import run_mode_points
from symbolic.common.cli import ArgumentParser, UsageError, run_main
from symbolic.common.options import ParameterError, add_options, given
from symbolic.common.provenance import provenance
from symbolic.common.results import write_netcdf
from symbolic.common.schema import MODE

#: scenarios swept by the vectorised per-mode integrator
VECTORISED = (EigenmodeModel.name,)
#: grid points per work unit of the vectorised integrator
MODE_CHUNK = 8192
#: environment variables that set the thread count of BLAS / OpenMP in worker processes
_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: default tolerances of a sweep (looser than a single simulation's 1e-10 / 1e-12)
SWEEP_RTOL, SWEEP_ATOL = 1e-8, 1e-10


@dataclasses.dataclass(frozen=True)
class Unit:
    """A work unit: the flat indices of its grid points and what is needed to run them."""

    number: int
    indices: np.ndarray


def _run_unit(job: dict[str, Any], columns: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Run one unit (top level so that worker processes and dask can import it)."""
    settings = job["settings"]
    if job["scenario"] in VECTORISED:
        base = scenarios.get(job["scenario"]).params(**job["params"])
        return run_mode_points(
            base,
            columns,
            n,
            settings["t_end"],
            settings["rtol"],
            settings["atol"],
            settings["blowup"],
            job["conv_tol"],
        )
    point = {name: col[0].item() for name, col in columns.items()}
    record = run_point(job["scenario"], {**job["params"], **point}, settings, job["conv_tol"])
    return {k: np.asarray(v)[None] for k, v in record.items()}


class PartStore:
    """Finished units of a sweep in ``OUT.parts/``: ``sweep.json`` (what the sweep is) and one
    ``unit_<k>.npz`` per unit, each written to a temporary file and renamed."""

    def __init__(self, out: Path, job: dict[str, Any], resume: bool):
        self.folder = out.with_name(out.name + ".parts")
        self.spec = json.dumps(job, sort_keys=True, default=str)
        spec_file = self.folder / "sweep.json"
        if self.folder.exists():
            if not resume:
                raise UsageError(
                    f"{self.folder} holds an interrupted sweep: pass --resume to continue it "
                    "or delete the folder"
                )
            if not spec_file.exists() or spec_file.read_text() != self.spec:
                raise UsageError(
                    f"--resume: {self.folder} belongs to a different sweep (scenario, "
                    "parameters, grid or settings differ); delete it or change --out"
                )
        else:
            self.folder.mkdir(parents=True)
            self._atomic(spec_file, lambda f: f.write(self.spec.encode()))

    def _atomic(self, path: Path, write: Callable) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def path(self, number: int) -> Path:
        return self.folder / f"unit_{number:06d}.npz"

    def done(self) -> set[int]:
        return {int(p.stem.split("_")[1]) for p in self.folder.glob("unit_*.npz")}

    def save(self, unit: Unit, record: dict[str, np.ndarray]) -> None:
        self._atomic(self.path(unit.number), lambda f: np.savez(f, indices=unit.indices, **record))

    def load(self, number: int) -> dict[str, np.ndarray]:
        with np.load(self.path(number), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def remove(self) -> None:
        shutil.rmtree(self.folder)


def _executor(workers: int, scheduler: str | None):
    """(submit, as_completed, shutdown) for in-process, process-pool or dask execution."""
    if scheduler:
        try:
            from dask.distributed import Client
            from dask.distributed import as_completed as dask_completed
        except ImportError:
            raise UsageError(
                "--scheduler needs dask.distributed: pip install 'ssl-dynamics[cluster]'"
            ) from None
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as err:
            raise UsageError(f"--scheduler {scheduler}: cannot connect: {err}") from None
        return (
            lambda fn, *a: client.submit(fn, *a, pure=False),
            dask_completed,
            client.close,
        )
    if workers > 1:
        # fresh (spawned) workers with one BLAS/OpenMP thread each: N processes x 2 BLAS threads
        # on a 2-core machine made a 2-worker sweep slower than a serial one
        saved = {k: os.environ.get(k) for k in _THREAD_VARS}
        os.environ.update({k: "1" for k in _THREAD_VARS})
        pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))

        def shutdown():
            pool.shutdown(wait=False, cancel_futures=True)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

        return pool.submit, cf.as_completed, shutdown
    return None


def _units(grid: Grid, vectorised: bool, chunk: int) -> list[Unit]:
    step = chunk if vectorised else 1
    return [
        Unit(k, np.arange(start, min(start + step, grid.size)))
        for k, start in enumerate(range(0, grid.size, step))
    ]


def _execute(
    job: dict[str, Any],
    grid: Grid,
    todo: list[Unit],
    store: PartStore,
    workers: int,
    scheduler: str | None,
    bar: tqdm,
    on_unit: Callable[[Unit], None] | None,
) -> None:
    def finish(unit: Unit, record: dict[str, np.ndarray]) -> None:
        store.save(unit, record)
        bar.update(unit.indices.size)
        if on_unit is not None:
            on_unit(unit)

    parallel = _executor(workers, scheduler)
    if parallel is None:
        for unit in todo:
            finish(unit, _run_unit(job, grid.columns(unit.indices), unit.indices.size))
        return
    submit, completed, shutdown = parallel
    try:
        futures = {submit(_run_unit, job, grid.columns(u.indices), u.indices.size): u for u in todo}
        for future in completed(futures):
            finish(futures[future], future.result())
    finally:
        shutdown()


def _assemble(grid: Grid, store: PartStore, numbers: Iterator[int]) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for number in numbers:
        part = store.load(number)
        idx = part.pop("indices")
        for name, values in part.items():
            if name not in arrays:
                arrays[name] = np.zeros((grid.size, *values.shape[1:]), values.dtype)
            arrays[name][idx] = values
    return {k: v.reshape(*grid.shape, *v.shape[1:]) for k, v in arrays.items()}


def _dataset(grid: Grid, arrays: dict[str, np.ndarray], n_modes: int) -> xr.Dataset:
    dims = grid.names
    data = {}
    for name, values in arrays.items():
        if values.dtype == bool:
            values = values.astype(np.int8)
        data[name] = ((*dims, MODE)[: values.ndim], values)
    collapsed = arrays["mode_collapsed"]
    data["collapsed_modes"] = (dims, collapsed.sum(axis=-1).astype(np.int32))
    data["converged_modes"] = (dims, arrays["mode_converged"].sum(axis=-1).astype(np.int32))
    data["collapse_fraction"] = (dims, collapsed.mean(axis=-1))
    coords = {n: v for n, v in zip(grid.names, grid.values, strict=True)}
    coords[MODE] = np.arange(n_modes)
    return xr.Dataset(data, coords=coords)


def run_sweep(
    name: str,
    grid_specs: Sequence[str],
    params: dict[str, Any] | None = None,
    settings: RunSettings | None = None,
    out: str | os.PathLike | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    resume: bool = False,
    conv_tol: float = 1e-6,
    chunk: int = MODE_CHUNK,
    progress: bool = False,
    on_unit: Callable[[Unit], None] | None = None,
) -> xr.Dataset:
    """Sweep scenario ``name`` over the grid ``grid_specs`` (``["eta=0:0.3:61", ...]``).

    ``params`` fixes the other parameters; ``settings`` the integration (default: the
    scenario's t_end, rtol 1e-8, atol 1e-10). Writes ``out`` (netCDF) when given and returns the
    Dataset. ``on_unit(unit)`` is called after each finished unit is stored.
    """
    scenario = scenarios.get(name)
    params = dict(params or {})
    try:
        base = scenario.params(**params)
        grid = Grid.parse(list(grid_specs), scenario.params)
        for axis, values in zip(grid.names, grid.values, strict=True):
            for v in values.tolist():
                dataclasses.replace(base, **{axis: v})
        vectorised = name in VECTORISED
        if not vectorised:  # a bad combination must stop the sweep before it starts
            for point in grid.points():
                dataclasses.replace(base, **point)
    except ParameterError as err:
        raise UsageError(str(err)) from None
    settings = settings or RunSettings(t_end=scenario.t_end, rtol=SWEEP_RTOL, atol=SWEEP_ATOL)
    if workers < 1:
        raise UsageError(f"workers={workers} is not allowed: an integer >= 1")
    if not (conv_tol > 0):
        raise UsageError(f"conv_tol={conv_tol!r} is not allowed: a number > 0")
    job = {
        "scenario": name,
        "params": dataclasses.asdict(base),
        "grid": grid.describe(),
        "settings": dataclasses.asdict(settings),
        "conv_tol": conv_tol,
        "chunk": chunk,
    }
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(out) if out is not None else Path(scratch) / "sweep.nc"
        store = PartStore(target, job, resume)
        units = _units(grid, vectorised, chunk)
        done = store.done()
        todo = [u for u in units if u.number not in done]
        start = time.perf_counter()
        with tqdm(
            total=grid.size,
            initial=grid.size - sum(u.indices.size for u in todo),
            unit="point",
            disable=None if progress else True,
            desc=f"sweep {name}",
        ) as bar:
            _execute(job, grid, todo, store, workers, scheduler, bar, on_unit)
        arrays = _assemble(grid, store, (u.number for u in units))
        ds = _dataset(grid, arrays, base.dim)
        ds.attrs.update(
            provenance(
                "sweep",
                name,
                base,
                swept=list(grid.names),
                grid=grid.describe(),
                points=grid.size,
                solver="vectorised RK45 (dynamics.batch_integrate)"
                if vectorised
                else settings.method,
                rtol=settings.rtol,
                atol=settings.atol,
                t_end=settings.t_end,
                conv_tol=conv_tol,
                workers=workers,
                scheduler=scheduler or "",
                resumed_units=len(units) - len(todo),
                wall_seconds=round(time.perf_counter() - start, 3),
                seed=getattr(base, "seed", 0),
                **scenario.model(base).closed_forms(),
            )
        )
        if out is not None:
            try:
                write_netcdf(ds, target, extra_dims=grid.names)
            except OSError as err:
                raise UsageError(f"cannot write --out {target}: {err.strerror or err}") from None
        store.remove()
    return ds


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m dynamics.sweep",
        description="Integrate a scenario over a parameter grid and write one Dataset.",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    sub = parser.add_subparsers(dest="scenario", metavar="SCENARIO", parser_class=ArgumentParser)
    for scenario in scenarios.SCENARIOS.values():
        how = "vectorised over the grid" if scenario.name in VECTORISED else "point by point"
        p = sub.add_parser(
            scenario.name, help=f"{scenario.description} ({how})", description=__doc__
        )
        add_options(p, scenario.params)
        group = p.add_argument_group("sweep")
        group.add_argument(
            "--grid",
            action="append",
            required=True,
            metavar="NAME=SPEC",
            help="a swept parameter: NAME=a:b:n (n values from a to b), NAME=a:b (integers a..b, "
            "both included) or NAME=v1,v2,...; repeat for more axes",
        )
        group.add_argument(
            "--out", type=Path, default=Path("results") / f"sweep_{scenario.name}.nc",
            help="result file",
        )  # fmt: skip
        group.add_argument("--workers", type=int, default=1, help="parallel processes")
        group.add_argument(
            "--scheduler", default=None, help="address of a dask.distributed scheduler"
        )
        group.add_argument(
            "--resume", action="store_true", help="continue an interrupted sweep from OUT.parts/"
        )
        group.add_argument(
            "--conv-tol", type=float, default=1e-6,
            help="converged once max|dy/dt| stays below this",
        )  # fmt: skip
        group.add_argument(
            "--chunk", type=int, default=MODE_CHUNK,
            help="grid points per stored unit of the vectorised per-mode sweep",
        )  # fmt: skip
        group.add_argument("--t-end", type=float, default=scenario.t_end, help="final flow time")
        group.add_argument("--n-out", type=int, default=401, help="output times per point run")
        group.add_argument(
            "--method", default="DOP853",
            help=f"solve_ivp method of point runs: {', '.join(METHODS)}",
        )  # fmt: skip
        group.add_argument("--rtol", type=float, default=SWEEP_RTOL, help="relative tolerance")
        group.add_argument("--atol", type=float, default=SWEEP_ATOL, help="absolute tolerance")
        group.add_argument(
            "--blowup", type=float, default=1e6, help="a point diverged when |y| reaches this"
        )
        group.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        width = max(map(len, scenarios.SCENARIOS))
        for scenario in scenarios.SCENARIOS.values():
            how = "vectorised" if scenario.name in VECTORISED else "point by point"
            print(f"{scenario.name:<{width}}  [{how}] {scenario.description}")
        return 0
    if args.scenario is None:
        raise UsageError("no scenario given; allowed: " + ", ".join(scenarios.SCENARIOS))
    scenario = scenarios.get(args.scenario)
    if args.chunk < 1:
        raise UsageError(f"chunk={args.chunk} is not allowed: an integer >= 1")
    try:
        settings = RunSettings(
            args.t_end, args.n_out, args.method, args.rtol, args.atol, args.blowup
        )
    except ParameterError as err:
        raise UsageError(str(err)) from None
    ds = run_sweep(
        args.scenario,
        args.grid,
        given(args, scenario.params),
        settings,
        out=args.out,
        workers=args.workers,
        scheduler=args.scheduler,
        resume=args.resume,
        conv_tol=args.conv_tol,
        chunk=args.chunk,
        progress=not args.quiet,
    )
    if not args.quiet:
        for line in summary_lines(ds):
            print(line)
        print(f"wrote {args.out}")
    return 0


def summary_lines(ds: xr.Dataset) -> list[str]:
    a = ds.attrs
    axes = ", ".join(f"{n} ({ds.sizes[n]})" for n in json.loads(a["swept"]))
    frac = ds["collapse_fraction"]
    return [
        f"sweep {a['name']}: {a['points']} points over {axes}, {a['wall_seconds']:.2f} s "
        f"({a['solver']}, rtol {a['rtol']:g}, t_end {a['t_end']:g})",
        f"  collapse fraction: min {float(frac.min()):.3f}, mean {float(frac.mean()):.3f}, "
        f"max {float(frac.max()):.3f}; converged points {int(ds['converged'].sum())}, "
        f"diverged {int(ds['diverged'].sum())}",
    ]


if __name__ == "__main__":
    sys.exit(run_main(main, prog="python -m dynamics.sweep"))
