"""A linear-theory simulation fed with inputs measured elsewhere: X, X', initial weights, schedules.

A run trained by any code (one's own loop, solo-learn, lightly) is predicted by giving the flow
of Tian et al.'s Lemma 1 (``linear_byol``, ``linear_simsiam``) what the run measured:

    simulate("linear_byol", x_corr=X, aug_cov=X_aug, w0=W, wp0=W_p, wa0=W_a,
             schedules={"alpha_p": PiecewiseConstant(edges, values), "beta": ...}, eta=...)
    python -m dynamics.simulate linear_byol --moments MOMENTS.nc --init INIT.nc --eta ...

Each input replaces the parameter it stands for: X and X' set ``input_dim`` and the spectra to
'measured', W(0) and W_p(0) set ``dim`` (and ``input_dim``), a schedule sets its rate as a
piecewise-constant function of flow time (:mod:`dynamics.schedules`; its first value becomes the
scalar parameter). The file formats (netCDF, the toolkit's schema names):

- ``--moments FILE``: ``x_corr`` (X = E[xbar xbar^T]) and ``aug_cov`` (X' = E_x[Cov(x'|x)]),
  each n x n with dimensions (``input``, ``input_col``), finite and symmetric. The
  ``moments.nc`` of ``python -m empirical.train`` and :func:`empirical.moments.measure` is one.
- ``--init FILE``: any of ``w`` (W(0), d x n, dimensions (``row``, ``input``)), ``wp``
  (W_p(0), d x d, (``row``, ``col``)), ``w_target`` (W_a(0), d x n, linear_byol only); finite.
  :func:`write_init` writes one.

A bad input is refused with one line naming it (ParameterError from Python, exit status 2 from the
command line). The result records where each input came from (attribute ``given_inputs``: file
and SHA-256, or the SHA-256 of the array).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from dynamics.models.linear_byol import MeasuredInputs
from dynamics.schedules import PiecewiseConstant
from symbolic.common.options import ParameterError
from symbolic.common.results import write_netcdf
from symbolic.common.schema import COL, INPUT, ROW

#: the scenarios whose flow takes measured inputs
ACCEPTS = ("linear_byol", "linear_simsiam")
#: array argument -> (file variable, what it is)
ARRAYS = {
    "x_corr": ("x_corr", "X, the augmentation-averaged data correlation"),
    "aug_cov": ("aug_cov", "X', the augmentation covariance"),
    "w0": ("w", "W(0), the online encoder"),
    "wp0": ("wp", "W_p(0), the predictor"),
    "wa0": ("w_target", "W_a(0), the EMA target"),
}
SCHEDULES = ("alpha_p", "beta")
_SYMMETRY = 1e-8  # relative asymmetry allowed in X and X'


def _sha256(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()


def _matrix(name: str, value: Any) -> np.ndarray:
    """``value`` as a finite float64 matrix; ParameterError naming ``name`` otherwise."""
    try:
        m = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} is not allowed: expected a matrix of numbers") from None
    if m.ndim != 2 or 0 in m.shape:
        raise ParameterError(f"{name} has shape {m.shape}: expected a non-empty matrix (2-D)")
    if not np.all(np.isfinite(m)):
        raise ParameterError(f"{name} holds NaN or infinite values: expected finite numbers")
    return m


def _schedule(name: str, value: Any) -> PiecewiseConstant:
    """A schedule from a PiecewiseConstant or an (edges, values) pair, starting at t = 0."""
    if not isinstance(value, PiecewiseConstant):
        try:
            edges, values = value
            value = PiecewiseConstant(np.asarray(edges, float), np.asarray(values, float))
        except (TypeError, ValueError) as err:
            raise ParameterError(
                f"schedules[{name!r}] is not allowed: expected a PiecewiseConstant or (edges, "
                f"values) with S + 1 increasing edges from 0 and S finite values ({err})"
            ) from None
    if value.edges[0] != 0 or np.any(value.values <= 0):
        raise ParameterError(
            f"schedules[{name!r}] is not allowed: its edges must start at t = 0 and its values "
            "be > 0"
        )
    return value


def _size(params: dict, set_by: dict, name: str, size: int, what: str) -> None:
    """Set params[name] = size, or ParameterError when the user or another input set another."""
    if params.setdefault(name, size) != size:
        first = set_by.get(name, f"the parameter {name}")
        raise ParameterError(f"{what} gives {name} {size}, {first} gives {params[name]}")
    set_by.setdefault(name, what)


def apply(
    scenario: str,
    params: dict[str, Any],
    arrays: dict[str, Any],
    schedules: dict[str, Any] | None = None,
    origins: dict[str, str] | None = None,
) -> tuple[dict[str, Any], MeasuredInputs | None, dict[str, str]]:
    """(parameters, MeasuredInputs, attributes) of ``scenario`` with the given inputs (None and
    no attributes when nothing is given).

    ``arrays``: any of x_corr, aug_cov, w0, wp0, wa0 (None entries are ignored); ``schedules``:
    any of alpha_p, beta; ``origins``: where an array came from (a file), for the provenance.
    """
    given = {k: v for k, v in arrays.items() if v is not None}
    schedules = {k: v for k, v in (schedules or {}).items() if v is not None}
    if not given and not schedules:
        return dict(params), None, {}
    if scenario not in ACCEPTS:
        names = ", ".join([*given, *(f"schedules[{k!r}]" for k in schedules)])
        raise ParameterError(
            f"{names}: only the scenarios {', '.join(ACCEPTS)} take measured inputs, not {scenario}"
        )
    allowed = [*ARRAYS, *SCHEDULES]
    if scenario == "linear_simsiam":  # no EMA target: W_a = W
        allowed = [k for k in allowed if k not in ("wa0", "beta")]
    unknown = [k for k in [*given, *schedules] if k not in allowed]
    if unknown:
        raise ParameterError(
            f"{unknown[0]} is not allowed for {scenario}: allowed {', '.join(allowed)}"
        )
    params = dict(params)
    set_by: dict[str, str] = {}
    origins = origins or {}

    def label(name: str) -> str:  # the argument, or "--init PATH: variable 'w'" from a file
        if name not in origins:
            return name
        return f"{origins[name].split(' (')[0]}: variable {ARRAYS[name][0]!r}"

    m = {name: _matrix(name, value) for name, value in given.items()}
    if ("x_corr" in m) != ("aug_cov" in m):
        raise ParameterError("x_corr and aug_cov go together: give both X and X' or neither")
    if "x_corr" in m:
        n = m["x_corr"].shape[0]
        for name in ("x_corr", "aug_cov"):
            a = m[name]
            if a.shape != (n, n):
                raise ParameterError(f"{label(name)} has shape {a.shape}: expected {n} x {n}")
            if np.abs(a - a.T).max() > _SYMMETRY * max(np.abs(a).max(), 1e-300):
                raise ParameterError(
                    f"{label(name)} is not symmetric: expected a correlation matrix"
                )
            m[name] = (a + a.T) / 2
        _size(params, set_by, "input_dim", n, label("x_corr"))
        params.update(x_spectrum="measured", aug_spectrum="measured")
    for name in ("w0", "wp0", "wa0"):
        if name in m:
            _size(params, set_by, "dim", m[name].shape[0], f"{label(name)} (rows)")
    if "wp0" in m and m["wp0"].shape[0] != m["wp0"].shape[1]:
        raise ParameterError(f"{label('wp0')} has shape {m['wp0'].shape}: expected d x d")
    for name in ("w0", "wa0"):
        if name in m:
            _size(params, set_by, "input_dim", m[name].shape[1], f"{label(name)} (columns)")
    rates = {k: _schedule(k, v) for k, v in schedules.items()}
    for name, schedule in rates.items():
        if name in params:
            raise ParameterError(f"{name} is given twice: by schedules[{name!r}] and as a value")
        params[name] = float(schedule.values[0])
    attrs = {name: origins.get(name, f"array sha256 {_sha256(m[name])}") for name in m} | {
        name: f"schedule of {s.values.size} steps" for name, s in rates.items()
    }
    inputs = MeasuredInputs(**m, **{k: None if s.is_constant else s for k, s in rates.items()})
    text = "; ".join(f"{k}: {v}" for k, v in attrs.items())
    return params, inputs, {"given_inputs": text} if text else {}


def _open(path: Path, option: str) -> xr.Dataset:
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return ds.load()
    except FileNotFoundError:
        raise ParameterError(f"{option} {path}: no such file") from None
    except Exception as err:  # netCDF4 raises OSError, ValueError, RuntimeError...
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ParameterError(f"{option} {path}: not a readable netCDF file ({reason})") from None


def read(path: str | Path, option: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The arrays of a ``--moments`` or ``--init`` file and their origins; ParameterError naming
    the file and the missing or bad variable."""
    path = Path(path)
    ds = _open(path, option)
    names = ("x_corr", "aug_cov") if option == "--moments" else ("w0", "wp0", "wa0")
    arrays = {}
    for name in names:
        variable = ARRAYS[name][0]
        if variable in ds:
            try:
                arrays[name] = _matrix(variable, ds[variable].values)
            except ParameterError as err:
                raise ParameterError(f"{option} {path}: {err}") from None
    wanted = " and ".join if option == "--moments" else " or ".join
    if not arrays or (option == "--moments" and len(arrays) < 2):
        listed = wanted([f"{ARRAYS[n][0]!r} ({ARRAYS[n][1]})" for n in names])
        raise ParameterError(f"{option} {path}: the file needs the variables {listed}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return arrays, {name: f"{option} {path} (sha256 {digest})" for name in arrays}


def read_files(files: dict[str, str | Path | None]) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays of ``{'moments': PATH, 'init': PATH}`` (None: not given) and their origins."""
    arrays, origins = {}, {}
    for option, path in files.items():
        if path is not None:
            found, where = read(path, f"--{option}")
            arrays.update(found)
            origins.update(where)
    return arrays, origins


def write_init(path: str | Path, w0=None, wp0=None, wa0=None) -> Path:
    """An ``--init`` file with the given initial weights (atomically)."""
    dims = {"w0": (ROW, INPUT), "wp0": (ROW, COL), "wa0": (ROW, INPUT)}
    given = {"w0": w0, "wp0": wp0, "wa0": wa0}
    data = {ARRAYS[k][0]: (dims[k], _matrix(k, v)) for k, v in given.items() if v is not None}
    return write_netcdf(xr.Dataset(data, attrs={"kind": "initial weights"}), path)
