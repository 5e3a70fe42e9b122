"""The bridge's summaries: the seeds' verdict, the fitted power laws, the ladder table."""

from __future__ import annotations

import runpy

import numpy as np
import pytest

from reports import bridge, bridge_results


def summary(verdicts, exponents=(4.8, 4.8, 4.8)):
    rung = bridge.ladder(bridge.QUICK)[0]
    values = [0.01] * len(verdicts)
    nulls = {"frozen": [0.8] * len(verdicts)}
    return bridge_results.Summary(
        rung, "wp_error", "W_p trajectory", values, nulls, 0.1, verdicts, list(exponents)
    )


def test_the_verdict_of_a_rung_is_one_only_when_every_seed_gives_it():
    assert summary(["agrees"] * 3).verdict == "agrees"
    mixed = summary(["agrees", "disagrees", "agrees"]).verdict
    assert mixed == "mixed: 2 agrees, 1 disagrees"


def test_the_fitted_exponent_recovers_a_known_power_law():
    """error = c * lr^a exactly (two seeds each, a common factor per seed): the slope is a."""
    lr = np.array([0.002, 0.0063, 0.02])
    errors = [[0.3 * v**0.5, 0.36 * v**0.5] for v in lr]
    assert bridge_results.Scaling("lr", list(lr), errors).slope == pytest.approx(0.5, rel=1e-10)
    batch = [64, 256, 1024]
    errors = [[2.0 * b**-0.25] * 2 for b in batch]
    assert bridge_results.Scaling("batch", batch, errors).slope == pytest.approx(-0.25, rel=1e-10)


def test_the_ladder_table_states_the_shortest_run_of_each_rung():
    frame = bridge_results.ladder_table([summary(["agrees"] * 3, (4.8, 2.39, 4.8))], 3).frame
    assert list(frame["exponent"]) == ["2.4"]
    assert list(frame["verdict"]) == ["agrees"]


def test_every_bridge_command_is_parsed_by_its_own_command_and_stays_on_the_cpu(tmp_path):
    """The whole ladder's command lines (trainings, predictions, nulls, the scaling runs) pass
    empirical.train's and dynamics.simulate's own parsers, and every training is pinned to the
    CPU in fp32 (on a GPU machine --device auto would pick CUDA and bf16)."""
    from reports.experiments import validate

    for size in (bridge.QUICK, bridge.FULL):
        runs = bridge.plan(bridge.ladder(size), size, 2, True, tmp_path)
        validate([*runs.trainings, *runs.simulations])
        assert len(runs.trainings) == 16 * 2 + 6 * size.scaling_seeds  # 8 rungs, 8 methods
        for c in runs.trainings:
            args = list(c.args)
            assert args[args.index("--device") + 1] == "cpu", c.name
            assert args[args.index("--precision") + 1] == "fp32", c.name
        names = [c.name for c in [*runs.trainings, *runs.simulations]]
        assert len(set(names)) == len(names)


def test_the_collapse_rung_runs_alone_in_the_locked_work_folder(tmp_path, monkeypatch):
    """--rungs collapse: reports.collapse_check's rung gets OUT/collapse and WORK/collapse and
    the seeds, no ladder run is planned or started; an unknown rung's message names it."""
    from reports import collapse_check
    from reports.experiments import Workspace

    calls = []

    def fake_rung(out, workspace, work, seeds, jobs, settings, quiet):
        assert (work.parent / ".owner").is_file() and workspace.work == work.parent
        calls.append((out, work, seeds, jobs))

    def no_ladder(*args, **kwargs):
        raise AssertionError("a ladder run started")

    monkeypatch.setattr(collapse_check, "write_rung", fake_rung)
    monkeypatch.setattr(Workspace, "run_stage", no_ladder)
    out = tmp_path / "report"
    argv = ["--quick", "--rungs", "collapse", "--seeds", "3", "--jobs", "1", "--quiet"]
    assert bridge.main([*argv, "--out", str(out)]) == 0
    assert calls == [(out / "collapse", out / "work" / "collapse", 3, 1)]
    with pytest.raises(bridge.UsageError, match="collapse"):
        bridge.main(["--rungs", "1,nope", "--out", str(tmp_path / "other")])


@pytest.mark.filterwarnings("ignore:'reports.bridge' found in sys.modules:RuntimeWarning")
def test_quick_method_rungs_are_quick_also_under_python_m(tmp_path):
    """``python -m reports.bridge --quick`` runs the module as ``__main__``: a second copy of its
    classes, whose QUICK is not equal to reports.bridge.QUICK (they once trained the full-size
    method rungs). The copy's quick plan gives the method rungs the quick sizes: 300 steps of
    128 images (38 epochs of 1024) on 1024 pairs."""
    copy = runpy.run_module("reports.bridge", run_name="copy_of_main", alter_sys=True)
    quick = copy["QUICK"]
    rungs = [r for r in copy["ladder"](quick) if r.key in bridge.METHOD_RUNGS]
    for c in copy["plan"](rungs, quick, 2, False, tmp_path).trainings:
        args = list(c.args)
        assert args[args.index("--epochs") + 1] == "38", c.name
        assert args[args.index("--pairs") + 1] == "1024", c.name


def test_every_method_rung_is_predicted_by_general_at_its_own_size_or_states_why_not(tmp_path):
    """At full size the method rungs train a linear encoder at method_size (8 coordinates, 1024
    images, 4096 fixed pairs, 2400 steps of lr 0.00125), VICReg's on the whole pool per step
    with 65 536 pairs (vicreg_size), each with the general prediction and its other-seed null,
    except DirectPred and DirectCopy, which get none (their row is --from-run's refusal)."""
    size = bridge.FULL
    rungs = [r for r in bridge.ladder(size) if r.key in bridge.METHOD_RUNGS]
    assert sorted(r.key for r in rungs) == sorted(bridge.METHOD_RUNGS)
    runs = bridge.plan(rungs, size, 2, False, tmp_path)
    factors = {r.key: r.lr_factor for r in rungs}  # Liu et al.: a tenth
    for c in runs.trainings:
        args = list(c.args)
        key = c.name.removeprefix("rung").rsplit("_seed", 1)[0]
        batch, pairs = (1024, 65536) if key == "vicreg" else (128, 4096)
        assert args[args.index("--input-dim") + 1] == "8", c.name
        assert args[args.index("--moments-images") + 1] == "1024", c.name
        assert args[args.index("--train-subset") + 1] == "1024", c.name
        assert args[args.index("--pairs") + 1] == str(pairs), c.name
        assert args[args.index("--batch-size") + 1] == str(batch), c.name
        # 2400 steps: 300 epochs of the 1024 images in batches of 128, 2400 of one batch
        assert int(args[args.index("--epochs") + 1]) * 1024 // batch == 2400, c.name
        lr = float(args[args.index("--lr") + 1]) * batch / 256  # the peak lr at this batch
        assert lr == pytest.approx(0.00125 * factors[key])
    predicted = {key for key, _ in runs.predictions}
    assert predicted == set(bridge.METHOD_RUNGS) - {"directpred", "directcopy"}
    for c in runs.simulations:
        assert list(c.args)[:2] == ["general", "--from-run"], c.name
    assert len(runs.simulations) == 2 * 2 * len(predicted)


def test_rung_4_is_a_two_layer_linear_encoder_between_the_linear_rungs_and_the_mlp(tmp_path):
    """Rung 4 (issue 20, item 5): Barlow Twins on W = W_2 W_1 at the method rungs' sizes, placed
    after SimSiam (3b) and before the MLP (5a), each seed predicted by general (which integrates
    the deep-linear flow of a run that recorded its layers) and its other-seed null."""
    size = bridge.FULL
    keys = [r.key for r in bridge.ladder(size)]
    assert keys.index("4") == keys.index("3b") + 1 == keys.index("5a") - 1
    rung = next(r for r in bridge.ladder(size) if r.key == "4")
    runs = bridge.plan([rung], size, 2, False, tmp_path)
    for c in runs.trainings:
        args = list(c.args)
        assert args[0] == "barlow_twins", c.name
        assert args[args.index("--backbone") + 1] == "linear", c.name
        assert args[args.index("--depth") + 1] == "2", c.name
        assert args[args.index("--pairs") + 1] == "4096", c.name
    assert [list(c.args)[:2] for c in runs.simulations] == [["general", "--from-run"]] * 4
