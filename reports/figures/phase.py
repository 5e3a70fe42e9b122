"""Eigenmodes in the (p_j, s_j) plane and the phase diagrams of Tian, Chen & Ganguli (2021).

- ``phase_portrait`` (report): eigenmode trajectories of simulations with the invariant parabola
  s = p^2/alpha_p, the fixed points and the stream lines of eqs. 11-12 (Tian et al. Fig. 3).

Drawn by ``python -m dynamics.phase`` from the files it writes (kind ``phase``):

- ``phase_flow``: the (p_j, s_j) flow at fixed tau per eta, the parabola and the fixed points
  with their stability (Tian et al. Fig. 3);
- ``phase_line``: dp_j/dt on the parabola per eta in the three regimes (Tian et al. Fig. 4);
- ``phase_collapse``: the collapsed fraction of the modes over (eta, alpha_p) and (eta, beta)
  with the threshold eta* = tau^2/(4(1+sigma^2));
- ``phase_alignment``: ||[F, W_p]|| and the asymmetry of W_p over time for several eta (Tian et
  al. Figs. 9 and 8).

Stable fixed points are filled, unstable ones open, semi-stable ones grey (as in the report's
phase portrait; Tian's red and green are not colour-blind safe).
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from dynamics.models.eigenmodes import mode_rhs
from reports import style
from reports.figures.base import (
    FLOW_TIME,
    Drawn,
    Inputs,
    absent,
    figure,
    grid,
    headline,
    log_axis,
)
from reports.inputs import Result

#: marker face of a fixed point by its stability (the flag meanings of dynamics.phase's files)
FACE = {"stable": "k", "unstable": "white", "semi_stable": "0.6"}
#: colour of the axis s = 0 where it is a line of fixed points (eta = 0), by stability
AXIS_COLOR = {"stable": "k", "unstable": "0.75"}
PARABOLA = r"$s = p^2/\alpha_p$"
P_LABEL = "$p_j$ (eigenvalue of $W_p$)"
S_LABEL = "$s_j$ (eigenvalue of $F$)"


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


def _fixed_point(ax: Axes, p: float, s: float, face: str, **label) -> None:
    ax.plot(p, s, marker="o", ms=5, mfc=face, mec="k", ls="none", zorder=5, clip_on=False, **label)


def _point_handles() -> list[Line2D]:
    return [
        Line2D([], [], marker="o", mfc="k", mec="k", ls="none", label="stable fixed point"),
        Line2D([], [], marker="o", mfc="white", mec="k", ls="none", label="unstable"),
    ]


def portrait_panel(ax: Axes, sim: Result) -> float:
    """The eigenmodes of ``sim`` in the (p_j, s_j) plane: one colour per mode, dot at the start,
    arrow along the flow, stream lines, the parabola and the fixed points; returns the tau."""
    p, s = sim.values("p"), sim.values("s")
    alpha_p = float(sim.param("alpha_p", 1.0))
    for j in range(p.shape[1]):
        c = style.color(j)
        ax.plot(p[:, j], s[:, j], color=c, lw=0.9)
        ax.plot(p[0, j], s[0, j], marker="o", ms=2.5, color=c)
        if p.shape[0] > 2:
            k = max(1, p.shape[0] // 3)
            ax.annotate("", xy=(p[k + 1, j], s[k + 1, j]), xytext=(p[k, j], s[k, j]),
                        arrowprops={"arrowstyle": "->", "color": c, "lw": 0.8})  # fmt: skip
    tau, fixed = sim.fixed_points()
    lo = min(0.0, float(np.nanmin(p)))
    hi = max(float(np.nanmax(p)), 0.0, *fixed.values())
    pad = 0.08 * (hi - lo or 1.0)
    p_grid = np.linspace(lo - pad, hi + pad, 200)
    top = 1.15 * max(float(np.nanmax(s)), (hi + pad) ** 2 / alpha_p)
    _flow_field(ax, sim, tau, p_grid, np.linspace(0.0, top, 60))
    ax.set_xlim(p_grid[0], p_grid[-1])
    ax.set_ylim(0.0, top)
    ax.plot(p_grid, p_grid**2 / alpha_p, color="k", ls="--", lw=0.8)
    points = [(0.0, float(sim.param("eta", 0.0)) > 0)] + [
        (v, key == "p_star_plus") for key, v in sorted(fixed.items())
    ]
    for value, stable in points:
        _fixed_point(ax, value, value**2 / alpha_p, "k" if stable else "white")
    handles = [Line2D([], [], color="k", ls="--", lw=0.8, label=PARABOLA), *_point_handles()]
    ax.legend(handles=handles, loc="upper left", frameon=True, edgecolor="none", framealpha=0.85)
    ax.set_xlabel(P_LABEL)
    ax.set_ylabel(S_LABEL)
    return tau


@figure("phase_portrait", "Eigenmode phase portrait", section="predictions")
def phase_portrait(inputs: Inputs) -> Drawn:
    """Eigenmode trajectories (p_j, s_j), invariant parabola and fixed points (Tian Fig. 3)."""
    members = [s for s in inputs.sims if s.has("p", "s")][:3]
    if not members:
        return absent("no simulation holds the eigenmode variables p and s")
    width = "single" if len(members) == 1 else "double"
    fig = style.new_figure(width, 2.6)
    for ax, sim in zip(grid(fig, len(members), len(members)), members, strict=True):
        tau = portrait_panel(ax, sim)
        eta, alpha_p = sim.param("eta", "?"), float(sim.param("alpha_p", 1.0))
        ax.set_title(f"{sim.ident}: $\\eta$={eta}, $\\alpha_p$={alpha_p:g}, $\\tau$={tau:.3g}")
    caption = (
        "Eigenmode dynamics (Tian et al. 2021, eqs. 11-13) in the (p_j, s_j) plane, one colour "
        "per mode, dot at the start, arrow along the flow; grey: stream lines of eqs. 11-12 at "
        "the tau in the panel title (the file's closed-form tau). Dashed: the invariant parabola "
        "s = p^2/alpha_p that every trajectory approaches when eta > 0. Filled: stable fixed "
        "points (p = 0 and p*_+); open: the unstable p*_- that bounds the collapse basin (no "
        "p*_+- above the collapse threshold eta > tau^2/(4(1+sigma^2)))."
    )
    return Drawn(caption, members, fig, width=width)


def _phase_file(inputs: Inputs, name: str) -> Result | None:
    """The first input written by ``python -m dynamics.phase NAME``."""
    return next((r for r in inputs.sims if r.kind == "phase" and r.name == name), None)


def _meanings(result: Result, var: str) -> dict[int, str]:
    """Stability code -> meaning, from the variable's CF flag attributes."""
    attrs = result.ds[var].attrs
    return dict(zip(np.ravel(attrs["flag_values"]).tolist(), attrs["flag_meanings"].split(),
                    strict=True))  # fmt: skip


def _shown(meaning: str) -> str:
    return meaning.replace("_", "-")


def _shape(result: Result) -> str:
    tau, alpha_p, sigma2 = (result.param(k) for k in ("tau", "alpha_p", "sigma2"))
    return rf"$\tau$ = {tau:g}, $\alpha_p$ = {alpha_p:g}, $\sigma^2$ = {sigma2:g}"


def _panels(n: int) -> tuple[int, float]:
    """Columns and height of a figure of ``n`` panels, at most three to a row."""
    ncols = min(n, 3)
    return ncols, 2.4 * math.ceil(n / ncols) + 0.3


@figure("phase_flow", "Flow of an eigenmode (p_j, s_j) at fixed tau", section="phase")
def phase_flow(inputs: Inputs) -> Drawn:
    """Tian et al. 2021, Fig. 3: the (p_j, s_j) flow per eta, parabola, fixed points."""
    res = _phase_file(inputs, "flow")
    if res is None:
        return absent("no file of python -m dynamics.phase flow")
    ds, alpha_p = res.ds, float(res.param("alpha_p"))
    threshold = float(res.attrs["collapse_threshold_eta"])
    p, s = ds["p"].values, ds["s"].values
    meaning = _meanings(res, "fixed_stability")
    ncols, height = _panels(ds.sizes["eta"])
    fig = style.new_figure("double", height)
    lines_of_points = False
    for k, ax in enumerate(grid(fig, ds.sizes["eta"], ncols)):
        at = ds.isel(eta=k)
        ax.streamplot(p, s, at["dp_dt"].values, at["ds_dt"].values, color="0.6", density=0.9,
                      linewidth=0.5, arrowsize=0.6)  # fmt: skip
        ax.plot(p, p**2 / alpha_p, color="k", ls="--", lw=0.8)
        if np.isfinite(at["fixed_line_p"].item()):
            lines_of_points = True
            ax.axvline(at["fixed_line_p"].item(), color=AXIS_COLOR["stable"], lw=2)
            axis = at["axis_stability"].values
            for code, kind in meaning.items():
                if kind in AXIS_COLOR:
                    on = np.where(axis == code, p, np.nan)
                    ax.plot(on, 0 * p, color=AXIS_COLOR[kind], lw=3, clip_on=False, zorder=4)
        for fp, fs, code in zip(at["fixed_p"].values, at["fixed_s"].values,
                                at["fixed_stability"].values, strict=True):  # fmt: skip
            if np.isfinite(fp):
                kind = meaning[int(code)]
                _fixed_point(ax, fp, fs, FACE[kind], label=f"{_shown(kind)} ({fp:.3g}, {fs:.3g})")
        eta = at["eta"].item()
        ax.set_title(rf"$\eta$ = {eta:g}" + (" (all modes collapse)" if eta > threshold else ""))
        ax.set_xlim(p[0], p[-1])
        ax.set_ylim(s[0], s[-1])
        ax.set_xlabel(P_LABEL)
        ax.set_ylabel(S_LABEL)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", frameon=True, edgecolor="none", framealpha=0.85)
    handles = [Line2D([], [], color="k", ls="--", lw=0.8, label=PARABOLA), *_point_handles()]
    if lines_of_points:
        handles += [
            Line2D([], [], color=color, lw=2, label=f"{kind} fixed points at $\\eta$ = 0")
            for kind, color in AXIS_COLOR.items()
        ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    headline(fig, res, "Flow of $(p_j, s_j)$ at fixed " + _shape(res) + " (Tian et al. Fig. 3)")
    caption = (
        "Stream lines of (dp_j/dt, ds_j/dt) of Tian et al.'s eqs. 11-12 at fixed tau, one panel "
        "per eta; dashed: the invariant parabola s = p^2/alpha_p; filled: stable fixed points, "
        "open: unstable, by the eigenvalues of the Jacobian; at eta = 0 the line p = "
        "tau/(1+sigma^2) and the axis s = 0 (black where stable, grey where not) are lines of "
        "fixed points. Tian et al. 2021, Fig. 3, draws this flow: trajectories approach the "
        "invariant parabola and end at p = 0 or at p*_+, depending on which side of p*_- they "
        "reach it."
    )
    return Drawn(caption, [res], fig, width="double")


@figure("phase_line", "The phase line dp_j/dt on the invariant parabola", section="phase")
def phase_line(inputs: Inputs) -> Drawn:
    """Tian et al. 2021, Fig. 4: dp/dt on the parabola in the three regimes of eta."""
    res = _phase_file(inputs, "line")
    if res is None:
        return absent("no file of python -m dynamics.phase line")
    ds, threshold = res.ds, float(res.attrs["collapse_threshold_eta"])
    p = ds["p"].values
    meaning = _meanings(res, "fixed_stability")
    ncols, height = _panels(ds.sizes["eta"])
    fig = style.new_figure("double", height)
    for k, ax in enumerate(grid(fig, ds.sizes["eta"], ncols)):
        at = ds.isel(eta=k)
        eta, rate = at["eta"].item(), at["dp_dt"].values
        ax.plot(p, rate, color=style.color(0), lw=1.2)
        ax.axhline(0, color="k", lw=0.6)
        for x0 in np.linspace(p[0], p[-1], 9)[1:-1]:  # flow direction on the axis
            v = np.interp(x0, p, rate)
            if abs(v) > 1e-6:
                ax.annotate("", (x0 + 0.03 * np.sign(v), 0), (x0, 0),
                            arrowprops={"arrowstyle": "->", "color": "0.3", "lw": 0.8})  # fmt: skip
        for r, code in zip(at["fixed_p"].values, at["fixed_stability"].values, strict=True):
            if np.isfinite(r):
                kind = meaning[int(code)]
                _fixed_point(ax, r, 0.0, FACE[kind], label=f"{_shown(kind)} p = {r:.3g}")
        regime = (
            r"(a) $\eta$ = 0" if eta == 0 else
            rf"(b) $0 < \eta \leq \eta^*$: $\eta$ = {eta:g}" if eta <= threshold else
            rf"(c) $\eta > \eta^*$: $\eta$ = {eta:g}"
        )  # fmt: skip
        ax.set_title(regime)
        ax.set_xlabel(r"$p_j$ on the parabola $s_j = p_j^2/\alpha_p$")
        ax.set_ylabel(r"$dp_j/dt$")
        ax.legend(loc="lower left")
    headline(
        fig,
        res,
        r"Phase line $dp/dt = -(1+\sigma^2)\,p\,(p-p^*_-)(p-p^*_+)$ at "
        + _shape(res)
        + rf"; threshold $\eta^*$ = {threshold:.4g} (Tian et al. Fig. 4)",
    )
    caption = (
        "dp_j/dt on the invariant parabola s_j = p_j^2/alpha_p at fixed tau, one panel per eta "
        "(a: eta = 0; b: below the collapse threshold eta* = tau^2/(4(1+sigma^2)); c: above "
        "it), arrows along the flow; filled: stable roots, open: unstable, grey: semi-stable, "
        "by the sign of dp/dt on either side. Tian et al. 2021, Fig. 4, draws the same three "
        "regimes (its caption omits the factor 1 + sigma^2 of dp/dt = -(1+sigma^2) p (p - "
        "p*_-) (p - p*_+))."
    )
    return Drawn(caption, [res], fig, width="double")


@figure("phase_collapse", "Collapsed fraction of the eigenmodes", section="phase")
def phase_collapse(inputs: Inputs) -> Drawn:
    """The fraction of collapsed modes over (eta, alpha_p) and (eta, beta), with eta*."""
    res = _phase_file(inputs, "collapse")
    if res is None:
        return absent("no file of python -m dynamics.phase collapse")
    ds, threshold = res.ds, float(res.attrs["collapse_threshold_eta"])
    fig = style.new_figure("double", 2.8)
    axes = fig.subplots(1, 2)
    held = {
        "alpha_p": rf"over $(\eta, \alpha_p)$, $\beta$ = {res.attrs['alpha_p_map_beta']:g}",
        "beta": rf"over $(\eta, \beta)$, $\alpha_p$ = {res.attrs['beta_map_alpha_p']:g}",
    }
    for ax, (axis, title) in zip(axes, held.items(), strict=True):
        frac = ds[f"collapse_fraction_{axis}"].transpose(axis, "eta").values
        ys = np.arange(ds.sizes[axis])
        mesh = ax.pcolormesh(ds["eta"].values, ys, frac, vmin=0, vmax=1,
                             cmap=style.SEQUENTIAL_CMAP, shading="nearest")  # fmt: skip
        ax.axvline(threshold, color="white", ls="--", lw=1.2,
                   label=rf"$\eta^* = 1/(4(1+\sigma^2))$ = {threshold:.4g}")  # fmt: skip
        ax.set_yticks(ys, [f"{v:g}" for v in ds[axis].values])
        ax.set_xlabel(r"weight decay $\eta$")
        ax.set_ylabel(r"$\alpha_p$" if axis == "alpha_p" else r"EMA rate $\beta$")
        ax.set_title(title)
        ax.legend(loc="upper left", frameon=True, edgecolor="none", framealpha=0.85)
        fig.colorbar(mesh, ax=ax, label="fraction of modes collapsed")
    headline(
        fig,
        res,
        f"Collapsed fraction of {res.attrs['modes']} modes: p_j(0) = {res.param('p0')}, "
        f"s_j(0) = {res.param('s0')}, " + rf"$\tau_j(0)$ = {res.param('tau0'):g}, "
        rf"$\sigma^2$ = {res.param('sigma2'):g}, t = {res.param('t_end'):g}",
    )
    caption = (
        "Fraction of the eigenmodes (per-mode model, Tian et al.'s eqs. 11-13) that collapsed "
        "by the end of the run, over the weight decay eta and alpha_p (left) or the EMA rate "
        "beta (right); dashed: the threshold eta* = tau^2/(4(1+sigma^2)) at tau = 1 above "
        "which every mode collapses."
    )
    return Drawn(caption, [res], fig, width="double")


@figure("phase_alignment", "Eigenspace alignment and asymmetry of W_p", section="phase")
def phase_alignment(inputs: Inputs) -> Drawn:
    """Tian et al. Figs. 8-9: ||[F, W_p]|| and the asymmetry of W_p over time, several eta."""
    res = _phase_file(inputs, "alignment")
    if res is None:
        return absent("no file of python -m dynamics.phase alignment")
    ds = res.ds
    fig = style.new_figure("double", 2.6)
    left, right = fig.subplots(1, 2)
    t = ds["time"].values
    for k in range(ds.sizes["eta"]):
        at = ds.isel(eta=k)
        look = {"color": style.color(k), "ls": style.LINESTYLES[k % len(style.LINESTYLES)]}
        left.plot(t, at["commutator_norm"].values, label=rf"$\eta$ = {at['eta'].item():g}", **look)
        right.plot(t, at["wp_asymmetry"].values, **look)
    left.set_ylabel(r"$\|[F, W_p]\|_F / (\|F\|_F \|W_p\|_F)$")
    left.set_title("eigenspace alignment (Tian Fig. 9, Theorem 3)")
    right.set_ylabel(r"$\|W_p - W_p^T\|_F / \|W_p + W_p^T\|_F$")
    right.set_title("asymmetry of $W_p$ (Tian Fig. 8)")
    for ax in (left, right):
        log_axis(ax)
        ax.set_xlabel(FLOW_TIME)
    fig.legend(handles=left.get_legend_handles_labels()[0], loc="outside lower center",
               ncols=ds.sizes["eta"])  # fmt: skip
    headline(
        fig,
        res,
        f"linear_byol (full matrices, dim {res.param('dim')}, random init, X = I, "
        f"X' = {res.param('sigma2'):g} I)",
    )
    caption = (
        "The full matrix flow of linear BYOL (Tian et al.'s Lemma 1) from random weights, one "
        "line per weight decay eta: the normalised commutator ||[F, W_p]||_F / (||F||_F "
        "||W_p||_F), which Theorem 3 says vanishes as W_p aligns with the eigenspaces of F "
        "(left, Tian Fig. 9), and the asymmetry of W_p (right, Tian Fig. 8)."
    )
    return Drawn(caption, [res], fig, width="double")
