"""One definition of each figure: the registry, a figure added by a test, and the quick look of
``dynamics.simulate --plot`` and the phase diagrams drawn with the report's panels and style."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from dynamics.models.eigenmodes import fixed_points
from dynamics.phase import main as phase_main
from dynamics.simulate import main as simulate_main
from reports import build as build_mod
from reports import style
from reports.figures import base, phase, predictor
from reports.figures.base import Drawn, Inputs, figure
from symbolic.common.cli import run_main

#: Journal column widths (89 mm and 183 mm) in inches and the PNG resolution of a print figure.
SINGLE_IN, DOUBLE_IN, DPI = 3.5, 7.2, 300


def page_width_in(pdf: bytes) -> float:
    match = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    assert match, "no MediaBox in the PDF"
    return float(match.group(1)) / 72


def check_files(stem, width_in: float) -> str:
    """The PDF and PNG of ``stem`` are valid, ``width_in`` wide; returns the PNG's title."""
    pdf = stem.with_suffix(".pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert page_width_in(pdf) == pytest.approx(width_in)
    with Image.open(stem.with_suffix(".png")) as image:
        image.verify()
    with Image.open(stem.with_suffix(".png")) as image:
        assert image.format == "PNG" and image.size[0] == round(width_in * DPI)
        assert np.asarray(image.convert("L"), dtype=float).std() > 10, "a blank figure"
        return image.info["Title"]


@pytest.fixture
def registry(monkeypatch):
    """A copy of the registry for the test: what it registers is gone afterwards."""
    monkeypatch.setattr(base, "REGISTRY", dict(base.REGISTRY))
    return base.REGISTRY


def all_inputs(inputs) -> tuple[list[str], list[str]]:
    sims = [str(inputs[k]) for k in ("sim", "null", "modes")]
    return sims, [str(inputs["byol"]), str(inputs["barlow_twins"])]


def test_a_figure_defined_in_one_function_appears_in_the_report(registry, inputs, tmp_path):
    @figure("toy_accuracy", "Toy: kNN accuracy of each run", section="measurements")
    def toy_accuracy(inputs: Inputs) -> Drawn:
        members = [r for r in inputs.runs if r.has("knn_acc")]
        fig = style.new_figure("single", 2.0)
        ax = fig.subplots()
        for i, run in enumerate(members):
            ax.plot(run.steps(), run.values("knn_acc"), color=style.color(i), marker="o")
        return Drawn("kNN accuracy against epochs.", members, fig)

    out = build_mod.build(*all_inputs(inputs), tmp_path / "report", audit="none")
    title = check_files(out / "figures" / "toy_accuracy", SINGLE_IN)
    assert title == "Toy: kNN accuracy of each run"
    with Image.open(out / "figures" / "toy_accuracy.png") as image:
        assert image.size[1] == round(2.0 * DPI)
    manifest = json.loads((out / "provenance.json").read_text(encoding="utf-8"))["figures"]
    # registered last in its section: right after the section's last figure, before the next's
    assert manifest["toy_accuracy"]["number"] == manifest["wp_heatmaps"]["number"] + 1
    assert manifest["prediction_error"]["number"] == manifest["toy_accuracy"]["number"] + 1
    assert manifest["toy_accuracy"]["sources"] == ["R1", "R2"]
    assert "kNN accuracy against epochs." in (out / "report.md").read_text(encoding="utf-8")


def test_the_registry_refuses_a_second_figure_of_the_same_name(registry):
    def again(inputs: Inputs) -> Drawn:
        return base.absent("never drawn")

    with pytest.raises(ValueError, match="'wp_heatmaps' is registered twice") as err:
        figure("wp_heatmaps", "Another heat map", section="measurements")(again)
    assert "predictor.wp_heatmaps" in str(err.value) and "again" in str(err.value)
    assert registry["wp_heatmaps"].draw.__module__ == "reports.figures.predictor"
    with pytest.raises(ValueError, match="section 'measurement' is not one of"):
        figure("toy", "Toy", section="measurement")


def test_the_registry_refuses_a_function_named_otherwise_than_its_figure(registry):
    def drawing(inputs: Inputs) -> Drawn:
        return base.absent("never drawn")

    with pytest.raises(ValueError, match="'toy_figure' is drawn by .*drawing: name the function"):
        figure("toy_figure", "Toy", section="measurements")(drawing)
    assert "toy_figure" not in registry
    for name, entry in registry.items():  # every registered figure: file name = function name
        assert entry.draw.__name__ == name


class Spy:
    """Records each call of a panel function, then draws it."""

    def __init__(self, panel):
        self.panel, self.calls = panel, []

    def __call__(self, ax, *results):
        self.calls.append([r.name for r in results if r is not None])
        return self.panel(ax, *results)


@pytest.mark.parametrize(
    "module,panel,scenario,quick_look,report_figure",
    [
        (predictor, "eigenvalue_panel", "linear_byol", "simulation_matrix", "wp_eigenvalues"),
        (phase, "portrait_panel", "eigenmodes", "simulation_eigenmodes", "phase_portrait"),
    ],
)
def test_plot_and_the_report_draw_the_same_panel(
    monkeypatch, tmp_path, inputs, module, panel, scenario, quick_look, report_figure
):
    spy = Spy(getattr(module, panel))
    monkeypatch.setattr(module, panel, spy)
    out = tmp_path / f"{scenario}.nc"
    argv = [scenario, "--out", str(out), "--t-end", "5", "--n-out", "21", "--quiet", "--plot"]
    assert run_main(simulate_main, argv) == 0
    assert check_files(tmp_path / scenario, DOUBLE_IN) == base.REGISTRY[quick_look].title
    assert spy.calls == [[scenario]]

    report = build_mod.build(*all_inputs(inputs), tmp_path / "report", audit="none")
    assert (report / "figures" / f"{report_figure}.png").is_file()
    assert len(spy.calls) > 1, f"the report's {report_figure} did not draw {panel}"


def flags(var: xr.DataArray) -> dict[str, int]:
    """Meaning -> code of a variable's CF flags."""
    meanings = var.attrs["flag_meanings"].split()
    return dict(zip(meanings, np.ravel(var.attrs["flag_values"]).tolist(), strict=True))


def test_phase_files_and_figures(tmp_path):
    """The data of the flow and the phase line, and their figures from the registry."""
    argv = ["flow", "--out", str(tmp_path), "--flow-eta", "0,0.04", "--quiet"]
    assert run_main(phase_main, argv) == 0
    argv = ["line", "--out", str(tmp_path), "--line-eta", "0,0.08,0.2", "--quiet"]
    assert run_main(phase_main, argv) == 0
    for name in ("flow", "line"):
        title = check_files(tmp_path / f"phase_{name}", DOUBLE_IN)
        assert title == base.REGISTRY[f"phase_{name}"].title
    sigma2 = 0.5
    plus, minus = (float(v) for v in fixed_points(0.04, 1.0, sigma2))
    with xr.open_dataset(tmp_path / "phase_flow.nc") as ds:
        meaning = {c: m for m, c in flags(ds["fixed_stability"]).items()}
        at = ds.sel(eta=0.04)
        found = {
            round(float(p), 9): meaning[c]
            for p, c in zip(at["fixed_p"].values, at["fixed_stability"].values, strict=True)
        }
        # Tian et al. Sec. 4: (0, 0) and p*_+ stable, p*_- a saddle (eta below the threshold)
        assert found == {0.0: "stable", round(minus, 9): "unstable", round(plus, 9): "stable"}
        at = ds.sel(eta=0.0)
        assert float(at["fixed_line_p"]) == pytest.approx(1.0 / (1 + sigma2))
        # at eta = 0, (p, 0) is unstable exactly where ds/dt = 2 s p (tau - (1+sigma^2) p) > 0
        p = ds["p"].values
        unstable = at["axis_stability"].values == flags(ds["axis_stability"])["unstable"]
        np.testing.assert_array_equal(unstable, (p > 0) & (p < 1.0 / (1 + sigma2)))
    with xr.open_dataset(tmp_path / "phase_line.nc") as ds:
        codes = flags(ds["fixed_stability"])
        at = ds.sel(eta=0.2)  # above eta* = 1/6: only the origin is left, and it is stable
        finite = np.isfinite(at["fixed_p"].values)
        assert at["fixed_p"].values[finite].tolist() == [0.0]
        assert at["fixed_stability"].values[finite].tolist() == [codes["stable"]]


def test_importing_dynamics_imports_neither_reports_nor_matplotlib():
    code = (
        "import pkgutil, importlib, sys, dynamics\n"
        "for m in pkgutil.walk_packages(dynamics.__path__, 'dynamics.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('reports', 'matplotlib')]\n"
        "print(bad)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_headlines_break_only_outside_mathtext():
    text = r"Phase line $dp/dt = -(1+\sigma^2)\,p\,(p-p^*_-)$ at $\tau$ = 1, $\alpha_p$ = 2, so on"
    lines = base.wrap(text, 20)
    assert len(lines) > 2 and " ".join(lines) == text
    assert all(line.count("$") % 2 == 0 for line in lines), lines
    assert r"$dp/dt = -(1+\sigma^2)\,p\,(p-p^*_-)$" in lines[1]
