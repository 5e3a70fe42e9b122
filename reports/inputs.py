"""Read and check the result files a report is built from (docs/conventions.md, "Result files").

A simulation file has the dimension ``time`` (flow time t); a training run has ``epoch`` with a
``time`` coordinate along it: the flow time the run recorded (``empirical.flow``), NaN for a run
without one (LARS: the attribute ``flow_time_undefined`` says why). Readers take the physics
from what the producers recorded (flow time, eta, the kind of predictor, which simulation
predicts which run) and never re-derive it from option names. Both carry the provenance
attributes written by :func:`symbolic.common.provenance.provenance` (``kind``, ``name``,
``params_json``, ``git_revision``, ...). Any problem is an :class:`InputError` whose message names
the file and what is wrong, in one line; the report builder turns it into exit status 2.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from dynamics import replay
from dynamics.symmetry import SYMMETRIES_ATTR
from reports.compare import Trajectory
from reports.sigma_stat import SIGMA_VARIABLE
from symbolic.common.cli import UsageError
from symbolic.common.schema import EPOCH, TIME, VARIABLES, core_dims

#: Parameters shown first when a source is described in a caption.
KEY_PARAMS = (
    "eta",
    "alpha_p",
    "beta",
    "sigma2",
    "dim",
    "epochs",
    "optimizer",
    "peak_lr",
    "momentum",
    "weight_decay",
    "batch_size",
    "predictor",
    "proj_dim",
    "backbone",
    "data",
)
CAPTION_PARAMS = 7


class InputError(UsageError):
    """A missing or malformed input file (exit status 2); the message starts with the path."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__(f"{path}: {problem}")


@dataclass(eq=False)
class Result:
    """One result file: its dataset (loaded into memory) and its provenance."""

    path: Path
    kind: str
    name: str
    params: dict[str, Any]
    attrs: dict[str, Any]
    sha256: str
    ds: xr.Dataset
    label: str = ""
    ident: str = ""

    @property
    def axis(self) -> str:
        """The dimension along which the run progresses: ``time`` or ``epoch``."""
        return EPOCH if self.kind == "training" else TIME

    @property
    def seed(self) -> Any:
        for source in (self.params, {"seed": self.attrs.get("seed")}):
            if source.get("seed") is not None:
                return source["seed"]
        return "not recorded"

    @property
    def git_revision(self) -> str:
        return str(self.attrs.get("git_revision", "unknown"))

    def flow_time(self) -> np.ndarray:
        """The flow time of each time point or measurement (NaN for a run without one)."""
        return np.asarray(self.ds[TIME].values, dtype=float)

    @property
    def has_flow_time(self) -> bool:
        """False for a run that records no flow time (LARS); it is never put on a t axis."""
        return "flow_time_undefined" not in self.attrs

    def steps(self) -> np.ndarray:
        """Epoch numbers of a run, flow times of a simulation."""
        return np.asarray(self.ds[self.axis].values, dtype=float)

    def has(self, *names: str) -> bool:
        return all(n in self.ds.variables for n in names)

    def values(self, name: str) -> np.ndarray:
        return np.asarray(self.ds[name].values, dtype=float)

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    def eta(self) -> float | None:
        """Weight decay per unit flow time: a simulation's ``eta``; the ``eta`` a run recorded
        per step (``empirical.flow``: wd / loss_directions), when it is one value; None for a
        run without flow time (LARS) or without the record."""
        if self.kind != "training":
            value = self.params.get("eta")
            return float(value) if isinstance(value, int | float) else None
        if not self.has_flow_time or "eta_step" not in self.ds:
            return None
        values = self.values("eta_step")
        return float(values[0]) if values.size and np.all(values == values[0]) else None

    def alpha_p(self) -> float | None:
        """The predictor's rate alpha_p when it is one value over the whole run or simulation."""
        if self.kind != "training":
            value = self.params.get("alpha_p")
            return float(value) if isinstance(value, int | float) else None
        if "alpha_p_step" not in self.ds:
            return None
        values = self.values("alpha_p_step")
        return float(values[0]) if values.size and np.all(values == values[0]) else None

    def trajectory(self) -> Trajectory:
        """What :mod:`reports.compare` reads: times, W_p and W where stored, eta, alpha_p, the
        loss's symmetries."""
        return Trajectory(
            self.flow_time(),
            self.values("wp") if self.has("wp") else None,
            self.values("w") if self.has("w") else None,
            self.eta(),
            self.alpha_p(),
            self.values("alignment_cos") if self.has("alignment_cos") else None,
            self.values("corr_eig") if self.has("corr_eig") else None,
            self.values("effective_rank") if self.has("effective_rank") else None,
            sigma=self.values(SIGMA_VARIABLE) if self.has(SIGMA_VARIABLE) else None,
            symmetries=self.symmetries(),
        )

    def symmetries(self) -> tuple[str, ...]:
        """The symmetries of its loss a simulation declares (attribute ``symmetries``,
        :mod:`dynamics.symmetry`); none for a training run."""
        text = str(self.ds.attrs.get(SYMMETRIES_ATTR, "")) if self.kind != "training" else ""
        return tuple(s.strip() for s in text.split(",") if s.strip())

    def companion_sha256(self) -> dict[str, str]:
        """SHA-256 of the files beside a run's measurements that a prediction is derived from
        (``moments.nc``: X and X'; ``pairs.nc``: the fixed augmented pairs), by file name;
        empty for a simulation."""
        if self.kind != "training":
            return {}
        paths = [self.path.parent / name for name in (replay.MOMENTS_FILE, "pairs.nc")]
        return {path.name: _sha256(path) for path in paths if path.is_file()}

    def last(self, name: str) -> np.ndarray | float:
        """The last finite value of a series, or the row of a (axis, mode) variable at the end."""
        values = self.values(name)
        if values.ndim == 1:
            finite = values[np.isfinite(values)]
            return float(finite[-1]) if finite.size else float("nan")
        return values[-1]

    def baseline(self, name: str, epoch_zero: bool = True) -> float | None:
        """The random-encoder value of ``name``: a variable or attribute ``random_<name>``,
        ``<name>_random`` or ``baseline_<name>``; else, with ``epoch_zero``, the value at epoch 0
        when the file says epoch 0 is the randomly initialised encoder (empirical.train does)."""
        for key in (f"random_{name}", f"{name}_random", f"baseline_{name}"):
            if key in self.ds.data_vars:
                values = np.asarray(self.ds[key].values, dtype=float).ravel()
                values = values[np.isfinite(values)]
                if values.size:
                    return float(values[-1])
            if key in self.attrs:
                try:
                    return float(self.attrs[key])
                except (TypeError, ValueError):
                    continue
        random_start = "random" in str(self.attrs.get("epoch_zero", "")).lower()
        if epoch_zero and random_start and name in self.ds and self.ds[name].dims == (EPOCH,):
            at_zero = self.ds[name].where(self.ds[EPOCH] == 0, drop=True).values
            if at_zero.size and np.isfinite(at_zero[0]):
                return float(at_zero[0])
        return None

    def fixed_points(self) -> tuple[float, dict[str, float]]:
        """(tau, {p_star_plus, p_star_minus}) as the file stores them.

        The closed forms in the attributes (at ``closed_form_tau``) come first; else the
        variables at the last time (median over modes) with the median final ``tau``. No fixed
        point when the file marks the closed forms invalid (``closed_form_valid = 0``) or when
        eta exceeds the stored ``collapse_threshold_eta`` (every mode collapses).
        """
        tau = float(self.attrs.get("closed_form_tau", 1.0))
        if not int(self.attrs.get("closed_form_valid", 1)):
            return tau, {}
        threshold, eta = self.attrs.get("collapse_threshold_eta"), self.params.get("eta")
        if isinstance(eta, int | float) and isinstance(threshold, int | float | np.number):
            if eta > threshold:
                return tau, {}
        keys = ("p_star_plus", "p_star_minus")
        if all(k in self.attrs for k in keys):
            values = {k: float(self.attrs[k]) for k in keys}
        else:
            values = {k: self._final_median(k) for k in keys if k in self.ds.data_vars}
            if self.has("tau"):
                tau = self._final_median("tau")
        return tau, {k: v for k, v in values.items() if np.isfinite(v)}

    def _final_median(self, name: str) -> float:
        var = self.ds[name]
        if self.axis in var.dims:
            var = var.isel({self.axis: -1})
        values = np.asarray(var.values, dtype=float).ravel()
        values = values[np.isfinite(values)]
        return float(np.median(values)) if values.size else float("nan")

    @property
    def predictor_trained(self) -> bool:
        """False when the run's W_p is set from the features (DirectPred, DirectCopy), as the
        run's attribute ``predictor_kind`` says."""
        return str(self.attrs.get("predictor_kind", "trained")) == "trained"

    @property
    def derived_from(self) -> str | None:
        """The run a simulation was derived from (``--from-run``), None for other files."""
        return str(self.attrs["from_run"]) if "from_run" in self.attrs else None

    @property
    def is_null(self) -> bool:
        """A simulation of a run started from another seed's initial weights (the null)."""
        return str(self.attrs.get("from_run_initial", "run")) == "seed"

    @property
    def partial(self) -> bool:
        """True for a run that stopped early (``partial = 1`` in the attributes)."""
        return bool(int(self.attrs.get("partial", 0)))

    def short_params(self, limit: int = CAPTION_PARAMS, rest: str = "the appendix") -> str:
        """The first ``limit`` parameters (key ones first) as ``k=v`` text, then how many more
        are in ``rest``."""
        keys = [k for k in KEY_PARAMS if k in self.params]
        keys += sorted(k for k in self.params if k not in keys and k != "seed")
        shown = [f"{k}={_fmt(self.params[k])}" for k in keys[:limit]]
        if len(keys) > limit:
            shown.append(f"+{len(keys) - limit} more in {rest}")
        return ", ".join(shown)

    def describe(self) -> str:
        """One line of provenance: id, kind, name, key parameters, seed, git revision, file."""
        status = f"; PARTIAL: {self.attrs.get('status', 'stopped early')}" if self.partial else ""
        return (
            f"[{self.ident}] {self.kind} {self.label} ({self.short_params()}; seed {self.seed}; "
            f"git {short_revision(self.git_revision)}; file {self.path.name}{status})"
        )

    def provenance_record(self) -> dict[str, Any]:
        """Everything about this source, for provenance.json and the appendix."""
        keep = ("package_version", "created", "command", "host", "python")
        return {
            "id": self.ident,
            "label": self.label,
            "kind": self.kind,
            "name": self.name,
            "file": str(self.path),
            "sha256": self.sha256,
            "seed": self.seed,
            "git_revision": self.git_revision,
            "params": self.params,
            **{k: str(self.attrs[k]) for k in keep if k in self.attrs},
        }


def short_revision(revision: str) -> str:
    """The first 12 characters of a git revision, keeping a ``-dirty`` mark."""
    dirty = revision.endswith("-dirty")
    return revision.removesuffix("-dirty")[:12] + ("-dirty" if dirty else "")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _open(path: Path) -> xr.Dataset:
    if not path.exists():
        raise InputError(path, "no such file")
    if not path.is_file():
        raise InputError(path, "not a file")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return ds.load()
    except Exception as err:  # netCDF4 raises OSError, ValueError, RuntimeError...
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(path, f"not a readable netCDF file ({reason})") from None


def _check_axis(path: Path, ds: xr.Dataset, kind: str) -> None:
    if kind == "training":
        if EPOCH not in ds.dims:
            raise InputError(path, "has no 'epoch' dimension (a training run needs one)")
        if TIME not in ds.coords or ds[TIME].dims != (EPOCH,):
            raise InputError(path, "has no coordinate 'time' along 'epoch' (flow time t)")
    elif TIME not in ds.dims:
        raise InputError(path, "has no 'time' dimension (a simulation needs one)")
    t = np.asarray(ds[TIME].values, dtype=float)
    if t.size < 2:
        raise InputError(path, f"holds {t.size} time point(s); at least 2 are needed")
    if kind == "training" and "flow_time_undefined" in ds.attrs:
        return  # no flow time (LARS): the run is placed on its epochs only
    if not np.all(np.isfinite(t)):
        raise InputError(path, "coordinate 'time' holds NaN or infinite values")
    if np.any(np.diff(t) < 0):
        raise InputError(path, "coordinate 'time' is not non-decreasing")


def _check_variables(path: Path, ds: xr.Dataset, axis: str) -> None:
    """Each schema variable along the result's axis has the dims (axis, *its core dims) of the
    schema (:data:`symbolic.common.schema.CORE_DIMS`), numbers, and not only NaN."""
    for name in ds.data_vars:
        if name not in VARIABLES or axis not in ds[name].dims:
            continue
        dims = ds[name].dims
        core = core_dims(name, dims)
        want = (axis, *core)
        if dims != want:
            raise InputError(path, f"variable {name!r} has dims {dims}, expected {want}")
        if not np.issubdtype(ds[name].dtype, np.number):
            raise InputError(path, f"variable {name!r} is not numeric ({ds[name].dtype})")
        if np.all(np.isnan(ds[name].values)):
            raise InputError(path, f"variable {name!r} holds only NaN")


def _params(path: Path, attrs: dict[str, Any]) -> dict[str, Any]:
    try:
        params = json.loads(attrs["params_json"])
    except (TypeError, ValueError) as err:
        raise InputError(path, f"attribute 'params_json' is not valid JSON ({err})") from None
    if not isinstance(params, dict):
        raise InputError(path, "attribute 'params_json' is not a JSON object")
    return params


#: Kinds accepted for --sim besides "simulation": read, listed with their provenance, not drawn.
LISTED_KINDS = ("sweep", "phase")


def load_result(path: str | Path, kind: str) -> Result:
    """Load and check one result file of the given ``kind`` ("simulation" or "training").

    For ``kind="simulation"`` a sweep or phase-diagram file (:data:`LISTED_KINDS`) is accepted
    too; only its provenance is checked, since it carries parameter dimensions.
    """
    path = Path(path)
    ds = _open(path)
    attrs = dict(ds.attrs)
    for key in ("kind", "name", "params_json", "git_revision"):
        if key not in attrs:
            raise InputError(
                path,
                f"missing provenance attribute {key!r} (see symbolic.common.provenance.provenance)",
            )
    allowed = (kind, *LISTED_KINDS) if kind == "simulation" else (kind,)
    if attrs["kind"] not in allowed:
        raise InputError(path, f"is a {attrs['kind']!r} file, expected kind {kind!r}")
    if attrs["kind"] == kind:
        _check_axis(path, ds, kind)
        _check_variables(path, ds, EPOCH if kind == "training" else TIME)
    return Result(
        path=path,
        kind=str(attrs["kind"]),
        name=str(attrs["name"]),
        params=_params(path, attrs),
        attrs=attrs,
        sha256=_sha256(path),
        ds=ds,
    )


RUN_FILE = "measurements.nc"


def run_file(path: str | Path) -> Path:
    """The measurements of a run given as a folder (``measurements.nc``, as empirical.train
    writes it, else the folder's single ``*.nc``) or as a file."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.is_file():
        return path
    if (path / RUN_FILE).is_file():
        return path / RUN_FILE
    files = sorted(path.glob("*.nc"))
    if not files:
        raise InputError(path, "holds no netCDF file of measurements (*.nc)")
    if len(files) > 1:
        names = ", ".join(f.name for f in files)
        raise InputError(path, f"holds {len(files)} netCDF files ({names}); expected one")
    return files[0]


def _label(results: list[Result]) -> None:
    """Give each result a unique label (its name; the folder or file stem on a clash)."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r.name] = counts.get(r.name, 0) + 1
    seen: set[str] = set()
    for r in results:
        label = r.name
        if counts[r.name] > 1:
            stem = r.path.parent.name if r.kind == "training" else r.path.stem
            label = f"{r.name} ({stem})"
        while label in seen:
            label += "'"
        seen.add(label)
        r.label = label


def load_inputs(sims: Sequence[str], runs: Sequence[str]) -> tuple[list[Result], list[Result]]:
    """Load every simulation file and every run (folder or file); labels and ids S1.., R1.."""
    if not sims and not runs:
        raise UsageError("nothing to report: give --sim FILE... and/or --runs FOLDER...")
    sim_results = [load_result(p, "simulation") for p in sims]
    run_results = [load_result(run_file(p), "training") for p in runs]
    for prefix, group in (("S", sim_results), ("R", run_results)):
        _label(group)
        for i, r in enumerate(group, 1):
            r.ident = f"{prefix}{i}"
    return sim_results, run_results
