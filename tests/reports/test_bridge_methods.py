"""The bridge's method rungs: a real quick ladder of two methods (Barlow Twins, BYOL's cosine
loss) and one whose runs ``--from-run`` refuses (DirectPred); each row's W error is the run's
distance from ITS OWN prediction (a prediction of another method's run put in its place makes
the error jump), and the refused rung states the refusal's reason."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reports import bridge, bridge_results
from reports.compare import ShortPrediction

RUNGS = ("bt", "byol_cosine", "directpred")


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
    for rung in ("bt", "byol_cosine"):
        own = np.asarray(found[rung, "w_error"]["values"])
        assert own.shape == (2,) and np.all(np.isfinite(own)), rung
        assert "other seed" in found[rung, "w_error"]["nulls"], rung
    assert ("byol_cosine", "wp_error") in found  # BYOL's W_p is predicted too
    assert ("bt", "wp_error") not in found  # Barlow Twins has no W_p

    # the same runs against the predictions of the other seed's run (same method, same times,
    # other W(0)): the statistic reads the prediction file, so the error jumps; BYOL's run against
    # Barlow Twins' prediction (half BYOL's flow time per step: too short) is refused
    size = bridge.QUICK
    rungs = [r for r in bridge.ladder(size) if r.key in ("bt", "byol_cosine")]
    runs = bridge.plan(rungs, size, 2, False, quick_bridge / "work")
    own_files = dict(runs.predictions)
    again = {(s.rung.key, s.key): s.values for s in bridge_results.collect(rungs, runs, 2)}
    for rung in ("bt", "byol_cosine"):
        runs.predictions[rung, 0], runs.predictions[rung, 1] = (
            own_files[rung, 1],
            own_files[rung, 0],
        )
    crossed = {(s.rung.key, s.key): s.values for s in bridge_results.collect(rungs, runs, 2)}
    for rung in ("bt", "byol_cosine"):
        own = np.asarray(found[rung, "w_error"]["values"])
        assert np.allclose(again[rung, "w_error"], own, rtol=1e-12), rung  # the same files
        assert np.all(np.asarray(crossed[rung, "w_error"]) > 3 * own), (rung, crossed, own)
    runs.predictions = {**own_files, ("byol_cosine", 0): own_files["bt", 0]}
    with pytest.raises(ShortPrediction):
        bridge_results.collect(rungs[1:], runs, 2)


@pytest.mark.slow
def test_a_method_without_prediction_states_why_in_its_row(quick_bridge):
    row = _summaries(quick_bridge)["directpred", bridge_results.NO_PREDICTION]
    assert row["values"] == []
    for verdict in row["verdicts"]:
        assert "set from the features at every step (directpred)" in verdict, verdict
    table = (quick_bridge / "report" / "tables").glob("*.csv")
    text = "".join(p.read_text() for p in table)
    assert "directpred" in text and "no prediction" in text
