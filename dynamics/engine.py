"""Running a model: integration settings, the run itself and its result Dataset.

What every way of starting a simulation shares (:mod:`dynamics.simulate`'s command line and
``simulate()``, sweeps, phase diagrams, benchmarks): :class:`RunSettings` (solver, tolerances and
output times), a memory check before anything runs, :func:`run_model` (the integrator or a
model's own discrete stepper), and :func:`to_dataset` (observables, collapse fates, undefined
ratios, provenance and the ``config_toml`` that reruns the simulation).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import xarray as xr

from dynamics import observables as obs
from dynamics.fates import final_fates
from dynamics.integrate import SaveAt, Solution, SolverSettings, integrate
from dynamics.models.base import Model
from dynamics.predicted_sigma import add_predicted_sigma
from symbolic.common.options import param, to_toml
from symbolic.common.provenance import provenance
from symbolic.common.resources import check_memory, float_bytes
from symbolic.common.schema import MODE


@dataclasses.dataclass(frozen=True)
class RunSettings(SolverSettings):
    """How a scenario is integrated (not a property of the model): the solver
    (:class:`dynamics.integrate.SolverSettings`, whose fields it declares) and the output times,
    ``n_out`` uniform times from 0 to ``t_end``."""

    t_end: float = param(
        100.0,
        "final flow time",
        above=0,
        at_most=1e6,
        why="longer horizons take unbounded time; split the run",
    )
    n_out: int = param(
        401, "number of output times", at_least=2, at_most=100_000, why="the stored trajectory"
    )

    @property
    def solver(self) -> SolverSettings:
        """The solver part, as the integrators take it."""
        return SolverSettings(self.method, self.rtol, self.atol, self.blowup)

    @property
    def saveat(self) -> SaveAt:
        """The output times: ``n_out`` uniform times from 0 to ``t_end``."""
        return SaveAt.uniform(self.t_end, self.n_out)


#: the size parameters of the models, as the options that set them
SIZE_FIELDS = ("dim", "input_dim", "n_samples")


def memory_needed(model_cls: type[Model], params, n_out: int) -> float:
    """Bytes a run of ``model_cls`` with ``params`` and ``n_out`` output times needs, roughly.

    The stored trajectory (n_out states), the observables computed on it (per time a dozen
    d x d stacks: products, eigen- and singular-value decompositions), the solver's stages and
    dense output (about 25 states) and the fixed matrices (X, X', data of the sample models).
    """
    d, n1, n = (float(getattr(params, name, 0) or 0) for name in SIZE_FIELDS)
    if model_cls.state_per_mode:
        state, per_time, fixed = 3 * d, 16 * d, 0.0
    else:
        state = 3 * d * n1 + 3 * d * d + 2 * d * n
        per_time = state + 16 * d * d
        fixed = 8 * n1 * n1 + 4 * n * (n1 + d)
    return float_bytes(n_out * per_time, 25 * state, fixed)


def check_size(model_cls: type[Model], params, n_out: int) -> None:
    """UsageError naming the size options when a run cannot fit in this machine's memory."""
    sizes = [
        f"--{name.replace('_', '-')} {getattr(params, name)}"
        for name in SIZE_FIELDS
        if getattr(params, name, None)
    ]
    check_memory(memory_needed(model_cls, params, n_out), " ".join([*sizes, f"--n-out {n_out}"]))


def run_model(
    model: Model, solver: SolverSettings, saveat: SaveAt, progress: bool = False
) -> Solution:
    """Integrate ``model`` from its initial state with ``solver`` and output times ``saveat``.

    The integrator restarts where the model's measured schedules jump (``--from-run``). A
    discrete-time model (one with a ``run_discrete`` method) is stepped by that method instead.
    """
    if hasattr(model, "run_discrete"):
        return model.run_discrete(saveat, solver, progress)
    inputs = getattr(model, "inputs", None)
    return integrate(
        model.rhs,
        model.initial_state(),
        saveat,
        solver,
        breakpoints=inputs.breakpoints() if inputs is not None else None,
        progress=progress,
    )


def failure_message(model: Model, traj: Solution) -> str:
    """'diverged at t=...: <variable> ...' for a trajectory that stopped early."""
    where = model.layout.describe(traj.failed_index) if traj.failed_index >= 0 else "the state"
    return f"diverged at t={traj.t_fail:.6g}: {where}: {traj.failure}"


def to_dataset(
    model: Model,
    settings: RunSettings,
    traj: Solution,
    wall_s: float,
    extra: dict | None = None,
) -> xr.Dataset:
    """The result Dataset with its provenance, closed-form and ``extra`` attributes.

    It holds which modes collapsed at the end (``mode_collapsed``, :func:`dynamics.fates.
    final_fates`, what the summary counts and the report shows) and NaN where a ratio observable
    is undefined (:func:`mark_undefined`), listed in the attribute ``undefined_values``.
    """
    ds = model.observables(traj.t, traj.y)
    fates = final_fates(model, ds) if traj.t.size and MODE in ds.dims else None
    if fates is not None:
        ds["mode_collapsed"] = (MODE, fates[0].astype(np.int8))
    undefined = mark_undefined(ds)
    ds.attrs.update(
        provenance(
            "simulation",
            model.name,
            model.params,
            solver="discrete steps" if hasattr(model, "run_discrete") else settings.method,
            rtol=settings.rtol,
            atol=settings.atol,
            t_end=settings.t_end,
            n_out=settings.n_out,
            seed=getattr(model.params, "seed", 0),
            rhs_evaluations=traj.n_rhs,
            wall_seconds=round(wall_s, 4),
            partial=int(not traj.complete),
            config_toml=config_toml(model, settings, extra or {}),
            status="complete" if traj.complete else failure_message(model, traj),
            **model.closed_forms(),
            **(extra or {}),
        )
    )
    if undefined:
        ds.attrs["undefined_values"] = ", ".join(undefined)
    return ds


#: ratio observables and the magnitudes in their denominators (``w_norm`` = ||W||,
#: ``wp_singular`` = the singular values of W_p, the largest first)
RATIOS = {
    "tau": ("w_norm",),
    "conservation_residual": ("w_norm",),
    "fhat_gap": ("w_norm",),
    "alignment_cos": ("w_norm", "wp_singular"),
    "commutator_norm": ("w_norm", "wp_singular"),
    "wp_asymmetry": ("wp_singular",),
}


def mark_undefined(ds: xr.Dataset) -> list[str]:
    """Set to NaN the ratio observables whose denominator is numerically zero (a fully collapsed
    run: ||W|| or ||W_p|| fell below :data:`dynamics.observables.NUMERICAL_ZERO` of its largest
    value, where 0/0 is all the ratio can be) or that are not finite; returns their names."""
    zero = {}
    for scale in ("w_norm", "wp_singular"):
        if scale in ds:
            magnitude = ds[scale].values  # wp_singular: the largest singular value, per time
            zero[scale] = obs.numerically_zero(magnitude.reshape(magnitude.shape[0], -1)[:, 0])
    undefined = []
    for name, scales in RATIOS.items():
        if name not in ds or ds[name].dims[:1] != ("time",):
            continue
        values = np.array(ds[name].values, dtype=float)
        mask = ~np.isfinite(values)
        for scale in scales:
            if scale in zero:
                mask |= zero[scale].reshape(-1, *([1] * (values.ndim - 1)))
        if mask.any():
            values[mask] = np.nan
            ds[name] = (ds[name].dims, values, ds[name].attrs)
            undefined.append(name)
    return undefined


def undefined_of(ds: xr.Dataset) -> list[str]:
    """The variables that :func:`mark_undefined` declared undefined (for ``write_netcdf``)."""
    return [n.strip() for n in ds.attrs.get("undefined_values", "").split(",") if n.strip()]


def collapse_lines(ds: xr.Dataset) -> list[str]:
    """What a summary adds for a collapsed run: every mode collapsed, ratios undefined."""
    lines = []
    if "mode_collapsed" in ds and ds["mode_collapsed"].size:
        n_col, dim = int(ds["mode_collapsed"].sum()), ds["mode_collapsed"].size
        if n_col == dim:
            norm = f" (||W|| = {float(ds['w_norm'][-1]):.3g} at the end)" if "w_norm" in ds else ""
            lines.append(f"  COLLAPSED: all {dim} modes collapsed{norm}")
    undefined = undefined_of(ds)
    if undefined:
        first = min(
            float(ds["time"].values[np.isnan(ds[n].values).reshape(ds.sizes["time"], -1).any(1)][0])
            for n in undefined
        )
        lines.append(
            f"  undefined from t={first:.4g} on (NaN in the file; 0/0 of numerically zero "
            f"weights): {', '.join(undefined)}"
        )
    return lines


@dataclasses.dataclass
class Setup:
    """A simulation ready to run: the model, its settings, output times, extra attributes.

    ``saveat``: the output times when they are not the settings' uniform ones (``--from-run``:
    the run's measurement times)."""

    model: Model
    settings: RunSettings
    saveat: SaveAt | None = None
    attrs: dict = dataclasses.field(default_factory=dict)
    #: a derived simulation's held-out image moments: the run's Sigma statistics are predicted
    moments: xr.Dataset | None = None

    def run(self, progress: bool = False) -> tuple[Solution, float]:
        start = time.perf_counter()
        saveat = self.saveat or self.settings.saveat
        # overflow on the way to a blow-up is what the integrator detects and reports (as
        # "diverged at t=..."): numpy's warnings about it would only precede that line
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            traj = run_model(self.model, self.settings.solver, saveat, progress)
        return traj, time.perf_counter() - start

    def dataset(self, traj: Solution, wall_s: float) -> xr.Dataset:
        ds = to_dataset(self.model, self.settings, traj, wall_s, self.attrs)
        return ds if self.moments is None else add_predicted_sigma(ds, self.moments)


def config_toml(model: Model, settings: RunSettings, extra: dict) -> str:
    """A TOML file that reruns this simulation with ``--config`` (every parameter and setting)."""
    values = {"scenario": model.name, **dataclasses.asdict(model.params)}
    values.update(dataclasses.asdict(settings))
    for key in ("from_run", "from_run_initial", "moments_file", "init_file"):
        if key in extra:
            values[key] = extra[key]
    return to_toml(values, [f"python -m dynamics.simulate {model.name} --config THIS_FILE"])


def summary_lines(model: Model, ds: xr.Dataset) -> list[str]:
    """A header naming the run, then the model's own comparison with theory."""
    a = ds.attrs
    head = f"{model.name}: " + ", ".join(
        f"{k}={v}" for k, v in dataclasses.asdict(model.params).items() if k != "seed"
    )
    solver = f"  t_end={a['t_end']:g}, solver {a['solver']} rtol={a['rtol']:g} atol={a['atol']:g}"
    timing = f", {a['rhs_evaluations']} rhs evaluations, {a['wall_seconds']:.2f} s"
    return [head, solver + timing, *model.summary(ds), *collapse_lines(ds)]
