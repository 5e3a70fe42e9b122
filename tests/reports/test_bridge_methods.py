"""The bridge's method rungs: a real quick ladder of one predicted method (Barlow Twins) and one
whose runs ``--from-run`` refuses (DirectPred); each row's W error is the run's distance from ITS
OWN prediction (the other seed's prediction put in its place makes the error jump), and the
refused rung states the refusal's reason. (A prediction shorter than its run is refused:
tests/reports/test_compare.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest

from reports import bridge, bridge_results

RUNGS = ("bt", "directpred")


@pytest.fixture(scope="module")
def quick_bridge(tmp_path_factory):
    out = tmp_path_factory.mktemp("bridge") / "out"
    argv = ["--quick", "--no-scaling", "--rungs", ",".join(RUNGS), "--seeds", "2", "--quiet"]
    assert bridge.main([*argv, "--jobs", "2", "--out", str(out)]) == 0
    return out


def _summaries(out):
    record = json.loads((out / "report" / "provenance.json").read_text())
    return {(s["rung"], s["statistic"]): s for s in record["summaries"]}


@pytest.mark.slow
def test_each_method_rung_is_compared_with_its_own_prediction(quick_bridge):
    found = _summaries(quick_bridge)
    own = np.asarray(found["bt", "w_error"]["values"])
    assert own.shape == (2,) and np.all(np.isfinite(own))
    assert "other seed" in found["bt", "w_error"]["nulls"]
    assert ("bt", "wp_error") not in found  # Barlow Twins has no W_p

    # the same runs against the predictions of the other seed's run (same method, same times,
    # other W(0)): the statistic reads the prediction file, so the error jumps
    size = bridge.QUICK
    rungs = [r for r in bridge.ladder(size) if r.key == "bt"]
    runs = bridge.plan(rungs, size, 2, False, quick_bridge / "work")
    runs.predictions["bt", 0], runs.predictions["bt", 1] = (
        runs.predictions["bt", 1],
        runs.predictions["bt", 0],
    )
    crossed = {(s.rung.key, s.key): s.values for s in bridge_results.collect(rungs, runs, 2)}
    assert np.all(np.asarray(crossed["bt", "w_error"]) > 3 * own), (crossed, own)


@pytest.mark.slow
def test_a_method_without_prediction_states_why_in_its_row(quick_bridge):
    row = _summaries(quick_bridge)["directpred", bridge_results.NO_PREDICTION]
    assert row["values"] == []
    for verdict in row["verdicts"]:
        assert "set from the features at every step (directpred)" in verdict, verdict
    table = (quick_bridge / "report" / "tables").glob("*.csv")
    text = "".join(p.read_text() for p in table)
    assert "directpred" in text and "no prediction" in text
