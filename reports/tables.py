"""The report's tables: pandas DataFrames written as LaTeX (booktabs), Markdown and CSV.

A :class:`Table` holds the raw numbers (CSV keeps full precision), a caption and its sources.
Columns are described by :class:`Column`: the key in the DataFrame, a plain-text header (Markdown,
Unicode allowed) and a LaTeX header (written verbatim). Numbers are printed with
:data:`SIGNIFICANT` significant digits in LaTeX and Markdown; missing values as ``--``/``–``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dynamics.observables import collapsed_modes
from reports.compare import NULL_MARGIN, Row, decay_rate
from reports.inputs import Result
from symbolic.common.files import write_text
from symbolic.common.latex import latex_escape

SIGNIFICANT = 4
MISSING_MD = "–"
MISSING_TEX = "--"


@dataclass(frozen=True)
class Column:
    key: str
    text: str
    latex: str


@dataclass
class Table:
    name: str
    title: str
    caption: str
    frame: pd.DataFrame
    columns: list[Column]
    sources: list[Result] = field(default_factory=list)
    note: str = ""

    def headers(self, latex: bool = False) -> list[str]:
        return [c.latex if latex else c.text for c in self.columns]


def format_value(value: Any) -> str | None:
    """Text of one cell: integers as is, reals with SIGNIFICANT digits; None when missing."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return None
        return f"{float(value):.{SIGNIFICANT}g}"
    text = str(value)
    return text if text else None


def to_markdown(table: Table) -> str:
    """A GitHub pipe table; '|' inside cells is escaped as '\\|'."""

    def cell(text: str | None) -> str:
        return MISSING_MD if text is None else text.replace("|", "\\|").replace("\n", " ")

    headers = [cell(h) for h in table.headers()]
    numeric = [pd.api.types.is_numeric_dtype(table.frame[c.key]) for c in table.columns]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if num else ":---" for num in numeric) + "|",
    ]
    for _, row in table.frame.iterrows():
        lines.append(
            "| " + " | ".join(cell(format_value(row[c.key])) for c in table.columns) + " |"
        )
    return "\n".join(lines) + "\n"


def to_latex(table: Table) -> str:
    """A booktabs table environment (pandas Styler), values LaTeX-escaped, headers verbatim."""
    frame = table.frame[[c.key for c in table.columns]].copy()
    frame.columns = table.headers(latex=True)
    numeric = [pd.api.types.is_numeric_dtype(table.frame[c.key]) for c in table.columns]

    def fmt(value: Any) -> str:
        text = format_value(value)
        return MISSING_TEX if text is None else text

    styler = frame.style.hide(axis="index").format(fmt, escape="latex")
    return styler.to_latex(
        hrules=True,
        column_format="".join("r" if num else "l" for num in numeric),
        caption=latex_escape(table.caption),
        label=f"tab:{table.name}",
        position_float="centering",
    )


#: the formats a table is written in, by file extension
TABLE_FORMATS = ("tex", "md", "csv")


def write_table(table: Table, folder: Path, formats: Sequence[str] = TABLE_FORMATS) -> list[Path]:
    """Write ``name.tex`` (LaTeX), ``name.md`` (Markdown) and ``name.csv`` (full precision), or
    the ``formats`` asked for, into ``folder``, each file atomically."""
    render = {
        "tex": lambda: to_latex(table),
        "md": lambda: to_markdown(table),
        "csv": lambda: table.frame.to_csv(index=False),
    }
    return [write_text(folder / f"{table.name}.{ext}", render[ext]()) for ext in formats]


def table_frame(rows: list[dict[str, Any]], columns: Sequence[Column]) -> pd.DataFrame:
    """The rows as a frame with the columns' keys in order: text columns kept as text, the
    others numeric (a value that is not a number becomes NaN)."""
    frame = pd.DataFrame(rows, columns=[c.key for c in columns])
    for c in columns:
        if frame[c.key].map(lambda v: isinstance(v, str)).any():
            frame[c.key] = frame[c.key].astype(object)
        else:
            frame[c.key] = pd.to_numeric(frame[c.key], errors="coerce")
    return frame


def _drop_empty(columns: list[Column], rows: list[dict[str, Any]], keep: int) -> list[Column]:
    """Drop optional columns (after the first ``keep``) that no row fills."""

    def filled(key: str) -> bool:
        return any(format_value(r.get(key)) is not None for r in rows)

    return columns[:keep] + [c for c in columns[keep:] if filled(c.key)]


METHOD_COLUMNS = [
    Column("method", "method", "method"),
    Column("id", "run", "run"),
    Column("epochs", "epochs", "epochs"),
    Column("knn_acc", "kNN acc.", "kNN acc."),
    Column("random_knn_acc", "kNN acc. (random enc.)", "kNN acc.\\ (random enc.)"),
    Column("linear_acc", "linear acc.", "linear acc."),
    Column("random_linear_acc", "linear acc. (random enc.)", "linear acc.\\ (random enc.)"),
    Column("sigma_corr_mean_sq", "mean ρ²", r"mean $\rho^2$"),
    Column("random_sigma_corr_mean_sq", "mean ρ² (random enc.)", r"mean $\rho^2$ (random enc.)"),
    Column("sigma_floor", "floor 1/(N−1)", r"floor $1/(N-1)$"),
    Column("dead_dims", "dead dims", "dead dims"),
    Column("effective_rank", "effective rank", "eff.\\ rank"),
    Column("random_effective_rank", "effective rank (random enc.)", "eff.\\ rank (random enc.)"),
    Column("z_std", "z std", r"$z$ std"),
    Column("wp_asymmetry", "W_p asymmetry", r"$W_p$ asym."),
    Column("alignment", "alignment (mean cos)", "alignment"),
    Column("loss", "final loss", "final loss"),
]


def methods_table(runs: Sequence[Result]) -> Table | None:
    """Probe accuracies and final observables per run, next to the random-encoder baseline."""
    if not runs:
        return None
    rows = []
    for run in runs:
        row: dict[str, Any] = {"method": run.label, "id": run.ident}
        row["epochs"] = int(run.steps()[-1])
        for var in (
            "knn_acc",
            "linear_acc",
            "sigma_corr_mean_sq",
            "sigma_floor",
            "dead_dims",
            "effective_rank",
            "z_std",
            "wp_asymmetry",
            "loss",
        ):
            if run.has(var):
                row[var] = run.last(var)
        for var in ("knn_acc", "linear_acc", "sigma_corr_mean_sq", "effective_rank"):
            row[f"random_{var}"] = run.baseline(var)
        if run.has("alignment_cos"):
            row["alignment"] = float(np.nanmean(run.last("alignment_cos")))
        rows.append(row)
    columns = _drop_empty(METHOD_COLUMNS, rows, keep=3)
    return Table(
        name="methods",
        title="Trained methods: probe accuracy and final observables",
        caption=(
            "Probe accuracies (kNN and linear probe on frozen backbone features) and the "
            "observables at the last measurement, next to the randomly initialised encoder of the "
            "same architecture (BatchNorm statistics filled before it is measured). Mean rho^2: "
            "the mean squared off-diagonal Pearson correlation of the projector outputs over "
            "their live dimensions, next to its floor 1/(N-1) for independent features of the N "
            "evaluation images; dead dims: dimensions whose std fell below 2% of the largest; "
            "alignment is the mean over modes of cos(W_p u_j, u_j)."
        ),
        frame=table_frame(rows, columns),
        columns=columns,
        sources=list(runs),
    )


PREDICTION_COLUMNS = [
    Column("scenario", "scenario", "scenario"),
    Column("id", "sim.", "sim."),
    Column("eta", "η", r"$\eta$"),
    Column("alpha_p", "α_p", r"$\alpha_p$"),
    Column("beta", "β", r"$\beta$"),
    Column("sigma2", "σ²", r"$\sigma^2$"),
    Column("t_end", "t_end", r"$t_\mathrm{end}$"),
    Column("p_star_plus", "p*₊", r"$p^*_+$"),
    Column("p_star_minus", "p*₋", r"$p^*_-$"),
    Column("threshold", "collapse threshold η*", r"collapse threshold $\eta^*$"),
    Column("eig_max", "max Re eig(W_p) at t_end", r"max Re eig$(W_p)$ at $t_\mathrm{end}$"),
    Column("collapsed", "collapsed modes", "collapsed modes"),
    Column("decay_rate", "fitted decay rate", "fitted decay rate"),
    Column("two_eta", "2η", r"$2\eta$"),
    Column("decay_dev", "rel. deviation", "rel.\\ deviation"),
]


def predictions_table(sims: Sequence[Result]) -> Table | None:
    """Parameters and closed-form predictions per simulation, and its own conservation check."""
    if not sims:
        return None
    rows = []
    for sim in sims:
        row: dict[str, Any] = {"scenario": sim.label, "id": sim.ident}
        for key in ("eta", "alpha_p", "beta", "sigma2"):
            value = sim.param(key)
            row[key] = value if isinstance(value, int | float) else None
        row["t_end"] = float(sim.flow_time()[-1])
        row.update(sim.fixed_points()[1])
        threshold = sim.attrs.get("collapse_threshold_eta")
        row["threshold"] = (
            float(threshold) if isinstance(threshold, int | float | np.number) else None
        )
        eig_var = "wp_eig_real" if sim.has("wp_eig_real") else "p" if sim.has("p") else None
        if eig_var:
            real = sim.values(eig_var)
            imag = sim.values("wp_eig_imag") if sim.has("wp_eig_imag") else 0.0
            row["eig_max"] = float(np.max(real[-1]))
            row["collapsed"] = collapsed_description(collapsed_modes(np.hypot(real, imag))[-1])
        if sim.has("mode_collapsed"):  # the simulation's own verdict, the one its summary prints
            row["collapsed"] = collapsed_description(sim.values("mode_collapsed") != 0)
        eta = sim.eta()
        residual = next(
            (v for v in ("conservation_residual_weight", "invariant_residual") if sim.has(v)), None
        )
        if residual == "conservation_residual_weight" and eta:
            k = decay_rate(sim.flow_time(), sim.values(residual))
            row.update(decay_rate=k, two_eta=2 * eta, decay_dev=abs(k - 2 * eta) / (2 * eta))
        rows.append(row)
    columns = _drop_empty(PREDICTION_COLUMNS, rows, keep=2)
    return Table(
        name="predictions",
        title="Simulations: parameters and predictions",
        caption=(
            "Each simulation's parameters, the closed-form fixed points p*_+ (stable) and p*_- "
            "(collapse basin boundary) stored in the file (at its closed-form tau, else at the "
            "final tau; none above the collapse threshold), the largest "
            "eigenvalue of W_p and the collapsed modes at the end of the run, and the decay rate "
            "of the weight-space conservation residual fitted to the trajectory against the "
            "prediction 2 eta (Tian Theorem 1)."
        ),
        frame=table_frame(rows, columns),
        columns=columns,
        sources=list(sims),
    )


def collapsed_description(mask: np.ndarray) -> str:
    """Which modes (1-based, in the file's order) are collapsed: 'none of 8', 'all 8',
    'modes 5-8 of 8'."""
    n = mask.size
    idx = np.flatnonzero(mask) + 1
    if idx.size == 0:
        return f"none of {n}"
    if idx.size == n:
        return f"all {n}"
    if np.all(np.diff(idx) == 1):
        return f"modes {idx[0]}-{idx[-1]} of {n}" if idx.size > 1 else f"mode {idx[0]} of {n}"
    return f"modes {', '.join(map(str, idx))} of {n}"


FINDING_COLUMNS = [
    Column("run", "run", "run"),
    Column("prediction", "prediction", "prediction"),
    Column("quantity", "quantity", "quantity"),
    Column("value", "error", "error"),
    Column("tolerance", "tolerance (rule)", "tolerance (rule)"),
    Column("frozen", "null: frozen initial network", "null: frozen init."),
    Column("other_seed", "null: other seed", "null: other seed"),
    Column("ablations", "ablation nulls", "ablation nulls"),
    Column("verdict", "verdict (what it rests on)", "verdict"),
]


def _nulls_text(values: dict[str, float]) -> str:
    return "; ".join(f"{k} {v:.3g}" for k, v in values.items()) or "none"


def findings_table(
    rows: Sequence[tuple[Result, Result, Row]], kind: str = "prediction"
) -> Table | None:
    """Each prediction against its run (``kind='prediction'``: the error statistic, its nulls
    and ablation nulls, the verdict), or the properties of each run (``'property'``)."""
    rows = [r for r in rows if r[2].kind == kind]
    if not rows:
        return None
    records = []
    for run, sim, row in rows:
        other = row.nulls.get("other seed", float("nan"))
        extra = {k: v for k, v in row.nulls.items() if k not in ("frozen", "other seed")}
        records.append(
            {
                "run": f"{run.ident} {run.label}",
                "prediction": f"{sim.ident} {sim.label}",
                "quantity": row.quantity,
                "value": row.value,
                "tolerance": f"{row.tolerance:.3g} ({row.tolerance_rule})",
                "frozen": row.nulls.get("frozen", float("nan")),
                "other_seed": other if "other seed" in row.nulls else "n/a",
                "ablations": _nulls_text({**row.ablations, **extra}),
                "verdict": row.detail,
            }
        )
    sources: list[Result] = []
    for run, sim, _ in rows:
        sources += [r for r in (run, sim) if r not in sources]
    if kind == "property":
        return Table(
            name="properties",
            title="Properties of the runs the theory predicts (they do not read a prediction)",
            caption=(
                "Theorem 1's decay of W W^T - W_p^T W_p/alpha_p at rate 2 eta, a property of "
                "the run alone, against the frozen network and the run's flow without weight "
                "decay (where the property fails). The prediction column names the simulation "
                "the run was compared with elsewhere; the value does not depend on it."
            ),
            frame=table_frame(records, FINDING_COLUMNS),
            columns=list(FINDING_COLUMNS),
            sources=sources,
        )
    return Table(
        name="findings",
        title="Findings: predictions against measurements, with their nulls",
        caption=(
            "Each run against the simulation derived from it (python -m dynamics.simulate "
            "--from-run; a run with momentum: the inertial flow of dynamics.replay), on the "
            "run's measurement times. Every statistic is an error (0: identical; definitions in "
            "the section 'Agreement statistics'), computed also for the nulls: the run's "
            "initial network held frozen, a simulation of the same run started from another "
            "seed's initial weights (n/a where the prediction does not depend on the start), "
            "and the ablation nulls, the same prediction with one ingredient removed (X' = 0, "
            "no weight decay, W_a = W, the one-direction clock D = 1, no momentum). Tolerance: "
            "three times the run's noise floor (its distance from its noise-free replay), "
            "capped at the fixed tolerance. 'agrees': within the tolerance and at least "
            f"{NULL_MARGIN:g} times below every null, with the ingredients it tested; 'not "
            "tested': an ablation null not that far above (the ingredient is named with its "
            "numbers); 'not distinguishable from the null': the frozen or other-seed null not "
            "that far above; 'disagrees': outside the tolerance."
        ),
        frame=table_frame(records, FINDING_COLUMNS),
        columns=list(FINDING_COLUMNS),
        sources=sources,
    )


AUDIT_COLUMNS = [
    Column("id", "claim", "claim"),
    Column("claim", "statement", "statement"),
    Column("verdict", "verdict", "verdict"),
    Column("corrected_statement", "corrected statement", "corrected statement"),
    Column("method", "method", "method"),
]


def audit_table(entries: Sequence[dict[str, Any]]) -> Table | None:
    """The symbolic claims audit (docs/theory.md section 4): one row per claim."""
    if not entries:
        return None
    rows = [{c.key: str(e.get(c.key, "")) for c in AUDIT_COLUMNS} for e in entries]
    for row, entry in zip(rows, entries, strict=True):
        if entry.get("condition"):
            row["verdict"] = f"{row['verdict']}: {entry['condition']}"
    return Table(
        name="audit",
        title="Claims audit",
        caption=(
            "The claims of docs/theory.md section 4 as decided by `python -m symbolic.audit`: "
            "verdict (true, false, or true_if with its condition), the exact corrected "
            "statement, and the computation that decided it. The evidence of each verdict is in "
            "audit.json."
        ),
        frame=table_frame(rows, AUDIT_COLUMNS),
        columns=list(AUDIT_COLUMNS),
    )


SOURCE_COLUMNS = [
    Column("id", "id", "id"),
    Column("kind", "kind", "kind"),
    Column("name", "name", "name"),
    Column("file", "file", "file"),
    Column("seed", "seed", "seed"),
    Column("git_revision", "git revision", "git revision"),
    Column("created", "created", "created"),
    Column("sha256", "sha256 (first 12)", "sha256 (first 12)"),
    Column("params", "parameters", "parameters"),
]


def sources_table(results: Sequence[Result]) -> Table:
    """Provenance of every input: file, seed, git revision, creation time, all parameters."""
    rows = []
    for r in results:
        params = "; ".join(f"{k}={v}" for k, v in sorted(r.params.items()))
        rows.append(
            {
                "id": r.ident,
                "kind": r.kind,
                "name": r.label,
                "file": str(r.path),
                "seed": str(r.seed),
                "git_revision": r.git_revision,
                "created": str(r.attrs.get("created", "")),
                "sha256": r.sha256[:12],
                "params": params,
            }
        )
    return Table(
        name="sources",
        title="Provenance of the inputs",
        caption="Every input file with its seed, git revision, creation time and parameters.",
        frame=table_frame(rows, SOURCE_COLUMNS),
        columns=list(SOURCE_COLUMNS),
        sources=list(results),
    )
