"""Agreement statistics that can say "no": tested on cases built to agree and to disagree.

The trajectories are real solutions of Tian et al.'s Lemma 1 (``dynamics.simulate``), so the
prediction and the nulls differ the way a wrong start or a frozen network would:

- a run that is its prediction plus 0.5% noise: every statistic agrees and beats its nulls (the
  ablation nulls: the same simulation without augmentation, sigma^2 = 0, or without weight
  decay, eta = 0); without any ablation null the same run is "not tested", never "agrees";
- a run from another seed's start, and a run whose network stays frozen: no statistic agrees;
- a random W_p against unrelated features passes no spectrum statistic.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from dynamics.simulate import RunSettings, simulate
from dynamics.symmetry import OUTPUT_ROTATION
from reports import compare
from reports.compare import Row, Trajectory
from reports.wp_stats import paired_spectra

ETA = 0.05
SETTINGS = RunSettings(t_end=30.0, n_out=31, rtol=1e-9, atol=1e-11)


def trajectory(seed: int, **changes) -> Trajectory:
    """Linear BYOL, 6 x 8, eta 0.05 to t = 30 (2 eta t = 3: Theorem 1's decay shows);
    ``changes``: parameters of an ablated simulation (the run's eta is kept as its record)."""
    ds = simulate("linear_byol", SETTINGS, **{"dim": 6, "input_dim": 8, "eta": ETA, "seed": seed,
                                              **changes})  # fmt: skip
    return Trajectory(ds["time"].values, ds["wp"].values, ds["w"].values, ETA, 1.0)


@pytest.fixture(scope="module")
def sims() -> dict[int, Trajectory]:
    return {seed: trajectory(seed) for seed in (0, 1, 2)}


@pytest.fixture(scope="module")
def ablations() -> dict[str, Trajectory]:
    """Seed 0's simulation with one ingredient removed: no augmentation, no weight decay."""
    return {"augmentation": trajectory(0, sigma2=0.0), "weight decay": trajectory(0, eta=0.0)}


def noisy(traj: Trajectory, level: float, seed: int = 5) -> Trajectory:
    rng = np.random.default_rng(seed)
    wp = traj.wp * (1 + level * rng.standard_normal(traj.wp.shape))
    w = traj.w * (1 + level * rng.standard_normal(traj.w.shape))
    return Trajectory(traj.t, wp, w, traj.eta, traj.alpha_p)


def by_key(rows: list[Row]) -> dict[str, Row]:
    return {r.key: r for r in rows}


def test_a_run_built_to_agree_agrees_on_every_statistic(sims, ablations):
    run = noisy(sims[0], 0.005)
    declared = dataclasses.replace(sims[0], symmetries=(OUTPUT_ROTATION,))  # eq. 1 has it
    rows = by_key(compare.compare(declared, run, other_seed=sims[1], ablations=ablations))
    limits = {"final_asymmetry", "final_misalignment"}  # not with a simulation's prediction
    # no mode collapses in the prediction: collapse agreement is not due, not computed; these
    # trajectories hold no Sigma (tests/reports/test_sigma_compare)
    assert set(rows) == set(compare.STATISTICS) - limits - {"collapse_error", "sigma_error"}
    for key, row in rows.items():
        assert row.verdict == "agrees", (key, row)
        assert row.value * compare.NULL_MARGIN <= row.best_null
        if row.kind == "prediction":
            assert "tested: augmentation, weight decay" in row.detail
    # the same comparison without ablation nulls tested no physics: never "agrees"
    bare = by_key(compare.compare(sims[0], run, other_seed=sims[1]))
    for key in ("wp_error", "w_error", "spectrum_error", "asymmetry_error"):
        assert bare[key].verdict == "not tested", (key, bare[key])
        assert "no ablation null: no replay and no ablation nulls" in bare[key].detail
    assert (
        bare["conservation_error"].verdict == "agrees"
    )  # a property of the run    assert rows["wp_error"].value < 0.01
    assert rows["wp_error"].tolerance_rule.startswith("fixed")  # no replay given
    assert "other seed" in rows["conservation_error"].not_applicable
    assert rows["conservation_error"].kind == "property"
    assert {r.kind for k, r in rows.items() if k != "conservation_error"} == {"prediction"}


@pytest.mark.parametrize("case", ["other seed", "frozen"])
def test_a_run_built_to_disagree_never_agrees(sims, case):
    """The run follows another start (seed 1), or stays at the prediction's initial network:
    no statistic of the trajectory agrees. Theorem 1's decay is predicted for every start, so
    a run from another seed obeys it (it agrees, rightly); a frozen run does not."""
    run = sims[1] if case == "other seed" else sims[0].frozen()
    rows = by_key(compare.compare(sims[0], run, other_seed=sims[2]))
    conservation = rows.pop("conservation_error")  # a property of the run, not of the prediction
    assert conservation.verdict == ("agrees" if case == "other seed" else "disagrees")
    assert rows and not any(r.verdict == "agrees" for r in rows.values()), rows
    assert rows["wp_error"].verdict == "disagrees"


def test_random_wp_against_unrelated_features_passes_no_spectrum_statistic(sims):
    rng = np.random.default_rng(3)
    d, n = sims[0].wp.shape[1], sims[0].w.shape[2]
    random_wp = rng.uniform(-1, 1, (len(sims[0].t), d, d)) / np.sqrt(d)
    random_w = rng.uniform(-1, 1, (len(sims[0].t), d, n)) / np.sqrt(n)
    run = Trajectory(sims[0].t, random_wp, random_w, ETA, 1.0)
    rows = by_key(compare.compare(sims[0], run, other_seed=sims[1]))
    for key in ("wp_error", "spectrum_error", "asymmetry_error"):
        assert rows[key].verdict != "agrees", (key, rows[key])


def test_paired_spectra_follow_eigenvectors_not_ranks():
    """Two matrices with the same eigenvectors and eigenvalues in another order: the pairing
    follows the eigenvectors, so the paired eigenvalues are each other's."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    a = q @ np.diag([5.0, 4.0, 3.0, 2.0, 1.0]) @ q.T
    b = q @ np.diag([1.0, 2.0, 3.0, 4.0, 5.0]) @ q.T
    la, lb = paired_spectra(a, b)
    assert np.allclose(np.sort(la), [1, 2, 3, 4, 5])
    assert np.allclose(la + lb, 6.0)  # eigenvector j carries 6 - j in a and j in b


def test_an_ablation_null_within_3x_means_not_tested_never_agrees():
    """Within tolerance and far below the frozen and other-seed nulls, but an ablation null
    only 2x above: that ingredient is 'not tested', named with its numbers."""
    row = Row("x", "x", 0.01, 0.1, nulls={"frozen": 0.5, "other seed": 0.9})
    row.ablations = {"augmentation": 0.02, "weight decay": 0.3}
    assert row.verdict == "not tested"
    assert list(row.untested) == ["augmentation"] and row.tested == ["weight decay"]
    assert "augmentation (its null 0.02 is not 3x the error 0.01)" in row.detail
    row.ablations["augmentation"] = 0.03
    assert row.verdict == "agrees" and "tested: augmentation, weight decay" in row.detail
    row.ablations["augmentation"] = float("nan")  # a null that could not be computed
    assert row.verdict == "not tested"


def test_the_tolerance_is_three_times_the_noise_floor_of_the_replay(sims, ablations):
    """A replay 0.004 from the run sets the W_p tolerance to 3 x that floor (capped at 0.1):
    a prediction 0.01 off then disagrees, one as close as the replay agrees."""
    run = noisy(sims[0], 0.003, seed=1)
    replay = noisy(sims[0], 0.003, seed=2)
    floor = compare.relative_error(replay.wp, run.wp)
    rows = by_key(compare.compare(sims[0], run, sims[1], ablations, replay=replay))
    assert rows["wp_error"].tolerance == pytest.approx(3 * floor)
    assert rows["wp_error"].verdict == "agrees"
    off = by_key(compare.compare(noisy(sims[0], 0.05, seed=3), run, sims[1], ablations, replay))
    assert off["wp_error"].verdict == "disagrees"
    huge = by_key(compare.compare(sims[0], run, sims[1], floor={"wp_error": 1.0}))
    assert huge["wp_error"].tolerance == 0.1  # capped at the fixed tolerance


def test_collapse_is_judged_only_where_the_prediction_collapses_with_the_mode_count(sims):
    """A prediction whose last W_p has two of six modes at zero (by hand): collapse_error is
    computed, counts the modes, and flags a run that keeps them."""
    q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((6, 6)))
    spectrum = np.array([1.0, 0.8, 0.6, 0.5, 0.0, 0.0])
    wp = np.stack([q @ np.diag(np.where(spectrum > 0, spectrum, 1 - k / 30)) @ q.T
                   for k in range(31)])  # fmt: skip
    predicted = Trajectory(sims[0].t, wp, None, ETA, 1.0)
    keeps = Trajectory(sims[0].t, np.broadcast_to(wp[:1], wp.shape).copy(), None, ETA, 1.0)
    row = by_key(compare.compare(predicted, keeps))["collapse_error"]
    assert row.value == pytest.approx(2 / 6)
    assert row.context == "predicted 2 of 6 modes collapsed, the run 0"
    assert row.verdict == "disagrees"
    assert by_key(compare.compare(predicted, predicted))["collapse_error"].value == 0


def test_an_end_state_verdict_needs_three_alive_modes(sims):
    """The end-state properties carry the alive modes and RankMe; with 2 alive modes of 6 no
    verdict is given."""
    t = sims[0].t
    wp = np.broadcast_to(np.eye(6), (len(t), 6, 6)).copy()
    eig = np.broadcast_to([1.0, 0.5, 0.001, 0, 0, 0], (len(t), 6)).copy()
    run = Trajectory(t, wp, None, 1.0, 1.0, np.ones((len(t), 6)), eig, np.full(len(t), 1.7))
    rows = by_key(compare.compare(None, run))
    for key in ("final_asymmetry", "final_misalignment"):
        assert rows[key].verdict == "not decided"
        assert "alive modes 2 of 6, RankMe 1.7" in rows[key].detail
    eig[:, 2] = 0.3
    assert by_key(compare.compare(None, run))["final_asymmetry"].verdict != "not decided"


def test_a_prediction_shorter_than_its_run_is_refused(sims):
    short = Trajectory(sims[0].t[:20], sims[0].wp[:20], sims[0].w[:20], ETA, 1.0)
    with pytest.raises(compare.ShortPrediction, match="never extrapolated"):
        compare.compare(short, sims[0])


def test_verdict_logic():
    within = Row("x", "x", 0.01, tolerance=0.1, nulls={"frozen": 0.5, "other seed": 0.02})
    within.ablations = {"weight decay": 0.5}
    assert within.verdict == "not distinguishable from the null"  # only 2x below the best null
    within.nulls["other seed"] = 0.03
    assert within.verdict == "agrees"
    within.ablations = {}  # no ablation null: nothing of the physics tested
    within.no_nulls = "no pairs.nc"
    assert within.verdict == "not tested"
    assert within.detail == "not tested (no ablation null: no pairs.nc)"
    assert Row("x", "x", 0.01, 0.1, {"frozen": 0.5}, kind="property").verdict == "agrees"
    assert Row("x", "x", 0.2, 0.1, {"frozen": 5.0}).verdict == "disagrees"
    assert Row("x", "x", float("nan"), 0.1, {"frozen": 5.0}).verdict == "not computed"
    assert Row("x", "x", 0.0, 0.1, {"frozen": 0.0}).verdict == "not distinguishable from the null"


def test_decay_rate_ignores_non_positive_samples():
    t = np.linspace(0, 5, 11)
    r = 3.0 * np.exp(-0.7 * t)
    r[3], r[6] = 0.0, np.nan
    assert compare.decay_rate(t, r) == pytest.approx(0.7, rel=1e-12)
    assert math.isnan(compare.decay_rate(t[:1], r[:1]))


def test_asymptotic_predictions_are_not_judged_on_a_run_too_short_to_show_them(sims):
    """Theorem 1's decay is judged once 2 eta t >= 1, the end state (W_p symmetric) once
    e^{-eta t} <= 0.1 and only without a simulation; a shorter run is told why (2 eta t by
    hand). Where the end state is due, the exact flow itself meets it: the threshold is not too
    early for the theory."""
    t = sims[0].t
    exponent = 2 * ETA * (t - t[0])
    short = Trajectory(t[:3], sims[0].wp[:3], sims[0].w[:3], ETA, 1.0)
    assert exponent[2] < 1
    untested = compare.untested(short)
    assert set(untested) == {"conservation_error", "final_asymmetry", "final_misalignment"}
    assert f"reached {exponent[2]:.2g}" in untested["conservation_error"]
    assert not set(untested) & {r.key for r in compare.compare(None, short)}
    assert "wp_error" in {r.key for r in compare.compare(short, short)}
    assert 1 <= exponent[-1] < 2 * math.log(10)  # t = 30: the decay is due, the end state not
    assert set(compare.untested(sims[0])) == {"final_asymmetry", "final_misalignment"}
    assert compare.untested(sims[0], predicted=True) == {}  # a simulation predicts the end
    assert compare.conservation_error(sims[0]) == pytest.approx(0.0, abs=1e-6)

    settings = RunSettings(t_end=60.0, n_out=31, rtol=1e-9, atol=1e-11)  # 2 eta t = 6
    ds = simulate("linear_byol", settings, dim=6, input_dim=8, eta=ETA, seed=0)
    long = Trajectory(ds["time"].values, ds["wp"].values, ds["w"].values, ETA, 1.0)
    assert compare.untested(long) == {}
    alone = by_key(compare.compare(None, long))
    wp = long.wp[-1]
    by_hand = np.linalg.norm(wp - wp.T) / np.linalg.norm(wp + wp.T)
    assert alone["final_asymmetry"].value == pytest.approx(by_hand)
    assert alone["final_asymmetry"].value < alone["final_asymmetry"].tolerance
    assert "final_asymmetry" not in by_key(compare.compare(long, long))


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


def test_a_lars_run_has_no_flow_time_and_no_eta(tmp_path):
    from reports.inputs import load_inputs
    from symbolic.common.results import write_netcdf
    from tests.reports import synthetic

    path = tmp_path / "lars" / "measurements.nc"
    write_netcdf(
        synthetic.run("barlow_twins", predictor=False), path, undefined=synthetic.UNDEFINED
    )
    _, (run,) = load_inputs([], [str(path.parent)])
    assert not run.has_flow_time and run.eta() is None


def rotated(traj: Trajectory, seed: int) -> Trajectory:
    """``traj`` with W(t) -> Q_t W(t), a random orthogonal Q_t at each time (W_p -> Q W_p Q^T):
    what the minibatch noise does to a run of a loss invariant under that map."""
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.standard_normal((traj.t.size, *traj.wp.shape[1:])))[0]
    wp = q @ traj.wp @ np.swapaxes(q, -1, -2)
    return Trajectory(traj.t, wp, q @ traj.w, traj.eta, traj.alpha_p)


def test_the_orbit_error_is_the_orthogonal_procrustes_minimum():
    """Against scipy's orthogonal Procrustes solution (an SVD of its own) at every time, and 0
    for a rotated copy; never above the plain relative error."""
    from scipy.linalg import orthogonal_procrustes

    rng = np.random.default_rng(3)
    p, m = rng.standard_normal((2, 5, 4, 7))
    residual = sum(
        np.sum((orthogonal_procrustes(m[t].T, p[t].T)[0].T @ m[t] - p[t]) ** 2) for t in range(5)
    )
    expected = math.sqrt(residual / np.sum(p**2))
    assert compare.orbit_error(p, m) == pytest.approx(expected, rel=1e-12)
    assert compare.orbit_error(p, m) < compare.relative_error(p, m)
    q = np.linalg.qr(rng.standard_normal((5, 4, 4)))[0]
    assert compare.orbit_error(p, q @ p) == pytest.approx(0.0, abs=1e-7)
    assert compare.relative_error(p, q @ p) > 0.5


def test_w_up_to_rotation_only_where_the_prediction_declares_the_symmetry(sims, ablations):
    """A run that is its prediction moved along the orbit W -> Q_t W (plus 0.5% noise): the W
    trajectory disagrees, W up to rotation agrees; it is computed only for a prediction that
    declares the symmetry, and another seed's start never agrees on it."""
    run = rotated(noisy(sims[0], 0.005), seed=8)
    declared = dataclasses.replace(sims[0], symmetries=(OUTPUT_ROTATION,))
    rows = by_key(compare.compare(declared, run, sims[1], ablations))
    assert rows["w_error"].verdict == "disagrees"
    assert rows["w_orbit_error"].verdict == "agrees", rows["w_orbit_error"].detail
    assert "w_orbit_error" not in by_key(compare.compare(sims[0], run, sims[1], ablations))
    other = by_key(compare.compare(declared, rotated(sims[2], seed=9), sims[1], ablations))
    assert other["w_orbit_error"].verdict != "agrees", other["w_orbit_error"].detail


def test_a_run_too_noisy_for_the_fixed_tolerance_is_not_decided():
    """Noise floor 0.05: 3x it (0.15) is above the fixed tolerance 0.1. An error of 0.12 is
    then not decided, unless the replay (no minibatch noise) is itself 0.11 from the
    prediction (the flow misses the optimiser: disagrees); 0.2 is beyond 3x the floor."""
    row = Row("x", "x", 0.12, 0.1, nulls={"frozen": 1.0}, noise_limit=0.15, replay_gap=0.03)
    assert row.verdict == "not decided" and "too noisy to decide" in row.detail
    row.replay_gap = 0.11
    assert row.verdict == "disagrees" and "free of minibatch noise, is 0.11" in row.detail
    assert Row("x", "x", 0.2, 0.1, {"frozen": 1.0}, noise_limit=0.15).verdict == "disagrees"


@pytest.mark.parametrize("ablated", [{"sigma2": 0.0}, {"eta": 0.0}])
def test_w_up_to_rotation_catches_a_prediction_without_augmentation_or_weight_decay(sims, ablated):
    """The rotation quotient must not forgive the physics: the prediction of the same start
    without X' (sigma^2 = 0) or without weight decay, set against a run that is the full
    prediction moved along the orbit, disagrees on W up to rotation (0.35-0.36 > 0.1)."""
    run = rotated(noisy(sims[0], 0.005), seed=8)
    wrong = dataclasses.replace(trajectory(0, **ablated), symmetries=(OUTPUT_ROTATION,))
    row = by_key(compare.compare(wrong, run, sims[1]))["w_orbit_error"]
    assert row.verdict == "disagrees", row.detail
