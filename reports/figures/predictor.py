"""The predictor W_p: its eigenvalues against flow time, its spectrum over epochs, its entries.

- ``wp_eigenvalues``: eigenvalues of W_p against flow time t, simulation (lines) and run
  (markers), with the predicted fixed points p*_+ and p*_- (Tian et al. 2021, eqs. 15-16).
- ``wp_spectrum_epochs``: eigenvalues of the feature correlation and of W_p, the alignment
  cos(W_p u_j, u_j) and the asymmetry over epochs (Tian et al. Fig. 2; Liu et al. Fig. 4).
- ``wp_heatmaps``: W_p at a few epochs (Liu et al. Fig. 3).

:func:`eigenvalue_panel` and :func:`series_panel` are also panels of the quick-look figures
(:mod:`reports.figures.simulation`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import FigureBase
from matplotlib.lines import Line2D

from reports import style
from reports.figures.base import (
    FLOW_TIME,
    MAX_PANELS,
    MODES_SHOWN,
    Drawn,
    Inputs,
    absent,
    epoch_axis,
    figure,
    grid,
    log_if_wide,
    unique,
)
from reports.inputs import Result

HEATMAP_EPOCHS = 4
FIXED_POINT_STYLE = {"p_star_plus": "--", "p_star_minus": ":"}
FIXED_POINT_LABEL = {"p_star_plus": "$p^*_+$", "p_star_minus": "$p^*_-$"}
RANK_LABELS = ("largest", "2nd", "3rd", "4th", "2nd smallest", "smallest")


def shown_ranks(n: int) -> list[int]:
    """Ranks drawn in the overlay: all when n <= MODES_SHOWN, else the 4 largest and 2 smallest."""
    if n <= MODES_SHOWN:
        return list(range(n))
    return [0, 1, 2, 3, n - 2, n - 1]


@dataclass
class EigenvalueKey:
    """What eigenvalue panels drew, for their legend: ranks, kinds of source, fixed points."""

    ranks: list[int] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)
    fixed: set[str] = field(default_factory=set)
    sources: list[Result] = field(default_factory=list)

    def update(self, other: EigenvalueKey) -> None:
        self.ranks = other.ranks or self.ranks
        self.kinds |= other.kinds
        self.fixed |= other.fixed
        self.sources += other.sources


def eigenvalue_panel(ax: Axes, run: Result | None, sim: Result | None) -> EigenvalueKey:
    """Re eig(W_p) against flow time on ``ax``: ``sim`` as lines with the fixed points it stores,
    ``run`` as open markers (either may be None or lack wp_eig_real)."""
    key = EigenvalueKey()
    if sim is not None and sim.has("wp_eig_real"):
        eig = sim.values("wp_eig_real")
        key.ranks = shown_ranks(eig.shape[1])
        for j, rank in enumerate(key.ranks):
            ax.plot(sim.flow_time(), eig[:, rank], color=style.color(j), lw=1.0)
        for name, value in sim.fixed_points()[1].items():
            ax.axhline(value, color=style.PREDICTION_COLOR, ls=FIXED_POINT_STYLE[name], lw=0.8)
            key.fixed.add(name)
        key.kinds.add("simulation")
        key.sources.append(sim)
    if run is not None and run.has("wp_eig_real"):
        eig = run.values("wp_eig_real")
        key.ranks = shown_ranks(eig.shape[1])
        for j, rank in enumerate(key.ranks):
            ax.plot(run.flow_time(), eig[:, rank], ls="none", marker=style.marker(j), mfc="none",
                    color=style.color(j), mew=0.8)  # fmt: skip
        key.kinds.add("run")
        key.sources.append(run)
    ax.set_xlabel(FLOW_TIME)
    ax.set_ylabel("Re eig($W_p$)")
    ax.axhline(0, color="0.8", lw=0.5, zorder=0)
    return key


def eigenvalue_legend(container: FigureBase, key: EigenvalueKey, ncols: int) -> None:
    """One legend below the eigenvalue panels of ``container``: kinds, fixed points, ranks."""
    handles = []
    if "simulation" in key.kinds:
        handles.append(Line2D([], [], color="0.3", label="simulation"))
    if "run" in key.kinds:
        handles.append(Line2D([], [], color="0.3", ls="none", marker="o", mfc="none", label="run"))
    for name in sorted(key.fixed, reverse=True):
        handles.append(
            Line2D(
                [], [], color="k", ls=FIXED_POINT_STYLE[name], lw=0.8, label=FIXED_POINT_LABEL[name]
            )
        )
    marker = "run" in key.kinds
    handles += [
        Line2D(
            [],
            [],
            color=style.color(j),
            marker=style.marker(j) if marker else None,
            mfc="none",
            label=RANK_LABELS[j] if len(key.ranks) == MODES_SHOWN else f"rank {j + 1}",
        )
        for j in range(len(key.ranks))
    ]
    container.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(len(handles), ncols),
        handlelength=1.6,
        columnspacing=1.0,
    )


def _overlay_pairs(inputs: Inputs) -> list[tuple[Result | None, Result]]:
    """Each run with flow time next to each prediction; without any, the simulations alone."""
    pairs = [(p.run, sim) for p in inputs.pairings for sim in p.predictions if p.run.has_flow_time]
    return pairs or [(None, s) for s in inputs.sims if s.has("wp_eig_real") and not s.is_null]


@figure("wp_eigenvalues", "Eigenvalues of W_p: simulation and measurement", section="agreement")
def wp_eigenvalues(inputs: Inputs) -> Drawn:
    """Re eig(W_p) against flow time: simulation lines, run markers, predicted fixed points."""
    pairs = [
        (run, sim)
        for run, sim in _overlay_pairs(inputs)
        if (run is not None and run.has("wp_eig_real")) or sim.has("wp_eig_real")
    ][:MAX_PANELS]
    if not pairs:
        return absent("no simulation or run holds wp_eig_real")
    width = "single" if len(pairs) == 1 else "double"
    ncols = min(len(pairs), 2)
    fig = style.new_figure(width, 2.0 * math.ceil(len(pairs) / ncols) + 0.5)
    key = EigenvalueKey()
    for ax, (run, sim) in zip(grid(fig, len(pairs), ncols), pairs, strict=True):
        key.update(eigenvalue_panel(ax, run, sim))
        ax.set_title(" vs ".join(f"{r.ident} {r.label}" for r in (run, sim) if r is not None))
    eigenvalue_legend(fig, key, 5 if width == "single" else 10)
    caption = (
        "Real parts of the eigenvalues of the predictor W_p in decreasing order at each time "
        "(the four largest and the two smallest; one colour per rank), against flow time t. "
        "Lines: the simulation derived from the run; open markers: the run's measurements "
        "(the first: its initial network); dashed and dotted: the fixed points p*_+ (stable) "
        "and p*_- (collapse basin boundary) stored in the simulation, where its X and X' are "
        "isotropic."
    )
    return Drawn(caption, unique(key.sources), fig, width=width)


PANEL_COLUMNS = (
    ("corr_eig", "eig($F F^T$)"),
    ("wp_eig_real", "Re eig($W_p$)"),
    ("alignment_cos", r"cos($W_p u_j$, $u_j$)"),
    ("wp_asymmetry", "asymmetry of $W_p$"),
)
#: Spectra of correlation matrices (non-negative): drawn on a log axis.
CORRELATION_EIGENVALUES = ("corr_eig", "fhat_eig")


def series_panel(ax: Axes, x: np.ndarray, result: Result, var: str, marker: str | None) -> None:
    """``var`` of ``result`` against ``x``: one line (with ``marker``), or one line per mode
    coloured by rank (:func:`rank_colorbar`); correlation spectra on a log axis."""
    y = result.values(var)
    if y.ndim == 1:
        ax.plot(x, y, color=style.color(0), marker=marker)
        log_if_wide(ax, [y])
        return
    cmap = matplotlib.colormaps[style.SEQUENTIAL_CMAP]
    n = y.shape[1]
    for j in range(n):
        ax.plot(x, y[:, j], color=cmap(j / max(n - 1, 1)), lw=0.7)
    if var in CORRELATION_EIGENVALUES:
        positive = y[y > 0]
        if positive.size:
            ax.set_yscale("log")
            ax.set_ylim(bottom=max(positive.min(), positive.max() * 1e-8))


def rank_colorbar(container: FigureBase, axes: Sequence[Axes], shrink: float) -> None:
    """The colour scale of :func:`series_panel`'s per-mode lines: largest to smallest."""
    sm = ScalarMappable(cmap=matplotlib.colormaps[style.SEQUENTIAL_CMAP], norm=Normalize(1, 2))
    bar = container.colorbar(sm, ax=list(axes), ticks=[1, 2], shrink=shrink, aspect=30)
    bar.set_ticklabels(["largest", "smallest"])


@figure(
    "wp_spectrum_epochs",
    "Spectrum, alignment and asymmetry of W_p over epochs",
    section="measurements",
)
def wp_spectrum_epochs(inputs: Inputs) -> Drawn:
    """Tian Fig. 2 / Liu Fig. 4: spectra, alignment and asymmetry of W_p over epochs, per run."""
    members = [r for r in inputs.runs if r.has("wp_eig_real")][:MAX_PANELS]
    if not members:
        return absent("no training run holds wp_eig_real (no linear predictor)")
    fig = style.new_figure("double", 1.7 * len(members) + 0.2)
    axes = fig.subplots(len(members), len(PANEL_COLUMNS), squeeze=False)
    for row, run in zip(axes, members, strict=True):
        for ax, (var, ylabel) in zip(row, PANEL_COLUMNS, strict=True):
            if not run.has(var):
                ax.text(0.5, 0.5, f"{var}\nnot recorded", ha="center", va="center",
                        transform=ax.transAxes)  # fmt: skip
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            series_panel(ax, run.steps(), run, var, marker="o")
            epoch_axis(ax)
            ax.set_ylabel(ylabel)
        row[0].set_title(run.label, loc="left")
    rank_colorbar(fig, axes.ravel(), shrink=0.6)
    caption = (
        "Per run (rows), against epochs: eigenvalues of the single-view feature correlation "
        "F F^T (log axis); real parts of the eigenvalues of W_p, in decreasing order; the "
        "alignment cos(W_p u_j, u_j) for the eigenvectors u_j of F F^T; and the asymmetry "
        "||W_p - W_p^T||_F / ||W_p + W_p^T||_F. Colour: mode rank (dark: largest). Tian et al. "
        "2021, Fig. 2, plots the same quantities for BYOL with a linear predictor on STL-10 and "
        "shows W_p drifting towards symmetry and its eigenvectors aligning with those of F "
        "(cosines near 1) as training proceeds with weight decay."
    )
    return Drawn(caption, members, fig, width="double")


@figure("wp_heatmaps", "The predictor W_p at a few epochs", section="measurements")
def wp_heatmaps(inputs: Inputs) -> Drawn:
    """W_p as heat maps at a few epochs (Liu et al. Fig. 3); one row per run or simulation."""
    members = [r for r in (*inputs.runs, *inputs.sims) if r.has("wp")][:MAX_PANELS]
    if not members:
        return absent("no input stores the matrices wp (axis, row, col)")
    fig = style.new_figure("double", 1.75 * len(members) + 0.3)
    axes = fig.subplots(len(members), HEATMAP_EPOCHS, squeeze=False)
    for row, res in zip(axes, members, strict=True):
        wp = res.values("wp")
        steps = res.steps()
        picks = np.unique(np.linspace(0, wp.shape[0] - 1, HEATMAP_EPOCHS).round().astype(int))
        lim = float(np.nanmax(np.abs(wp[picks]))) or 1.0
        image = None
        for ax, k in zip(row, picks, strict=False):
            image = ax.imshow(
                wp[k], cmap=style.DIVERGING_CMAP, vmin=-lim, vmax=lim, interpolation="nearest"
            )
            ax.set_title(f"epoch {steps[k]:g}" if res.kind == "training" else f"t = {steps[k]:.3g}")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.spines[:].set_visible(True)
        row[0].set_ylabel(f"{res.ident} {res.label}")
        for ax in row[len(picks) :]:
            ax.set_visible(False)
        fig.colorbar(image, ax=list(row), shrink=0.9, label="entry of $W_p$")
    caption = (
        "The predictor matrix W_p at the first, last and evenly spaced intermediate epochs; "
        "diverging colour scale symmetric about 0, one scale per row. Liu et al. 2022 (Sec. "
        "4.3) report that BYOL's linear W_p approaches a diagonal matrix (their evidence is in "
        "the supplementary material); these panels show whether a run does."
    )
    return Drawn(caption, members, fig, width="double")
