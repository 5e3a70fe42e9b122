"""The bridge's summaries: the seeds' verdict, the fitted power laws, the ladder table."""

from __future__ import annotations

import numpy as np
import pytest

from reports import bridge


def summary(verdicts, exponents=(4.8, 4.8, 4.8)):
    rung = bridge.ladder(bridge.QUICK)[0]
    values = [0.01] * len(verdicts)
    nulls = {"frozen": [0.8] * len(verdicts)}
    return bridge.Summary(
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
    assert bridge.Scaling("lr", list(lr), errors).slope == pytest.approx(0.5, rel=1e-10)
    batch = [64, 256, 1024]
    errors = [[2.0 * b**-0.25] * 2 for b in batch]
    assert bridge.Scaling("batch", batch, errors).slope == pytest.approx(-0.25, rel=1e-10)


def test_the_ladder_table_states_the_shortest_run_of_each_rung():
    frame = bridge.ladder_table([summary(["agrees"] * 3, (4.8, 2.39, 4.8))], 3).frame
    assert list(frame["exponent"]) == ["2.4"]
    assert list(frame["verdict"]) == ["agrees"]
