"""The verdicts of the bridge rung ``collapse`` (reports.collapse_check) on hand-made outcomes.

Training is what the rung does (minutes); here its tables are checked on outcomes whose answer
is known: a mode alive below its bracket and dead above it in every seed lies within the
bracket, one seed alive above it does not; the weight error is the largest relative error over
the modes alive in both.
"""

from __future__ import annotations

import numpy as np
import pytest

from reports.collapse_check import BRACKET, Outcome, away_from_thresholds, mode_table, run_table


def outcome(wd, seed, measured, predicted=None, weights=(1.0, 2.0, 3.0)):
    measured = np.array(measured, bool)
    predicted = measured if predicted is None else np.array(predicted, bool)
    thresholds = np.array([2.0, 1.0, 0.25])
    w = np.array(weights)
    return Outcome(wd, seed, predicted, int(np.sum(thresholds > wd)), measured, thresholds, w, w)


def result(outcomes):
    return {"pilot_thresholds": [2.0, 1.0, 0.25], "outcomes": outcomes}


def bracket(t):
    return round(t * (1 - BRACKET), 6), round(t * (1 + BRACKET), 6)


def test_a_mode_alive_below_and_dead_above_its_bracket_is_within():
    lo, hi = bracket(1.0)
    outcomes = [outcome(lo, s, [1, 1, 0]) for s in (0, 1)]
    outcomes += [outcome(hi, s, [1, 0, 0]) for s in (0, 1)]
    frame = mode_table(result(outcomes)).frame.set_index("mode")
    assert frame.loc[2, "within"] == "yes"
    assert frame.loc[2, "alive_below"] == "2/2" and frame.loc[2, "dead_above"] == "2/2"


def test_one_seed_alive_above_the_bracket_is_outside():
    lo, hi = bracket(1.0)
    outcomes = [outcome(lo, s, [1, 1, 0]) for s in (0, 1)]
    outcomes += [outcome(hi, 0, [1, 0, 0]), outcome(hi, 1, [1, 1, 0])]
    frame = mode_table(result(outcomes)).frame.set_index("mode")
    assert frame.loc[2, "within"] == "no" and frame.loc[2, "dead_above"] == "1/2"


def test_weight_error_and_nearness():
    alive_p, alive_m = np.array([1, 1, 0], bool), np.array([1, 0, 1], bool)
    thresholds, weights = np.array([2.0, 1.0, 0.45]), np.array([1.0, 2.0, 3.0])
    o = Outcome(0.5, 0, alive_p, 2, alive_m, thresholds, weights, np.array([1.1, 9.0, 0.0]))
    assert abs(o.weight_error - 0.1) < 1e-12  # mode 0 only: 1.1 against 1.0
    assert o.near_threshold  # 0.5 is within 20% of 0.45
    assert not outcome(0.6, 0, [1, 1, 0]).near_threshold  # thresholds 2, 1, 0.25
    table = run_table(result([o])).frame
    assert table.loc[0, "predicted"] == table.loc[0, "measured"] == 2
    assert table.loc[0, "agree"] == "no"  # the same count, not the same modes


def test_weight_decays_away_from_the_thresholds_lie_between_them():
    away = away_from_thresholds(np.array([2.0, 1.0, 0.25]))
    np.testing.assert_allclose(away, [0.5, np.sqrt(2.0)])


def test_the_check_s_trainings_are_parsed_by_the_trainer_and_stay_on_the_cpu(tmp_path):
    """Every training of the rung is a valid empirical.train command line, pinned to the CPU in
    fp32 (a CPU-sized run must not switch to CUDA and bf16 on a GPU machine)."""
    from empirical.train import build_parser
    from reports.collapse_check import SIZE, train_command
    from reports.experiments import validate

    command = train_command("wd0.3_seed0", SIZE, 0.3, 0, 2, tmp_path / "run")
    validate([command])
    argv = command.argv()
    assert argv[1:4] == ["-m", "empirical.train", "byol"]
    args = build_parser().parse_args(argv[3:])
    assert (args.device, args.precision) == ("cpu", "fp32")
    assert (args.weight_decay, args.seed, args.out) == (0.3, 0, str(tmp_path / "run"))


@pytest.fixture
def tiny_check(tmp_path, monkeypatch):
    """The rung at a few seconds a run: synthetic Fashion-MNIST files, one bracketed mode."""
    from reports import collapse_check
    from tests.empirical.conftest import _fashion_arrays, write_idx

    data = tmp_path / "fashion"
    data.mkdir()
    for name, array in _fashion_arrays(1000, 300).items():
        write_idx(data / f"{name}.gz", array)
    size = collapse_check.CheckSize(
        input_dim=4, width=4, batch=64, lr=0.1, epochs=2, pool=256, measure_every=4,
        val_size=100, eval_size=200, data=f"fashion-mnist:{data}",
    )  # fmt: skip
    monkeypatch.setattr(collapse_check, "SIZE", size)
    monkeypatch.setattr(collapse_check, "BRACKETED", 1)
    return tmp_path


def test_an_interrupted_rung_resumes_keeping_its_finished_runs(tiny_check, monkeypatch):
    """The rung on the bridge's runner: interrupted after its third finished run (pilot and two
    bracketing runs), ``--resume`` starts only the two runs that had not finished, leaves the
    markers of the finished ones as they were, and reports all four bracketing runs."""
    import json

    from reports import bridge
    from reports.experiments import pool
    from reports.experiments.markers import Markers

    out = tiny_check / "report"
    argv = ["--rungs", "collapse", "--seeds", "2", "--jobs", "1", "--quiet", "--out", str(out)]
    finish, finished = Markers.finish, []

    def interrupt_after_three(self, command, seconds):
        finish(self, command, seconds)
        finished.append(command.name)
        if len(finished) == 3:
            raise KeyboardInterrupt("stopped by the test")

    monkeypatch.setattr(Markers, "finish", interrupt_after_three)
    with pytest.raises(KeyboardInterrupt, match="--resume"):
        bridge.main(argv)
    assert finished[0] == "collapse/pilot" and len(finished) == 3
    done = out / "work" / "done"
    kept = {p.name: p.read_bytes() for p in done.glob("collapse__*.json")}
    assert len(kept) == 3
    assert not (out / "collapse" / "collapse.md").exists()

    monkeypatch.setattr(Markers, "finish", finish)
    started, start = [], pool.start
    monkeypatch.setattr(
        pool, "start", lambda argv, *rest: started.append(argv) or start(argv, *rest)
    )
    assert bridge.main([*argv, "--resume"]) == 0
    assert len(started) == 2
    assert all("--resume" not in a for a in started)  # interrupted before they began
    for name, data in kept.items():
        assert (done / name).read_bytes() == data, name
    record = json.loads((out / "collapse" / "provenance.json").read_text())
    assert len(record["runs"]) == 4 and record["kept"] == 2
    assert len(list(done.glob("collapse__*.json"))) == 5
