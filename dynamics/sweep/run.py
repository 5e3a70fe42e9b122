"""A sweep from start to end: check the grid, cut it into units, run the missing units, assemble
the stored parts into one Dataset with a dimension per swept parameter, write it.

Per point the Dataset holds the final spectrum (``wp_eig_real``[, ``wp_eig_imag``, ``corr_eig``,
``s``, ``tau``] over ``mode``), which modes collapsed (``mode_collapsed``), their count and
fraction, ``time_to_converge`` (the time after which max|dy/dt| stays below ``conv_tol``),
``converged`` and ``diverged``. The per-mode model (``eigenmodes``) runs through
:mod:`dynamics.sweep.modes` (all points of a unit in one vectorised integration), any other
scenario point by point through :mod:`dynamics.sweep.matrix`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from tqdm import tqdm

from dynamics import scenarios
from dynamics.array_backend import backend as array_backend
from dynamics.batch_integrate import METHODS as VECTORISED_METHODS
from dynamics.engine import SIZE_FIELDS, RunSettings
from dynamics.engine import memory_needed as point_memory
from dynamics.grid import Grid
from dynamics.integrate import SaveAt
from dynamics.models.eigenmodes import EigenmodeModel
from dynamics.sweep.execution import execute
from dynamics.sweep.matrix import run_point
from dynamics.sweep.modes import run_mode_points
from dynamics.sweep.store import PartStore, Unit, split
from symbolic.common.cli import UsageError
from symbolic.common.lock import exclusive
from symbolic.common.options import ParameterError
from symbolic.common.provenance import provenance
from symbolic.common.resources import check_memory, float_bytes
from symbolic.common.results import write_netcdf
from symbolic.common.schema import MODE

#: scenarios swept by the vectorised per-mode integrator
VECTORISED = (EigenmodeModel.name,)
#: at most this many grid points per unit of the vectorised sweep, by back end (a GPU wants
#: large batches; on a CPU a unit is cut into cache-sized batches anyway)
MODE_CHUNK = {"numpy": 8192, "torch:cpu": 8192, "torch:cuda": 1 << 20}
#: default tolerances of a sweep (looser than a single simulation's 1e-10 / 1e-12)
SWEEP_RTOL, SWEEP_ATOL = 1e-8, 1e-10
#: most worker processes a sweep starts
MAX_WORKERS = 256
#: an axis with at most this many values has each value checked; a longer one its extremes
CHECK_EACH = 10_000


def run_unit(job: dict[str, Any], columns: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """The records of one unit's ``n`` points (top level: worker processes and dask import it)."""
    if job["scenario"] in VECTORISED:
        base = scenarios.get(job["scenario"]).params(**job["params"])
        settings = RunSettings(**job["settings"])
        return run_mode_points(
            base,
            columns,
            n,
            SaveAt.final(settings.t_end),
            settings.solver,
            job["conv_tol"],
            array_backend(job["backend"]),
        )
    point = {name: col[0].item() for name, col in columns.items()}
    record = run_point(
        job["scenario"], {**job["params"], **point}, job["settings"], job["conv_tol"]
    )
    return {k: np.asarray(v)[None] for k, v in record.items()}


def _dataset(grid: Grid, arrays: dict[str, np.ndarray], n_modes: int) -> xr.Dataset:
    dims = grid.names
    data = {}
    for name, values in arrays.items():
        values = values.reshape(*grid.shape, *values.shape[1:])
        if values.dtype == bool:
            values = values.astype(np.int8)
        data[name] = ((*dims, MODE)[: values.ndim], values)
    collapsed = data["mode_collapsed"][1]
    data["collapsed_modes"] = (dims, collapsed.sum(axis=-1).astype(np.int32))
    data["converged_modes"] = (dims, data["mode_converged"][1].sum(axis=-1).astype(np.int32))
    data["collapse_fraction"] = (dims, collapsed.mean(axis=-1))
    coords = {n: v for n, v in zip(grid.names, grid.values, strict=True)}
    coords[MODE] = np.arange(n_modes)
    return xr.Dataset(data, coords=coords)


def _check(name, grid_specs, params, settings, backend_name):
    """(scenario, base parameters, grid, back end) or UsageError naming the bad value."""
    scenario = scenarios.get(name)
    try:
        base = scenario.params(**params)
        grid = Grid.parse(list(grid_specs), scenario.params)
    except ParameterError as err:
        raise UsageError(str(err)) from None
    if name in VECTORISED and settings.method not in VECTORISED_METHODS:
        raise UsageError(
            f"method={settings.method!r} is not allowed for the vectorised sweep of {name}: "
            f"one of {', '.join(VECTORISED_METHODS)}"
        )
    if name not in VECTORISED and backend_name != "numpy":
        raise UsageError(
            f"backend={backend_name!r} is not allowed for {name} (swept point by point): "
            f"only the vectorised sweep of {', '.join(VECTORISED)} runs on torch"
        )
    try:
        xp = array_backend(backend_name)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return scenario, base, grid, xp


def _check_values(name: str, base, grid: Grid) -> None:
    """UsageError naming the first grid value the scenario's parameters refuse."""
    try:
        for axis, values in zip(grid.names, grid.values, strict=True):
            if values.size > CHECK_EACH and values.dtype.kind in "iuf":
                values = np.array([values.min(), values.max()])
            for v in values.tolist():
                dataclasses.replace(base, **{axis: v})
        if name not in VECTORISED:  # a bad combination must stop the sweep before it starts
            for point in grid.points():
                dataclasses.replace(base, **point)
    except ParameterError as err:
        raise UsageError(str(err)) from None


def memory_needed(name: str, base, grid: Grid, settings, chunk: int, workers: int) -> float:
    """Bytes a sweep needs, roughly: the assembled result (its parts, the arrays and the Dataset:
    three copies of about six numbers per point and mode) plus what the running units hold (a
    vectorised unit: about 50 numbers per point and mode; a point of a matrix model: a whole
    simulation, :func:`dynamics.engine.memory_needed`) times the workers."""
    d = float(getattr(base, "dim", 1))
    result = float_bytes(3 * grid.size * (6 * d + 8))
    if name in VECTORISED:
        unit = float_bytes(50 * chunk * d)
    else:
        largest = {}  # the largest swept size (input_dim, n_samples may be swept)
        for axis, values in zip(grid.names, grid.values, strict=True):
            if axis in SIZE_FIELDS:
                largest[axis] = values.max().item()
        point = dataclasses.replace(base, **largest) if largest else base
        unit = point_memory(scenarios.get(name).model, point, settings.n_out)
    return result + min(workers, max(1, grid.size)) * unit


def check_sweep(
    name: str,
    grid_specs: Sequence[str],
    params: dict[str, Any] | None = None,
    settings: RunSettings | None = None,
    workers: int = 1,
    conv_tol: float = 1e-6,
    chunk: int | None = None,
    backend: str = "numpy",
):
    """Every check of a sweep, before any work: parameters, grid values, solver, workers, back
    end, memory. Returns (settings, scenario, base parameters, grid, back end, chunk); UsageError
    naming the first bad value."""
    settings = settings or RunSettings(t_end=scenarios.get(name).t_end, rtol=SWEEP_RTOL,
                                       atol=SWEEP_ATOL)  # fmt: skip
    scenario, base, grid, xp = _check(name, grid_specs, dict(params or {}), settings, backend)
    if not 1 <= workers <= MAX_WORKERS:
        raise UsageError(f"workers={workers} is not allowed: an integer >= 1 and <= {MAX_WORKERS}")
    if not (conv_tol > 0 and math.isfinite(conv_tol)):
        raise UsageError(f"conv_tol={conv_tol!r} is not allowed: a finite number > 0")
    if chunk is not None and chunk < 1:
        raise UsageError(f"chunk={chunk} is not allowed: an integer >= 1")
    if name not in VECTORISED:
        chunk = 1
    elif chunk is None:
        chunk = max(1, min(MODE_CHUNK[xp.name], math.ceil(grid.size / (4 * workers))))
    sizes = " ".join(f"--grid {g}" for g in grid_specs)
    check_memory(
        memory_needed(name, base, grid, settings, min(chunk, grid.size), workers),
        f"{sizes} ({grid.size:,} points of {getattr(base, 'dim', 1)} modes, {workers} workers)",
    )
    _check_values(name, base, grid)
    return settings, scenario, base, grid, xp, chunk


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
    chunk: int | None = None,
    progress: bool = False,
    on_unit: Callable[[Unit], None] | None = None,
    backend: str = "numpy",
) -> xr.Dataset:
    """Sweep scenario ``name`` over the grid ``grid_specs`` (``["eta=0:0.3:61", ...]``).

    ``params`` fixes the other parameters; ``settings`` the integration (default: the
    scenario's t_end, DOP853, rtol 1e-8, atol 1e-10). ``chunk``: grid points per unit of the
    vectorised sweep (default: MODE_CHUNK of the back end, fewer when that leaves a worker
    idle); ``backend``: 'numpy', 'torch', 'torch:cpu' or 'torch:cuda' (vectorised sweep only).
    Writes ``out`` (netCDF) when given and returns the Dataset. ``on_unit(unit)`` is called
    after each finished unit is stored.
    """
    settings, scenario, base, grid, xp, chunk = check_sweep(
        name, grid_specs, params, settings, workers, conv_tol, chunk, backend
    )
    vectorised = name in VECTORISED
    spec = {
        "scenario": name,
        "params": dataclasses.asdict(base),
        "grid": grid.describe(),
        "settings": dataclasses.asdict(settings),
        "conv_tol": conv_tol,
    }
    job = {**spec, "backend": xp.name}
    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(tempfile.TemporaryDirectory())
        target = Path(out) if out is not None else Path(scratch) / "sweep.nc"
        if out is not None:  # one sweep at a time writes this result and its parts
            stack.enter_context(exclusive(target, folder=False))
        store = PartStore(target, spec, resume)
        for part, reason in store.damaged:
            print(
                f"note: {store.folder / part} was damaged ({reason or 'unreadable'}); its points "
                "are computed again",
                file=sys.stderr,
            )
        done = store.done()
        todo = split(np.setdiff1d(np.arange(grid.size), done, assume_unique=True), chunk)
        start = time.perf_counter()
        try:
            with tqdm(total=grid.size, initial=done.size, unit="point",
                      disable=None if progress else True, desc=f"sweep {name}") as bar:  # fmt: skip

                def finish(unit: Unit, record: dict[str, np.ndarray]) -> None:
                    store.save(unit, record)
                    bar.update(unit.size)
                    if on_unit is not None:
                        on_unit(unit)

                tasks = [(u, (job, grid.columns(u.indices), u.size)) for u in todo]
                execute(run_unit, tasks, finish, workers, scheduler)
        except KeyboardInterrupt:
            points = store.stored_points()
            if not points:
                store.remove()
                raise KeyboardInterrupt("no grid point was finished; nothing to resume") from None
            raise KeyboardInterrupt(
                f"{points} of {grid.size} points are stored in {store.folder}; continue with "
                "the same command and --resume"
            ) from None
        except BaseException:
            if not store.stored_points():  # nothing worth keeping: no parts folder in the way
                store.remove()
            raise
        ds = _dataset(grid, store.assemble(grid.size), base.dim)
        solver = (
            f"vectorised {settings.method} (dynamics.batch_integrate, {xp.name})"
            if vectorised
            else settings.method
        )
        ds.attrs.update(
            provenance(
                "sweep",
                name,
                base,
                swept=list(grid.names),
                grid=grid.describe(),
                points=grid.size,
                solver=solver,
                rtol=settings.rtol,
                atol=settings.atol,
                t_end=settings.t_end,
                conv_tol=conv_tol,
                workers=workers,
                scheduler=scheduler or "",
                backend=xp.name,
                chunk=chunk,
                resumed_points=int(done.size),
                wall_seconds=round(time.perf_counter() - start, 3),
                seed=getattr(base, "seed", 0),
                **scenario.model(base).closed_forms(),
            )
        )
        if out is not None:
            write_netcdf(ds, target, extra_dims=grid.names)
        store.remove()
    return ds
