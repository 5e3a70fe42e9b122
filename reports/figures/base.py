"""What every figure shares: its inputs, what it returns, the registry, and the axis helpers.

A figure is one function ``draw(inputs: Inputs) -> Drawn`` registered with :func:`figure`::

    @figure("wp_heatmaps", "The predictor W_p at a few epochs", section="measurements")
    def wp_heatmaps(inputs: Inputs) -> Drawn:
        ...
        return Drawn(caption="...", sources=members, figure=fig, width="double")

The registry fills in the name and the title; a figure that its inputs do not allow returns
:func:`absent` with the reason. Within a section, figures come in the order they were
registered (the modules in the order of :data:`reports.figures.MODULES`, then the order in
each module).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure, FigureBase
from matplotlib.ticker import FormatStrFormatter, MaxNLocator

from reports import style
from reports.inputs import Result, load_inputs, short_revision
from symbolic.common.cli import RunFailure

if TYPE_CHECKING:
    from reports.compose import Pairing

#: Where a figure is drawn: the report's sections, the quick look of one simulation
#: (``python -m dynamics.simulate ... --plot``) and the phase diagrams (``dynamics.phase``).
SECTIONS = ("predictions", "measurements", "agreement", "simulation", "phase")
#: At most this many eigenvalue ranks are drawn in overlays (see shown_ranks).
MODES_SHOWN = 6
#: At most this many runs or simulations get their own panel or row.
MAX_PANELS = 4
FLOW_TIME = "flow time t"


@dataclass(frozen=True)
class Inputs:
    """What a figure may read: simulations, training runs, and each run with its predictions."""

    sims: Sequence[Result] = ()
    runs: Sequence[Result] = ()
    pairings: Sequence[Pairing] = ()


@dataclass
class Drawn:
    """A figure with its caption and sources, or ``figure=None`` and the reason.

    ``name`` and ``title`` are those the figure was registered with.
    """

    caption: str = ""
    sources: list[Result] = field(default_factory=list)
    figure: Figure | None = None
    reason: str = ""
    width: str = "single"
    name: str = ""
    title: str = ""


def absent(reason: str) -> Drawn:
    """No figure: the inputs do not allow it, for ``reason``."""
    return Drawn(reason=reason)


@dataclass(frozen=True)
class Registered:
    """A registered figure: its name (the file name), title, section and drawing function."""

    name: str
    title: str
    section: str
    draw: Callable[[Inputs], Drawn]


#: name -> registered figure, in the order of registration
REGISTRY: dict[str, Registered] = {}


def figure(name: str, title: str, section: str) -> Callable:
    """Register ``draw(inputs) -> Drawn`` as the figure ``name`` of ``section``.

    The decorated function returns the Drawn with ``name`` and ``title`` filled in. A name
    registered twice, a function named otherwise than ``name`` (the file name and the function
    are one name) or a section not in :data:`SECTIONS` raises ValueError.
    """
    if section not in SECTIONS:
        raise ValueError(f"figure {name!r}: section {section!r} is not one of {SECTIONS}")

    def register(fn: Callable[[Inputs], Drawn]) -> Callable[[Inputs], Drawn]:
        if name in REGISTRY:
            first = REGISTRY[name].draw
            raise ValueError(
                f"figure {name!r} is registered twice: by {first.__module__}.{first.__qualname__} "
                f"and by {fn.__module__}.{fn.__qualname__}"
            )
        if fn.__name__ != name:
            raise ValueError(
                f"figure {name!r} is drawn by {fn.__module__}.{fn.__qualname__}: name the "
                f"function {name}"
            )

        @functools.wraps(fn)
        def draw(inputs: Inputs) -> Drawn:
            return replace(fn(inputs), name=name, title=title)

        REGISTRY[name] = Registered(name, title, section, draw)
        return draw

    return register


def registered(section: str) -> list[Registered]:
    """The figures of ``section`` in the order of registration."""
    return [r for r in REGISTRY.values() if r.section == section]


def draw_section(section: str, inputs: Inputs) -> Iterator[Drawn]:
    """Every figure of ``section`` drawn from ``inputs``, one at a time (absent ones with their
    reasons)."""
    for entry in registered(section):
        yield entry.draw(inputs)


def save(drawn: Drawn, stem: Path) -> list[Path]:
    """Write a drawn figure to ``stem``.pdf and ``stem``.png with its title and provenance."""
    provenance = " | ".join(r.describe() for r in drawn.sources)
    return style.save_figure(
        drawn.figure, stem.parent, stem.name, {"title": drawn.title, "provenance": provenance}
    )


def write_file_figure(result_file: Path, names: Sequence[str], stem: Path) -> list[Path]:
    """Draw the first of the registered figures ``names`` that ``result_file`` allows, in the
    paper style, to ``stem``.pdf and ``stem``.png; RunFailure with every reason if none does."""
    sims, _ = load_inputs([str(result_file)], [])
    reasons = []
    with style.paper_style():
        for name in names:
            drawn = REGISTRY[name].draw(Inputs(sims=sims))
            if drawn.figure is not None:
                return save(drawn, stem)
            reasons.append(f"{name}: {drawn.reason}")
    raise RunFailure(f"{result_file}: no figure to draw ({'; '.join(reasons) or 'none named'})")


#: Characters of a headline per inch of figure width (8 pt DejaVu Sans, with a margin).
HEADLINE_CHARS_PER_IN = 15


def _shown_length(text: str) -> int:
    """Characters ``text`` shows: mathtext commands count as one, markup as none."""
    return len(re.sub(r"[${}_^]", "", re.sub(r"\\[A-Za-z]+", "x", text)))


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` shown characters, broken at spaces outside $...$."""
    lines: list[str] = []
    for word in re.findall(r"(?:\$[^$]*\$|\S)+", text):
        if lines and _shown_length(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def headline(fig: Figure, result: Result, text: str) -> None:
    """``text`` and the source's git revision above a figure that stands alone (no caption),
    wrapped to the figure's width."""
    words = f"{text} (git {short_revision(result.git_revision)})"
    lines = wrap(words, round(fig.get_figwidth() * HEADLINE_CHARS_PER_IN))
    fig.suptitle("\n".join(lines), fontsize=style.RC["font.size"])


def grid(fig: FigureBase, n: int, ncols: int) -> list[Axes]:
    """``n`` axes in rows of ``ncols``; the unused cells of the last row hidden."""
    nrows = math.ceil(n / ncols)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return list(axes[:n])


def epoch_axis(ax: Axes) -> None:
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def log_axis(ax: Axes) -> None:
    """Log y axis; when the data span less than a decade, plain tick labels (0.996, not 9.96e-1)."""
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    if high / low < 10:
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.4g"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%.4g"))


def log_if_wide(ax: Axes, values: Sequence[np.ndarray]) -> None:
    """Log y axis when the positive values span more than a factor 30."""
    flat = np.concatenate([np.ravel(v) for v in values]) if values else np.array([])
    flat = flat[np.isfinite(flat)]
    if flat.size and np.all(flat > 0) and flat.max() / flat.min() > 30:
        ax.set_yscale("log")


def unique(results: Sequence[Result]) -> list[Result]:
    """The results in order, each once (by id)."""
    seen, out = set(), []
    for r in results:
        if r.ident not in seen:
            seen.add(r.ident)
            out.append(r)
    return out
