"""Agreement statistics on runs constructed to agree exactly with a simulation, and to disagree.

The simulation has a constant spectrum eig(W_p) = (1, 1, 0, 0) (two converged, two collapsed
modes), a symmetric aligned W_p and the weight-space residual e^{-2 eta t}. The expected values of
the disagreeing run are worked out by hand in each test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from reports import compare

ETA = 0.05
T_SIM = np.linspace(0.0, 20.0, 401)
T_RUN = np.arange(1.0, 21.0)  # grid points of T_SIM


def sim() -> xr.Dataset:
    n = T_SIM.size
    return xr.Dataset(
        {
            "wp_eig_real": (("time", "mode"), np.tile([1.0, 1.0, 0.0, 0.0], (n, 1))),
            "wp_eig_imag": (("time", "mode"), np.zeros((n, 4))),
            "alignment_cos": (("time", "mode"), np.ones((n, 4))),
            "wp_asymmetry": ("time", np.zeros(n)),
            "conservation_residual_weight": ("time", np.exp(-2 * ETA * T_SIM)),
        },
        coords={"time": T_SIM},
    )


def run(eig, corr, align, asym, rate) -> xr.Dataset:
    n = T_RUN.size
    return xr.Dataset(
        {
            "wp_eig_real": (("epoch", "mode"), np.tile(eig, (n, 1))),
            "wp_eig_imag": (("epoch", "mode"), np.zeros((n, 4))),
            "corr_eig": (("epoch", "mode"), np.tile(corr, (n, 1))),
            "alignment_cos": (("epoch", "mode"), np.tile(align, (n, 1))),
            "wp_asymmetry": ("epoch", np.full(n, asym)),
            "conservation_residual": ("epoch", 0.8 * np.exp(-rate * T_RUN)),
        },
        coords={"epoch": np.arange(1, n + 1), "time": ("epoch", T_RUN)},
    )


def stats(ds: xr.Dataset) -> dict[str, compare.Agreement]:
    return {a.key: a for a in compare.compare(sim(), ds, eta=ETA)}


def test_run_that_agrees_exactly():
    s = stats(
        run(
            eig=[1.0, 1.0, 0.0, 0.0],
            corr=[1.0, 1.0, 0.0, 0.0],
            align=[1.0, 1.0, 1.0, 1.0],
            asym=0.0,
            rate=2 * ETA,
        )
    )
    assert set(s) == set(compare.TOLERANCE)
    assert s["decay_rate"].measured == pytest.approx(2 * ETA, rel=1e-12)
    assert s["decay_rate"].value == pytest.approx(0.0, abs=1e-10)
    assert s["spectrum_correlation"].value == pytest.approx(1.0, abs=1e-12)
    assert s["asymmetry_end"].value == 0.0
    assert s["alignment_end"].value == 0.0
    assert s["collapse_agreement"].value == 1.0
    assert s["trajectory_error"].value == pytest.approx(0.0, abs=1e-12)
    assert all(a.agrees for a in s.values())


def test_run_that_disagrees():
    eig = np.array([2.0, 1.0, 0.5, 0.0])
    corr = np.array([1.0, 1.0, 0.0, 0.0])
    s = stats(run(eig=eig, corr=corr, align=[0.5, 0.5, 0.5, 0.9], asym=0.2, rate=3 * ETA))
    # residual 0.8 e^{-3 eta t}: k = 3 eta, |k - 2 eta| / (2 eta) = 1/2
    assert s["decay_rate"].measured == pytest.approx(3 * ETA, rel=1e-12)
    assert s["decay_rate"].value == pytest.approx(0.5, rel=1e-10)
    # Pearson r of a = (4, 1, 0.25, 0) and b = (1, 1, 0, 0), by hand: means 1.3125 and 0.5
    da = np.array([4, 1, 0.25, 0]) - 1.3125
    db = np.array([0.5, 0.5, -0.5, -0.5])
    r = (da @ db) / math.sqrt((da @ da) * (db @ db))
    assert s["spectrum_correlation"].value == pytest.approx(r, rel=1e-12)
    assert r == pytest.approx(0.7447, abs=1e-4)
    assert s["asymmetry_end"].value == pytest.approx(0.2)
    # non-collapsed modes of the run (|eig| >= 0.05 * 2): the first three, mean cos 0.5;
    # simulation: modes 1-2, mean cos 1
    assert s["alignment_end"].predicted == 1.0 and s["alignment_end"].measured == 0.5
    assert s["alignment_end"].value == 0.5
    # collapsed fractions 1/4 (run) and 2/4 (simulation)
    assert s["collapse_agreement"].value == 0.75
    # error^2 = mean over modes of (1^2, 0, 0.5^2, 0) / mean of (1, 1, 0, 0) = 0.3125 / 0.5
    assert s["trajectory_error"].value == pytest.approx(math.sqrt(0.625), rel=1e-12)
    assert not any(a.agrees for a in s.values())


def test_decay_rate_ignores_non_positive_samples():
    t = np.linspace(0, 5, 11)
    r = 3.0 * np.exp(-0.7 * t)
    r[3] = 0.0
    r[5] = np.inf
    assert compare.decay_rate(t, r) == pytest.approx(0.7, rel=1e-12)
    assert math.isnan(compare.decay_rate(t[:1], r[:1]))


def test_run_beyond_the_simulated_interval_is_not_compared():
    t_sim = np.linspace(0, 1, 11)
    eig = np.ones((11, 2))
    assert math.isnan(compare.trajectory_error(t_sim, eig, np.array([2.0, 3.0]), np.ones((2, 2))))
    # only run times inside [0, 1] count: the outlier at t = 5 is ignored
    err = compare.trajectory_error(t_sim, eig, np.array([0.5, 5.0]), np.array([[1, 1], [9, 9.0]]))
    assert err == 0.0


def test_collapse_description():
    assert compare.collapsed_description(np.array([1.0, 0.9, 0.01, 0.0])) == "modes 3-4 of 4"
    assert compare.collapsed_description(np.array([1.0, 0.9])) == "none of 2"
    assert compare.collapsed_description(np.zeros(3)) == "all 3"
    # everything decayed to ~0 (every mode collapsed above the threshold): absolute floor 1e-6
    assert compare.collapsed_description(np.array([9e-10, 5e-10, 1e-12])) == "all 3"


def test_no_fixed_points_above_the_collapse_threshold(tmp_path):
    """eta > tau^2/(4(1+sigma^2)) stored in the file: no p*_+- (every mode collapses)."""
    from reports.inputs import load_inputs
    from symbolic.common.results import write_netcdf
    from tests.reports import synthetic

    paths = []
    for eta in (0.1, 0.2):
        ds = synthetic.simulation(eta=eta)
        ds.attrs.update(collapse_threshold_eta=1 / 6, closed_form_tau=1.0)
        paths.append(str(write_netcdf(ds, tmp_path / f"s{eta}.nc")))
    (below, above), _ = load_inputs(paths, [])
    assert below.fixed_points() == (1.0, {"p_star_plus": 0.6, "p_star_minus": 0.05})
    assert above.fixed_points() == (1.0, {})


def _momentum_run(tmp_path, optimizer: str) -> str:
    """A run with SGD momentum 0.9 whose residual decays at 2 wd per unit of sum(lr)/(1 - mu)."""
    from symbolic.common.provenance import provenance
    from symbolic.common.results import write_netcdf

    mu, wd = 0.9, 0.01
    ds = run(
        eig=[1.0, 1.0, 0.0, 0.0],
        corr=[1.0, 1.0, 0.0, 0.0],
        align=[1.0] * 4,
        asym=0.0,
        rate=2 * wd / (1 - mu),
    )
    params = {"optimizer": optimizer, "momentum": mu, "weight_decay": wd, "seed": 0}
    ds.attrs = provenance("training", "byol", params)
    return str(write_netcdf(ds, tmp_path / optimizer / "measurements.nc").parent)


def test_momentum_puts_runs_on_the_gradient_flow_time(tmp_path):
    from reports.inputs import load_inputs

    folder = _momentum_run(tmp_path, "sgd")
    for convention, expected in (("effective", 0.0), ("spec", 1 / (1 - 0.9) - 1)):
        _, (r,) = load_inputs([], [folder], time_convention=convention)
        assert r.time_scale == pytest.approx(10.0 if convention == "effective" else 1.0)
        assert r.eta() == 0.01
        s = {a.key: a for a in compare.compare(sim(), r.ds, r.eta(), r.time_scale)}
        assert s["decay_rate"].value == pytest.approx(expected, abs=1e-9)


def test_lars_run_has_no_predicted_decay(tmp_path):
    from reports.inputs import load_inputs

    _, (r,) = load_inputs([], [_momentum_run(tmp_path, "lars")])
    assert r.eta() is None
    s = {a.key: a for a in compare.compare(sim(), r.ds, float("nan"), r.time_scale)}
    assert s["decay_rate"].agrees is None
