"""The ||Sigma - I|| statistic of reports.compare (``sigma_error``) says yes and no: a measured
decorrelation trajectory equal to its prediction up to 1% noise agrees and beats the frozen,
other-seed and ablation nulls (an ablated prediction that decorrelates 3x faster); a prediction
from another start, or one that decorrelates at half the rate, disagrees; without an ablation
null the matching prediction is "not tested"."""

from __future__ import annotations

import numpy as np

from reports import compare
from reports.compare import Trajectory
from reports.sigma_stat import sigma_error

T = np.linspace(0.0, 4.0, 21)


def decorrelation(start: float, rate: float = 1.0) -> np.ndarray:
    """A mean squared correlation falling from ``start`` to 0.05 at ``rate``."""
    return 0.05 + (start - 0.05) * np.exp(-rate * T)


def rows(prediction, measured, other, ablated=True):
    nulls = {"augmentation": Trajectory(T, sigma=decorrelation(0.4, rate=3.0))} if ablated else {}
    out = compare.compare(Trajectory(T, sigma=prediction), Trajectory(T, sigma=measured),
                          Trajectory(T, sigma=other), nulls)  # fmt: skip
    return {r.key: r for r in out}


def test_sigma_error_is_the_relative_error_of_the_trajectory():
    p = decorrelation(0.4)
    assert sigma_error(p, p) == 0
    assert np.isclose(sigma_error(p, 1.1 * p), 0.1)
    assert np.isclose(sigma_error(np.r_[p, np.nan], np.r_[1.1 * p, 3.0]), 0.1)  # NaN: left out


def test_a_matching_prediction_agrees_and_wrong_ones_do_not():
    rng = np.random.default_rng(0)
    truth = decorrelation(0.4)
    measured = truth * (1 + 0.01 * rng.standard_normal(T.size))
    row = rows(truth, measured, decorrelation(0.25))["sigma_error"]
    assert row.verdict == "agrees", row
    assert set(row.nulls) == {"frozen", "other seed"} and row.tested == ["augmentation"]
    assert rows(truth, measured, decorrelation(0.25), False)["sigma_error"].verdict == "not tested"
    for wrong in (decorrelation(0.25), decorrelation(0.4, rate=0.5)):
        row = rows(wrong, measured, decorrelation(0.25))["sigma_error"]
        assert row.verdict != "agrees", row
