"""Assemble the report: pair runs with simulations, draw figures, write tables, tell the story.

The story runs in this order: set-up, predictions, measurements, agreement, where theory
and practice disagree; then the claims audit and the provenance of every input. Every figure and
table lists its sources (id, kind, name, key parameters, seed, git revision, file); the complete
parameters are in the appendix table and in ``provenance.json``.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports import compare, figures, style
from reports.audit import Audit
from reports.document import Block, Bullets, FigureBlock, Heading, Paragraph, TableBlock
from reports.inputs import Result, short_revision
from reports.reference_cache import cached_references
from reports.references import References
from reports.tables import (
    Table,
    audit_table,
    findings_table,
    methods_table,
    predictions_table,
    sources_table,
    write_table,
)
from symbolic.common.provenance import PACKAGE_VERSION, git_revision


@dataclass
class Pairing:
    """A run with the simulations derived from it: predictions and other-seed nulls."""

    run: Result
    predictions: list[Result] = field(default_factory=list)
    nulls: list[Result] = field(default_factory=list)
    changed: list[Result] = field(default_factory=list)  # derived from another version of it
    refused: list[tuple[Result, str]] = field(default_factory=list)  # and why
    notes: list[str] = field(default_factory=list)  # about its replay and ablation nulls


def _covers(sim: Result, run: Result) -> str:
    """Why ``sim`` cannot predict ``run`` on its times ('' when it covers them)."""
    t_sim, t_run = sim.flow_time(), run.flow_time()
    if run.has_flow_time and t_sim[-1] < t_run[-1] * (1 - 1e-9):
        return (
            f"it ends at t = {t_sim[-1]:.6g}, before the run's last measurement at "
            f"t = {t_run[-1]:.6g} (a prediction is never extrapolated)"
        )
    return ""


def _same_files(sim: Result, run: Result) -> bool:
    """Whether every file ``sim`` was derived from has the hash it recorded: the run's
    measurements (``from_run_file_sha256``) and its companions (``from_run_moments_sha256``,
    ``from_run_pairs_sha256``)."""
    if sim.attrs.get("from_run_file_sha256") != run.sha256:
        return False
    companions = run.companion_sha256()
    for name in ("moments.nc", "pairs.nc"):
        key = f"from_run_{name.removesuffix('.nc')}_sha256"
        if key in sim.attrs and sim.attrs[key] != companions.get(name):
            return False
    return True


def pair_runs(runs: Sequence[Result], sims: Sequence[Result]) -> list[Pairing]:
    """Each run with the simulations derived from it (``--from-run``), by their attributes.

    A simulation belongs to a run when every file it was derived from has the hash it recorded
    (:func:`_same_files`: an edited moments.nc does not pair); marked as derived from another
    version of the run when only its ``from_run`` path names the run's folder. A prediction
    shorter than its run is refused. No other pairing is made: a simulation that names no run
    predicts none.
    """
    out = []
    for run in runs:
        pairing = Pairing(run)
        for sim in sims:
            if sim.derived_from is None:
                continue
            same_path = Path(sim.derived_from).resolve() in (
                run.path.resolve(),
                run.path.parent.resolve(),
            )
            if _same_files(sim, run):
                if why := _covers(sim, run):
                    pairing.refused.append((sim, why))
                else:
                    (pairing.nulls if sim.is_null else pairing.predictions).append(sim)
            elif same_path:
                pairing.changed.append(sim)
        out.append(pairing)
    return out


def findings(pairings: Sequence[Pairing]) -> list[tuple[Result, Result, compare.Row]]:
    """Every statistic of every run against each prediction, with the nulls that apply: the
    other-seed simulation, the frozen network and the ablation nulls; tolerances from the
    run's noise floor (:mod:`reports.references`). A run with momentum is predicted by the
    inertial flow; its first-order simulation is then the 'momentum' ablation null."""
    rows = []
    for p in pairings:
        null = p.nulls[0].trajectory() if p.nulls else None
        refs = cached_references(p.run) if p.predictions else References()
        p.notes = list(refs.notes)
        if refs.inertial is not None:
            p.notes.append(
                "predicted by the inertial (heavy-ball) flow of dynamics.replay; the "
                "first-order simulation is its 'momentum' ablation null"
            )
        for sim in p.predictions:
            prediction = refs.inertial if refs.inertial is not None else sim.trajectory()
            for row in compare.compare(
                prediction, p.run.trajectory(), null, refs.ablations, refs.replay
            ):
                if refs.notes:  # why a row may have no ablation null
                    row.no_nulls = "; ".join(refs.notes)
                rows.append((p.run, sim, row))
    return rows


@dataclass
class Manifest:
    """What went into the report, for provenance.json."""

    report: dict[str, Any]
    sources: list[dict[str, Any]]
    figures: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    not_drawn: dict[str, str] = field(default_factory=dict)
    audit: dict[str, Any] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)


class Composer:
    """Collects blocks while writing figures and tables into ``root``."""

    def __init__(self, root: Path, manifest: Manifest):
        self.root = root
        self.blocks: list[Block] = []
        self.manifest = manifest
        self.n_fig = 0
        self.n_tab = 0

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)

    def figure(self, drawn: figures.Drawn) -> None:
        if drawn.figure is None:
            self.manifest.not_drawn[drawn.name] = drawn.reason
            return
        self.n_fig += 1
        provenance = [source_line(drawn.sources)] if drawn.sources else []
        pdf, png = figures.save(drawn, self.root / "figures" / drawn.name)
        self.add(
            FigureBlock(
                self.n_fig,
                drawn.name,
                drawn.title,
                drawn.caption,
                png,
                pdf,
                drawn.width,
                provenance,
            )
        )
        self.manifest.figures[drawn.name] = {
            "number": self.n_fig,
            "title": drawn.title,
            "caption": drawn.caption,
            "files": [p.relative_to(self.root).as_posix() for p in (pdf, png)],
            "sources": [r.ident for r in drawn.sources],
        }

    def table(self, table: Table | None, provenance: list[str] | None = None) -> None:
        if table is None:
            return
        self.n_tab += 1
        files = write_table(table, self.root / "tables")
        if provenance is None:
            provenance = [source_line(table.sources)] if table.sources else []
        lines = provenance
        self.add(TableBlock(self.n_tab, table, files, lines))
        self.manifest.tables[table.name] = {
            "number": self.n_tab,
            "title": table.title,
            "caption": table.caption,
            "files": [p.relative_to(self.root).as_posix() for p in files],
            "sources": [r.ident for r in table.sources] or provenance,
        }


def source_line(sources: Sequence[Result]) -> str:
    """'Sources: S1 linear_byol, R1 byol (see section 2)': captions refer to the ids."""
    return "Sources: " + ", ".join(f"{r.ident} {r.label}" for r in sources) + " (section 2)."


def _findings(c: Composer, pairings: Sequence[Pairing], rows: list) -> None:
    """The report opens with what it found: one row per prediction and statistic."""
    c.add(Heading(2, "1. Findings"))
    counts = {v: sum(1 for *_, r in rows if r.verdict == v) for v in compare.FINDING_VERDICTS}
    if rows:
        c.add(
            Paragraph(
                f"{len(rows)} comparisons of a prediction with the run it was derived from: "
                + ", ".join(f"{n} {verdict}" for verdict, n in counts.items() if n)
                + ". A comparison agrees only when its error is within the tolerance (three "
                "times the run's noise floor, its distance from its own noise-free replay, "
                f"where there is one) and at least {compare.NULL_MARGIN:g} times below every "
                "null (the frozen initial network; a simulation started from another seed's "
                "weights; the same prediction with one ingredient removed: X' = 0, no weight "
                "decay, W_a = W, "
                "D = 1, no momentum). An ingredient whose ablation null is not that far above "
                "is 'not tested' by the run. Properties of the run (Theorem 1's decay, the end "
                "state) do not read the prediction and are listed apart."
            )
        )
    c.table(findings_table(rows))
    c.table(findings_table(rows, kind="property"))
    notes = []
    for p in pairings:
        run = p.run
        if not p.predictions:
            scenario = str(run.attrs.get("matched_scenario", "none"))
            if scenario != "none":
                notes.append(
                    f"{run.ident} {run.label}: no prediction was given; derive one with "
                    f"`python -m dynamics.simulate {scenario} --from-run {run.path.parent}`."
                )
            else:
                notes.append(
                    f"{run.ident} {run.label}: no linear-theory simulation predicts this run "
                    f"(predictor {run.attrs.get('predictor_kind', '?')}, linear "
                    f"{bool(run.attrs.get('predictor_linear', 0))})."
                )
        elif not p.nulls:
            notes.append(
                f"{run.ident} {run.label}: no other-seed simulation was given (`--from-run "
                f"{run.path.parent} --initial seed --seed 1`); only the frozen null applies."
            )
        if p.predictions and (short := compare.untested(run.trajectory(), predicted=True)):
            notes.append(
                f"{run.ident} {run.label}: too short to test (e^(-2 eta t) has not decayed): "
                + "; ".join(short.values())
                + "."
            )
        for sim in p.changed:
            notes.append(
                f"{sim.ident} names {run.ident}'s folder but was derived from another version of "
                "its files (measurements.nc or moments.nc changed since): not compared."
            )
        for sim, why in p.refused:
            notes.append(f"{sim.ident} is refused as a prediction of {run.ident}: {why}.")
        notes += [f"{run.ident} {run.label}: {note}." for note in p.notes]
        for sim in p.predictions:
            if sim.attrs.get("not_matched"):
                notes.append(f"{sim.ident} not matched: {sim.attrs['not_matched']}.")
        if run.partial:
            notes.append(f"{run.ident} is PARTIAL: {run.attrs.get('status', 'stopped early')}.")
        if not run.has_flow_time:
            notes.append(f"{run.ident}: {run.attrs['flow_time_undefined']}; shown on epochs only.")
    if notes:
        c.add(Bullets(notes))


def _sources(c: Composer, sims: Sequence[Result], runs: Sequence[Result], listed) -> None:
    c.add(
        Heading(2, "2. Sources"),
        Paragraph(
            "The inputs, with the ids the figures and tables refer to (full parameters and "
            "hashes in the appendix). Simulations and runs share one result schema and are "
            "aligned on the flow time t each producer recorded (a run: the sum of its steps' "
            "flow time, empirical.flow; a run trained with LARS has none)."
        ),
        Bullets([r.describe() for r in [*sims, *runs]] or ["none"]),
    )
    if listed:
        c.add(
            Paragraph(
                "Listed but not drawn (this report draws single simulations and runs; sweeps "
                "and phase diagrams carry parameter dimensions; `python -m dynamics.phase` "
                "draws the phase diagrams):"
            ),
            Bullets([r.describe() for r in listed]),
        )


def _predictions(c: Composer, sims: Sequence[Result], inputs: figures.Inputs) -> None:
    c.add(
        Heading(2, "3. Predictions"),
        Paragraph(
            "Theory (Tian et al. 2021; Liu et al. 2022): W W^T - W_p^T W_p / alpha_p = "
            "e^{-2 eta t} C (Theorem 1), so the conservation residual decays at the rate 2 eta; "
            "each eigenmode of a symmetric predictor flows on s_j - p_j^2/alpha_p = "
            "e^{-2 eta t} c_j towards p = 0 (collapse) or p*_+, the basin boundary being p*_-; "
            "W_p aligns with the eigenvectors of the feature correlation and W_p^T W_p -> F F^T."
        ),
    )
    c.table(predictions_table(sims))
    for drawn in figures.draw_section("predictions", inputs):
        c.figure(drawn)


def _measurements(c: Composer, runs: Sequence[Result], inputs: figures.Inputs) -> None:
    c.add(Heading(2, "4. Measurements"))
    if not runs:
        c.add(Paragraph("No training run was given (--runs), so nothing was measured."))
    c.table(methods_table(runs))
    for drawn in figures.draw_section("measurements", inputs):
        c.figure(drawn)


def _agreement(c: Composer, inputs: figures.Inputs) -> None:
    c.add(
        Heading(2, "5. Agreement statistics"),
        Paragraph(
            "Each statistic is defined in `reports/compare.py`; the definitions below are the "
            "docstrings of the functions that compute it, with the tolerance of 'agrees'."
        ),
        Bullets(
            [
                f"{s.key} ({s.quantity}; tolerance {s.tolerance:g}"
                f"{'' if s.initial_dependent else '; other-seed null not applicable'}): "
                f"{s.definition}"
                for s in compare.STATISTICS.values()
            ]
        ),
    )
    for drawn in figures.draw_section("agreement", inputs):
        c.figure(drawn)


def audit_provenance(entries: Sequence[dict[str, Any]]) -> list[str]:
    """One line per distinct provenance record of the audit's claims (git revision, seed...)."""
    lines = []
    for entry in entries:
        prov = entry.get("provenance")
        if not isinstance(prov, dict):
            continue
        line = (
            f"{prov.get('name', 'audit')}: "
            f"git {short_revision(str(prov.get('git_revision', 'unknown')))}, "
            f"parameters {prov.get('params_json', '{}')}, created {prov.get('created', '?')}"
        )
        if line not in lines:
            lines.append(line)
    return lines


def _audit(c: Composer, audit: Audit) -> None:
    c.add(Heading(2, "6. Claims audit"))
    table = audit_table(audit.entries)
    if table is None:
        c.add(Paragraph(f"The claims audit is not included: {audit.reason or 'it is empty'}."))
        return
    (c.root / "audit.json").write_text(json.dumps(audit.entries, indent=2), encoding="utf-8")
    c.table(table, provenance=[f"Produced by {audit.origin}.", *audit_provenance(audit.entries)])


def _appendix(c: Composer, results: Sequence[Result]) -> None:
    c.add(Heading(2, "Appendix: provenance"))
    if results:
        c.table(sources_table(results), provenance=[])
    report = c.manifest.report
    c.add(
        Paragraph(
            f"Report built {report['created']} by `{report['command']}` at git revision "
            f"{report['git_revision']} (package version {report['package_version']}). "
            "`provenance.json` lists every figure and table with its source ids and every "
            "input with all its attributes."
        )
    )


def compose(
    root: Path,
    sims: Sequence[Result],
    runs: Sequence[Result],
    audit: Audit,
    title: str,
    command: str,
    progress: Callable[[str], None] = lambda step: None,
    claims: tuple[dict[str, Any], list] | None = None,
) -> tuple[list[Block], Manifest]:
    """Write figures and tables into ``root`` and return the report's blocks and manifest;
    ``claims`` (meta, records of ``reports.reproduce.outputs.load``) adds their section."""
    manifest = Manifest(
        report={
            "title": title,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command,
            "git_revision": git_revision(),
            "package_version": PACKAGE_VERSION,
        },
        sources=[r.provenance_record() for r in [*sims, *runs]],
        audit={"origin": audit.origin, "reason": audit.reason, "claims": len(audit.entries)},
    )
    c = Composer(root, manifest)
    c.add(Heading(1, title))
    listed = [s for s in sims if s.kind != "simulation"]
    sims = [s for s in sims if s.kind == "simulation"]
    pairings = pair_runs(runs, sims)
    rows = findings(pairings)
    inputs = figures.Inputs(sims, runs, pairings)
    manifest.findings = [
        {
            "run": run.ident,
            "prediction": sim.ident,
            **row.__dict__,
            "verdict": row.verdict,
            "detail": row.detail,
        }
        for run, sim, row in rows
    ]
    steps = (
        ("findings", lambda: _findings(c, pairings, rows)),
        ("sources", lambda: _sources(c, sims, runs, listed)),
        ("predictions", lambda: _predictions(c, sims, inputs)),
        ("measurements", lambda: _measurements(c, runs, inputs)),
        ("agreement", lambda: _agreement(c, inputs)),
        ("audit", lambda: _audit(c, audit)),
        *((("claims", lambda: _claims(c, claims)),) if claims else ()),
        ("appendix", lambda: _appendix(c, [*sims, *listed, *runs])),
        ("not drawn", lambda: _not_drawn(c)),
    )
    with style.paper_style():
        for name, step in steps:
            progress(name)
            step()
    return c.blocks, manifest


def _claims(c: Composer, claims: tuple[dict[str, Any], list]) -> None:
    from reports.reproduce.section import add_section

    add_section(c, *claims)


def _not_drawn(c: Composer) -> None:
    if c.manifest.not_drawn:
        c.add(
            Paragraph("Figures not drawn, and why:"),
            Bullets([f"{name}: {reason}." for name, reason in c.manifest.not_drawn.items()]),
        )
