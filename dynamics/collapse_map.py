"""The collapse map of a training run: which eigen-directions of its measured X, X' survive.

    python -m dynamics.collapse_map --from-run RUN --grid weight_decay=0:1:41 \\
        --grid ema=0.9:0.999:20 --out results/map.nc --plot

For every point of a grid over the run's hyperparameters (``weight_decay`` and ``lr`` as the
training options give them, the EMA momentum ``ema`` per step, the predictor's relative rate
``alpha_p``; the others stay at the run's values) the map gives the number of modes alive at the
run's horizon, which ones, and each mode's threshold in closed form.

The per-mode reduction (docs/theory.md (D7), Tian et al.'s eqs. 11-13, with the data moments of the
flow docs/theory.md (D1)). When X and X' commute, with common unit eigenvectors v_j (X v_j = x_j
v_j, X' v_j = x'_j v_j, lam_j = x_j + x'_j), the weights W = sum_j a_j v_j^T, W_p = sum_j p_j a_j
a_j^T / |a_j|^2, W_a = tau_j W on each v_j (orthogonal a_j) stay of that form, and each mode, u_j =
|a_j|^2, follows

    dp_j/dt   = alpha_p u_j (tau_j x_j - p_j lam_j) - eta p_j
    du_j/dt   = 2 u_j p_j (tau_j x_j - p_j lam_j) - 2 eta u_j
    dtau_j/dt = beta (1 - tau_j) - tau_j (p_j (tau_j x_j - p_j lam_j) - eta)

which is Tian's per-mode system (docs/theory.md (D7), s_j = u_j) with sigma^2 =
x'_j/x_j, eta/x_j and beta/x_j, in the time x_j t: the map integrates it with the vectorised
per-mode sweep (:func:`dynamics.sweep.modes.run_mode_points`). A non-collapsed fixed point
needs p_j (x_j - p_j lam_j) = eta (tau_j = 1 there), so it exists iff

    eta <= eta*_j = x_j^2 / (4 (x_j + x'_j))         (weight decay D eta*_j)

(docs/theory.md (D9), tau^2/(4(1+sigma^2)), for X = I; DirectSet's tau^2 c_j^2 / (4 (c_j + s_j^2))).
The threshold holds at any EMA rate and alpha_p; these move the collapse basin p_j < p*_- and the
time a mode takes, which is what the integration to the run's horizon adds.

When X and X' do not commute. The modes are the branches of the symmetric pencil X - p S,
S = X + X': mode j's threshold is eta*_j = max_p p e_j(p), e_j the j-th largest eigenvalue of
X - p S, and v_j the eigenvector at the maximiser p*_j, with x_j = v_j^T X v_j, x'_j = v_j^T X'
v_j (then p*_j = x_j / (2 lam_j) and eta*_j = x_j^2/(4 lam_j) as above). Exact: the commuting
case (v_j the common eigenvectors), and in general the threshold of a single surviving mode (a
rank-one fixed point W = a v^T needs p (X - p S) v = eta v). An approximation: the per-mode
integration and the thresholds of several surviving modes, which the non-orthogonal v_j couple
(neglected). How far the run's moments are from commuting is written to the result:
``commutator_ratio`` = ||X X' - X' X||_F / (2 ||X X'||_F) (0: commuting, at most 1) and
``offdiagonal_ratio``, the share of ||X'||_F off the diagonal in the eigenbasis of X; the
thresholds from that diagonal (the first-order estimate) are stored beside the pencil's.

Other losses. DirectPred sets W_p from the features' correlation instead of training it; a
non-collapsed fixed point still needs p_j (x_j - p_j lam_j) = eta, so its thresholds are the same
eta*_j, but its dynamics (and basin) are not integrated here. The cosine loss has no per-mode
reduction (the normalisation by ||W_p f|| ||f'|| couples every mode). The map refuses both.

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
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr
from scipy.optimize import minimize_scalar

from dynamics.from_run import derive
from dynamics.grid import Grid
from dynamics.integrate import SaveAt, SolverSettings
from dynamics.models.eigenmodes import EigenmodeParams
from dynamics.sweep.modes import run_mode_points
from symbolic.common.cli import ArgumentParser, UsageError, run_main
from symbolic.common.files import check_output_file
from symbolic.common.options import ParameterError
from symbolic.common.provenance import provenance
from symbolic.common.results import write_netcdf
from symbolic.common.schema import INPUT, MODE

#: a mode is alive when u_j >= this fraction of its smallest non-collapsed fixed point
ALIVE_FRACTION = 0.25
#: integration of the per-mode ODE (a survival decision, not a trajectory)
SOLVER = SolverSettings(method="DOP853", rtol=1e-6, atol=1e-10, blowup=1e8)
#: points of the scan of p in (0, 1] before each mode's maximiser is refined
P_SCAN = 400
#: why the map covers one loss
ONLY_EQ1 = (
    "the map covers Tian's eq. 1 loss (--loss linear_byol): the cosine loss has no per-mode "
    "reduction (its normalisation couples the modes), and DirectPred's W_p rule is not integrated"
)


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


def commutator_ratio(x_corr: np.ndarray, aug_cov: np.ndarray) -> float:
    """||X X' - X' X||_F / (2 ||X X'||_F): 0 when X and X' commute, at most 1."""
    product = x_corr @ aug_cov
    norm = np.linalg.norm(product)
    return float(np.linalg.norm(product - product.T) / (2 * norm)) if norm > 0 else 0.0


def offdiagonal_ratio(x_corr: np.ndarray, aug_cov: np.ndarray) -> float:
    """||offdiag(V^T X' V)||_F / ||X'||_F, V the eigenvectors of X."""
    _, vecs = np.linalg.eigh(x_corr)
    rotated = vecs.T @ aug_cov @ vecs
    norm = np.linalg.norm(rotated)
    return float(np.linalg.norm(rotated - np.diag(np.diag(rotated))) / norm) if norm > 0 else 0.0


def closed_form_threshold(x: np.ndarray, x_aug: np.ndarray) -> np.ndarray:
    """eta*_j = x_j^2 / (4 (x_j + x'_j)) (0 where x_j <= 0: no non-collapsed fixed point)."""
    x, x_aug = np.asarray(x, float), np.asarray(x_aug, float)
    lam = x + x_aug
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((x > 0) & (lam > 0), x**2 / (4 * lam), 0.0)


@dataclasses.dataclass(frozen=True)
class Modes:
    """The modes of (X, X'): rows of ``directions`` are the v_j, strongest threshold first."""

    directions: np.ndarray  # (k, k)
    x: np.ndarray
    x_aug: np.ndarray
    p_critical: np.ndarray
    threshold: np.ndarray  # eta*_j, flow units
    diagonal_threshold: np.ndarray  # from diag(V^T X' V), V the eigenvectors of X


def pencil_modes(x_corr: np.ndarray, aug_cov: np.ndarray) -> Modes:
    """Each mode j: maximise p e_j(p) over p in (0, 1] (e_j the j-th eigenvalue of X - p S;
    X - p S <= 0 for p >= 1 as X' >= 0), v_j its eigenvector there (module docstring)."""
    view = x_corr + aug_cov
    k = x_corr.shape[0]

    def branch(p: float, j: int) -> tuple[float, np.ndarray]:
        values, vectors = np.linalg.eigh(x_corr - p * view)
        return values[k - 1 - j], vectors[:, k - 1 - j]

    ps = np.linspace(0, 1, P_SCAN + 1)[1:]
    scan = np.array(
        [ps[i] * np.linalg.eigvalsh(x_corr - ps[i] * view)[::-1] for i in range(ps.size)]
    )
    directions, p_crit = np.zeros((k, k)), np.zeros(k)
    for j in range(k):
        i = int(np.argmax(scan[:, j]))
        lo, hi = ps[max(i - 1, 0)] if i > 0 else 0.0, ps[min(i + 1, ps.size - 1)]
        best = minimize_scalar(
            lambda p, j=j: -p * branch(p, j)[0], bounds=(lo, hi), method="bounded",
            options={"xatol": 1e-10},
        )  # fmt: skip
        p_crit[j] = best.x
        directions[j] = branch(best.x, j)[1]
    x = np.einsum("ji,ik,jk->j", directions, x_corr, directions)
    x_aug = np.einsum("ji,ik,jk->j", directions, aug_cov, directions)
    eig_x, vecs = np.linalg.eigh(x_corr)
    diagonal = closed_form_threshold(eig_x, np.diag(vecs.T @ aug_cov @ vecs))
    threshold = closed_form_threshold(x, x_aug)
    order = np.argsort(-threshold, kind="stable")
    return Modes(
        directions[order], x[order], x_aug[order], p_crit[order], threshold[order],
        np.sort(diagonal)[::-1],
    )  # fmt: skip


def mode_initial(modes: Modes, w0, wp0, wa0) -> dict[str, np.ndarray]:
    """u_j(0) = |W(0) v_j|^2, p_j(0) = a^T W_p(0) a / |a|^2 (a = W(0) v_j), tau_j(0) =
    <W_a(0) v_j, a> / |a|^2."""
    a = np.asarray(w0) @ modes.directions.T  # (d, k): column j is a_j
    aa = np.asarray(wa0) @ modes.directions.T
    u = np.sum(a * a, axis=0)
    safe = np.where(u > 0, u, 1.0)
    p = np.einsum("ij,ik,kj->j", a, np.asarray(wp0), a) / safe
    tau = np.where(u > 0, np.sum(aa * a, axis=0) / safe, 1.0)
    return {"u": u, "p": p, "tau": tau}


def alive_weight(modes: Modes, alpha_p) -> np.ndarray:
    """The smallest non-collapsed u_j, (x_j / (2 lam_j))^2 / alpha_p, times ALIVE_FRACTION."""
    lam = modes.x + modes.x_aug
    with np.errstate(divide="ignore", invalid="ignore"):
        p_low = np.where(lam > 0, modes.x / (2 * lam), 0.0)
    return ALIVE_FRACTION * p_low**2 / np.asarray(alpha_p, float)[..., None]


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
            raise UsageError(f"--from-run {run}: its loss is {attrs.get('loss_name')}; {ONLY_EQ1}")
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
        raise UsageError(f"--grid loss: not an axis; {ONLY_EQ1}")
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


def at_most(alive: np.ndarray, strength: np.ndarray, width: int) -> np.ndarray:
    """``alive`` (points, modes) with at most ``width`` modes per point, the strongest kept:
    W has ``width`` rows, so no more modes can be alive."""
    if alive.shape[1] <= width:
        return alive
    order = np.argsort(-np.where(alive, np.broadcast_to(strength, alive.shape), -np.inf), axis=1)
    keep = np.zeros_like(alive)
    np.put_along_axis(keep, order[:, :width], True, axis=1)
    return alive & keep


def collapse_map(problem: Problem, grid: Grid) -> xr.Dataset:
    """The map over ``grid`` (module docstring) as a Dataset with one dimension per axis."""
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
    u_final = integrate_modes(modes, start, rates)
    width = problem.w0.shape[0]
    alive = at_most(u_final >= alive_weight(modes, rates["alpha_p"]), u_final, width)
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
    run_axes = dataclasses.asdict(setting.axes)
    ds.attrs.update(
        provenance(
            "sweep", "collapse_map", {"grid": grid.describe(), **problem.attrs},
            **problem.attrs, swept=list(grid.names), grid=grid.describe(), points=grid.size,
            **{f"run_{k}": v for k, v in run_axes.items()},
            run_steps=setting.steps, run_flow_time_per_step=setting.dt,
            loss_directions=d, width=width, loss="Tian eq. 1 (unnormalised); predictor decay eta",
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
    thresholds = ", ".join(f"{v:.3g}" for v in ds["threshold_weight_decay"].values[:6])
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
    p.add_argument("--out", type=Path, default=Path("results") / "collapse_map.nc")
    p.add_argument("--plot", action="store_true", help="also draw OUT.png / OUT.pdf")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    grid = parse_grid(args.grid)
    check_output_file(args.out)
    ds = collapse_map(problem_from_run(args.from_run), grid)
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
    sys.exit(run_main(main, prog="python -m dynamics.collapse_map"))
