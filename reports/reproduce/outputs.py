"""The results of a set of claims: records, tables, figures, ``claims.md`` and ``claims.json``.

``OUT/claims.json`` holds everything (each claim's source, definition, sizing, tests with the
per-seed effects, figure panels; the scale, seeds, wall time, git revision); the tables, the
figures and ``claims.md`` are rendered from it, by ``python -m reports.reproduce`` and by
``python -m reports.build --claims OUT`` alike. Files: ``claims.md`` (the document),
``claims.tex`` and ``claims.csv`` (one row a claim), ``tests.tex``/``tests.csv`` (one row a
test), ``figures/claim_ID.pdf|png``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reports import style
from reports.document import Block, FigureBlock, Heading, Paragraph, TableBlock, write_markdown
from reports.experiments import Workspace
from reports.experiments.pool import last_line
from reports.reproduce import verdict as verdict_mod
from reports.reproduce.figures import claim_figure
from reports.reproduce.measured import Measured, load_run
from reports.reproduce.plan import ClaimSet
from reports.reproduce.registry import Outcome, Panel
from reports.reproduce.verdict import Test, claim_verdict
from reports.tables import Column, Table, table_frame, write_table
from symbolic.common.cli import UsageError
from symbolic.common.files import atomic_folder, write_text

RESULT = "claims.json"


@dataclasses.dataclass
class ClaimRecord:
    """One decided claim, as stored in claims.json."""

    id: str
    title: str
    paper: str
    where: str
    quote: str
    definition: str
    sizing: str
    tests: list[Test]
    panels: list[Panel]
    facts: dict[str, Any]
    runs: dict[str, str]  # role -> configuration label

    @property
    def source(self) -> str:
        return f"{self.paper}, {self.where}"

    @property
    def verdict(self) -> str:
        return claim_verdict(self.tests)

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["tests"] = [t.as_dict() for t in self.tests]
        out["panels"] = [p.as_dict() for p in self.panels]
        out["facts"] = {k: _json_number(v) for k, v in self.facts.items()}
        out["verdict"] = self.verdict
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClaimRecord:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["tests"] = [Test.from_dict(t) for t in data["tests"]]
        values["panels"] = [Panel.from_dict(p) for p in data["panels"]]
        return cls(**values)


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clean(value: Any) -> Any:
    """NaN and infinities as null, recursively (claims.json is strict JSON)."""
    if isinstance(value, float):
        return _json_number(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def measured_for(claimed: ClaimSet, workspace: Workspace, claim_id: str) -> Measured:
    """The runs of one claim (its fixed runs and those its refinement added): loaded
    measurements of every finished seed (its files as they were written), why the others are
    missing (the last line the run wrote to stderr)."""
    roles = claimed.roles(claim_id)
    datasets: dict[str, dict[int, Any]] = {}
    failed: dict[tuple[str, int], str] = {}
    for role, (spec, seeds) in roles.items():
        datasets[role] = {}
        for seed in seeds:
            command = claimed.command(spec, seed)
            if workspace.state(command)[0] == "done":
                datasets[role][seed] = load_run(command.output)
            else:
                log = workspace.log(command)
                failed[role, seed] = last_line(log) if log.exists() else "did not finish"
    return Measured(datasets, {role: spec for role, (spec, _) in roles.items()}, failed)


def evaluate(claimed: ClaimSet, workspace: Workspace) -> list[ClaimRecord]:
    """Every claim of the set decided from its runs' measurements."""
    records = []
    for claim in claimed.claims:
        experiment = claimed.experiments[claim.id]
        outcome: Outcome = experiment.evaluate(measured_for(claimed, workspace, claim.id))
        records.append(
            ClaimRecord(
                claim.id,
                claim.title,
                claim.paper,
                claim.where,
                claim.quote,
                claim.describe(),
                experiment.sizing,
                outcome.tests,
                outcome.panels,
                outcome.facts,
                {role: spec.label for role, (spec, _) in claimed.roles(claim.id).items()},
            )
        )
    return records


def value_text(test: Test) -> str:
    """'mean ± sd (n = 3)' of a test's effects; the undefined seeds named."""
    finite = [e for e in test.effects if math.isfinite(e)]
    if not finite:
        return "undefined"
    text = f"{test.mean:.3g} ± {test.sd:.2g} (n = {len(finite)})"
    if test.undefined:
        text += f"; undefined for seed(s) {', '.join(map(str, test.undefined))}"
    return text


CLAIM_COLUMNS = [
    Column("claim", "claim", "claim"),
    Column("source", "source", "source"),
    Column("statistic", "statistic (first test)", "statistic (first test)"),
    Column("value", "value (mean ± sd over seeds)", r"value (mean $\pm$ sd)"),
    Column("threshold", "claimed", "claimed"),
    Column("tests", "tests", "tests"),
    Column("verdict", "verdict", "verdict"),
]

TEST_COLUMNS = [
    Column("claim", "claim", "claim"),
    Column("test", "test", "test"),
    Column("statistic", "effect", "effect"),
    Column("value", "mean ± sd over seeds", r"mean $\pm$ sd"),
    Column("threshold", "claimed", "claimed"),
    Column("seeds", "per seed", "per seed"),
    Column("verdict", "verdict", "verdict"),
    Column("note", "note", "note"),
]


def _tests_summary(tests: Sequence[Test]) -> str:
    deciding = [t.verdict for t in tests if t.decides]
    counts = {v: deciding.count(v) for v in verdict_mod.CLAIM_VERDICTS if deciding.count(v)}
    text = ", ".join(f"{n} {v.lower()}" for v, n in counts.items())
    context = sum(1 for t in tests if not t.decides)
    return f"{len(deciding)}: {text}" + (f" (+{context} context)" if context else "")


def claims_table(records: Sequence[ClaimRecord], seeds: int) -> Table:
    """One row a claim: its source, its first deciding test, the claim's verdict."""
    rows = []
    for r in records:
        first = next((t for t in r.tests if t.decides), r.tests[0] if r.tests else None)
        rows.append(
            {
                "claim": r.id,
                "source": r.source,
                "statistic": first.statistic if first else "",
                "value": value_text(first) if first else "",
                "threshold": first.claimed() if first else "",
                "tests": _tests_summary(r.tests),
                "verdict": r.verdict,
            }
        )
    return Table(
        name="claims",
        title="The papers' empirical claims, reproduced",
        caption=(
            f"Each claim trained with {seeds} seeds; the statistic, value and claimed relation "
            "are those of its first test (all tests in the next table). " + verdict_mod.SUMMARY
        ),
        frame=table_frame(rows, CLAIM_COLUMNS),
        columns=list(CLAIM_COLUMNS),
    )


def tests_table(records: Sequence[ClaimRecord]) -> Table:
    """One row a test: its effect, mean and spread, the claimed relation, the verdict."""
    rows = []
    for r in records:
        for t in r.tests:
            per_seed = ", ".join("NaN" if not math.isfinite(e) else f"{e:.3g}" for e in t.effects)
            rows.append(
                {
                    "claim": r.id,
                    "test": t.name + ("" if t.decides else " (context)"),
                    "statistic": t.statistic,
                    "value": value_text(t),
                    "threshold": t.claimed() + (f" (null {t.null:g})" if t.null else ""),
                    "seeds": per_seed,
                    "verdict": t.verdict,
                    "note": t.note,
                }
            )
    return Table(
        name="tests",
        title="Every test of every claim",
        caption=(
            "Per test: the effect each seed gives, its mean and standard deviation over the "
            "seeds, the claimed relation (and the null value where it is not 0), the verdict. "
            "Context tests are reported but do not decide their claim."
        ),
        frame=table_frame(rows, TEST_COLUMNS),
        columns=list(TEST_COLUMNS),
    )


def document(
    records: Sequence[ClaimRecord],
    meta: dict[str, Any],
    tables: list[TableBlock],
    figures: dict[str, FigureBlock],
) -> list[Block]:
    """claims.md: what was run, how a verdict is reached, the tables, then each claim with its
    figure."""
    blocks: list[Block] = [
        Heading(1, "Reproduced claims"),
        Paragraph(
            f"Scale `{meta['scale']}` ({meta['scale_description']}), {len(meta['seeds'])} seeds, "
            f"{meta['runs']} runs, {meta['jobs']} at a time; {wall_text(meta)} on "
            f"{meta['machine']}. Git {meta['git_revision']}. Command: `{meta['command']}`."
        ),
        Heading(2, "How a verdict is reached"),
        Paragraph(verdict_mod.definition()),
        *tables,
    ]
    for r in records:
        facts = "".join(f" {k}: {_fmt(v)}." for k, v in r.facts.items())
        verdicts = "; ".join(f"{t.name}: {t.verdict}" for t in r.tests)
        blocks += [
            Heading(2, f"{r.id}: {r.title}"),
            Paragraph(f'**Source.** {r.source}: "{r.quote}"'),
            Paragraph(f"**Test.** {r.definition}"),
            Paragraph(f"**Size.** {r.sizing}.{facts}"),
            Paragraph(f"**Verdict: {r.verdict}.** {verdicts}"),
        ]
        if r.id in figures:
            blocks.append(figures[r.id])
    return blocks


def wall_text(meta: dict[str, Any]) -> str:
    """'wall time 3900 s' (and, for a resumed set, the runs' time in all sessions)."""
    text = f"wall time {meta['wall_seconds']:.0f} s"
    if meta.get("resumed"):
        text += f" in the last session (resumed; the runs took {meta['run_seconds']:.0f} s in all)"
    return text


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "undefined" if not math.isfinite(value) else f"{value:.3g}"
    return str(value)


def write(out: Path, records: Sequence[ClaimRecord], meta: dict[str, Any]) -> list[Path]:
    """Every output into ``out`` (figures in one atomic folder, each file atomically,
    ``claims.json`` last): the tables as LaTeX and CSV, claims.md from the document's blocks."""
    figures: dict[str, FigureBlock] = {}
    with style.paper_style(), atomic_folder(out / "figures") as tmp:
        for r in records:
            drawn = claim_figure(r)
            if drawn.figure is not None:
                saved = style.save_figure(drawn.figure, tmp, drawn.name, {"title": drawn.title})
                files = [out / "figures" / p.name for p in saved]
                figures[r.id] = FigureBlock.of(len(figures) + 1, drawn, files)
    seeds = len(meta["seeds"])
    tables, written = [], []
    for number, table in enumerate((claims_table(records, seeds), tests_table(records)), 1):
        files = write_table(table, out, formats=("tex", "csv"))
        tables.append(TableBlock(number, table, files))
        written += files
    written.append(write_markdown(out / "claims.md", document(records, meta, tables, figures)))
    result = {**meta, "claims": [r.as_dict() for r in records]}
    written.append(write_text(out / RESULT, json.dumps(_clean(result), indent=1) + "\n"))
    return written


def load(folder: str | Path) -> tuple[dict[str, Any], list[ClaimRecord]]:
    """(meta, records) of ``folder/claims.json``; UsageError naming a missing or malformed
    file (``reports.build --claims``)."""
    path = Path(folder) / RESULT
    if not path.is_file():
        raise UsageError(f"--claims {folder}: no {RESULT} (made by python -m reports.reproduce)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        records = [ClaimRecord.from_dict(c) for c in data["claims"]]
    except (ValueError, KeyError, TypeError) as err:
        raise UsageError(f"{path}: not a claims result ({type(err).__name__}: {err})") from None
    meta = {k: v for k, v in data.items() if k != "claims"}
    return meta, records
