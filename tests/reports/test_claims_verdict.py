"""The verdict rule of reports.reproduce by simulation: its error rates at the threshold, its
power beyond it, against Student's t and the noncentral t (scipy.stats), independent sources."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from dynamics.observables import sigma_observables
from reports.experiments import Finished, Workspace
from reports.reproduce import EMPIRICAL_CLAIMS, liu, plan, tian, verdict
from reports.reproduce.measured import Measured
from reports.reproduce.scale import CPU, GPU, QUICK
from reports.reproduce.verdict import (
    ALPHA,
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    decide,
    half_width,
)

#: Monte Carlo draws: the standard error of an estimated rate near 0.05 is 0.0015
DRAWS = 20_000


def rates(true_mean: float, sign: int, threshold: float, n: int, seed: int) -> dict[str, float]:
    """How often each verdict comes out of ``decide`` for n normal effects of ``true_mean`` and a
    spread drawn anew per draw (log-uniform over four decades: the rule must not depend on it)."""
    rng = np.random.default_rng(seed)
    sds = 10 ** rng.uniform(-2, 2, size=DRAWS)
    effects = true_mean + sds[:, None] * rng.normal(size=(DRAWS, n))
    verdicts = [decide(list(e), sign, threshold) for e in effects]
    return {v: verdicts.count(v) / DRAWS for v in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)}


def standard_error(p: float) -> float:
    return math.sqrt(p * (1 - p) / DRAWS)


@pytest.mark.parametrize("sign", [1, -1])
def test_at_the_threshold_each_wrong_verdict_is_rare_and_as_likely_as_the_other(sign):
    """True effect exactly at the threshold, 3 seeds: REPRODUCED and NOT REPRODUCED each at most
    10% (the issue's bound), and each at ALPHA within 5 standard errors (Student's t is exact for
    normal effects): the rule is symmetric."""
    threshold = sign * 0.5
    got = rates(threshold, sign, threshold, n=3, seed=11)
    for v in (REPRODUCED, NOT_REPRODUCED):
        assert got[v] <= 0.10, (v, got)
        assert abs(got[v] - ALPHA) < 5 * standard_error(ALPHA), (v, got)


def test_no_effect_with_a_zero_threshold_is_reproduced_at_alpha_only():
    got = rates(0.0, 1, 0.0, n=3, seed=12)
    assert abs(got[REPRODUCED] - ALPHA) < 5 * standard_error(ALPHA), got


@pytest.mark.parametrize(("n", "k"), [(3, 4.0), (3, 2.0), (5, 2.0)])
def test_power_beyond_the_threshold_is_the_noncentral_t(n, k):
    """A true effect k seed standard deviations beyond the threshold: REPRODUCED as often as the
    noncentral t says (one-sided test, n - 1 degrees of freedom, noncentrality k sqrt(n)); a
    clearly-beyond effect (4 sd, 3 seeds) with power above 0.97."""
    sd = 0.1
    rng = np.random.default_rng(14)
    effects = -0.5 - k * sd + sd * rng.normal(size=(DRAWS, n))
    power = np.mean([decide(list(e), -1, -0.5) == REPRODUCED for e in effects])
    exact = 1 - stats.nct.cdf(stats.t.ppf(1 - ALPHA, n - 1), n - 1, k * math.sqrt(n))
    assert abs(power - exact) < 5 * standard_error(exact) + 1e-3, (power, exact)
    if (n, k) == (3, 4.0):
        assert power > 0.97


def test_the_rates_the_docstring_states_are_the_exact_ones():
    """The power table of the module docstring ('k = 1: 32%, 2: 71%, ...') against the
    noncentral t, and its rate at the threshold against ALPHA."""
    doc = " ".join(verdict.__doc__.split())
    table = re.search(r"3 seeds: k = 1: (\d+)%, 2: (\d+)%, 3: (\d+)%, 4: (\d+)%", doc)
    assert table, "the docstring lost its power table"
    t3 = stats.t.ppf(1 - ALPHA, 2)
    for k, stated in zip((1, 2, 3, 4), table.groups(), strict=True):
        exact = 1 - stats.nct.cdf(t3, 2, k * math.sqrt(3))
        assert int(stated) == round(100 * exact), (k, stated, exact)
    five = re.search(r"with 5 seeds k = 2: (\d+)%", doc)
    exact5 = 1 - stats.nct.cdf(stats.t.ppf(1 - ALPHA, 4), 4, 2 * math.sqrt(5))
    assert five and int(five.group(1)) == round(100 * exact5)
    assert "t* = 2.92 for 3 seeds, 2.13 for 5" in doc
    assert (
        round(stats.t.ppf(1 - ALPHA, 2), 2) == 2.92 and round(stats.t.ppf(1 - ALPHA, 4), 2) == 2.13
    )


def test_the_old_rule_was_asymmetric_at_the_threshold():
    """The rule the docstring says this replaces (REPRODUCED: d(m - null) > 2 s and d(m - theta)
    > 0; NOT: d(m - theta) < -2 s), written out: at a threshold far from the null it says
    REPRODUCED half the time, NOT REPRODUCED 3.7% (the docstring's numbers)."""
    rng = np.random.default_rng(15)
    e = 10.0 + rng.normal(size=(200_000, 3))
    m, s = e.mean(axis=1), e.std(axis=1, ddof=1)
    assert np.mean((m > 2 * s) & (m > 10.0)) == pytest.approx(0.50, abs=0.01)
    assert np.mean(m - 10.0 < -2 * s) == pytest.approx(0.037, abs=0.002)


def test_the_bar_of_the_figure_crosses_the_threshold_exactly_when_inconclusive():
    rng = np.random.default_rng(16)
    for _ in range(300):
        e = list(rng.normal(rng.normal(0, 1), 10 ** rng.uniform(-2, 0), size=3))
        m, half = float(np.mean(e)), half_width(e)
        crosses = m - half < -0.5 < m + half
        assert (decide(e, -1, -0.5) == INCONCLUSIVE) == crosses


def test_effects_without_spread_are_decided_by_their_side_of_the_threshold():
    assert decide([-12.0, -12.0, -12.0], -1, 0.0) == REPRODUCED
    assert decide([1.0, 1.0, 1.0], -1, 0.0) == NOT_REPRODUCED
    assert decide([0.0, 0.0, 0.0], -1, 0.0) == INCONCLUSIVE


# ---------------------------------------------------------------------------- the claims
def run_dataset(**variables) -> xr.Dataset:
    """A run's measurements at two entries (random encoder, end): each variable a pair of
    values, or a pair of rows along ``mode``."""
    data = {}
    for name, (first, last) in variables.items():
        value = np.array([first, last], dtype=float)
        data[name] = (("epoch", "mode")[: value.ndim], value)
    data["step_at_measurement"] = ("epoch", np.array([0.0, 100.0]))
    return xr.Dataset(data)


def collapse_run(weight_decay: float, threshold: float) -> xr.Dataset:
    """A sweep run that collapses (z_std 1e-3, one mode left) above ``threshold`` and not below;
    sigma^2 0.25 (the prediction: eta* = 1/5), eta = wd / 2 per step."""
    dead = weight_decay > threshold
    ds = run_dataset(
        z_std=(1.0, 1e-3 if dead else 0.9),
        corr_eig=([1.0, 0.5, 0.2], [1e-6, 0, 0] if dead else [0.8, 0.4, 0.1]),
        effective_rank=(3.0, 1.0 if dead else 2.8),
        aug_ratio=(0.25, 0.25),
    )
    ds["weight_decay_step"] = ("step", np.full(4, weight_decay))
    ds["eta_step"] = ("step", np.full(4, weight_decay / 2))
    return ds


def weight_decay_of(options) -> float:
    """The value of --weight-decay in a run's options or command line."""
    return float(options[options.index("--weight-decay") + 1])


def test_tian_collapse_bisects_each_seeds_threshold_to_a_factor_1_25(tmp_path):
    """Synthetic sweep runs with a known threshold per seed (one below the grid's first step,
    two inside it): plan.refine's rounds, at most the experiment's refine_rounds, end with a
    bracket within 1.25 that holds the true threshold in every seed."""
    truth = {0: 0.13, 1: 0.3, 2: 0.011}
    claimed = plan.claim_set([EMPIRICAL_CLAIMS["tian-collapse"]], CPU, 3, tmp_path, "fashion-mnist")

    def measure(claimed, claim_id):
        datasets = {}
        specs = {}
        for role, (spec, seeds) in claimed.roles(claim_id).items():
            specs[role] = spec
            wd = weight_decay_of(spec.options) if role.startswith("wd=") else 1.0
            datasets[role] = {s: collapse_run(wd, truth[s]) for s in seeds}
        return Measured(datasets, specs)

    rounds = 0
    while plan.refine(claimed, measure):
        rounds += 1
    experiment = claimed.experiments["tian-collapse"]
    assert 2 <= rounds <= experiment.refine_rounds
    outcome = experiment.evaluate(measure(claimed, "tian-collapse"))
    for seed, true in truth.items():
        outcomes = tian.sweep_outcomes(measure(claimed, "tian-collapse"))[seed]
        lo, hi = tian.bracket(outcomes)
        assert lo <= true < hi and hi / lo <= 1.25, (seed, lo, hi)
    context = outcome.tests[-1]
    assert not context.decides
    # predicted wd* = eta* wd / eta = (1/5) * 2 = 0.4; seed 1's bracket holds 0.3
    assert context.effects[1] == pytest.approx(abs(math.log2(0.3 / 0.4)), abs=0.2)
    assert outcome.tests[3].verdict == REPRODUCED  # the main weight decay does not collapse


def test_bisection_stops_at_a_failed_middle_and_without_a_bracket():
    run = {0.1: (False, 0.5), 0.2: (True, -1.0)}
    assert tian.next_weight_decay(run) == 0.141
    assert tian.next_weight_decay({**run, 0.141: (None, math.nan)}) is None
    assert tian.next_weight_decay({0.1: (False, 0.5), 0.2: (False, 0.4)}) is None
    assert tian.next_weight_decay({0.1: (False, 0.5), 0.12: (True, -2.0)}) is None


def asymmetry_run(first: float, last: float) -> xr.Dataset:
    ds = run_dataset(wp_asymmetry=(first, last), alignment_cos=([0.0, 0.1], [0.9, 0.95]))
    ds["eta_step"] = ("step", np.full(4, 1e-3))
    ds["flow_time_step"] = ("step", np.arange(1.0, 5.0))
    return ds


@pytest.mark.parametrize(
    ("wd_end", "no_wd_end", "expected"),
    [
        ((0.70, 0.705, 0.695), (0.70, 0.71, 0.69), NOT_REPRODUCED),
        ((0.20, 0.21, 0.19), (0.99, 0.98, 1.0), REPRODUCED),
    ],
)
def test_tian_fig2_is_decided_by_the_same_seed_contrast(wd_end, no_wd_end, expected):
    """From an asymmetry of 1: both runs fall by the same 0.30 (the audit's --quick case: each
    run alone 'falls', the contrast log2(0.7 / 0.7) = 0 says NOT REPRODUCED), or weight decay
    leaves a fifth of what the run without it keeps (log2 0.2 = -2.3 < -1: REPRODUCED)."""
    specs = {"wd": None, "no_wd": None}
    datasets = {
        "wd": {s: asymmetry_run(1.0, e) for s, e in enumerate(wd_end)},
        "no_wd": {s: asymmetry_run(1.0, e) for s, e in enumerate(no_wd_end)},
    }
    outcome = EMPIRICAL_CLAIMS["tian-fig2"].build(QUICK).evaluate(Measured(datasets, specs))
    contrast = outcome.tests[0]
    assert contrast.decides and contrast.verdict == expected, contrast.effects
    alone = [t for t in outcome.tests if not t.decides]
    if expected == NOT_REPRODUCED:
        assert [t.mean for t in alone] == pytest.approx([-0.3, -0.3], abs=0.01)


def observed(z: np.ndarray) -> xr.Dataset:
    """The decorrelation variables empirical.measure records, by dynamics.observables."""
    values = sigma_observables(z)
    return xr.Dataset({k: ((), float(np.asarray(v))) for k, v in values.items()})


def test_liu_statistic_does_not_reward_dying_dimensions():
    """Rank-4 outputs on 64 dimensions, then the same with 56 dimensions dead: Liu et al.'s
    total ||Sigma - I||^2 falls from about 1006 to 72 (the audit's numbers), the floor-subtracted
    mean squared correlation over alive pairs does not fall; independent features sit at 0."""
    rng = np.random.default_rng(3)
    z = rng.normal(size=(2000, 4)) @ rng.normal(size=(4, 64))
    dying = z.copy()
    dying[:, 8:] = 0.0
    healthy, dead = observed(z), observed(dying)
    assert healthy["sigma_dist_pearson"] == pytest.approx(1006, rel=0.1)
    assert dead["sigma_dist_pearson"] == pytest.approx(72, rel=0.2)
    excess_healthy = float(liu.excess_correlation(healthy))
    excess_dead = float(liu.excess_correlation(dead))
    assert excess_dead > 0.8 * excess_healthy > 0.15
    independent = observed(rng.normal(size=(2000, 64)))
    assert abs(float(liu.excess_correlation(independent))) < 1e-4


@pytest.mark.parametrize("scale", [CPU, QUICK, GPU], ids=lambda s: s.name)
def test_garrido_width_hidden_layer_is_never_narrower_than_the_output(scale):
    experiment = EMPIRICAL_CLAIMS["garrido-width"].build(scale)
    widths = set()
    for spec in experiment.runs.values():
        o = spec.options
        hidden, dim = int(o[o.index("--proj-hidden") + 1]), int(o[o.index("--proj-dim") + 1])
        assert hidden >= dim, spec.label
        widths.add(dim)
    assert widths == set(scale.widths)


def test_liu_fig1_decides_on_both_baselines():
    """Every method's correlation rises from the random encoder's, then falls after the first
    measurement (the audit's --quick BYOL: 23.7 -> 76 -> 72 in ||Sigma - I||^2): the test from
    the later baseline is REPRODUCED, the one from the random encoder NOT REPRODUCED, both
    decide, so the claim is NOT REPRODUCED."""
    experiment = EMPIRICAL_CLAIMS["liu-fig1"].build(QUICK)
    floor = 1 / 199

    def run(seed: int) -> xr.Dataset:
        excess = np.array([0.01, 0.08, 0.05]) + 0.002 * seed
        return xr.Dataset(
            {
                "sigma_corr_mean_sq": ("epoch", excess + floor),
                "sigma_floor": ("epoch", np.full(3, floor)),
                "dead_dims": ("epoch", np.zeros(3)),
                "effective_rank": ("epoch", np.array([10.0, 6.0, 8.0])),
                "step_at_measurement": ("epoch", np.array([0.0, 16.0, 48.0])),
            }
        )

    datasets = {role: {s: run(s) for s in range(3)} for role in experiment.runs}
    outcome = experiment.evaluate(Measured(datasets, dict(experiment.runs)))
    deciding = [t for t in outcome.tests if t.decides]
    assert len(deciding) == 2 * len(experiment.runs)
    by_baseline = {
        "random encoder": [t.verdict for t in deciding if "random encoder" in t.name],
        "step 16": [t.verdict for t in deciding if "step 16" in t.name],
    }
    assert by_baseline["random encoder"] == [NOT_REPRODUCED] * len(experiment.runs)
    assert by_baseline["step 16"] == [REPRODUCED] * len(experiment.runs)
    assert verdict.claim_verdict(outcome.tests) == NOT_REPRODUCED


def test_the_command_bisects_round_by_round_and_resumes_without_training(
    tmp_path, monkeypatch, capsys
):
    """python -m reports.reproduce --quick --claim tian-collapse, with training replaced by
    synthetic runs that collapse above a known threshold per seed: the command trains the
    bisection's runs round by round after the sweep, records them in plan.json, brackets every
    seed's threshold within 1.25, and --resume trains nothing."""
    from reports.reproduce import cli
    from tests.empirical.conftest import _fashion_arrays, write_idx

    data = tmp_path / "fashion"
    data.mkdir()
    for name, array in _fashion_arrays(1000, 300).items():
        write_idx(data / f"{name}.gz", array)
    truth = {0: 0.05, 1: 0.3, 2: 0.011}
    trained = []

    def fake_run(workspace, commands, jobs, keep_going, report):
        done = []
        for command, _state in commands:
            wd = weight_decay_of(command.args)
            seed = int(command.args[command.args.index("--seed") + 1])
            ds = collapse_run(wd, truth[seed])
            ds.attrs["partial"] = 0
            command.output.mkdir(parents=True, exist_ok=True)
            ds.to_netcdf(command.output / "measurements.nc")
            trained.append((command.name, seed, wd))
            workspace.markers.finish(command, 0.0)
            finished = Finished(command, 0.0)
            report(finished)
            done.append(finished)
        return done

    monkeypatch.setattr(Workspace, "run", fake_run)
    out = tmp_path / "out"
    argv = ["--quick", "--claim", "tian-collapse", "--data", f"fashion-mnist:{data}"]
    assert cli.main([*argv, "--out", str(out), "--quiet"]) == 0
    experiment = EMPIRICAL_CLAIMS["tian-collapse"].build(QUICK)
    fixed = len(experiment.runs) * 3
    assert fixed < len(trained) <= fixed + 3 * experiment.refine_rounds
    commands = json.loads((out / "work" / "plan.json").read_text())["commands"]
    assert len(commands) == len(trained)
    record = json.loads((out / "claims.json").read_text())["claims"][0]
    brackets = record["facts"]["measured threshold wd (per seed, bracket)"]
    found = re.findall(r"seed \d: ([\d.e-]+) to ([\d.e-]+)", brackets)
    assert len(found) == 3, brackets
    for seed, (lo, hi) in enumerate(found):
        lo, hi = float(lo), float(hi)
        assert lo <= truth[seed] < hi and hi / lo <= 1.25, brackets
    before = len(trained)
    assert cli.main([*argv, "--out", str(out), "--resume", "--quiet"]) == 0
    assert len(trained) == before
