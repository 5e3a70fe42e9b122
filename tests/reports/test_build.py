"""The report built from synthetic inputs: files, image sizes, tables, numbers, provenance."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image

from tests.reports import synthetic

FIGURES = (
    "wp_eigenvalues",
    "conservation_residual",
    "sigma_distance",
    "wp_heatmaps",
    "wp_spectrum_epochs",
    "phase_portrait",
    "prediction_error",
)
LINE_ART = ("wp_eigenvalues", "conservation_residual", "sigma_distance", "phase_portrait")
TABLES = ("findings", "methods", "predictions", "audit", "sources")
#: Journal column widths (89 mm and 183 mm) in inches, and the PNG resolution of a print figure.
COLUMN_WIDTHS_IN = (3.5, 7.2)
DPI = 300


def media_box(pdf: bytes) -> tuple[float, float]:
    match = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    assert match, "no MediaBox in the PDF"
    return float(match.group(1)), float(match.group(2))


def read_markdown_table(text: str) -> pd.DataFrame:
    """Parse a pipe table with pandas: header, separator row, body; '\\|' is a literal pipe."""
    lines = text.strip().splitlines()
    assert re.fullmatch(r"\|(:?-{3,}:?\|)+", lines[1]), lines[1]
    body = "\n".join(line.strip()[1:-1] for line in [lines[0], *lines[2:]])
    body = body.replace("\\|", "\x00")
    frame = pd.read_csv(
        io.StringIO(body),
        sep=r"\s*\|\s*",
        engine="python",
        na_values=["–"],
        keep_default_na=False,
        dtype=str,
    )
    frame.columns = [c.strip().replace("\x00", "|") for c in frame.columns]
    return frame.apply(lambda col: col.str.strip().str.replace("\x00", "|"))


def row_of(frame: pd.DataFrame, column: str, value: str) -> pd.Series:
    rows = frame[frame[column] == value]
    assert len(rows) == 1, f"{value!r} not found once in column {column!r}"
    return rows.iloc[0]


def test_every_expected_file_exists(report):
    for name in FIGURES:
        for ext in ("pdf", "png"):
            assert (report / "figures" / f"{name}.{ext}").is_file(), f"{name}.{ext}"
    for name in TABLES:
        for ext in ("tex", "md", "csv"):
            assert (report / "tables" / f"{name}.{ext}").is_file(), f"{name}.{ext}"
    for name in ("report.md", "report.html", "provenance.json"):
        assert (report / name).is_file()
    leftovers = [p.name for p in report.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == [], f"temporary folders left behind: {leftovers}"


@pytest.mark.parametrize("name", FIGURES)
def test_pdf_and_png_are_valid_images_of_paper_size(report, name):
    pdf = (report / "figures" / f"{name}.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    width_pt, height_pt = media_box(pdf)
    width_in, height_in = width_pt / 72, height_pt / 72
    assert any(abs(width_in - w) < 1e-6 for w in COLUMN_WIDTHS_IN), width_in
    assert 1.0 <= height_in <= 9.0
    with Image.open(report / "figures" / f"{name}.png") as image:
        image.verify()
    with Image.open(report / "figures" / f"{name}.png") as image:
        assert image.format == "PNG"
        assert image.size == (round(width_in * DPI), round(height_in * DPI))
        assert round(image.info["dpi"][0]) == DPI
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 10, "the PNG is (nearly) uniform"
    if name in LINE_ART:
        assert b"/Subtype /Image" not in pdf, "a line figure should be pure vector graphics"


def test_markdown_tables_round_trip_through_pandas(report):
    for name in TABLES:
        md = read_markdown_table((report / "tables" / f"{name}.md").read_text(encoding="utf-8"))
        csv = pd.read_csv(report / "tables" / f"{name}.csv", dtype=str, keep_default_na=False)
        assert md.shape == csv.shape, name
        for col_md, col_csv in zip(md.columns, csv.columns, strict=True):
            for a, b in zip(md[col_md], csv[col_csv], strict=True):
                if b == "" or b == "nan":
                    assert pd.isna(a), (name, col_csv, a)
                    continue
                try:
                    expected = float(b)
                except ValueError:
                    assert a == b, (name, col_csv)
                    continue
                assert float(a) == pytest.approx(expected, rel=5e-4, abs=1e-12), (name, col_csv)


def test_methods_table_holds_the_input_numbers(report):
    md = read_markdown_table((report / "tables" / "methods.md").read_text(encoding="utf-8"))
    tex = (report / "tables" / "methods.tex").read_text(encoding="utf-8")
    for method in ("byol", "barlow_twins"):
        row = row_of(md, "method", method)
        expected = {
            "kNN acc.": synthetic.KNN[method][-1],
            "linear acc.": synthetic.LINEAR[method][-1],
            "mean ρ²": synthetic.CORR[method][-1],
            "mean ρ² (random enc.)": synthetic.CORR[method][0],
            "kNN acc. (random enc.)": synthetic.RANDOM_KNN[method],
            "linear acc. (random enc.)": synthetic.RANDOM_LINEAR[method],
            "epochs": synthetic.EPOCHS[-1],
        }
        for column, value in expected.items():
            assert float(row[column]) == pytest.approx(value, rel=5e-4), (method, column)
        tex_row = next(
            line for line in tex.splitlines() if line.startswith(method.replace("_", r"\_"))
        )
        assert f"{synthetic.CORR[method][-1]:.4g}" in tex_row
    assert pd.isna(row_of(md, "method", "barlow_twins")["W_p asymmetry"])
    asym = 0.3 * np.exp(-synthetic.EPOCHS[-1] * synthetic.LR_PER_EPOCH)
    assert float(row_of(md, "method", "byol")["W_p asymmetry"]) == pytest.approx(asym, rel=5e-4)


def test_predictions_and_findings_tables(report):
    pred = read_markdown_table((report / "tables" / "predictions.md").read_text(encoding="utf-8"))
    byol = row_of(pred, "sim.", "S1")
    assert float(byol["p*₊"]) == 0.6 and float(byol["p*₋"]) == 0.05
    assert float(byol["η"]) == synthetic.ETA
    # the weight-space residual is exactly e^{-2 eta t}: fitted rate 2 eta, deviation 0
    assert float(byol["fitted decay rate"]) == pytest.approx(2 * synthetic.ETA, rel=1e-4)
    assert float(byol["rel. deviation"]) == pytest.approx(0, abs=1e-9)
    assert byol["collapsed modes"] == "modes 3-4 of 4"

    found = read_markdown_table((report / "tables" / "findings.md").read_text(encoding="utf-8"))
    assert set(found["run"]) == {"R1 byol"}
    assert set(found["prediction"]) == {"S1 linear_byol (linear_byol)"}
    verdicts = dict(zip(found["quantity"], found["verdict (what it rests on)"], strict=True))
    # the run is its simulation sampled exactly: every error 0; both nulls are worse, except
    # the collapse pattern, which the other-seed start reaches too (P_INF is fixed)
    collapse = verdicts.pop("collapsed modes at the end")
    assert collapse.startswith("not distinguishable from the null")
    assert "predicted 2 of 4 modes collapsed, the run 2" in collapse
    # no moments.nc beside the synthetic run: no replay, no ablation null, fixed tolerances; an
    # exact match that no ablation null could contradict tested no physics: "not tested"
    why = "no replay and no ablation nulls: no moments.nc beside measurements.nc"
    assert set(verdicts.values()) == {f"not tested (no ablation null: {why})"}
    assert len(verdicts) == 4
    assert set(found["tolerance (rule)"].str.contains("fixed")) == {True}
    assert not any("at the end (predicted 0" in q for q in verdicts)  # limits: no simulation
    trajectories = found[found["quantity"].str.contains("trajectory|over time")]
    assert len(trajectories) == 4 and all(float(v) < 1e-9 for v in trajectories["error"])
    # Theorem 1's decay is a property of the run, listed apart from the predictions
    props = read_markdown_table((report / "tables" / "properties.md").read_text(encoding="utf-8"))
    conservation = row_of(
        props,
        "quantity",
        "decay of W W^T - W_p^T W_p/alpha_p at 2 eta (Theorem 1; property of the run)",
    )
    assert float(conservation["null: frozen initial network"]) == pytest.approx(1.0)
    assert conservation["null: other seed"] == "n/a"
    assert float(conservation["error"]) < 1e-6


def test_audit_table_keeps_the_claims(report):
    md = read_markdown_table((report / "tables" / "audit.md").read_text(encoding="utf-8"))
    assert list(md["claim"]) == ["a", "g"]
    assert list(md["verdict"]) == ["true_if: m is a negative", "false"]
    assert json.loads((report / "audit.json").read_text(encoding="utf-8"))[0]["evidence"] == {
        "abs_error_negatives": 0.0
    }
    assert "symbolic.audit: git 0123456789ab" in (report / "report.md").read_text(encoding="utf-8")
    assert md["statement"][1] == "ratio is d((N-1)/N)^2 | with a pipe & 50% $x_1$"
    tex = (report / "tables" / "audit.tex").read_text(encoding="utf-8")
    assert r"50\% \$x\_1\$" in tex and r"\toprule" in tex and r"\bottomrule" in tex


def test_every_figure_and_table_carries_provenance(report, inputs):
    text = (report / "report.md").read_text(encoding="utf-8")
    manifest = json.loads((report / "provenance.json").read_text(encoding="utf-8"))
    by_id = {s["id"]: s for s in manifest["sources"]}
    assert set(by_id) == {"S1", "S2", "S3", "R1", "R2"}
    for path in (inputs["sim"], inputs["byol"] / "measurements.nc"):
        with xr.open_dataset(path) as ds:
            attrs = dict(ds.attrs)
        record = next(s for s in manifest["sources"] if s["file"] == str(path))
        assert record["git_revision"] == attrs["git_revision"]
        assert record["params"] == json.loads(attrs["params_json"])
        assert f"git {attrs['git_revision'][:12]}" in text
        assert f"seed {attrs['seed']}" in text
    assert set(manifest["figures"]) == set(FIGURES)
    for name, entry in manifest["figures"].items():
        assert entry["sources"], name
        block = text.split(f"({entry['files'][1]})", 1)[1].split("## ", 1)[0]
        assert "Provenance:" in block and all(f"{i} " in block for i in entry["sources"])
        with Image.open(report / entry["files"][1]) as image:
            assert all(f"[{i}]" in image.info["Description"] for i in entry["sources"])
    assert manifest["tables"]["methods"]["sources"] == ["R1", "R2"]


def test_statistics_are_defined_in_the_report(report):
    from reports.compare import STATISTICS

    text = (report / "report.md").read_text(encoding="utf-8")
    section = text.split("## 5. Agreement statistics", 1)[1].split("![Figure", 1)[0]
    for key, stat in STATISTICS.items():
        assert f"- {key} ({stat.quantity}; tolerance {stat.tolerance:g}" in section
    assert "Hungarian algorithm" in section


def test_story_order_and_self_contained_html(report):
    text = (report / "report.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings[:6] == [
        "1. Findings",
        "2. Sources",
        "3. Predictions",
        "4. Measurements",
        "5. Agreement statistics",
        "6. Claims audit",
    ]
    assert text.index("**Table 1. Findings") < text.index("![Figure 1")
    html = (report / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", html), "external reference in HTML"
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == len(FIGURES)
    embedded = {base64.b64decode(b) for b in images}
    assert embedded == {(report / "figures" / f"{n}.png").read_bytes() for n in FIGURES}


def test_figure_reasons_when_inputs_lack_them(tmp_path, inputs):
    from reports.build import build

    out = build([str(inputs["sim"])], [], tmp_path / "r", audit="none")
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "sigma_distance: no training run holds" in text
    assert "The claims audit is not included: left out on request (--audit none)." in text
    assert not (out / "figures" / "sigma_distance.png").exists()
    assert (out / "figures" / "wp_eigenvalues.png").exists()


def test_audit_command_absent_is_stated(monkeypatch):
    from reports import audit

    monkeypatch.setattr(audit, "AUDIT_MODULE", "symbolic.no_such_audit_module")
    result = audit.run(timeout_s=30)
    assert result.entries == []
    assert "symbolic.no_such_audit_module" in result.reason and "not available" in result.reason


def test_report_replaces_an_earlier_report(tmp_path, inputs):
    from reports.build import build

    out = tmp_path / "r"
    build([str(inputs["sim"])], [], out, audit="none", title="first")
    build([str(inputs["sim"])], [], out, audit="none", title="second")
    assert (out / "report.md").read_text(encoding="utf-8").startswith("# second")
    assert [p.name for p in tmp_path.iterdir()] == ["r"]


def test_a_killed_build_leaves_debris_that_the_next_build_removes(tmp_path, inputs):
    """A build killed while it composed (kill -9: no cleanup ran) leaves its temporary folder,
    and a swap killed half-way the folder holding the previous report; the next build of the same
    report removes both (symbolic.common.files: .NAME.*.tmp), other files stay."""
    from reports.build import build

    out = tmp_path / "r"
    composing = tmp_path / ".r.x1y2z3.tmp"
    (composing / "figures").mkdir(parents=True)
    (composing / "report.md").write_text("half", encoding="utf-8")
    (tmp_path / ".r.old.a1b2c3.tmp" / "r").mkdir(parents=True)
    (tmp_path / ".other.q1w2e3.tmp").mkdir()  # another target's: not this build's to remove
    build([str(inputs["sim"])], [], out, audit="none", title="after a kill")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.q1w2e3.tmp", "r"]
    assert (out / "report.md").read_text(encoding="utf-8").startswith("# after a kill")


def test_sources_table_lists_every_input(report, inputs):
    md = read_markdown_table((report / "tables" / "sources.md").read_text(encoding="utf-8"))
    assert list(md["id"]) == ["S1", "S2", "S3", "R1", "R2"]
    assert Path(row_of(md, "id", "R2")["file"]) == inputs["barlow_twins"] / "measurements.nc"
    assert "weight_decay=0.05" in row_of(md, "id", "R1")["parameters"]


def test_random_encoder_baseline_from_epoch_zero(tmp_path):
    """empirical.train records the random encoder at epoch 0 and says so in 'epoch_zero'."""
    from reports.inputs import load_inputs
    from reports.tables import methods_table
    from symbolic.common.provenance import provenance
    from symbolic.common.results import write_netcdf

    epochs = np.arange(3)
    ds = xr.Dataset(
        {
            "sigma_corr_mean_sq": ("epoch", [5.0, 3.0, 2.0]),
            "effective_rank": ("epoch", [1.5, 4.0, 6.0]),
            "knn_acc": ("epoch", [0.6, 0.7, 0.72]),
            "knn_acc_random": ((), 0.6),
        },
        coords={"epoch": epochs, "time": ("epoch", 0.1 * epochs)},
    )
    ds.attrs = provenance("training", "vicreg", {"seed": 1}, epoch_zero="randomly initialised")
    folder = write_netcdf(ds, tmp_path / "with" / "measurements.nc").parent
    ds.attrs.pop("epoch_zero")
    plain = write_netcdf(ds, tmp_path / "without" / "measurements.nc").parent
    _, runs = load_inputs([], [str(folder), str(plain)])
    frame = methods_table(runs).frame
    assert list(frame["random_sigma_corr_mean_sq"].isna()) == [False, True]
    assert frame["random_sigma_corr_mean_sq"][0] == 5.0
    assert frame["random_effective_rank"][0] == 1.5
    assert list(frame["random_knn_acc"]) == [0.6, 0.6]
    assert list(frame["sigma_corr_mean_sq"]) == [2.0, 2.0]
