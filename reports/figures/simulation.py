"""Quick-look figures of one simulation: ``python -m dynamics.simulate SCENARIO --plot``.

Each figure of the section ``simulation`` puts the report's panels side by side for the models it
names (the file's ``name`` attribute), in the report's style; :func:`write_quick_look` draws the
first one that applies to a result file.

- ``simulation_matrix``: eigenvalues of W_p with the fixed points p*_+- (as in
  ``wp_eigenvalues``) and the conservation residual against e^{-2 eta t} (as in
  ``conservation_residual``) for the matrix models;
- ``simulation_eigenmodes``: eigenvalues and the phase portrait (as in ``phase_portrait``);
- ``simulation_directpred``: eigenvalues of W_p and of DirectPred's running correlation F_hat;
- ``simulation_ablation``: the feature spectrum and ||W|| of the ablations (collapse);
- ``simulation_encoder``: the feature spectrum, the loss and the effective rank;
- ``simulation_ema_gap``: the EMA gap against its closed form.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from matplotlib.figure import SubFigure

from reports import style
from reports.figures import conservation, phase, predictor
from reports.figures.base import (
    FLOW_TIME,
    Drawn,
    Inputs,
    absent,
    figure,
    headline,
    registered,
    write_file_figure,
)
from reports.inputs import Result

#: A panel: draws one simulation into its part of the figure, axes and legend included.
Panel = Callable[[SubFigure, Result], None]
HEIGHT_IN = 2.9
SHOWN_PARAMS = 4


def _eigenvalues(sub: SubFigure, sim: Result) -> None:
    ax = sub.subplots()
    key = predictor.eigenvalue_panel(ax, None, sim)
    ax.set_title("eigenvalues of $W_p$")
    predictor.eigenvalue_legend(sub, key, ncols=4)


def _conservation(sub: SubFigure, sim: Result) -> None:
    ax = sub.subplots()
    t = sim.flow_time()
    # the model's conserved matrix (Tian Theorem 1, or Liu Theorem 3.1 for free features), drawn
    # wide so that the prediction stays visible on top where the law holds
    ax.plot(t, sim.values("conservation_residual_weight"), color=style.color(0), lw=2.5,
            alpha=0.6, label="residual of the law")  # fmt: skip
    if sim.has("conservation_residual"):
        ax.plot(t, sim.values("conservation_residual"), color=style.color(1),
                label=r"$\|W_p^T W_p - E[f f^T]\|$ / $\|E[f f^T]\|$")  # fmt: skip
    conservation.prediction_line(ax, t, sim.eta() or 0.0, style.PREDICTION_COLOR)
    conservation.residual_axes(ax)
    ax.set_title("conservation law")
    handles = [*ax.get_legend_handles_labels()[0], conservation.prediction_handle()]
    sub.legend(handles=handles, loc="outside lower center", ncols=2)


def _portrait(sub: SubFigure, sim: Result) -> None:
    ax = sub.subplots()
    tau = phase.portrait_panel(ax, sim)
    ax.set_title(f"eigenmodes at $\\tau$ = {tau:.3g}")


def _spectrum(var: str, ylabel: str, title: str) -> Panel:
    """A panel of the spectrum ``var`` over flow time, one line per mode coloured by rank."""

    def panel(sub: SubFigure, sim: Result) -> None:
        ax = sub.subplots()
        predictor.series_panel(ax, sim.flow_time(), sim, var, marker=None)
        ax.set_xlabel(FLOW_TIME)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        predictor.rank_colorbar(sub, [ax], shrink=0.8)

    return panel


def _weight_norm(sub: SubFigure, sim: Result) -> None:
    ax = sub.subplots()
    predictor.series_panel(ax, sim.flow_time(), sim, "w_norm", marker=None)
    ax.set_xlabel(FLOW_TIME)
    ax.set_ylabel(r"$\|W\|_F$")
    ax.set_title("collapse of the online weights")


def _loss_and_rank(sub: SubFigure, sim: Result) -> None:
    ax = sub.subplots()
    t = sim.flow_time()
    ax.plot(t, sim.values("loss"), color="k")
    ax.set_xlabel(FLOW_TIME)
    ax.set_ylabel("loss")
    right = ax.twinx()
    right.spines["right"].set_visible(True)
    right.plot(t, sim.values("effective_rank"), color=style.color(1), ls="--")
    right.set_ylabel("effective rank (RankMe, eval set)", color=style.color(1))
    ax.set_title("loss (solid) and effective rank (dashed)")


def _ema_gap(sub: SubFigure, sim: Result) -> None:
    ax = sub.subplots()
    t = sim.flow_time()
    ax.plot(t, sim.values("ema_gap"), color=style.color(0), lw=2.5, alpha=0.6,
            label=r"$\|\xi - \theta\|$ (simulated)")  # fmt: skip
    ax.plot(t, sim.values("ema_gap_predicted"), color=style.PREDICTION_COLOR, ls="--", lw=0.8,
            label="closed form")  # fmt: skip
    ax.set_xlabel(FLOW_TIME)
    ax.set_ylabel("EMA gap")
    ax.legend(loc="best")


def _quick_look(
    inputs: Inputs, models: Sequence[str], panels: Sequence[Panel], caption: str
) -> Drawn:
    """The panels side by side for the first simulation of one of ``models``."""
    sim = next((s for s in inputs.sims if s.kind == "simulation" and s.name in models), None)
    if sim is None:
        return absent(f"no simulation of {', '.join(models)}")
    width = "single" if len(panels) == 1 else "double"
    fig = style.new_figure(width, HEIGHT_IN)
    for sub, panel in zip(fig.subfigures(1, len(panels), squeeze=False)[0], panels, strict=True):
        panel(sub, sim)
    params = sim.short_params(SHOWN_PARAMS, rest="config_toml")
    headline(fig, sim, f"{sim.name}: {params}")
    return Drawn(caption, [sim], fig, width=width)


@figure(
    "simulation_matrix",
    "Quick look: eigenvalues of W_p and the conservation law",
    section="simulation",
)
def simulation_matrix(inputs: Inputs) -> Drawn:
    """Eigenvalues of W_p with p*_+- and the conservation residual of the matrix models."""
    caption = (
        "Left: Re eig(W_p) against flow time with the fixed points p*_+ and p*_- (Tian et al. "
        "2021, eqs. 15-16). Right: the conservation residual (Tian Theorem 1; Liu Theorem 3.1) "
        "on a log axis against its prediction e^{-2 eta t}."
    )
    models = ("linear_byol", "linear_simsiam", "free_features")
    return _quick_look(inputs, models, (_eigenvalues, _conservation), caption)


@figure(
    "simulation_eigenmodes",
    "Quick look: eigenvalues and phase portrait of the eigenmodes",
    section="simulation",
)
def simulation_eigenmodes(inputs: Inputs) -> Drawn:
    """The per-mode model: eigenvalues with p*_+- and the (p_j, s_j) phase portrait."""
    caption = (
        "Left: the eigenvalues p_j against flow time with the fixed points p*_+ and p*_-. "
        "Right: the modes in the (p_j, s_j) plane with the invariant parabola, the fixed points "
        "and the stream lines at fixed tau (Tian et al. 2021, Fig. 3)."
    )
    return _quick_look(inputs, ("eigenmodes",), (_eigenvalues, _portrait), caption)


@figure(
    "simulation_directpred",
    "Quick look: eigenvalues of W_p and of the running correlation",
    section="simulation",
)
def simulation_directpred(inputs: Inputs) -> Drawn:
    """DirectPred and DirectCopy: eigenvalues of W_p and of the running correlation F_hat."""
    caption = (
        "Left: Re eig(W_p) against flow time, W_p set from the running correlation F_hat "
        "(Tian et al. 2021, Sec. 5). Right: the eigenvalues of F_hat on a log axis."
    )
    fhat = _spectrum("fhat_eig", r"eig($\hat F$)", r"running correlation $\hat F$")
    models = ("directpred", "directcopy", "directpred_discrete")
    return _quick_look(inputs, models, (_eigenvalues, fhat), caption)


@figure(
    "simulation_ablation",
    "Quick look: feature spectrum and weight norm of an ablation",
    section="simulation",
)
def simulation_ablation(inputs: Inputs) -> Drawn:
    """Without a predictor or without stop-gradient: the feature spectrum and ||W|| collapse."""
    caption = (
        "Left: the eigenvalues of the feature correlation E[f f^T] on a log axis. Right: "
        "||W||_F of the online weights; both fall when the representation collapses (Tian et "
        "al. 2021, Sec. 3)."
    )
    corr = _spectrum("corr_eig", r"eig($E[f f^T]$)", "feature correlation")
    return _quick_look(inputs, ("no_predictor", "no_stopgrad"), (corr, _weight_norm), caption)


@figure(
    "simulation_encoder",
    "Quick look: feature spectrum, loss and effective rank",
    section="simulation",
)
def simulation_encoder(inputs: Inputs) -> Drawn:
    """Linear encoders trained by a loss: the feature spectrum, the loss and the RankMe rank."""
    caption = (
        "Left: the eigenvalues of the embedding correlation Z_1^T Z_1 / n on a log axis. Right: "
        "the loss and the effective rank (RankMe) of the evaluation-set embeddings."
    )
    corr = _spectrum("corr_eig", r"eig($Z_1^T Z_1 / n$)", "feature correlation")
    models = ("barlow_twins", "vicreg", "spectral", "liu", "general")
    return _quick_look(inputs, models, (corr, _loss_and_rank), caption)


@figure("simulation_ema_gap", "Quick look: the EMA gap", section="simulation")
def simulation_ema_gap(inputs: Inputs) -> Drawn:
    """The gap between the EMA target and the online weights against its closed form."""
    caption = "||xi - theta|| between the EMA target and the online weights, and its closed form."
    return _quick_look(inputs, ("ema_gap",), (_ema_gap,), caption)


def write_quick_look(result_file: Path) -> list[Path]:
    """The quick-look figure of a simulation file, next to it (same stem, .pdf and .png)."""
    names = [r.name for r in registered("simulation")]
    return write_file_figure(result_file, names, result_file.with_suffix(""))
