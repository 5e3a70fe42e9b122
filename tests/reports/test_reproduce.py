"""python -m reports.reproduce: the verdict rule on synthetic effects, the plan, bad input, and
the --quick set end to end (every file written and well formed, resume, the report section)."""

from __future__ import annotations

import itertools
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image
from scipy import stats

from reports.experiments import validate
from reports.reproduce import EMPIRICAL_CLAIMS as CLAIMS
from reports.reproduce.measured import collapse_margin, offdiagonal_mass
from reports.reproduce.plan import claim_set, makespan
from reports.reproduce.scale import CPU, GPU, QUICK
from reports.reproduce.verdict import (
    CLAIM_VERDICTS,
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    claim_verdict,
    decide,
)
from reports.reproduce.verdict import Test as VerdictTest
from tests.empirical.conftest import _fashion_arrays, write_idx

REPO = Path(__file__).resolve().parents[2]
DPI = 300


def seeds_of(mean: float, sd: float, n: int = 3, seed: int = 0) -> list[float]:
    """n effects with exactly this mean and sample standard deviation (ddof 1)."""
    z = np.random.default_rng(seed).normal(size=n)
    z = (z - z.mean()) / z.std(ddof=1)
    return list(mean + sd * z)


# ---------------------------------------------------------------------------- the verdict rule
@pytest.mark.parametrize("sign", [1, -1])
def test_a_clear_effect_beyond_the_threshold_is_reproduced(sign):
    effects = seeds_of(sign * 0.8, 0.05)
    assert decide(effects, sign, sign * 0.5) == REPRODUCED


@pytest.mark.parametrize("sign", [1, -1])
def test_an_effect_inside_the_seed_spread_is_inconclusive(sign):
    # the mean is beyond the threshold, but by less than t* s / sqrt(3) (t* = 2.92)
    effects = seeds_of(sign * 0.6, 0.45)
    assert decide(effects, sign, sign * 0.5) == INCONCLUSIVE


@pytest.mark.parametrize("sign", [1, -1])
def test_the_opposite_effect_is_not_reproduced(sign):
    effects = seeds_of(-sign * 0.4, 0.05)
    assert decide(effects, sign, 0.0) == NOT_REPRODUCED
    assert decide(effects, sign, sign * 0.5) == NOT_REPRODUCED


def test_a_significant_effect_short_of_the_threshold_is_not_reproduced():
    effects = seeds_of(-0.2, 0.02)  # clearly negative, clearly above -0.5
    assert decide(effects, -1, -0.5) == NOT_REPRODUCED


def test_a_significant_effect_just_short_of_the_threshold_inside_the_spread_is_inconclusive():
    effects = seeds_of(-0.45, 0.05)  # significant, short of -0.5 by one sd only
    assert decide(effects, -1, -0.5) == INCONCLUSIVE


def test_non_inferiority_uses_the_margin_as_its_null():
    margin = -0.01
    better = seeds_of(0.002, 0.002)  # no worse, significantly above the margin
    worse = seeds_of(-0.05, 0.003)  # worse by far more than the margin
    noisy = seeds_of(0.0, 0.02)  # cannot tell
    assert decide(better, 1, margin, null=margin) == REPRODUCED
    assert decide(worse, 1, margin, null=margin) == NOT_REPRODUCED
    assert decide(noisy, 1, margin, null=margin) == INCONCLUSIVE
    # a claim of a gain (null and threshold 0) would need the gain outside the spread
    assert decide(better, 1, 0.0) == INCONCLUSIVE


def test_never_a_verdict_from_fewer_than_three_seeds_or_an_undefined_effect():
    assert decide([-0.9, -0.91], -1, -0.5) == INCONCLUSIVE
    assert decide([-0.9, -0.91, math.nan], -1, -0.5) == INCONCLUSIVE
    assert decide([-0.9, -0.91, -0.92], -1, -0.5) == REPRODUCED


def test_the_rule_matches_its_definition_on_random_inputs():
    """Against the docstring's rule computed independently: scipy's one-sample t-test of the
    effects against the threshold, one-sided on each side at level 0.05."""
    rng = np.random.default_rng(1)
    for _ in range(500):
        e = rng.normal(rng.normal(0, 1), abs(rng.normal(0, 0.5)), size=int(rng.integers(3, 7)))
        sign = int(rng.choice([-1, 1]))
        theta = sign * abs(rng.normal(0, 0.5))
        beyond = "greater" if sign > 0 else "less"
        short = "less" if sign > 0 else "greater"
        expected = INCONCLUSIVE
        if stats.ttest_1samp(e, theta, alternative=beyond).pvalue < 0.05:
            expected = REPRODUCED
        elif stats.ttest_1samp(e, theta, alternative=short).pvalue < 0.05:
            expected = NOT_REPRODUCED
        assert decide(list(e), sign, theta) == expected


def test_a_threshold_on_the_wrong_side_of_the_null_is_refused():
    with pytest.raises(ValueError, match="wrong side"):
        decide([1, 2, 3], 1, -0.5)


def test_a_claim_needs_every_deciding_test_and_ignores_context():
    good = VerdictTest("a", "x", -1, -0.5, seeds_of(-0.9, 0.01), [0, 1, 2])
    bad = VerdictTest("b", "x", -1, -0.5, seeds_of(0.4, 0.01), [0, 1, 2])
    noisy = VerdictTest("c", "x", -1, -0.5, seeds_of(-0.6, 1.0), [0, 1, 2])
    assert claim_verdict([good, good]) == REPRODUCED
    assert claim_verdict([good, noisy]) == INCONCLUSIVE
    assert claim_verdict([good, noisy, bad]) == NOT_REPRODUCED
    context = VerdictTest("d", "x", -1, -0.5, bad.effects, [0, 1, 2], decides=False)
    assert claim_verdict([good, context]) == REPRODUCED
    assert VerdictTest.from_dict(json.loads(json.dumps(bad.as_dict()))).verdict == bad.verdict


# ---------------------------------------------------------------------------- statistics
def test_offdiagonal_mass_of_known_matrices():
    d = 64
    rng = np.random.default_rng(0)
    random = rng.normal(size=(d, d))
    ds = xr.Dataset({"wp": (("epoch", "row", "col"), np.stack([random, 3 * np.eye(d)]))})
    off = offdiagonal_mass(ds)
    assert off[0] == pytest.approx(np.sqrt(1 - 1 / d), abs=0.02)
    assert off[1] == 0.0


def test_collapse_margin_flags_a_point_a_vanishing_and_a_one_dimensional_representation():
    from dynamics.observables import effective_rank, feature_correlation, z_std

    rng = np.random.default_rng(0)
    spread = rng.normal(size=(500, 8))
    line = np.outer(rng.normal(size=500), rng.normal(size=8)) + 1e-6 * spread
    finals = {
        "spread": 3 * spread,
        "point": np.ones((500, 8)) + 1e-9 * spread,
        "shrunk": 1e-4 * spread,
        "line": line,
    }
    zs = [spread, *finals.values()]  # entry 0: the random encoder the scale refers to
    ds = xr.Dataset(
        {
            "z_std": ("epoch", [float(z_std(x)) for x in zs]),
            "effective_rank": ("epoch", [float(effective_rank(x)) for x in zs]),
            "corr_eig": (
                ("epoch", "mode"),
                [np.linalg.eigvalsh(feature_correlation(x))[::-1] for x in zs],
            ),
        }
    )
    margin = dict(zip(["start", *finals], collapse_margin(ds), strict=True))
    assert margin["start"] > 0 and margin["spread"] > 0  # a larger scale is no collapse
    assert margin["point"] < 0  # every sample the same point: z_std 0
    assert margin["shrunk"] < 0  # the same directions at a 1e-4 scale: every mode collapsed
    assert margin["line"] < 0  # one direction: effective rank 1
    assert z_std(line) > 0.05  # which z_std alone does not see


def test_eta_t_in_closed_form_matches_the_sum_over_steps():
    steps, lr, mu, wd = 500, 0.05, 0.9, 2e-3
    peak = lr * CPU.batch / 256
    direct = sum(wd * peak * (1 - mu ** (k + 1)) / (1 - mu) for k in range(steps))
    assert CPU.eta_t(wd, steps, lr, mu) == pytest.approx(direct, rel=1e-12)
    assert CPU.eta_t(wd, steps, lr, 0.0) == pytest.approx(wd * peak * steps)


def test_makespan_of_the_longest_first_schedule_is_within_lpt_bound():
    rng = np.random.default_rng(0)
    for _ in range(20):
        durations = list(rng.uniform(1, 10, size=7))
        best = min(
            max(sum(d for d, w in zip(durations, a, strict=True) if w == i) for i in range(2))
            for a in itertools.product(range(2), repeat=len(durations))
        )
        assert best - 1e-9 <= makespan(durations, 2) <= best * (4 / 3 - 1 / 6) + 1e-9


# ---------------------------------------------------------------------------- the plan
def test_every_claim_names_its_source_and_sentence_and_states_its_test():
    assert len(CLAIMS) == 8
    for c in CLAIMS.values():
        assert c.paper and c.where and len(c.quote) > 40, c.id
        assert "Statistic" in c.describe() and "Test" in c.describe(), c.id


def test_claims_that_need_the_same_configuration_share_its_runs(tmp_path):
    claimed = claim_set(list(CLAIMS.values()), CPU, 3, tmp_path, "fashion-mnist")
    keys = [c.name.split("/")[0] for c in claimed.commands]
    assert len(keys) == len(set(c.name for c in claimed.commands))
    users = {}
    for claim_id, experiment in claimed.experiments.items():
        for spec in experiment.runs.values():
            users.setdefault(spec.key, set()).add(claim_id)
    shared = max(users.values(), key=len)
    assert {"tian-fig2", "tian-directpred", "liu-fig1", "liu-fig3"} <= shared
    assert all(keys.count(k) == 3 for k in set(keys))


def test_the_default_plan_fits_the_cpu_budget_and_quick_is_minutes(tmp_path):
    for scale, budget in ((CPU, 90 * 60), (QUICK, 4 * 60)):
        claimed = claim_set(list(CLAIMS.values()), scale, 3, tmp_path, "fashion-mnist")
        assert makespan([c.estimate for c in claimed.commands], scale.jobs) < budget, scale.name


def test_main_runs_forget_the_initial_condition_on_the_cpu():
    """The sizing rule: e^{-2 eta t} << 1 at the end of the main runs."""
    eta_t = CPU.eta_t(CPU.weight_decay, CPU.steps, CPU.lr, CPU.momentum)
    assert math.exp(-2 * eta_t) < 0.01


def test_the_gpu_plan_is_a_set_of_valid_cuda_commands(tmp_path):
    """No CUDA here: every command of the GPU scale is still parsed and resolved by
    empirical.train (validate raises UsageError on a bad one)."""
    claimed = claim_set(list(CLAIMS.values()), GPU, 3, tmp_path, "fashion-mnist")
    validate(claimed.commands)
    for command in claimed.commands:
        argv = command.argv()
        assert argv[argv.index("--device") + 1] == "cuda" and "resnet18" in argv
        assert "--threads" not in argv


def test_plan_prints_the_estimate_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    proc = reproduce("--plan", "--claim", "liu-fig3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"3 of 3 runs to train, 2 at a time: estimated \d+ min", proc.stdout)
    assert not out.exists()


# ---------------------------------------------------------------------------- bad input
def reproduce(*args: str) -> subprocess.CompletedProcess:
    """The command line as a user runs it (no time limit: a loaded machine is only slower)."""
    return subprocess.run(
        [sys.executable, "-m", "reports.reproduce", *args], cwd=REPO, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--claim", "tian-fig9"], "--claim 'tian-fig9': unknown"),
        (["--seeds", "2"], "--seeds 2: allowed 3 to 100"),
        (["--jobs", "0"], "--jobs 0: allowed 1 to 256"),
        (["--quick", "--scale", "gpu"], "--quick and --scale gpu"),
        (["--data", "imagenet:/nowhere"], "--data imagenet:/nowhere"),
    ],
)
def test_bad_input_is_one_line_and_exit_two_before_anything_runs(tmp_path, args, expected):
    out = tmp_path / "out"
    proc = reproduce(*args, "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert not out.exists()


def test_out_that_is_a_file_or_a_foreign_folder_is_refused(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    for out, message in ((file, "is a file"), (foreign, "not a claims folder")):
        proc = reproduce("--quick", "--out", str(out))
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


def test_gpu_scale_without_cuda_is_a_clear_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    proc = reproduce("--scale", "gpu", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "python -m reports.reproduce: error: --scale gpu: no CUDA device is available on this "
        "machine (use --scale cpu)"
    ]


def test_the_gpu_plan_needs_no_gpu(tmp_path):
    """--plan of the GPU scale runs nothing, so it is printed on a machine without CUDA too."""
    out = tmp_path / "out"
    proc = reproduce("--scale", "gpu", "--plan", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "scale gpu" in proc.stdout and "runs to train, 4 at a time" in proc.stdout
    assert not out.exists()


def test_list_names_every_claim_and_its_source():
    proc = reproduce("--list")
    assert proc.returncode == 0, proc.stderr
    for c in CLAIMS.values():
        assert re.search(rf"^{re.escape(c.id)}$", proc.stdout, re.M), c.id
        assert c.source in proc.stdout


# ---------------------------------------------------------------------------- --quick end to end
@pytest.fixture(scope="module")
def tiny_fashion(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fashion_tiny")
    for name, array in _fashion_arrays(1000, 300).items():
        write_idx(root / f"{name}.gz", array)
    return root


@pytest.fixture(scope="module")
def quick(tiny_fashion, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The whole --quick set of claims, once, by the real command line."""
    out = tmp_path_factory.mktemp("claims") / "out"
    proc = reproduce("--quick", "--data", f"fashion-mnist:{tiny_fashion}", "--out", str(out))
    return out, proc


@pytest.mark.slow
def test_quick_writes_every_file(quick):
    out, proc = quick
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("claims.md", "claims.tex", "claims.csv", "tests.tex", "tests.csv", "claims.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != ".lock"] == []
    assert "plan:" in proc.stdout and "estimated" in proc.stdout
    assert len(re.findall(r"^\[\s*\d+/\d+\] ", proc.stdout, re.M)) == len(
        json.loads((out / "work" / "plan.json").read_text())["commands"]
    )


@pytest.mark.slow
def test_quick_tables_hold_one_row_a_claim_and_every_test(quick):
    out, _ = quick
    claims = pd.read_csv(out / "claims.csv")
    assert list(claims["claim"]) == list(CLAIMS)
    assert set(claims["verdict"]) <= set(CLAIM_VERDICTS)
    assert claims["source"].str.len().min() > 10
    result = json.loads((out / "claims.json").read_text())
    tests = pd.read_csv(out / "tests.csv", keep_default_na=False)
    assert len(tests) == sum(len(c["tests"]) for c in result["claims"])
    for record in result["claims"]:
        for test in record["tests"]:
            effects = [np.nan if e is None else e for e in test["effects"]]
            assert len(effects) == 3
            again = decide(effects, test["sign"], test["threshold"], test["null"])
            assert again == test["verdict"], (record["id"], test["name"])
        row = claims[claims["claim"] == record["id"]].iloc[0]
        assert row["verdict"] == record["verdict"]
    tex = (out / "claims.tex").read_text()
    assert "\\begin{table}" in tex and "\\toprule" in tex and "\\bottomrule" in tex
    assert tex.count("\\\\\n") >= len(CLAIMS)


@pytest.mark.slow
def test_quick_draws_one_paper_sized_figure_per_claim(quick):
    out, _ = quick
    for claim_id in CLAIMS:
        pdf = (out / "figures" / f"claim_{claim_id}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF"), claim_id
        with Image.open(out / "figures" / f"claim_{claim_id}.png") as image:
            assert image.format == "PNG"
            assert image.size[0] == round(7.2 * DPI), claim_id
            pixels = np.asarray(image.convert("L"), dtype=float)
        assert pixels.std() > 10, claim_id
    md = (out / "claims.md").read_text()
    for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (out / target).is_file(), target
    assert len(re.findall(r"^## ", md, re.M)) == len(CLAIMS) + 1


@pytest.mark.slow
def test_quick_resume_trains_nothing_more_and_a_rerun_without_it_is_refused(quick, tiny_fashion):
    out, _ = quick
    data = f"fashion-mnist:{tiny_fashion}"
    before = {p: p.stat().st_mtime_ns for p in (out / "work" / "runs").rglob("measurements.nc")}
    again = reproduce("--quick", "--data", data, "--out", str(out), "--resume")
    assert again.returncode == 0, again.stderr
    assert "0 of " in again.stdout and not re.search(r"^\[\s*\d+/", again.stdout, re.M)
    after = {p: p.stat().st_mtime_ns for p in (out / "work" / "runs").rglob("measurements.nc")}
    assert after == before
    refused = reproduce("--quick", "--data", data, "--out", str(out))
    assert refused.returncode == 2 and "pass --resume" in refused.stderr


@pytest.mark.slow
def test_quick_claims_get_a_section_in_the_main_report(quick, tmp_path):
    out, _ = quick
    report = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "reports.build", "--claims", str(out), "--out", str(report),
         "--audit", "none", "--quiet"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    md = (report / "report.md").read_text()
    assert "## 7. Reproduced claims" in md
    for claim_id in CLAIMS:
        assert (report / "figures" / f"claim_{claim_id}.png").is_file(), claim_id
        assert claim_id in md
    assert (report / "tables" / "claims.csv").is_file()


def test_build_refuses_a_folder_without_claims(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "reports.build", "--claims", str(tmp_path), "--out",
         str(tmp_path / "report"), "--audit", "none"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "no claims.json" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
