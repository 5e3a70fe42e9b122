"""Per-epoch measurements: collapse warnings, Liu's standardised feature space, the record."""

from __future__ import annotations

import numpy as np
import pytest

from empirical.measure import collapse_warnings, predictor_measurements, representation_observables
from empirical.record import build_dataset


def test_collapse_warnings_fire_on_collapsed_embeddings_only():
    """d = 256: the rank rule (< 1% of d = 2.56) can fire; RankMe is >= 1 for any embedding."""
    rng = np.random.default_rng(0)
    d = 256
    spread = rng.normal(size=(500, d))
    collapsed = np.tile(rng.normal(size=(1, d)), (500, 1)) + 1e-9 * rng.normal(size=(500, d))
    h = rng.normal(size=(500, 16))
    assert collapse_warnings(representation_observables(h, spread), d) == []
    msgs = collapse_warnings(representation_observables(h, collapsed), d)
    assert any("z_std" in m for m in msgs) and any("effective rank" in m for m in msgs)


def test_liu_measurements_use_the_standardised_correlation():
    """With standardisation F1 F1^T is the Pearson correlation times (N-1)/N (eq. 18, unbiased)."""
    rng = np.random.default_rng(1)
    n, d = 400, 5
    z = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + 3.0
    wp = rng.normal(size=(d, d))
    corr = np.corrcoef(z, rowvar=False) * (n - 1) / n
    expected = np.linalg.norm(wp.T @ wp - corr) / np.linalg.norm(corr)
    got = predictor_measurements(wp, z, standardised=True, store_limit=10)
    assert got["conservation_residual"] == pytest.approx(expected, rel=1e-12)
    assert got["wp"].shape == (d, d)
    assert "wp" not in predictor_measurements(wp, z, standardised=False, store_limit=4)


def test_record_refuses_epochs_with_different_variables():
    history = [
        {"epoch": 0, "time": 0.0, "step": 0, "loss": 1.0},
        {"epoch": 1, "time": 0.5, "step": 4, "loss": 0.5, "knn_acc": 0.3},
    ]
    with pytest.raises(ValueError, match="epoch 1"):
        build_dataset(history, np.array([0.1, 0.2, 0.3, 0.5]), {})
