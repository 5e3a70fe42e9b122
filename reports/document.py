"""The report as a list of blocks, rendered to Markdown (report.md) and self-contained HTML.

Blocks are headings, paragraphs, bullet lists, figures and tables. The HTML embeds every figure as
a base64 PNG and carries its own stylesheet, so the file opens anywhere without its folder; the
Markdown refers to ``figures/`` and ``tables/`` next to it. Both renderings hold the same text.
Inline ``code`` in paragraphs is the only markup. The drivers' documents (``bridge.md`` of
``reports.bridge``, ``claims.md`` of ``reports.reproduce``) are written from the same blocks.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

from reports.style import DOUBLE_COLUMN_IN, SINGLE_COLUMN_IN
from reports.tables import Table, format_value, to_markdown
from symbolic.common.files import write_text

#: On screen a figure is shown this many CSS pixels per inch of its paper width.
SCREEN_PX_PER_IN = 140


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class FigureBlock:
    number: int
    name: str
    title: str
    caption: str
    png: Path
    pdf: Path
    width: str
    provenance: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, number: int, drawn, files: list[Path], provenance=()) -> FigureBlock:
        """The block of a drawn figure (:class:`reports.figures.base.Drawn`) saved as
        ``files`` (its PDF and PNG)."""
        pdf, png = files
        return cls(
            number, drawn.name, drawn.title, drawn.caption, png, pdf, drawn.width, list(provenance)
        )


@dataclass
class TableBlock:
    number: int
    table: Table
    files: list[Path]
    provenance: list[str] = field(default_factory=list)


Block = Heading | Paragraph | Bullets | FigureBlock | TableBlock


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def to_markdown_text(blocks: list[Block], root: Path) -> str:
    """report.md: figures and tables refer to files below ``root``."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}\n")
        elif isinstance(b, Paragraph):
            out.append(b.text + "\n")
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {item}" for item in b.items) + "\n")
        elif isinstance(b, FigureBlock):
            png, pdf = _rel(b.png, root), _rel(b.pdf, root)
            out.append(f"![Figure {b.number}: {b.title}]({png})\n")
            out.append(
                f"**Figure {b.number}. {b.title}.** {b.caption} "
                f"Files: [{pdf}]({pdf}), [{png}]({png}).\n"
            )
            if b.provenance:
                out.append("Provenance:\n\n" + "\n".join(f"- {p}" for p in b.provenance) + "\n")
        elif isinstance(b, TableBlock):
            files = ", ".join(f"[{_rel(f, root)}]({_rel(f, root)})" for f in b.files)
            out.append(
                f"**Table {b.number}. {b.table.title}.** {b.table.caption} Files: {files}.\n"
            )
            out.append(to_markdown(b.table))
            if b.provenance:
                out.append("Provenance:\n\n" + "\n".join(f"- {p}" for p in b.provenance) + "\n")
    return "\n".join(out)


def write_markdown(path: Path, blocks: list[Block]) -> Path:
    """``path`` (Markdown) from ``blocks``, atomically; files are linked relative to its folder."""
    return write_text(path, to_markdown_text(blocks, path.parent))


CSS = """
body { font-family: 'DejaVu Sans', Helvetica, Arial, sans-serif; max-width: 1060px;
       margin: 2em auto; padding: 0 1em; color: #111; line-height: 1.45; font-size: 15px; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; margin-top: 2em;
     border-bottom: 1px solid #ccc; } h3 { font-size: 1.1em; }
figure { margin: 1.5em 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .caption { font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { padding: 0.2em 0.6em; vertical-align: top; }
thead th { border-top: 2px solid #000; border-bottom: 1px solid #000; }
tbody tr:last-child td { border-bottom: 2px solid #000; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.prov { font-size: 0.78em; color: #444; margin: 0.3em 0 0 0; }
.prov li { margin: 0; }
.tablewrap { overflow-x: auto; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _inline(text: str) -> str:
    """HTML-escape ``text`` and turn `code` spans into <code>."""
    parts = re.split(r"`([^`]*)`", text)
    return "".join(
        f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts)
    )


def _prov_html(lines: list[str]) -> str:
    if not lines:
        return ""
    items = "".join(f"<li>{_inline(p)}</li>" for p in lines)
    return f'<div class="prov">Provenance:<ul>{items}</ul></div>'


def _table_html(table: Table) -> str:
    numeric = [table.frame[c.key].dtype.kind in "fiu" for c in table.columns]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers())
    rows = []
    for _, row in table.frame.iterrows():
        cells = []
        for c, num in zip(table.columns, numeric, strict=True):
            text = format_value(row[c.key])
            cls = ' class="num"' if num else ""
            cells.append(f"<td{cls}>{html.escape(text) if text is not None else '–'}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="tablewrap"><table id="table-{table.name}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def to_html(blocks: list[Block], title: str) -> str:
    """report.html: one file, stylesheet inline, figures embedded as base64 PNG."""
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{_inline(b.text)}</h{b.level}>")
        elif isinstance(b, Paragraph):
            body.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, FigureBlock):
            data = base64.b64encode(b.png.read_bytes()).decode("ascii")
            inches = SINGLE_COLUMN_IN if b.width == "single" else DOUBLE_COLUMN_IN
            width = round(inches * SCREEN_PX_PER_IN)
            body.append(
                f'<figure id="figure-{b.name}"><img class="report-figure" '
                f'alt="Figure {b.number}: {html.escape(b.title)}" style="width:{width}px" '
                f'src="data:image/png;base64,{data}">'
                f"<figcaption><b>Figure {b.number}. {html.escape(b.title)}.</b> "
                f"{_inline(b.caption)}</figcaption>{_prov_html(b.provenance)}</figure>"
            )
        elif isinstance(b, TableBlock):
            body.append(
                f'<p class="caption"><b>Table {b.number}. {html.escape(b.table.title)}.</b> '
                f"{_inline(b.table.caption)}</p>{_table_html(b.table)}{_prov_html(b.provenance)}"
            )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
