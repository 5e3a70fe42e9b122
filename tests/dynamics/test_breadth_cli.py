"""The breadth scenarios and the phase diagrams from the command line; fixed points of the
(p, s) flow against Tian et al.'s stability statements."""

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from dynamics.models.eigenmodes import fixed_points
from dynamics.phase import fixed_point_list, phase_line
from dynamics.phase import main as phase_main
from dynamics.simulate import main as simulate_main
from reports.figures import REGISTRY, registered
from symbolic.common.cli import run_main

NEW = [
    "directpred", "directcopy", "directpred_discrete", "no_predictor", "no_stopgrad", "liu",
    "barlow_twins", "vicreg", "spectral", "general",
]  # fmt: skip


def test_list_names_every_new_scenario(capsys):
    assert run_main(simulate_main, ["--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in NEW)


@pytest.mark.parametrize("name", NEW)
def test_new_scenarios_run_and_write_finite_results_and_a_figure(tmp_path, name):
    out = tmp_path / f"{name}.nc"
    argv = [name, "--out", str(out), "--quiet", "--t-end", "1", "--n-out", "11", "--plot"]
    if name in ("barlow_twins", "spectral", "liu", "general"):
        argv += ["--n-samples", "32", "--dim", "4", "--input-dim", "5"]
    # (vicreg keeps its defaults: with small n and d its flow soon slides on the variance hinge,
    # where solvers crawl; see dynamics.models.contrastive)
    assert run_main(simulate_main, argv) == 0
    with xr.open_dataset(out) as ds:
        assert ds.attrs["name"] == name and ds.attrs["git_revision"]
        for var in ds.data_vars.values():
            assert np.all(np.isfinite(var.values)), var.name
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    with Image.open(tmp_path / f"{name}.png") as image:  # the report's quick look drew it
        assert image.info["Title"] in {r.title for r in registered("simulation")}


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["directpred", "--convention", "book"], "convention='book'"),
        (["liu", "--k", "3"], "k=3"),
        (["no_stopgrad", "--variant", "moco"], "variant='moco'"),
        (["general", "--loss", "batchnorm"], "batchnorm"),
        (["directpred_discrete", "--freq", "0"], "freq=0"),
    ],
)
def test_bad_breadth_options_exit_2(tmp_path, capsys, argv, fragment):
    assert run_main(simulate_main, [*argv, "--out", str(tmp_path / "x.nc")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err
    assert not (tmp_path / "x.nc").exists()


@pytest.mark.parametrize("eta,sigma2,alpha_p", [(0.04, 0.5, 1.0), (0.1, 0.2, 2.5)])
def test_fixed_point_stability_matches_tian(eta, sigma2, alpha_p):
    """Tian Sec. 4 / App. B.2: for 0 < eta < threshold, (0, 0) and p*_+ are stable, p*_- is a
    saddle; the nonzero points lie on the parabola s = p^2/alpha_p."""
    points = fixed_point_list(1.0, eta, alpha_p, sigma2)
    plus, minus = fixed_points(eta, 1.0, sigma2)
    kinds = {round(p, 12): kind for p, _, kind in points}
    assert kinds == {0.0: "stable", round(float(minus), 12): "unstable",
                     round(float(plus), 12): "stable"}  # fmt: skip
    for p, s, _ in points:
        assert s == pytest.approx(p**2 / alpha_p)
    # above the threshold only the origin is left
    assert [k for _, _, k in fixed_point_list(1.0, 0.3, alpha_p, 0.5)] == ["stable"]


def test_phase_line_is_the_cubic_of_tian_fig_4():
    """On the parabola dp/dt = -(1+sigma^2) p (p - p*_-)(p - p*_+) (Fig. 4 drops (1+sigma^2))."""
    eta, sigma2 = 0.08, 0.5
    plus, minus = fixed_points(eta, 1.0, sigma2)
    p = np.linspace(-0.2, 1.0, 13)
    expected = -(1 + sigma2) * p * (p - minus) * (p - plus)
    np.testing.assert_allclose(phase_line(p, 1.0, eta, 1.7, sigma2), expected, atol=1e-14)


@pytest.mark.slow
def test_phase_command_draws_every_figure_with_provenance(tmp_path, capsys):
    argv = ["all", "--out", str(tmp_path), "--eta", "0:0.3:13", "--t-end", "200",
            "--align-eta", "0.01,0.1", "--align-t-end", "10", "--dim", "4", "--quiet"]  # fmt: skip
    assert run_main(phase_main, argv) == 0
    for name in ("flow", "line", "collapse", "alignment"):
        assert (tmp_path / f"phase_{name}.png").stat().st_size > 20_000
        assert (tmp_path / f"phase_{name}.pdf").read_bytes().startswith(b"%PDF")
        with Image.open(tmp_path / f"phase_{name}.png") as image:
            assert image.info["Title"] == REGISTRY[f"phase_{name}"].title
        with xr.open_dataset(tmp_path / f"phase_{name}.nc") as ds:
            assert ds.attrs["kind"] == "phase" and ds.attrs["git_revision"]
    with xr.open_dataset(tmp_path / "phase_collapse.nc") as ds:
        frac = ds["collapse_fraction_alpha_p"]
        threshold = ds.attrs["collapse_threshold_eta"]
        assert np.all(frac.sel(eta=ds["eta"][ds["eta"] > threshold]).values == 1)
    assert run_main(phase_main, ["flow", "--alpha-p", "0", "--out", str(tmp_path)]) == 2
