"""Assemble the report: pair runs with simulations, draw figures, write tables, tell the story.

The story follows the issue's order: set-up, predictions, measurements, agreement, where theory
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

import numpy as np

from reports import compare, figures, style
from reports.audit import Audit
from reports.document import Block, Bullets, FigureBlock, Heading, Paragraph, TableBlock
from reports.inputs import Result, short_revision
from reports.tables import (
    Table,
    agreement_table,
    audit_table,
    format_value,
    methods_table,
    predictions_table,
    sources_table,
    write_table,
)
from symbolic.common.provenance import PACKAGE_VERSION, git_revision


def pair_runs(runs: Sequence[Result], sims: Sequence[Result]) -> list[tuple[Result, Result]]:
    """Each run with the simulation that predicts it.

    The simulation named like the run (``byol`` <- ``byol`` or ``linear_byol``) if there is one,
    else the first simulation holding W_p eigenvalues, full-matrix models (with an asymmetry)
    before eigenmode models. Runs without a predictor are paired too when their name matches
    (the decay statistic needs no W_p).
    """
    with_wp = sorted(
        (s for s in sims if s.has("wp_eig_real")), key=lambda s: not s.has("wp_asymmetry")
    )
    pairs = []
    for run in runs:
        named = [s for s in sims if s.name == run.name or s.name.endswith(f"_{run.name}")]
        sim = named[0] if named else (with_wp[0] if with_wp and run.has("wp_eig_real") else None)
        if sim is not None:
            pairs.append((run, sim))
    return pairs


@dataclass
class Manifest:
    """What went into the report, for provenance.json."""

    report: dict[str, Any]
    sources: list[dict[str, Any]]
    figures: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    not_drawn: dict[str, str] = field(default_factory=dict)
    audit: dict[str, Any] = field(default_factory=dict)


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
        provenance = [r.describe() for r in drawn.sources]
        pdf, png = style.save_figure(
            drawn.figure,
            self.root / "figures",
            drawn.name,
            {"title": drawn.title, "provenance": " | ".join(provenance)},
        )
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
        lines = provenance if provenance is not None else [r.describe() for r in table.sources]
        self.add(TableBlock(self.n_tab, table, files, lines))
        self.manifest.tables[table.name] = {
            "number": self.n_tab,
            "title": table.title,
            "caption": table.caption,
            "files": [p.relative_to(self.root).as_posix() for p in files],
            "sources": [r.ident for r in table.sources] or provenance,
        }


TIME_TEXT = {
    "effective": (
        "A run trained with heavy-ball momentum mu is placed at t = (sum of learning rates)/"
        "(1 - mu): while the gradient changes slowly, each momentum step moves the weights as "
        "gradient flow over lr/(1 - mu), weight decay included, so this is the time of the "
        "gradient flow that the simulations integrate (`--time-convention spec` keeps the sum "
        "of learning rates)."
    ),
    "spec": (
        "Runs are placed at t = sum of learning rates exactly as recorded, with no correction "
        "for momentum (`--time-convention spec`)."
    ),
}


def _setup(
    c: Composer,
    sims: Sequence[Result],
    runs: Sequence[Result],
    listed: Sequence[Result],
    convention: str,
) -> None:
    c.add(
        Heading(2, "1. Set-up"),
        Paragraph(
            f"This report compares {len(sims)} simulation(s) of the linear learning dynamics "
            f"(predictions) with {len(runs)} training run(s) (measurements). Simulations and runs "
            "share one result schema and are aligned on flow time t (SPEC section 2: t = sum of "
            f"the learning rates). {TIME_TEXT[convention]} For a run trained with SGD the weight "
            "decay per unit flow time, eta, is its weight-decay coefficient; a run trained with "
            "LARS has no single eta (its trust ratio rescales every layer), so no decay rate is "
            "predicted for it. Inputs, with ids used throughout:"
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
    scaled = [r for r in runs if r.time_scale != 1.0]
    if scaled:
        c.add(
            Paragraph(
                "Flow-time factors applied to runs: "
                + ", ".join(f"{r.ident} x{r.time_scale:.4g}" for r in scaled)
                + "."
            )
        )


def _predictions(c: Composer, sims: Sequence[Result]) -> None:
    c.add(
        Heading(2, "2. Predictions"),
        Paragraph(
            "Theory (Tian et al. 2021; Liu et al. 2022): W W^T - W_p^T W_p / alpha_p = "
            "e^{-2 eta t} C (Theorem 1), so the conservation residual decays at the rate 2 eta; "
            "each eigenmode of a symmetric predictor flows on s_j - p_j^2/alpha_p = "
            "e^{-2 eta t} c_j towards p = 0 (collapse) or p*_+, the basin boundary being p*_-; "
            "W_p aligns with the eigenvectors of the feature correlation and W_p^T W_p -> F F^T."
        ),
    )
    c.table(predictions_table(sims))
    c.figure(figures.phase_portrait(sims))


def _measurements(c: Composer, sims: Sequence[Result], runs: Sequence[Result]) -> None:
    c.add(Heading(2, "3. Measurements"))
    if not runs:
        c.add(Paragraph("No training run was given (--runs), so nothing was measured."))
    c.table(methods_table(runs))
    c.figure(figures.sigma_distance(runs))
    c.figure(figures.spectrum_over_epochs(runs))
    c.figure(figures.wp_heatmaps([*runs, *sims]))


def _agreement(
    c: Composer, sims: Sequence[Result], pairs: list[tuple[Result, Result]], rows: list
) -> None:
    c.add(
        Heading(2, "4. Agreement"),
        Heading(3, "Agreement statistics"),
        Paragraph(
            "Each statistic is defined in `reports/compare.py`; the definitions below are the "
            "docstrings of the functions that compute it. Tolerances used for 'agrees': "
            + ", ".join(f"{k} {v:g}" for k, v in compare.TOLERANCE.items())
            + " (bounds from above for errors and differences, from below for correlations and "
            "agreement fractions)."
        ),
        Bullets([f"{key}: {compare.definition(key)}" for key in compare.DEFINITIONS]),
    )
    if not pairs:
        c.add(Paragraph("No run could be paired with a simulation, so no statistic was computed."))
    set_wp = [f"{r.ident} {r.label}" for r, _ in pairs if not r.predictor_trained]
    if set_wp:
        c.add(
            Paragraph(
                "Not applicable: the decay rate of the conservation residual for "
                + ", ".join(set_wp)
                + ", whose W_p is set from the feature correlation at every step rather than "
                "trained by gradient descent, so the conservation law does not govern it."
            )
        )
    c.table(agreement_table(rows))
    overlay = [(run, sim) for run, sim in pairs if run.has("wp_eig_real")]
    if not overlay:
        overlay = [(None, s) for s in sims if s.has("wp_eig_real")]
    c.figure(figures.eigenvalue_overlay(overlay))


def _disagreements(c: Composer, rows: list) -> None:
    c.add(Heading(2, "5. Where theory and practice disagree"))
    items = []
    for run, sim, a in rows:
        if a.agrees is False:
            values = [
                f"{what} {format_value(v)}"
                for what, v in (("predicted", a.predicted), ("measured", a.measured))
                if format_value(v) is not None
            ]
            items.append(
                f"{run.ident} {run.label} vs {sim.ident} {sim.label}, {a.quantity}: "
                + "".join(f"{v}, " for v in values)
                + f"{a.statistic} = {format_value(a.value)} "
                f"(tolerance {compare.TOLERANCE[a.key]:g})."
            )
        elif a.agrees is None:
            items.append(
                f"{run.ident} {run.label} vs {sim.ident} {sim.label}, {a.quantity}: could not be "
                "computed from these files (undefined value)."
            )
    for name, reason in c.manifest.not_drawn.items():
        items.append(f"Figure '{name}' not drawn: {reason}.")
    if items:
        c.add(Bullets(items))
    else:
        c.add(
            Paragraph("Every computed statistic is within its tolerance; every figure was drawn.")
        )


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
    time_convention: str = "effective",
    progress: Callable[[str], None] = lambda step: None,
) -> tuple[list[Block], Manifest]:
    """Write figures and tables into ``root`` and return the report's blocks and manifest."""
    manifest = Manifest(
        report={
            "title": title,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command,
            "git_revision": git_revision(),
            "package_version": PACKAGE_VERSION,
            "time_convention": time_convention,
        },
        sources=[r.provenance_record() for r in [*sims, *runs]],
        audit={"origin": audit.origin, "reason": audit.reason, "claims": len(audit.entries)},
    )
    c = Composer(root, manifest)
    c.add(Heading(1, title))
    listed = [s for s in sims if s.kind != "simulation"]
    sims = [s for s in sims if s.kind == "simulation"]
    pairs = pair_runs(runs, sims)
    rows = [
        (run, sim, a)
        for run, sim in pairs
        for a in compare.compare(
            sim.ds,
            run.ds,
            run.eta() if run.eta() is not None else np.nan,
            run.time_scale,
            run.predictor_trained,
        )
    ]
    steps = (
        ("set-up", lambda: _setup(c, sims, runs, listed, time_convention)),
        ("predictions", lambda: _predictions(c, sims)),
        ("measurements", lambda: _measurements(c, sims, runs)),
        ("agreement", lambda: _agreement(c, sims, pairs, rows)),
        ("conservation", lambda: c.figure(figures.conservation(sims, runs))),
        ("disagreements", lambda: _disagreements(c, rows)),
        ("audit", lambda: _audit(c, audit)),
        ("appendix", lambda: _appendix(c, [*sims, *listed, *runs])),
    )
    with style.paper_style():
        for name, step in steps:
            progress(name)
            step()
    return c.blocks, manifest
