"""A simulation derived from a training run (``dynamics.simulate SCENARIO --from-run RUN``).

The run (a folder written by ``python -m empirical.train``) records what the linear flow needs
(``empirical.flow``): per step its flow time, eta, alpha_p and beta; per measurement W_p, and for
the linear backbone W and the target's W_a; beside them ``moments.nc`` with X and X' measured
through the run's own augmentation. :func:`derive` turns these into the scenario's parameters
and :class:`~dynamics.models.linear_byol.MeasuredInputs`:

- dimension d from W_p, input dimension from W; eta from the run (one value: SGD with one weight
  decay); alpha_p(t) and beta(t) as the run's piecewise-constant schedules; the predictor's
  decay alpha_p eta (one weight decay for both parameter groups);
- W(0), W_p(0), W_a(0) from the run's first measurement (``initial='run'``), or drawn for
  another seed as torch initialises a bias-free Linear layer, U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  (``initial='seed'``: the null of the comparison);
- X and X' from ``moments.nc``;
- the output times: the run's measurement times.

Whatever the run cannot supply is listed in the attribute ``not_matched`` (and stays at the
scenario's parameters), what it supplied in ``matched``; ``from_run`` names the run and
``from_run_file_sha256`` / ``from_run_moments_sha256`` hash every file the simulation was
derived from, so the pairing of a prediction with its run is explicit (an edited moments.nc
does not pair).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from dynamics.models.linear_byol import MeasuredInputs
from dynamics.schedules import PiecewiseConstant
from symbolic.common.cli import UsageError
from symbolic.common.results import params_from_attrs

RUN_FILE = "measurements.nc"
MOMENTS_FILE = "moments.nc"
INITIAL = ("run", "seed")


@dataclasses.dataclass
class Derived:
    """Everything a simulation takes from a run."""

    params: dict[str, Any]
    inputs: MeasuredInputs
    t_eval: np.ndarray
    attrs: dict[str, Any]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _open(path: Path) -> xr.Dataset:
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return ds.load()
    except Exception as err:  # netCDF4 raises OSError, ValueError, RuntimeError...
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UsageError(f"--from-run {path}: not a readable netCDF file ({reason})") from None


def _variable(ds: xr.Dataset, name: str, path: Path, what: str) -> np.ndarray:
    """The values of variable ``name`` of ``ds`` as floats; UsageError naming what is missing."""
    if name not in ds:
        raise UsageError(
            f"--from-run {path}: the file has no variable {name!r} ({what}); it is not a "
            "complete file of python -m empirical.train"
        )
    return np.asarray(ds[name].values, dtype=float)


def _square(values: np.ndarray, size: int, name: str, path: Path, of: str) -> np.ndarray:
    """``values`` if it is a ``size`` x ``size`` matrix; UsageError naming the shapes else."""
    if values.shape != (size, size):
        raise UsageError(
            f"--from-run {path}: {name} is {' x '.join(map(str, values.shape))}, expected "
            f"{size} x {size} ({of}); the file belongs to another run"
        )
    return values


def _run_params(attrs: dict, path: Path) -> dict[str, Any]:
    """The run's options (attribute params_json); UsageError when it is missing or damaged."""
    try:
        params = params_from_attrs(attrs)
    except KeyError:
        raise UsageError(f"--from-run {path}: the file has no attribute 'params_json'") from None
    except (TypeError, ValueError) as err:
        raise UsageError(
            f"--from-run {path}: its attribute params_json is not valid JSON ({err})"
        ) from None
    if not isinstance(params, dict):
        raise UsageError(f"--from-run {path}: its attribute params_json is not a JSON object")
    return params


def _one_value(values: np.ndarray, what: str, run: Path) -> float:
    values = np.asarray(values, dtype=float)
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise UsageError(f"--from-run {run}: the run records no finite {what}")
    if not np.allclose(values, values[0], rtol=1e-12, atol=0):
        raise UsageError(f"--from-run {run}: {what} changes during the run; it must be constant")
    return float(values[0])


def torch_like_init(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """A (rows x cols) weight as torch initialises nn.Linear(cols, rows, bias=False):
    kaiming_uniform with a = sqrt(5), i.e. U(-1/sqrt(cols), 1/sqrt(cols))."""
    bound = 1.0 / np.sqrt(cols)
    return rng.uniform(-bound, bound, size=(rows, cols))


def derive(scenario: str, run: str | Path, initial: str = "run", seed: int = 0) -> Derived:
    """The parameters, inputs and output times of ``scenario`` derived from the run ``run``."""
    run = Path(run)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**63:
        raise UsageError(f"seed={seed!r} is not allowed: an integer from 0 to 2^63 - 1")
    path = run / RUN_FILE if run.is_dir() else run
    if not path.is_file():
        raise UsageError(f"--from-run {run}: no {RUN_FILE} (a folder of python -m empirical.train)")
    if initial not in INITIAL:
        raise UsageError(f"--initial {initial!r}: allowed values are {', '.join(INITIAL)}")
    ds = _open(path)
    attrs = ds.attrs
    if attrs.get("kind") != "training":
        raise UsageError(f"--from-run {path}: not a training run (kind {attrs.get('kind')!r})")
    predicted_by = str(attrs.get("matched_scenario", "none"))
    if predicted_by != scenario:
        why = (
            f"it is predicted by {predicted_by}"
            if predicted_by != "none"
            else f"no linear-theory scenario predicts it (method {attrs.get('name')}, predictor "
            f"{attrs.get('predictor_kind')}, linear {bool(attrs.get('predictor_linear'))}: the "
            "theory predicts a linear predictor W_p; train with --predictor linear)"
        )
        raise UsageError(f"--from-run {path}: the run cannot set up {scenario}: {why}")
    if "flow_time_undefined" in attrs:
        raise UsageError(f"--from-run {path}: {attrs['flow_time_undefined']}")
    if "wp" not in ds:
        raise UsageError(f"--from-run {path}: the run stored no W_p (its d > --wp-store-limit)")
    run_params = _run_params(attrs, path)
    if "w" in ds and run_params.get("projector", "none") != "none":
        raise UsageError(
            f"--from-run {path}: the run has a projector between its linear encoder W and the "
            "embedding (the theory's embedding is W x); train with --projector none"
        )
    if "w_up" in ds:
        raise UsageError(
            f"--from-run {path}: a deep linear encoder ({1 + ds.sizes['layer']} layers): "
            f"{scenario} predicts one layer W; general predicts deep encoders (a loss other than "
            "eq. 1, no EMA target)"
        )
    flow = _variable(ds, "flow_time_step", path, "the flow time after each step")
    edges = np.concatenate([[0.0], flow])
    t_eval = np.asarray(ds["time"].values, dtype=float) if "time" in ds.coords else np.zeros(0)
    if t_eval.size < 2 or t_eval[0] != 0 or np.any(np.diff(t_eval) <= 0):
        raise UsageError(f"--from-run {path}: its measurement times are not increasing from 0")
    eta_steps = _variable(ds, "eta_step", path, "eta of each step")
    eta = _one_value(eta_steps, "weight decay per unit flow time eta", path)
    alpha_steps = _variable(ds, "alpha_p_step", path, "alpha_p of each step")
    if not flow.size == eta_steps.size == alpha_steps.size:
        raise UsageError(f"--from-run {path}: its per-step records differ in length")
    alpha_p = PiecewiseConstant(edges, alpha_steps)
    wp0 = np.asarray(ds["wp"].values[0], dtype=float)
    d = wp0.shape[0]
    _square(wp0, d, "W_p(0)", path, "a square predictor")
    convention = (
        f"the loss convention ({attrs.get('loss_directions', 1)} directions x scale "
        f"{attrs.get('loss_scale', 1.0)}: the run's flow time)"
    )
    matched = ["eta", "alpha_p(t)", "flow-time grid (the run's measurement times)", convention]
    not_matched = [
        "finite learning rate and minibatch noise (the simulation is the gradient flow of the "
        "population loss)"
    ]
    params: dict[str, Any] = {"dim": d, "eta": eta, "alpha_p": float(alpha_p.values[0])}
    params["predictor_decay"] = str(attrs.get("predictor_decay", "alpha_p_eta"))
    loss_params = run_params.get("loss_params") or {}
    params["stop_gradient"] = bool(loss_params.get("stop_gradient", True))
    inputs: dict[str, Any] = {"alpha_p": None if alpha_p.is_constant else alpha_p}
    if scenario == "linear_byol":
        beta_steps = _variable(ds, "beta_step", path, "beta of each step")
        if beta_steps.size != flow.size:
            raise UsageError(f"--from-run {path}: its per-step records differ in length")
        beta = PiecewiseConstant(edges, beta_steps)
        params["beta"] = float(beta.values[0])
        inputs["beta"] = None if beta.is_constant else beta
        matched.append("beta(t)")
    rng = np.random.default_rng(seed)
    hashes: dict[str, str] = {}  # of every file besides the measurements the simulation read
    if "w" in ds:
        w0 = np.asarray(ds["w"].values[0], dtype=float)
        if w0.ndim != 2 or w0.shape[0] != d:
            raise UsageError(
                f"--from-run {path}: W(0) is {' x '.join(map(str, w0.shape))}, expected {d} "
                "rows (the rows of W_p)"
            )
        moments = path.parent / MOMENTS_FILE
        if not moments.is_file():
            raise UsageError(f"--from-run {run}: the linear run has no {MOMENTS_FILE} (X and X')")
        m = _open(moments)
        n = w0.shape[1]
        of = f"the run's input dimension {n}, the columns of W"
        params.update(input_dim=n, x_spectrum="measured", aug_spectrum="measured")
        inputs.update(
            x_corr=_square(_variable(m, "x_corr", moments, "X"), n, "x_corr", moments, of),
            aug_cov=_square(_variable(m, "aug_cov", moments, "X'"), n, "aug_cov", moments, of),
        )
        matched.append(
            f"X and X' ({MOMENTS_FILE}: {m.attrs.get('n_views')} views of "
            f"{m.attrs.get('n_images')} images through the run's augmentation)"
        )
        wa0 = np.asarray(ds["w_target"].values[0], dtype=float) if "w_target" in ds else w0
        if wa0.shape != w0.shape:
            raise UsageError(f"--from-run {path}: W_a(0) and W(0) differ in shape")
        hashes[f"from_run_{MOMENTS_FILE.removesuffix('.nc')}_sha256"] = _sha256(moments)
    else:
        params.update(input_dim=d)
        not_matched.append(
            "X and X' (the encoder is not linear: isotropic X = I, X' = sigma2 I are used)"
        )
        not_matched.append(f"W(0) and W_a(0) (no linear encoder: drawn for seed {seed})")
        w0 = wa0 = torch_like_init(d, d, rng)
    if run_params.get("projector", "none") != "none":
        not_matched.append("the projector MLP (the simulation has the encoder W only)")
    if str(attrs.get("loss_name")) != "linear_byol":
        not_matched.append(
            f"the loss ({attrs.get('loss_name')}; the simulation integrates Tian's eq. 1)"
        )
    if initial == "seed":
        w0 = torch_like_init(*w0.shape, rng)
        wa0, wp0 = w0, torch_like_init(d, d, rng)
        not_matched.append(f"the initial weights: drawn for seed {seed} (the other-seed null)")
    else:
        matched.append("W_p(0)" + (", W(0), W_a(0)" if "w" in ds else ""))
    derived_attrs = {
        "from_run": str(run),
        "from_run_file_sha256": _sha256(path),
        **hashes,
        "from_run_method": str(attrs.get("name")),
        "from_run_partial": int(attrs.get("partial", 0)),
        "initial": "the run's initial weights" if initial == "run" else f"seed {seed}",
        "matched": "; ".join(matched),
        "not_matched": "; ".join(not_matched),
    }
    return Derived(
        params=params,
        inputs=MeasuredInputs(w0=w0, wp0=wp0, wa0=wa0, **inputs),
        t_eval=t_eval,
        attrs=derived_attrs,
    )
