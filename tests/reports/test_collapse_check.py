"""The verdicts of the bridge rung ``collapse`` (reports.collapse_check) on hand-made outcomes.

Training is what the rung does (minutes); here its tables are checked on outcomes whose answer
is known: a mode alive below its bracket and dead above it in every seed lies within the
bracket, one seed alive above it does not; the weight error is the largest relative error over
the modes alive in both.
"""

from __future__ import annotations

import numpy as np

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

    argv = train_command(SIZE, 0.3, 0, 2, tmp_path / "run")
    assert argv[1:4] == ["-m", "empirical.train", "byol"]
    args = build_parser().parse_args(argv[3:])
    assert (args.device, args.precision) == ("cpu", "fp32")
