"""The bridge's results: each rung's statistics over the seeds, the ladder table, the power
laws of rung 1's error against the learning rate and the batch, and the report (``bridge.md``
from :mod:`reports.document`'s blocks; the table as LaTeX, Markdown and CSV; the figures;
``provenance.json``).

A statistic of a rung is the value of :func:`reports.compare.compare` for every seed, with the
nulls' values; the table gains a column by a :class:`~reports.tables.Column` in
:data:`LADDER_COLUMNS` and its value in :func:`ladder_row`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reports import compare, style
from reports.bridge_figures import ladder_figure, scaling_figure
from reports.document import Block, FigureBlock, Heading, Paragraph, TableBlock, write_markdown
from reports.inputs import load_result, run_file
from reports.reference_cache import cached_references_of
from reports.references import References
from reports.tables import Column, Table, table_frame, write_table
from symbolic.common.files import atomic_folder, write_text
from symbolic.common.provenance import PACKAGE_VERSION, git_revision

if TYPE_CHECKING:
    from reports.bridge import LadderRuns, Rung

#: the statistics of the ladder table: against the simulation derived from the run where one
#: exists (input space), else the predictions about the run alone (feature space)
INPUT_SPACE = (
    "wp_error", "w_error", "w_orbit_error", "sigma_error", "spectrum_error", "asymmetry_error",
    "conservation_error",
)  # fmt: skip
FEATURE_SPACE = ("final_asymmetry", "final_misalignment")
#: the statistic of a rung whose runs ``--from-run`` refuses (its verdict states the reason)
NO_PREDICTION = "no_prediction"


@dataclasses.dataclass
class Summary:
    """One rung's statistic over the seeds."""

    rung: Rung
    key: str
    quantity: str
    values: list[float]
    nulls: dict[str, list[float]]
    tolerance: float
    verdicts: list[str]
    exponents: list[float]  # 2 eta t at the end of each seed's run (compare.decay_exponent)
    details: list[str] = dataclasses.field(default_factory=list)  # Row.detail per seed
    ablations: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    floors: list[float] = dataclasses.field(default_factory=list)  # run vs replay per seed
    replay_errors: list[float] = dataclasses.field(default_factory=list)  # replay vs prediction

    @property
    def verdict(self) -> str:
        """The seeds' common verdict; 'mixed' when they differ (no verdict from one seed)."""
        unique = set(self.verdicts)
        return (
            self.verdicts[0]
            if len(unique) == 1
            else "mixed: " + ", ".join(f"{self.verdicts.count(v)} {v}" for v in sorted(unique))
        )

    @property
    def tested(self) -> str:
        """The ingredients every seed tested (3x below their ablation nulls), and those some
        seed did not, with the smallest ratio null / error."""
        if not self.ablations:
            return "n/a"
        ok, weak = [], []
        for name, nulls in self.ablations.items():
            ratio = min(n / v if v > 0 else np.inf for n, v in zip(nulls, self.values, strict=True))
            (ok if ratio >= compare.NULL_MARGIN else weak).append((name, ratio))
        text = "tested: " + (", ".join(n for n, _ in ok) or "none")
        if weak:
            text += "; NOT tested: " + ", ".join(f"{n} (null/error {r:.2g})" for n, r in weak)
        return text


def _seed_inputs(rung: Rung, p: LadderRuns, seeds: int, refs_of: dict[tuple, References]):
    """Per seed: (run, prediction, null, references: from ``refs_of``) and 2 eta t at the
    run's end; the prediction of a momentum run is its inertial flow
    (:mod:`reports.references`)."""
    inputs, exponents = [], []
    for seed in range(seeds):
        result = load_result(run_file(p.runs[rung.key, seed]), "training")
        run = result.trajectory()
        exponents.append(compare.decay_exponent(run) or float("nan"))
        prediction = null = refs = None
        if (rung.key, seed) in p.predictions:
            refs = refs_of[rung.key, seed]
            pred, null_path = p.predictions[rung.key, seed]
            prediction = refs.inertial or load_result(pred, "simulation").trajectory()
            null = load_result(null_path, "simulation").trajectory()
        inputs.append((run, prediction, null, refs))
    return inputs, exponents


def refusal(run: Path) -> str:
    """Why ``python -m dynamics.simulate --from-run RUN`` does not predict ``run`` (its usage
    error, without the run's path); empty where it does."""
    from dynamics.from_run_methods import derive_general
    from symbolic.common.cli import UsageError

    try:
        derive_general(run)
    except UsageError as err:
        text = str(err)
        return text.split(": ", 1)[1] if text.startswith("--from-run") else text
    return ""


def refused_summary(rung: Rung, p: LadderRuns, seeds: int) -> Summary:
    """The row of a rung without a prediction: the reason ``--from-run`` gives for each seed's
    run, and 2 eta t at its end."""
    runs = [p.runs[rung.key, seed] for seed in range(seeds)]
    reasons = [refusal(run) or "--from-run predicts it, but none was planned" for run in runs]
    exponents = [
        compare.decay_exponent(load_result(run_file(run), "training").trajectory()) or np.nan
        for run in runs
    ]
    verdicts = [f"no prediction: {r}" for r in reasons]
    return Summary(rung, NO_PREDICTION, "no prediction", [], {}, np.nan, verdicts, exponents)


def collect(rungs: Sequence[Rung], p: LadderRuns, seeds: int, jobs: int = 1) -> list[Summary]:
    """Every ladder statistic of every rung over the seeds, with the nulls' values; the
    tolerance of each statistic from the noise floor of the rung's seeds (the largest distance
    between a run and its replay); a rung whose runs ``--from-run`` refuses: one row with the
    reason. Each predicted run's references (its replay and nulls, :mod:`reports.references`)
    are computed ``jobs`` runs at a time, once per run and code revision
    (:mod:`reports.reference_cache`)."""
    predicted = [(r.key, s) for r in rungs for s in range(seeds) if (r.key, s) in p.predictions]
    refs_of = cached_references_of({key: run_file(p.runs[key]) for key in predicted}, jobs)
    out = []
    for rung in rungs:
        if rung.refused:
            out.append(refused_summary(rung, p, seeds))
            continue
        inputs, exponents = _seed_inputs(rung, p, seeds, refs_of)
        floors = [
            compare.noise_floor(refs.replay, run)
            for run, _, _, refs in inputs
            if refs is not None and refs.replay is not None
        ]
        floor = {k: max(f[k] for f in floors) for k in floors[0]} if len(floors) == seeds else None
        rows: dict[str, list[compare.Row]] = {}
        extra: dict[str, list[tuple[float, float]]] = {}
        for run, prediction, null, refs in inputs:
            ablations = refs.ablations if refs else None
            replay = refs.replay if refs else None
            own = compare.noise_floor(replay, run) if replay is not None else {}
            for row in compare.compare(prediction, run, null, ablations, replay, floor):
                rows.setdefault(row.key, []).append(row)
                if row.key in own:
                    extra.setdefault(row.key, []).append((own[row.key], row.replay_gap))
        for key in INPUT_SPACE if rung.scenario else FEATURE_SPACE:
            found = rows.get(key, [])
            if len(found) < seeds:
                continue
            names = sorted({n for r in found for n in r.nulls})
            ingredients = list(found[0].ablations)
            out.append(
                Summary(
                    rung,
                    key,
                    found[0].quantity,
                    [r.value for r in found],
                    {n: [r.nulls.get(n, float("nan")) for r in found] for n in names},
                    max(r.tolerance for r in found),
                    [r.verdict for r in found],
                    exponents,
                    [r.detail for r in found],
                    {i: [r.ablations.get(i, float("nan")) for r in found] for i in ingredients},
                    [e[0] for e in extra.get(key, [])],
                    [e[1] for e in extra.get(key, [])],
                )
            )
    return out


def _spread(values: Sequence[float]) -> str:
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return "n/a"
    return f"{np.mean(v):.3g} ± {np.std(v, ddof=1) if v.size > 1 else 0:.2g}"


LADDER_COLUMNS = [
    Column("rung", "rung", "rung"),
    Column("setting", "setting", "setting"),
    Column("theory", "theory predicts", "theory predicts"),
    Column("quantity", "statistic", "statistic"),
    Column("value", "value (mean ± sd over seeds)", "value (mean $\\pm$ sd)"),
    Column("floor", "run vs replay (noise)", "run vs replay"),
    Column("replay", "replay vs prediction", "replay vs prediction"),
    Column("frozen", "null: frozen", "null: frozen"),
    Column("other_seed", "null: other seed", "null: other seed"),
    Column("tolerance", "tolerance", "tolerance"),
    Column("exponent", "2 eta t at the end", "$2\\eta t$ at the end"),
    Column("tested", "ingredients tested (ablation nulls)", "ingredients tested"),
    Column("verdict", "verdict (all seeds)", "verdict (all seeds)"),
]


def ladder_row(s: Summary, quick: bool = False) -> dict[str, Any]:
    """One row of the ladder table: a rung's statistic over the seeds, with its nulls; with
    ``quick`` the verdict is marked a pipeline check."""
    verdict = s.verdict
    context = {d.split("(", 1)[-1].rstrip(")") for d in s.details if "alive modes" in d}
    if context:
        verdict += " [" + " / ".join(sorted(context)) + "]"
    return {
        "rung": s.rung.key,
        "setting": s.rung.title,
        "theory": s.rung.expect,
        "quantity": s.quantity,
        "value": _spread(s.values),
        "floor": _spread(s.floors),
        "replay": _spread(s.replay_errors),
        "frozen": _spread(s.nulls["frozen"]) if "frozen" in s.nulls else "n/a",
        "other_seed": _spread(s.nulls["other seed"]) if "other seed" in s.nulls else "n/a",
        "tolerance": f"{s.tolerance:.3g}" if np.isfinite(s.tolerance) else "n/a",
        "exponent": f"{np.nanmin(s.exponents):.2g}",
        "tested": s.tested,
        "verdict": f"pipeline check only: {verdict}" if quick else verdict,
    }


LADDER_CAPTION = (
    "Input-space rungs (1-3 and the method rungs): each run against the simulation derived from "
    "it (python -m dynamics.simulate --from-run; rung 2: the inertial flow of dynamics.replay; "
    "the method rungs: the general model, the gradient flow of the run's own loss), errors as "
    "defined in reports/compare.py, next to the frozen initial network, an other-seed "
    "simulation of the same run and the ablation nulls (the prediction without X', weight "
    "decay, EMA lag, the two-direction clock or momentum, and with X' wrong by a factor 2); run "
    "vs replay: the run's distance from its deterministic replay (minibatch noise); replay vs "
    "prediction: what the flow leaves out of the optimiser. Tolerance: three times the largest "
    "noise floor over the seeds, capped at the fixed tolerance (a loss other than eq. 1: no "
    "replay, fixed tolerance); no prediction: --from-run refuses the run, for the reason "
    "stated. Feature-space rungs (5-6): the run's own asymmetry and "
    "misalignment of W_p at the end, which the theory predicts to vanish, next to the initial "
    "network's, with the alive modes and RankMe; no verdict on fewer than {min_alive} alive "
    "modes. 2 eta t at the end (smallest over the seeds): Theorem 1's decay is judged from 1, "
    "the end state from 2 ln 10 = 4.6. Verdict: agrees within the tolerance and 3x below every "
    "null, for every seed ('mixed' when the seeds differ); an ingredient whose ablation null is "
    "within 3x is NOT tested; above the capped tolerance but within three times the noise "
    "floor: not decided (the run is too noisy), unless the replay itself is beyond the "
    "tolerance from the prediction (disagrees). W up to output rotation: for a loss invariant "
    "under W -> QW (Q orthogonal), W compared up to that map at each time (Procrustes)."
)


def ladder_table(summaries: Sequence[Summary], seeds: int, quick: bool = False) -> Table:
    """The ladder: one row per rung and statistic (:func:`ladder_row`); with ``quick`` every
    verdict is marked a pipeline check (the sizes of ``--quick`` cannot decide the physics)."""
    records = [ladder_row(s, quick) for s in summaries]
    caption = f"Each rung trained with {seeds} seeds. " + LADDER_CAPTION.format(
        min_alive=compare.MIN_ALIVE
    )
    if quick:
        caption += " QUICK SIZES: a pipeline check; these sizes cannot decide the physics."
    return Table(
        name="ladder",
        title="The model ladder: each rung's runs against the theory, with nulls",
        caption=caption,
        frame=table_frame(records, LADDER_COLUMNS),
        columns=list(LADDER_COLUMNS),
    )


@dataclasses.dataclass
class Scaling:
    """The rung-1 error against one knob: its values, the errors per seed, the fitted slope."""

    kind: str
    values: list[float]
    errors: list[list[float]]

    @property
    def slope(self) -> float:
        """Least-squares slope of log(error) against log(value), all seeds."""
        x = np.log(np.repeat(self.values, [len(e) for e in self.errors]))
        y = np.log(np.concatenate(self.errors))
        return float(np.polyfit(x, y, 1)[0])


def collect_scaling(p: LadderRuns) -> list[Scaling]:
    out = []
    for kind in ("lr", "batch"):
        values = sorted({v for k, v, _ in p.scaling if k == kind})
        errors = []
        for value in values:
            errs = []
            for (k, v, _seed), pred in sorted(p.scaling.items()):
                if k != kind or v != value:
                    continue
                run = load_result(
                    run_file(pred.with_name(pred.name.removesuffix("_pred.nc"))), "training"
                )
                sim = load_result(pred, "simulation")
                errs.append(
                    compare.relative_error(
                        sim.trajectory().at(run.flow_time()).wp, run.values("wp")
                    )
                )
            errors.append(errs)
        if values:
            out.append(Scaling(kind, values, errors))
    return out


def scaling_text(s: Scaling) -> str:
    """The fitted power law of rung 1's error against one knob, in one sentence."""
    return (
        f"Rung 1, W_p trajectory error against {s.kind} at a fixed flow time: "
        f"error ~ {s.kind}^{s.slope:.2f} (values {s.values}, mean errors "
        f"{[round(float(np.mean(e)), 4) for e in s.errors]}, {len(s.errors[0])} seed(s) each)."
    )


def write_report(
    out: Path,
    summaries: Sequence[Summary],
    scaling: Sequence[Scaling],
    seeds: int,
    sizes: dict[str, Any],
    wall: float,
    quick: bool = False,
) -> None:
    """``OUT/report``: bridge.md, the table (LaTeX, Markdown, CSV), the figures (PDF, PNG),
    provenance.json; in one atomic folder."""
    table = ladder_table(summaries, seeds, quick)
    with style.paper_style(), atomic_folder(out / "report") as tmp:
        files = write_table(table, tmp / "tables")
        blocks: list[Block] = [
            Heading(1, "The bridge: training runs against the linear theory"),
            Paragraph(
                f"{len({s.rung.key for s in summaries})} rungs, {seeds} seeds each; wall time "
                f"{wall:.0f} s on this machine (sizes {sizes}). Git {git_revision()}, package "
                f"{PACKAGE_VERSION}."
            ),
            TableBlock(1, table, files),
            *(Paragraph(scaling_text(s)) for s in scaling),
        ]
        for drawn in (ladder_figure(summaries), scaling_figure(scaling)):
            if drawn.figure is not None:
                saved = style.save_figure(
                    drawn.figure, tmp / "figures", drawn.name, {"title": drawn.title}
                )
                number = sum(isinstance(b, FigureBlock) for b in blocks) + 1
                blocks.append(FigureBlock.of(number, drawn, saved))
        write_markdown(tmp / "bridge.md", blocks)
        record = {
            "summaries": [
                {
                    "rung": s.rung.key,
                    "statistic": s.key,
                    "values": s.values,
                    "nulls": s.nulls,
                    "verdicts": s.verdicts,
                    "details": s.details,
                    "ablations": s.ablations,
                    "tolerance": s.tolerance,
                    "noise_floor": s.floors,
                    "replay_vs_prediction": s.replay_errors,
                }
                for s in summaries
            ],
            "scaling": [
                {"kind": s.kind, "values": s.values, "errors": s.errors, "slope": s.slope}
                for s in scaling
            ],
            "sizes": sizes,
            "git_revision": git_revision(),
            "wall_seconds": wall,
            "files": [str(f.relative_to(tmp)) for f in files],
        }
        write_text(tmp / "provenance.json", json.dumps(record, indent=2) + "\n")
