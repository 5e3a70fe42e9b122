"""One paper style for every figure of the report.

Sizes follow the usual two-column journal layout: a single-column figure is 3.5 in (89 mm) wide,
a double-column figure 7.2 in (183 mm). Fonts are 8 pt (7 pt for ticks and legends) so that the
figure is readable at print size without scaling. Colours are the Okabe-Ito palette (Okabe & Ito
2008, "Color Universal Design"), distinguishable under the common colour-vision deficiencies;
series also differ by marker and line style so that they survive a grey-scale print. Figures keep
their nominal size on disk (constrained layout, never ``bbox_inches="tight"``): the PDF page and
the PNG are exactly ``width x height`` inches (PNG at :data:`PNG_DPI`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from symbolic.common.files import atomic_path  # noqa: E402

SINGLE_COLUMN_IN = 3.5
DOUBLE_COLUMN_IN = 7.2
MAX_HEIGHT_IN = 9.0
PNG_DPI = 300

#: Okabe-Ito colours, yellow last (weak on white).
PALETTE = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow
)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")
#: Sequential map for ordered series (mode rank, epoch) and diverging map for signed matrices;
#: both are perceptually uniform and colour-blind safe.
SEQUENTIAL_CMAP = "viridis"
DIVERGING_CMAP = "PuOr_r"
PREDICTION_COLOR = "#000000"

RC = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.0,
    "lines.markersize": 3.5,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "image.cmap": SEQUENTIAL_CMAP,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "savefig.dpi": PNG_DPI,
    "figure.dpi": 100,
    "mathtext.default": "regular",
}


def color(i: int) -> str:
    """The i-th series colour (cycles)."""
    return PALETTE[i % len(PALETTE)]


def marker(i: int) -> str:
    """The i-th series marker (cycles)."""
    return MARKERS[i % len(MARKERS)]


@contextmanager
def paper_style() -> Iterator[None]:
    """Apply the paper rcParams inside the block only."""
    with matplotlib.rc_context(RC):
        yield


def new_figure(width: str, height_in: float) -> Figure:
    """A figure of the given column width ("single" or "double") and height in inches."""
    widths = {"single": SINGLE_COLUMN_IN, "double": DOUBLE_COLUMN_IN}
    if width not in widths:
        raise ValueError(f"width {width!r} is not one of {sorted(widths)}")
    height = min(float(height_in), MAX_HEIGHT_IN)
    return plt.figure(figsize=(widths[width], height), layout="constrained")


def save_figure(fig: Figure, folder: Path, name: str, metadata: Mapping[str, str]) -> list[Path]:
    """Write ``fig`` as ``folder/name.pdf`` (vector) and ``folder/name.png``; close it.

    ``metadata`` (title, provenance) goes into the PDF info dictionary and the PNG text chunks.
    """
    folder.mkdir(parents=True, exist_ok=True)
    pdf, png = folder / f"{name}.pdf", folder / f"{name}.png"
    pdf_meta = {"Title": metadata.get("title", name), "Subject": metadata.get("provenance", "")}
    png_meta = {"Title": metadata.get("title", name), "Description": metadata.get("provenance", "")}
    with atomic_path(pdf) as tmp:
        fig.savefig(
            tmp, format="pdf", metadata={**pdf_meta, "Creator": "reports", "CreationDate": None}
        )
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=PNG_DPI, metadata=png_meta)
    plt.close(fig)
    return [pdf, png]
