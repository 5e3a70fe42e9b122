"""The report's figures, each drawn from result files only (DESIGN.md: reports reads the schema).

Every function takes loaded :class:`~reports.inputs.Result` objects and returns a :class:`Drawn`
holding the matplotlib figure, its caption and its sources, or no figure and the reason why the
inputs do not allow it. Figures follow :mod:`reports.style`.

- :func:`eigenvalue_overlay`: eigenvalues of W_p against flow time t, simulation (lines) and run
  (markers), with the predicted fixed points p*_+ and p*_- (Tian et al. 2021, eq. 15-16).
- :func:`conservation`: the conservation residual on a log axis with the prediction
  r(t_0) e^{-2 eta (t - t_0)} (Tian Theorem 1; Liu Theorem 3.1).
- :func:`sigma_distance`: ||Sigma - I||_F^2 of every trained method against epochs, both
  conventions (Liu et al. 2022, Fig. 1).
- :func:`wp_heatmaps`: W_p at a few epochs (Liu et al. Fig. 3).
- :func:`spectrum_over_epochs`: eigenvalues of the feature correlation and of W_p, the alignment
  cos(W_p u_j, u_j) and the asymmetry over epochs (Tian et al. Fig. 2; Liu et al. Fig. 4).
- :func:`phase_portrait`: eigenmode trajectories in the (p_j, s_j) plane with the invariant
  parabola s = p^2/alpha_p and the fixed points (Tian et al. Fig. 3).
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
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FormatStrFormatter, MaxNLocator

from dynamics.models.eigenmodes import mode_rhs
from reports import style
from reports.inputs import Result

#: At most this many eigenvalue ranks are drawn in overlays (see shown_ranks).
MODES_SHOWN = 6
#: At most this many runs or simulations get their own panel or row.
MAX_PANELS = 4
HEATMAP_EPOCHS = 4
FLOW_TIME = "flow time t"


@dataclass
class Drawn:
    """A figure with its caption and sources, or ``figure=None`` and the reason."""

    name: str
    title: str
    caption: str
    sources: list[Result] = field(default_factory=list)
    figure: Figure | None = None
    reason: str = ""
    width: str = "single"


def _absent(name: str, title: str, reason: str) -> Drawn:
    return Drawn(name=name, title=title, caption="", reason=reason)


def _grid(fig: Figure, n: int, ncols: int) -> list[Axes]:
    nrows = math.ceil(n / ncols)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return list(axes[:n])


def _epoch_axis(ax: Axes) -> None:
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _log_axis(ax: Axes) -> None:
    """Log y axis; when the data span less than a decade, plain tick labels (0.996, not 9.96e-1)."""
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    if high / low < 10:
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.4g"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%.4g"))


def _log_if_wide(ax: Axes, values: Sequence[np.ndarray], axis: str = "y") -> None:
    """Log scale when the positive values span more than a factor 30."""
    flat = np.concatenate([np.ravel(v) for v in values]) if values else np.array([])
    flat = flat[np.isfinite(flat)]
    if flat.size and np.all(flat > 0) and flat.max() / flat.min() > 30:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")


FIXED_POINT_STYLE = {"p_star_plus": "--", "p_star_minus": ":"}
FIXED_POINT_LABEL = {"p_star_plus": "$p^*_+$", "p_star_minus": "$p^*_-$"}


RANK_LABELS = ("largest", "2nd", "3rd", "4th", "2nd smallest", "smallest")


def shown_ranks(n: int) -> list[int]:
    """Ranks drawn in the overlay: all when n <= MODES_SHOWN, else the 4 largest and 2 smallest."""
    if n <= MODES_SHOWN:
        return list(range(n))
    return [0, 1, 2, 3, n - 2, n - 1]


def eigenvalue_overlay(pairs: Sequence[tuple[Result | None, Result | None]]) -> Drawn:
    """Re eig(W_p) against flow time: simulation lines, run markers, predicted fixed points."""
    name, title = "wp_eigenvalues", "Eigenvalues of W_p: simulation and measurement"
    pairs = [
        (run, sim)
        for run, sim in pairs
        if (run is not None and run.has("wp_eig_real"))
        or (sim is not None and sim.has("wp_eig_real"))
    ][:MAX_PANELS]
    if not pairs:
        return _absent(name, title, "no simulation or run holds wp_eig_real")
    width = "single" if len(pairs) == 1 else "double"
    ncols = min(len(pairs), 2)
    fig = style.new_figure(width, 2.0 * math.ceil(len(pairs) / ncols) + 0.5)
    sources: list[Result] = []
    ranks, kinds, fixed = [], set(), set()
    for ax, (run, sim) in zip(_grid(fig, len(pairs), ncols), pairs, strict=True):
        if sim is not None and sim.has("wp_eig_real"):
            eig = sim.values("wp_eig_real")
            ranks = shown_ranks(eig.shape[1])
            for j, rank in enumerate(ranks):
                ax.plot(sim.flow_time(), eig[:, rank], color=style.color(j), lw=1.0)
            for key, value in sim.fixed_points()[1].items():
                ax.axhline(value, color=style.PREDICTION_COLOR, ls=FIXED_POINT_STYLE[key], lw=0.8)
                fixed.add(key)
            kinds.add("simulation")
            sources.append(sim)
        if run is not None and run.has("wp_eig_real"):
            eig = run.values("wp_eig_real")
            ranks = shown_ranks(eig.shape[1])
            for j, rank in enumerate(ranks):
                ax.plot(
                    run.flow_time(),
                    eig[:, rank],
                    ls="none",
                    marker=style.marker(j),
                    mfc="none",
                    color=style.color(j),
                    mew=0.8,
                )
            kinds.add("run")
            sources.append(run)
        ax.set_title(" vs ".join(f"{r.ident} {r.label}" for r in (run, sim) if r is not None))
        ax.set_xlabel(FLOW_TIME)
        ax.set_ylabel("Re eig($W_p$)")
        ax.axhline(0, color="0.8", lw=0.5, zorder=0)
    handles = []
    if "simulation" in kinds:
        handles.append(Line2D([], [], color="0.3", label="simulation"))
    if "run" in kinds:
        handles.append(Line2D([], [], color="0.3", ls="none", marker="o", mfc="none", label="run"))
    for key in sorted(fixed, reverse=True):
        handles.append(
            Line2D(
                [], [], color="k", ls=FIXED_POINT_STYLE[key], lw=0.8, label=FIXED_POINT_LABEL[key]
            )
        )
    marker = "run" in kinds
    handles += [
        Line2D(
            [],
            [],
            color=style.color(j),
            marker=style.marker(j) if marker else None,
            mfc="none",
            label=RANK_LABELS[j] if len(ranks) == MODES_SHOWN else f"rank {j + 1}",
        )
        for j in range(len(ranks))
    ]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(len(handles), 5 if width == "single" else 10),
        handlelength=1.6,
        columnspacing=1.0,
    )
    caption = (
        "Real parts of the eigenvalues of the predictor W_p in decreasing order at each time "
        "(the four largest and the two smallest; one colour per rank), against flow time t. "
        "Lines: the simulation derived from the run; open markers: the run's measurements "
        "(the first: its initial network); dashed and dotted: the fixed points p*_+ (stable) "
        "and p*_- (collapse basin boundary) stored in the simulation, where its X and X' are "
        "isotropic."
    )
    return Drawn(name, title, caption, _unique(sources), fig, width=width)


def _unique(results: Sequence[Result]) -> list[Result]:
    seen, out = set(), []
    for r in results:
        if r.ident not in seen:
            seen.add(r.ident)
            out.append(r)
    return out


def weight_residual(traj) -> np.ndarray | None:
    """||W W^T - W_p^T W_p / alpha_p||_F / ||C||_F over time (Tian Theorem 1's residual), from
    the stored W and W_p; None without them or without a constant alpha_p."""
    if traj.w is None or traj.wp is None or traj.alpha_p is None:
        return None
    m = traj.w @ np.swapaxes(traj.w, -1, -2) - np.swapaxes(traj.wp, -1, -2) @ traj.wp / traj.alpha_p
    norms = np.linalg.norm(m, axis=(-2, -1))
    return norms / norms[0] if norms[0] > 0 else None


def conservation(pairings: Sequence) -> Drawn:
    """Theorem 1's weight-space residual (log axis), run and prediction, against e^{-2 eta t}."""
    name, title = "conservation_residual", "Conservation law: residual against e^{-2 eta t}"
    series = []
    for p in pairings:
        run_traj = p.run.trajectory()
        r_run = weight_residual(run_traj)
        if r_run is None or not run_traj.eta or not p.run.predictor_trained:
            continue
        sims = [(s, weight_residual(s.trajectory())) for s in p.predictions]
        series.append((p.run, run_traj, r_run, sims))
    series = series[: len(style.PALETTE)]
    if not series:
        return _absent(
            name,
            title,
            "no run stores W and a trained W_p with a constant alpha_p (a linear encoder); the "
            "feature-space residual has no predicted decay for a run",
        )
    fig = style.new_figure("single", 2.6)
    ax = fig.subplots()
    sources: list[Result] = []
    for i, (run, traj, r_run, sims) in enumerate(series):
        ax.plot(traj.t, r_run, ls="none", marker=style.marker(i), mfc="none", color=style.color(i),
                label=f"{run.ident} {run.label}")  # fmt: skip
        ax.plot(traj.t, np.exp(-2 * traj.eta * traj.t), color=style.color(i), ls="--", lw=0.8)
        for sim, r_sim in sims:
            if r_sim is not None:
                ax.plot(sim.flow_time(), r_sim, color=style.color(i), lw=1.0, alpha=0.7)
                sources.append(sim)
        sources.append(run)
    _log_axis(ax)
    ax.set_xlabel(FLOW_TIME)
    ax.set_ylabel("conservation residual")
    handles = ax.get_legend_handles_labels()[0]
    handles += [
        Line2D([], [], color="0.3", lw=1.0, label="simulation derived from the run"),
        Line2D([], [], color="0.3", ls="--", lw=0.8, label=r"prediction $e^{-2\eta t}$"),
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
    return Drawn(name, title, caption, _unique(sources), fig)


def error_over_time(pairings: Sequence) -> Drawn:
    """The prediction's W_p error at each measurement, next to the nulls' errors."""
    name, title = "prediction_error", "Prediction error over time, against the nulls"
    panels = [
        (p, sim) for p in pairings for sim in p.predictions if p.run.has("wp") and sim.has("wp")
    ]
    panels = [(p, sim) for p, sim in panels if p.run.has_flow_time][:MAX_PANELS]
    if not panels:
        return _absent(name, title, "no run stores W_p next to a simulation derived from it")
    ncols = min(len(panels), 2)
    fig = style.new_figure(
        "single" if len(panels) == 1 else "double", 2.2 * math.ceil(len(panels) / ncols) + 0.4
    )
    sources: list[Result] = []
    for ax, (p, sim) in zip(_grid(fig, len(panels), ncols), panels, strict=True):
        run = p.run.trajectory()
        curves = [("prediction", sim.trajectory().at(run.t), "-", 0)]
        curves += [("null: other seed", n.trajectory().at(run.t), "--", 1) for n in p.nulls[:1]]
        curves.append(("null: frozen initial network", run.frozen(), ":", 2))
        for label, traj, ls, i in curves:
            num = np.linalg.norm(run.wp - traj.wp, axis=(-2, -1))
            den = np.linalg.norm(traj.wp, axis=(-2, -1))
            ax.plot(run.t, num / np.where(den > 0, den, np.nan), ls=ls, color=style.color(i),
                    marker=style.marker(i), ms=3, label=label)  # fmt: skip
        ax.set_xlabel(FLOW_TIME)
        ax.set_ylabel(r"$\|W_p^{run} - W_p\|_F / \|W_p\|_F$")
        ax.set_yscale("log")
        ax.set_title(f"{p.run.ident} vs {sim.ident}")
        sources += [p.run, sim, *p.nulls[:1]]
    handles = _grid_handles(fig)
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    caption = (
        "Relative error of the predicted W_p at each measurement of the run, "
        "||W_p^run(t) - W_p(t)||_F / ||W_p(t)||_F, for the simulation derived from the run "
        "(solid), a simulation of the same run started from another seed's initial weights "
        "(dashed) and the run's initial network held frozen (dotted). A prediction that "
        "deserves the name sits far below both nulls."
    )
    return Drawn(name, title, caption, _unique(sources), fig,
                 width="single" if len(panels) == 1 else "double")  # fmt: skip


def _grid_handles(fig: Figure) -> list:
    """The legend entries of the first axes (all panels draw the same series)."""
    return fig.axes[0].get_legend_handles_labels()[0]


def sigma_distance(runs: Sequence[Result]) -> Drawn:
    """Decorrelation of the projector outputs over training, with the estimator floor."""
    name, title = "sigma_distance", "Decorrelation of the outputs: mean squared correlation"
    members = [r for r in runs if r.has("sigma_corr_mean_sq")][: len(style.PALETTE)]
    if not members:
        return _absent(name, title, "no training run holds sigma_corr_mean_sq")
    fig = style.new_figure("double", 2.5)
    left, right = fig.subplots(1, 2)
    plotted = []
    for i, run in enumerate(members):
        look = {"color": style.color(i), "marker": style.marker(i), "ms": 3}
        y = run.values("sigma_corr_mean_sq")
        left.plot(run.steps(), y, ls=style.LINESTYLES[i % len(style.LINESTYLES)],
                  label=f"{run.ident} {run.label}", **look)  # fmt: skip
        plotted.append(y[np.isfinite(y)])
        if run.has("sigma_floor"):
            floor = run.values("sigma_floor")
            left.plot(run.steps(), floor, color=style.color(i), ls=":", lw=0.8)
            plotted.append(floor)
        if run.has("dead_dims"):
            right.plot(run.steps(), run.values("dead_dims"), ls="-", **look)
    _log_if_wide(left, plotted)
    for ax in (left, right):
        _epoch_axis(ax)
    left.set_ylabel(r"mean$_{i \neq j}\ \rho_{ij}^2$")
    left.set_title("mean squared off-diagonal correlation")
    right.set_ylabel("dead dimensions")
    right.set_title("dimensions with std < 2% of the largest")
    left.legend(loc="best")
    caption = (
        "Left: the mean over pairs of live dimensions of the squared Pearson correlation of the "
        "projector outputs on the fixed, un-augmented evaluation set (||Sigma - I||_F^2 / "
        "(d (d-1)) when no dimension is dead; it does not grow with d), against epochs; dotted: "
        "its floor 1/(N-1) for independent features of the N evaluation images, which no "
        "estimate can go below. Right: the number of dead dimensions (std below 2% of the "
        "largest); a collapsed encoder shows there, not as a low correlation. Epoch 0 is the "
        "randomly initialised encoder, its BatchNorm statistics filled. Liu et al. 2022, Fig. 1, "
        "plots ||Sigma - I||_F^2 (total, growing with d) for the same purpose."
    )
    return Drawn(name, title, caption, members, fig, width="double")


def wp_heatmaps(results: Sequence[Result]) -> Drawn:
    """W_p as heat maps at a few epochs (Liu et al. Fig. 3); one row per run."""
    name, title = "wp_heatmaps", "The predictor W_p at a few epochs"
    members = [r for r in results if r.has("wp")][:MAX_PANELS]
    if not members:
        return _absent(name, title, "no input stores the matrices wp (axis, row, col)")
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
        "The predictor matrix W_p at the first, last and evenly spaced intermediate epochs (as in "
        "Liu et al. 2022, Fig. 3); diverging colour scale symmetric about 0, one scale per row."
    )
    return Drawn(name, title, caption, members, fig, width="double")


SPECTRUM_COLUMNS = (
    ("corr_eig", "eig($F F^T$)"),
    ("wp_eig_real", "Re eig($W_p$)"),
    ("alignment_cos", r"cos($W_p u_j$, $u_j$)"),
    ("wp_asymmetry", "asymmetry of $W_p$"),
)


def spectrum_over_epochs(runs: Sequence[Result]) -> Drawn:
    """Tian Fig. 2 / Liu Fig. 4: spectra, alignment and asymmetry of W_p over epochs, per run."""
    name, title = "wp_spectrum_epochs", "Spectrum, alignment and asymmetry of W_p over epochs"
    members = [r for r in runs if r.has("wp_eig_real")][:MAX_PANELS]
    if not members:
        return _absent(name, title, "no training run holds wp_eig_real (no linear predictor)")
    fig = style.new_figure("double", 1.7 * len(members) + 0.2)
    axes = fig.subplots(len(members), len(SPECTRUM_COLUMNS), squeeze=False)
    cmap = matplotlib.colormaps[style.SEQUENTIAL_CMAP]
    for row, run in zip(axes, members, strict=True):
        x = run.steps()
        for ax, (var, ylabel) in zip(row, SPECTRUM_COLUMNS, strict=True):
            if not run.has(var):
                ax.text(
                    0.5,
                    0.5,
                    f"{var}\nnot recorded",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                )
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            y = run.values(var)
            if y.ndim == 1:
                ax.plot(x, y, color=style.color(0), marker="o")
                _log_if_wide(ax, [y])
            else:
                n = y.shape[1]
                for j in range(n):
                    ax.plot(x, y[:, j], color=cmap(j / max(n - 1, 1)), lw=0.7)
                if var == "corr_eig":
                    positive = y[y > 0]
                    if positive.size:
                        ax.set_yscale("log")
                        ax.set_ylim(bottom=max(positive.min(), positive.max() * 1e-8))
            _epoch_axis(ax)
            ax.set_ylabel(ylabel)
        row[0].set_title(run.label, loc="left")
    sm = ScalarMappable(cmap=cmap, norm=Normalize(1, 2))
    fig.colorbar(sm, ax=axes.ravel().tolist(), ticks=[1, 2], shrink=0.6, aspect=30).set_ticklabels(
        ["largest", "smallest"]
    )
    caption = (
        "Per run (rows), against epochs: eigenvalues of the single-view feature correlation "
        "F F^T (log axis); real parts of the eigenvalues of W_p, sorted by magnitude; the "
        "alignment cos(W_p u_j, u_j) for the eigenvectors u_j of F F^T; and the asymmetry "
        "||W_p - W_p^T||_F / ||W_p + W_p^T||_F. Colour: mode rank (dark: largest). As in Tian "
        "et al. 2021, Fig. 2, and Liu et al. 2022, Fig. 4."
    )
    return Drawn(name, title, caption, members, fig, width="double")


def _flow_field(ax: Axes, sim: Result, tau: float, p_grid: np.ndarray, s_grid: np.ndarray) -> None:
    """Stream lines of eqs. 11-12 at fixed ``tau`` (grey), as in Tian et al. Fig. 3.

    The right-hand side is :func:`dynamics.models.eigenmodes.mode_rhs` with the file's eta,
    alpha_p, beta and sigma2.
    """
    keys = ("eta", "alpha_p", "beta", "sigma2")
    values = [sim.param(k) for k in keys]
    if not all(isinstance(v, int | float) for v in values):
        return
    pp, ss = np.meshgrid(p_grid[::5], s_grid[::2])
    dp, ds, _ = mode_rhs(pp, ss, tau, *values, simsiam=True)
    ax.streamplot(pp, ss, dp, ds, color="0.8", linewidth=0.5, density=0.7, arrowsize=0.6, zorder=0)


def phase_portrait(sims: Sequence[Result]) -> Drawn:
    """Eigenmode trajectories (p_j, s_j), invariant parabola and fixed points (Tian Fig. 3)."""
    name, title = "phase_portrait", "Eigenmode phase portrait"
    members = [s for s in sims if s.has("p", "s")][:3]
    if not members:
        return _absent(name, title, "no simulation holds the eigenmode variables p and s")
    width = "single" if len(members) == 1 else "double"
    fig = style.new_figure(width, 2.6)
    for ax, sim in zip(_grid(fig, len(members), len(members)), members, strict=True):
        p, s = sim.values("p"), sim.values("s")
        alpha_p = float(sim.param("alpha_p", 1.0))
        for j in range(p.shape[1]):
            c = style.color(j)
            ax.plot(p[:, j], s[:, j], color=c, lw=0.9)
            ax.plot(p[0, j], s[0, j], marker="o", ms=2.5, color=c)
            if p.shape[0] > 2:
                k = max(1, p.shape[0] // 3)
                ax.annotate(
                    "",
                    xy=(p[k + 1, j], s[k + 1, j]),
                    xytext=(p[k, j], s[k, j]),
                    arrowprops={"arrowstyle": "->", "color": c, "lw": 0.8},
                )
        tau, fixed = sim.fixed_points()
        lo = min(0.0, float(np.nanmin(p)))
        hi = max(float(np.nanmax(p)), 0.0, *fixed.values())
        pad = 0.08 * (hi - lo or 1.0)
        grid = np.linspace(lo - pad, hi + pad, 200)
        top = 1.15 * max(float(np.nanmax(s)), (hi + pad) ** 2 / alpha_p)
        _flow_field(ax, sim, tau, grid, np.linspace(0.0, top, 60))
        ax.set_xlim(grid[0], grid[-1])
        ax.set_ylim(0.0, top)
        ax.plot(grid, grid**2 / alpha_p, color="k", ls="--", lw=0.8)
        handles = [Line2D([], [], color="k", ls="--", lw=0.8, label=r"$s = p^2/\alpha_p$")]
        points = [(0.0, float(sim.param("eta", 0.0)) > 0)] + [
            (v, key == "p_star_plus") for key, v in sorted(fixed.items())
        ]
        for value, stable in points:
            ax.plot(
                value,
                value**2 / alpha_p,
                marker="o",
                ms=5,
                mfc="k" if stable else "white",
                mec="k",
                ls="none",
                zorder=5,
            )
        handles += [
            Line2D([], [], marker="o", mfc="k", mec="k", ls="none", label="stable fixed point"),
            Line2D([], [], marker="o", mfc="white", mec="k", ls="none", label="unstable"),
        ]
        ax.legend(
            handles=handles, loc="upper left", frameon=True, edgecolor="none", framealpha=0.85
        )
        ax.set_xlabel("$p_j$ (eigenvalue of $W_p$)")
        ax.set_ylabel("$s_j$ (eigenvalue of $F$)")
        eta = sim.param("eta", "?")
        ax.set_title(f"{sim.ident}: $\\eta$={eta}, $\\alpha_p$={alpha_p:g}, $\\tau$={tau:.3g}")
    caption = (
        "Eigenmode dynamics (Tian et al. 2021, eqs. 11-13) in the (p_j, s_j) plane, one colour "
        "per mode, dot at the start, arrow along the flow; grey: stream lines of eqs. 11-12 at "
        "the tau in the panel title (the file's closed-form tau). Dashed: the invariant parabola "
        "s = p^2/alpha_p that every trajectory approaches when eta > 0. Filled: stable fixed "
        "points (p = 0 and p*_+); open: the unstable p*_- that bounds the collapse basin (no "
        "p*_+- above the collapse threshold eta > tau^2/(4(1+sigma^2)))."
    )
    return Drawn(name, title, caption, members, fig, width=width)
