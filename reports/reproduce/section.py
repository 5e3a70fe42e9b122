"""The main report's section on the reproduced claims (``python -m reports.build --claims DIR``):
the claims table, the tests table and one figure per claim, drawn from ``DIR/claims.json``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reports.document import Heading, Paragraph
from reports.reproduce import verdict
from reports.reproduce.figures import claim_figure
from reports.reproduce.outputs import ClaimRecord, claims_table, tests_table, wall_text

if TYPE_CHECKING:
    from reports.compose import Composer

TITLE = "7. Reproduced claims"


def add_section(c: Composer, meta: dict[str, Any], records: list[ClaimRecord]) -> None:
    """The section: what was run, how a verdict is reached, the tables, the figures."""
    c.add(
        Heading(2, TITLE),
        Paragraph(
            f"{len(records)} claims of the papers reproduced by `{meta.get('command', '?')}` "
            f"(scale `{meta.get('scale', '?')}`: {meta.get('scale_description', '')}; "
            f"{len(meta.get('seeds', []))} seeds; {wall_text(meta)}; "
            f"git {meta.get('git_revision', 'unknown')}). {verdict.SUMMARY}"
        ),
    )
    provenance = [f"From {meta.get('source', 'claims.json')}."]
    c.table(claims_table(records, len(meta.get("seeds", []))), provenance=provenance)
    c.table(tests_table(records), provenance=provenance)
    for record in records:
        c.figure(claim_figure(record))
