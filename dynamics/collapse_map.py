"""The collapse map of a training run: which eigen-directions of its measured X, X' survive.

    python -m dynamics.collapse_map --from-run RUN --grid weight_decay=0:1:41 \\
        --grid ema=0.9:0.999:20 --out results/map.nc --plot

For every point of a grid over the run's hyperparameters (``weight_decay`` and ``lr`` as the
training options give them, the EMA momentum ``ema`` per step, the predictor's relative rate
``alpha_p``; the others stay at the run's values) the map gives the number of modes alive at the
run's horizon, which ones, and each mode's threshold in closed form.

The per-mode reduction, its closed-form thresholds and what is exact when X and X' do not
commute: :mod:`dynamics.collapse_modes`.

Losses (``--loss``): ``linear_byol``, Tian's eq. 1 with a trained W_p (the run's own); and
``directpred``, the same run's moments and initial weights with W_p set by DirectPred's rule
(``--exponent``, ``--eps``, ``--rho``; :mod:`dynamics.collapse_directpred`: the same thresholds,
another basin and clock); and ``cosine``, Bao 2025's concentrated cosine modes applied to the
run's modes (:mod:`dynamics.collapse_cosine`: isotropic and SimSiam approximations; no
thresholds, weight decay collapses no normalised mode).

Time: flow time t (docs/theory.md (D3), ``empirical.flow``): eta = weight_decay / D, one step of
learning rate lr is dt = dt_run lr / lr_run, beta = -ln(ema) / dt, horizon = dt times the run's
steps. The run's initial weights give each mode's u_j(0), p_j(0) (Rayleigh quotient of W_p(0)) and
tau_j(0). A mode is alive at the horizon when u_j >= 1/4 of the smallest non-collapsed fixed point,
(x_j / (2 lam_j))^2 / alpha_p (:data:`ALIVE_FRACTION`); the training check applies the same rule to
the measured W. W has d rows, so at most d modes are alive: where more pass, the d strongest are
kept (largest u_j; for the closed-form count, largest threshold). The predictor's decay is eta
(Tian's flow); a run with one SGD weight decay has alpha_p eta (the same for alpha_p = 1)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from dynamics.collapse_cosine import cosine_alive, cosine_live
from dynamics.collapse_directpred import (
    DirectPredRule,
    directpred_alive_weight,
    integrate_directpred,
)
from dynamics.collapse_modes import (
    ALIVE_FRACTION,
    Modes,
    alive_weight,
    at_most,
    commutator_ratio,
    mode_initial,
    offdiagonal_ratio,
    pencil_modes,
)
from dynamics.from_run import derive
from dynamics.grid import Grid
from dynamics.integrate import SaveAt, SolverSettings
from dynamics.models.eigenmodes import EigenmodeParams
from dynamics.sweep.modes import run_mode_points
from symbolic.common.cli import ArgumentParser, UsageError, exit_main
from symbolic.common.files import check_output_file
from symbolic.common.options import ParameterError
from symbolic.common.provenance import provenance
from symbolic.common.results import write_netcdf
from symbolic.common.schema import INPUT, MODE

#: integration of the per-mode ODE (a survival decision, not a trajectory)
SOLVER = SolverSettings(method="DOP853", rtol=1e-6, atol=1e-10, blowup=1e8)
#: the losses of --loss
LOSSES = ("linear_byol", "directpred", "cosine")


@dataclasses.dataclass(frozen=True)
class MapAxes:
    """The swept hyperparameters, in the units of the training options."""

    weight_decay: float = 0.0  # SGD weight decay (--weight-decay)
    ema: float = 0.99  # EMA momentum per step (--ema-base = --ema-final)
    lr: float = 0.01  # base learning rate (--lr)
    alpha_p: float = 1.0  # predictor lr / encoder lr


#: what each axis allows: (test, text)
ALLOWED = {
    "weight_decay": (lambda v: v >= 0, "a finite number >= 0"),
    "ema": (lambda v: 0 < v <= 1, "0 < ema <= 1"),
    "lr": (lambda v: v > 0, "a finite number > 0"),
    "alpha_p": (lambda v: v > 0, "a finite number > 0"),
}


@dataclasses.dataclass(frozen=True)
class RunSetting:
    """The run's own hyperparameters and clock: flow time per step, steps, directions D."""

    axes: MapAxes
    dt: float  # flow time per step at the run's lr
    steps: int  # steps up to the last measurement
    directions: int  # D of empirical.flow

    def horizon(self, lr: np.ndarray) -> np.ndarray:
        return self.dt * np.asarray(lr) / self.axes.lr * self.steps

    def rates(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """eta, beta (flow units) and the horizon of each grid point."""
        dt = self.dt * columns["lr"] / self.axes.lr
        with np.errstate(divide="ignore"):
            beta = -np.log(columns["ema"]) / dt
        return {
            "eta": columns["weight_decay"] / self.directions,
            "beta": beta,
            "alpha_p": columns["alpha_p"],
            "horizon": dt * self.steps,
        }


@dataclasses.dataclass
class Problem:
    """What the map needs: X, X', the initial weights, the run's setting and provenance."""

    x_corr: np.ndarray
    aug_cov: np.ndarray
    w0: np.ndarray
    wp0: np.ndarray
    wa0: np.ndarray
    setting: RunSetting
    attrs: dict


def problem_from_run(run: str | Path) -> Problem:
    """The map's inputs from a linear-encoder BYOL run (``dynamics.from_run.derive``)."""
    derived = derive("linear_byol", run)
    inputs = derived.inputs
    if inputs.x_corr is None:
        raise UsageError(
            f"--from-run {run}: not a linear-encoder run (no X, X'); the map needs its moments"
        )
    path = Path(run) / "measurements.nc" if Path(run).is_dir() else Path(run)
    with xr.open_dataset(path, engine="netcdf4") as ds:
        attrs = dict(ds.attrs)
        if attrs.get("loss_name") != "linear_byol":
            raise UsageError(
                f"--from-run {run}: its loss is {attrs.get('loss_name')}; the map needs a run of "
                "Tian's eq. 1 loss (linear_byol), whose moments it reads"
            )
        steps = int(ds["step_at_measurement"].values[-1])
        ema = float(np.mean(ds["ema_momentum_step"].values[:steps]))
    params = json.loads(attrs["params_json"])
    horizon = float(derived.t_eval[-1])
    if steps < 1 or horizon <= 0:
        raise UsageError(f"--from-run {run}: the run has no measurement after a step")
    axes = MapAxes(
        weight_decay=float(params["weight_decay"]),
        ema=ema,
        lr=float(params["lr"]),
        alpha_p=float(derived.params["alpha_p"]),
    )
    setting = RunSetting(axes, horizon / steps, steps, int(attrs.get("loss_directions", 1)))
    return Problem(
        inputs.x_corr, inputs.aug_cov, inputs.w0, inputs.wp0,
        inputs.wa0 if inputs.wa0 is not None else inputs.w0, setting, derived.attrs,
    )  # fmt: skip


def parse_grid(specs: Sequence[str]) -> Grid:
    """The grid of ``--grid`` options (dynamics.grid), every value checked; UsageError."""
    if any(spec.partition("=")[0].strip() == "loss" for spec in specs):
        raise UsageError(f"--grid loss: not an axis; choose one with --loss {{{','.join(LOSSES)}}}")
    try:
        grid = Grid.parse(list(specs), MapAxes)
    except ParameterError as err:
        raise UsageError(str(err)) from None
    for name, values in zip(grid.names, grid.values, strict=True):
        test, text = ALLOWED[name]
        bad = [v for v in values.tolist() if not (np.isfinite(v) and test(v))]
        if bad:
            raise UsageError(f"--grid {name}: {bad[0]!r} is not allowed: {text}")
    return grid


def integrate_modes(modes: Modes, start: dict, rates: dict) -> np.ndarray:
    """u_j at the horizon for every grid point (rows) and mode (columns): per mode and horizon,
    one vectorised run of Tian's per-mode system in the time x_j t (module docstring)."""
    n, k = rates["eta"].size, modes.x.size
    u_final = np.zeros((n, k))
    horizons = np.unique(rates["horizon"])
    for j in range(k):
        if modes.threshold[j] <= 0 or start["u"][j] <= 0:
            continue  # no non-collapsed fixed point (or nothing to grow): u stays 0 or decays
        x = modes.x[j]
        base = EigenmodeParams(
            dim=1, sigma2=modes.x_aug[j] / x, p0=repr(float(start["p"][j])),
            s0=repr(float(start["u"][j])), tau0=float(start["tau"][j]), c0=0.0,
        )  # fmt: skip
        for horizon in horizons:
            at = np.flatnonzero(rates["horizon"] == horizon)
            columns = {
                "eta": rates["eta"][at] / x,
                "beta": rates["beta"][at] / x,
                "alpha_p": rates["alpha_p"][at],
            }
            saveat = SaveAt.final(float(x * horizon))
            out = run_mode_points(base, columns, at.size, saveat, SOLVER, 1e-12)
            u_final[at, j] = out["s"][:, 0]
    return u_final


def collapse_map(
    problem: Problem, grid: Grid, rule: DirectPredRule | None = None, cosine: bool = False
) -> xr.Dataset:
    """The map over ``grid`` (module docstring) as a Dataset with one dimension per axis; with
    ``rule``, under DirectPred (W_p from F_hat, :mod:`dynamics.collapse_directpred`); with
    ``cosine``, under the cosine loss (:mod:`dynamics.collapse_cosine`)."""
    start_time = time.perf_counter()
    modes = pencil_modes(problem.x_corr, problem.aug_cov)
    start = mode_initial(modes, problem.w0, problem.wp0, problem.wa0)
    setting = problem.setting
    columns = {
        name: np.full(grid.size, getattr(setting.axes, name), float)
        for name in ("weight_decay", "ema", "lr", "alpha_p")
    }
    columns.update(grid.columns(np.arange(grid.size)))
    rates = setting.rates({k: np.asarray(v, float) for k, v in columns.items()})
    if cosine:
        live = cosine_live(modes, start)
        modes = dataclasses.replace(modes, threshold=np.where(live, np.inf, 0.0))
        u_final = np.where(cosine_alive(modes, start, rates), 1.0, 0.0)
        floor = np.full(modes.x.size, 0.5)
        loss = "cosine (Bao 2025, concentrated norms; isotropic, SimSiam approximations)"
    elif rule is None:
        u_final = integrate_modes(modes, start, rates)
        floor = alive_weight(modes, rates["alpha_p"])
        loss = "Tian eq. 1 (unnormalised); predictor decay eta"
    else:
        u_final = integrate_directpred(modes, start, rates, rule, SOLVER)
        floor = directpred_alive_weight(modes, rule)[None, :]
        loss = (f"DirectPred (W_p = U diag(s^{rule.exponent:g} + {rule.eps:g} max s) U^T, F_hat "
                f"at rate rho {rule.rho:g}) on Tian eq. 1")  # fmt: skip
    width = problem.w0.shape[0]
    alive = at_most(u_final >= floor, u_final, width)
    closed = at_most(
        rates["eta"][:, None] < modes.threshold[None, :], -np.arange(modes.x.size), width
    )
    dims, shape = (*grid.names, MODE), (*grid.shape, modes.x.size)
    coords = dict(zip(grid.names, grid.values, strict=True))
    coords[MODE] = np.arange(modes.x.size)
    coords[INPUT] = np.arange(problem.x_corr.shape[0])
    d = setting.directions
    ds = xr.Dataset(
        {
            "surviving_modes": (grid.names, alive.sum(axis=1).reshape(grid.shape).astype(np.int32)),
            "surviving_modes_closed_form": (
                grid.names, closed.sum(axis=1).reshape(grid.shape).astype(np.int32),
            ),
            "mode_survives": (dims, alive.reshape(shape).astype(np.int8)),
            "mode_weight": (dims, u_final.reshape(shape)),
            "threshold_eta": (MODE, modes.threshold),
            "threshold_weight_decay": (MODE, d * modes.threshold),
            "threshold_weight_decay_diagonal": (MODE, d * modes.diagonal_threshold),
            "mode_x": (MODE, modes.x),
            "mode_x_aug": (MODE, modes.x_aug),
            "mode_p_critical": (MODE, modes.p_critical),
            "mode_weight_initial": (MODE, start["u"]),
            "mode_p_initial": (MODE, start["p"]),
            "mode_tau_initial": (MODE, start["tau"]),
            "mode_direction": ((MODE, INPUT), modes.directions),
        },
        coords=coords,
    )  # fmt: skip
    if cosine:  # survival only: no weight scale per mode, no threshold (weight decay kills none)
        ds = ds.drop_vars(["mode_weight", "threshold_eta", "threshold_weight_decay",
                           "threshold_weight_decay_diagonal"])  # fmt: skip
    run_axes = dataclasses.asdict(setting.axes)
    ds.attrs.update(
        provenance(
            "sweep", "collapse_map", {"grid": grid.describe(), **problem.attrs},
            **problem.attrs, swept=list(grid.names), grid=grid.describe(), points=grid.size,
            **{f"run_{k}": v for k, v in run_axes.items()},
            run_steps=setting.steps, run_flow_time_per_step=setting.dt,
            loss_directions=d, width=width, loss=loss,
            map_loss="cosine" if cosine else "linear_byol" if rule is None else "directpred",
            commutator_ratio=commutator_ratio(problem.x_corr, problem.aug_cov),
            offdiagonal_ratio=offdiagonal_ratio(problem.x_corr, problem.aug_cov),
            alive_fraction=ALIVE_FRACTION, rtol=SOLVER.rtol, atol=SOLVER.atol,
            exact=("the thresholds and the per-mode ODE when X and X' commute; the threshold of "
                   "a single surviving mode for any X, X'"),
            approximate=("the per-mode integration and the thresholds of several surviving "
                         "modes when X and X' do not commute (the modes' directions v_j are "
                         "not orthogonal; their coupling is neglected)"),
            wall_seconds=round(time.perf_counter() - start_time, 3), seed=0,
        )
    )  # fmt: skip
    return ds


def summary_lines(ds: xr.Dataset) -> list[str]:
    a = ds.attrs
    count = ds["surviving_modes"]
    values = ds["threshold_weight_decay"].values[:6] if "threshold_weight_decay" in ds else []
    thresholds = ", ".join(f"{v:.3g}" for v in values) or "none (the cosine loss)"
    return [
        f"collapse map of {a['from_run']}: {a['points']} points, {a['wall_seconds']:.2f} s; "
        f"surviving modes {int(count.min())}..{int(count.max())} of {ds.sizes[MODE]}",
        f"  thresholds (weight decay, strongest first): {thresholds}, ...",
        f"  X, X' commutator ratio {a['commutator_ratio']:.3f} (0: commuting; the per-mode "
        f"reduction is then exact), off-diagonal share of X' {a['offdiagonal_ratio']:.3f}",
        f"  the run's setting: weight_decay {a['run_weight_decay']:g}, ema {a['run_ema']:.4g}, "
        f"lr {a['run_lr']:g}, alpha_p {a['run_alpha_p']:g}",
    ]


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m dynamics.collapse_map", description=__doc__.splitlines()[0])
    p.add_argument("--from-run", required=True, help="folder of a linear-encoder BYOL run")
    p.add_argument(
        "--grid", action="append", required=True, metavar="NAME=VALUES",
        help="an axis: weight_decay, ema, lr or alpha_p as NAME=a:b:n or NAME=v1,v2,...",
    )  # fmt: skip
    p.add_argument(
        "--loss", default="linear_byol", choices=LOSSES,
        help="linear_byol: the run's eq. 1 with a trained W_p; directpred: W_p set from the "
        "running feature correlation (the same moments and initial weights); cosine: Bao 2025's "
        "cosine modes (approximate)",
    )  # fmt: skip
    p.add_argument("--exponent", type=float, default=0.5, help="directpred: p = s^EXPONENT "
                   "(0.5: DirectPred; DirectSet(alpha))")  # fmt: skip
    p.add_argument("--eps", type=float, default=0.1, help="directpred: eps of p = s^a + eps max s")
    p.add_argument("--rho", type=float, default=5.0,
                   help="directpred: rate of F_hat per unit flow time")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("results") / "collapse_map.nc")
    p.add_argument("--plot", action="store_true", help="also draw OUT.png / OUT.pdf")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return p


def directpred_rule(args, grid: Grid) -> DirectPredRule | None:
    """DirectPred's rule for --loss directpred (None for linear_byol); UsageError for the
    cosine loss, a bad rule or a predictor-rate axis (DirectPred does not train W_p)."""
    if args.loss != "directpred":
        return None
    if "alpha_p" in grid.names:
        raise UsageError("--grid alpha_p: DirectPred does not train W_p; no predictor rate")
    checks = [("--exponent", args.exponent, 0 < args.exponent <= 4, "0 < exponent <= 4"),
              ("--eps", args.eps, args.eps >= 0, "eps >= 0"),
              ("--rho", args.rho, args.rho > 0, "rho > 0")]  # fmt: skip
    for option, value, ok, allowed in checks:
        if not (np.isfinite(value) and ok):
            raise UsageError(f"{option} {value!r} is not allowed: {allowed}")
    return DirectPredRule(args.exponent, args.eps, args.rho)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    grid = parse_grid(args.grid)
    rule = directpred_rule(args, grid)
    check_output_file(args.out)
    ds = collapse_map(problem_from_run(args.from_run), grid, rule, args.loss == "cosine")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_netcdf(ds, args.out, extra_dims=grid.names)
    written = [args.out]
    if args.plot:
        from reports.figures import write_file_figure  # drawing only

        written += write_file_figure(args.out, ["collapse_map"], args.out.with_suffix(""))
    if not args.quiet:
        for line in summary_lines(ds):
            print(line)
        print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    exit_main(main, prog="python -m dynamics.collapse_map")
