"""One figure per claim, in the report's style (:mod:`reports.style`), drawn from its record.

The figure holds the claim's panels (its statistic over training for every configuration: each
seed a thin line, the mean over seeds with markers; or a sweep), one legend above them, and,
last, its tests: for each test the per-seed effects (dots), their
mean with its one-sided confidence half-width t* s / sqrt(n) (bar: one that crosses the
threshold is INCONCLUSIVE), the claim's threshold (vertical tick) and the null
(thin line), each row scaled to its own range so that tests in other units share the panel; the
verdict is written at the right. ``python -m reports.reproduce`` and ``python -m reports.build
--claims`` draw it from the same record (``claims.json``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

from reports import style
from reports.figures.base import Drawn, grid, log_axis, log_if_wide
from reports.reproduce.registry import Panel
from reports.reproduce.verdict import (
    ALPHA,
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    Test,
    half_width,
)

VERDICT_COLOR = {REPRODUCED: style.color(2), NOT_REPRODUCED: style.color(1), INCONCLUSIVE: "0.45"}
PANEL_HEIGHT_IN = 2.0


def _mean_line(xs: list[list[float]], ys: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """The mean over seeds at the x values the seeds share (NaN ignored)."""
    n = min(len(x) for x in xs)
    x = np.asarray(xs[0][:n], dtype=float)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = np.nanmean(np.asarray([yy[:n] for yy in ys], dtype=float), axis=0)
    return x, y


def draw_panel(ax: Axes, panel: Panel, styles: dict[str, int]) -> None:
    """Every series of ``panel``: each seed a thin line, the mean over seeds with markers, in
    the series' style (``styles``: label -> style index, shared by the figure's panels, filled
    in as new labels come); reference lines dotted (horizontal) and dashed (vertical)."""
    for label, (xs, ys) in panel.series.items():
        i = styles.setdefault(label, len(styles))
        if not xs:
            continue
        for x, y in zip(xs, ys, strict=True):
            ax.plot(x, y, color=style.color(i), lw=0.5, alpha=0.45)
        mx, my = _mean_line(xs, ys)
        ax.plot(
            mx,
            my,
            color=style.color(i),
            marker=style.marker(i),
            linestyle=style.LINESTYLES[i % len(style.LINESTYLES)],
            label=label,
        )
    for value, label in panel.hlines:
        ax.axhline(value, color="0.5", lw=0.7, ls=":", label=label)
    for value, label in panel.vlines:
        if math.isfinite(value):
            ax.axvline(value, color=style.PREDICTION_COLOR, lw=0.8, ls="--", label=label)
    if panel.logx:
        ax.set_xscale("log")
        ticks = sorted({float(x) for xs, _ in panel.series.values() for row in xs for x in row})
        if 0 < len(ticks) <= 8:
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(NullFormatter())
    if panel.logy:
        log_axis(ax)
    else:
        log_if_wide(ax, [np.asarray(y, dtype=float) for _, ys in panel.series.values() for y in ys])
    ax.set_title(panel.title)
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)


def shared_legend(fig, axes: list[Axes]) -> None:
    """One legend above the panels: every label once, in the order first drawn."""
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        ncol = min(len(handles), 4)
        fig.legend(handles.values(), handles.keys(), loc="outside upper center", ncols=ncol)


def _row_scale(test: Test) -> float:
    finite = [abs(e - test.null) for e in test.effects if math.isfinite(e)]
    half = half_width(test.effects)
    candidates = [abs(test.threshold - test.null), half if math.isfinite(half) else 0.0]
    scale = max([*candidates, *finite, 1e-12])
    return scale


def draw_tests(ax: Axes, tests: list[Test]) -> None:
    """The forest plot of the tests (see the module docstring); deciding tests in black."""
    for row, test in enumerate(tests):
        y = len(tests) - 1 - row
        scale = _row_scale(test)
        effects = [(e - test.null) / scale for e in test.effects if math.isfinite(e)]
        color = VERDICT_COLOR[test.verdict]
        ax.plot(effects, [y] * len(effects), "o", ms=3, mfc="none", color=color)
        if math.isfinite(test.mean):
            m = (test.mean - test.null) / scale
            half = half_width(test.effects) / scale
            half = half if math.isfinite(half) else 0.0
            ax.errorbar(m, y, xerr=half, fmt="s", ms=3.5, color=color, capsize=2, lw=1)
        t = (test.threshold - test.null) / scale
        ax.plot([t, t], [y - 0.35, y + 0.35], color=style.PREDICTION_COLOR, lw=1.2)
        mark = "" if test.decides else " (context)"
        ax.text(1.05, y, f"{test.verdict}{mark}", color=color, va="center", fontsize=6,
                transform=ax.get_yaxis_transform())  # fmt: skip
    ax.axvline(0, color="0.6", lw=0.6)
    ax.set_yticks(range(len(tests)), [t.name for t in reversed(tests)], fontsize=6)
    ax.set_xlim(-1.3, 1.3)
    ax.set_xticks([-1, 0, 1], ["-1", "null", "+1"])
    ax.set_xlabel("effect - null, in units of each row's range")
    ax.set_title(f"tests (bar: mean +- t* s/sqrt(n), one-sided {ALPHA:g}; tick: threshold)")


def claim_figure(record) -> Drawn:
    """The figure of one claim from its record (:class:`reports.reproduce.outputs.ClaimRecord`)."""
    name, title = f"claim_{record.id}", f"{record.id}: {record.title}"
    if not record.tests:
        return Drawn(reason="the claim has no tests", name=name, title=title)
    panels = list(record.panels)
    ncols = min(3, len(panels)) or 1
    rows = math.ceil(len(panels) / ncols)
    legend = 0.35 * math.ceil(len({k for p in panels for k in p.series}) / 4)
    height = PANEL_HEIGHT_IN * rows + legend + 0.45 + 0.17 * len(record.tests)
    fig = style.new_figure("double", height)
    top, bottom = fig.subfigures(
        2, 1, height_ratios=[PANEL_HEIGHT_IN * rows + legend, 0.45 + 0.17 * len(record.tests)]
    )
    axes = grid(top, len(panels), ncols)
    styles: dict[str, int] = {}
    for ax, panel in zip(axes, panels, strict=True):
        draw_panel(ax, panel, styles)
    shared_legend(top, axes)
    draw_tests(bottom.subplots(), record.tests)
    caption = (
        f'{record.source}: "{record.quote}" Panels: the claim\'s statistics over training '
        "(one line per seed; step = optimiser step) or across its sweep. Bottom: each test's "
        "per-seed effects (circles), their mean with t* s / sqrt(n) (square and bar: a bar "
        f"that crosses the threshold is INCONCLUSIVE; t* Student's one-sided {1 - ALPHA:g} "
        "quantile) and the claim's threshold (tick), each row scaled to its own range; "
        f"verdict {record.verdict}. {record.sizing}."
    )
    return Drawn(caption, figure=fig, width="double", name=name, title=title)
