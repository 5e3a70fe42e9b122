"""The conservation law of Tian et al.'s Theorem 1: W W^T - W_p^T W_p / alpha_p = e^{-2 eta t} C.

- ``conservation_residual``: the weight-space residual of the runs that store W and a trained
  W_p, and of the simulations derived from them, on a log axis against the prediction
  e^{-2 eta t} (Tian Theorem 1; Liu Theorem 3.1).

:func:`prediction_line` and :func:`residual_axes` also draw the quick-look panel of one
simulation (:mod:`reports.figures.simulation`).
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from reports import style
from reports.compare import Trajectory
from reports.figures.base import FLOW_TIME, Drawn, Inputs, absent, figure, log_axis, unique
from reports.inputs import Result


def weight_residual(traj: Trajectory) -> np.ndarray | None:
    """||W W^T - W_p^T W_p / alpha_p||_F / ||C||_F over time (Tian Theorem 1's residual), from
    the stored W and W_p; None without them or without a constant alpha_p."""
    if traj.w is None or traj.wp is None or traj.alpha_p is None:
        return None
    m = traj.w @ np.swapaxes(traj.w, -1, -2) - np.swapaxes(traj.wp, -1, -2) @ traj.wp / traj.alpha_p
    norms = np.linalg.norm(m, axis=(-2, -1))
    return norms / norms[0] if norms[0] > 0 else None


def prediction_line(ax: Axes, t: np.ndarray, eta: float, color: str) -> None:
    """The predicted decay e^{-2 eta t} of the residual, dashed."""
    ax.plot(t, np.exp(-2 * eta * t), color=color, ls="--", lw=0.8)


def prediction_handle() -> Line2D:
    return Line2D([], [], color="0.3", ls="--", lw=0.8, label=r"prediction $e^{-2\eta t}$")


def residual_axes(ax: Axes) -> None:
    """Log axis (after the curves are drawn) and labels of a conservation-residual panel."""
    log_axis(ax)
    ax.set_xlabel(FLOW_TIME)
    ax.set_ylabel("conservation residual")


@figure(
    "conservation_residual",
    "Conservation law: residual against e^{-2 eta t}",
    section="agreement",
)
def conservation_residual(inputs: Inputs) -> Drawn:
    """Theorem 1's weight-space residual (log axis), run and prediction, against e^{-2 eta t}."""
    series = []
    for p in inputs.pairings:
        run_traj = p.run.trajectory()
        r_run = weight_residual(run_traj)
        if r_run is None or not run_traj.eta or not p.run.predictor_trained:
            continue
        sims = [(s, weight_residual(s.trajectory())) for s in p.predictions]
        series.append((p.run, run_traj, r_run, sims))
    series = series[: len(style.PALETTE)]
    if not series:
        return absent(
            "no run stores W and a trained W_p with a constant alpha_p (a linear encoder); the "
            "feature-space residual has no predicted decay for a run"
        )
    fig = style.new_figure("single", 2.6)
    ax = fig.subplots()
    sources: list[Result] = []
    for i, (run, traj, r_run, sims) in enumerate(series):
        ax.plot(traj.t, r_run, ls="none", marker=style.marker(i), mfc="none", color=style.color(i),
                label=f"{run.ident} {run.label}")  # fmt: skip
        prediction_line(ax, traj.t, traj.eta, style.color(i))
        for sim, r_sim in sims:
            if r_sim is not None:
                ax.plot(sim.flow_time(), r_sim, color=style.color(i), lw=1.0, alpha=0.7)
                sources.append(sim)
        sources.append(run)
    residual_axes(ax)
    handles = ax.get_legend_handles_labels()[0]
    handles += [
        Line2D([], [], color="0.3", lw=1.0, label="simulation derived from the run"),
        prediction_handle(),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 2))
    caption = (
        "Residual of Tian et al.'s Theorem 1 in weight space, ||W W^T - W_p^T W_p / alpha_p||_F "
        "normalised by its initial value, on a log axis against flow time t, for runs that "
        "store W (a linear encoder) and a trained W_p with a constant alpha_p: markers the run, "
        "lines the simulation derived from it, dashed the prediction e^{-2 eta t} with the "
        "eta the run recorded (the law holds for any X, X', start and target). The "
        "feature-space residual ||W_p^T W_p - F F^T|| of Liu et al.'s Theorem 3.1 treats the "
        "features as free variables; it has no predicted decay for a trained encoder and is not "
        "drawn."
    )
    return Drawn(caption, unique(sources), fig)
