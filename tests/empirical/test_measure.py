"""Measurements: the decorrelation statistic and its floor, collapse, BatchNorm statistics filled
before the epoch-0 measurement, Liu's standardised feature space, the record."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynamics import observables as obs
from empirical.backbones import ConvNet
from empirical.config import build_method
from empirical.measure import (
    collapse_warnings,
    fill_batchnorm,
    predictor_measurements,
    representation_observables,
)
from empirical.record import build_dataset


@pytest.mark.parametrize("d, n", [(64, 2000), (64, 500), (128, 4000)])
def test_independent_features_sit_at_the_estimator_floor(d, n):
    """Independent Gaussian features: mean squared correlation within 10% of 1/N (the floor;
    over >= 6000 pairs the sampling spread of the mean is about 2%)."""
    values = [
        obs.mean_squared_correlation(np.random.default_rng(seed).normal(size=(n, d)))
        for seed in range(3)
    ]
    assert np.mean(values) == pytest.approx(1 / n, rel=0.1)
    assert np.mean(values) == pytest.approx(obs.correlation_floor(n), rel=0.1)  # as stored


def test_correlated_features_are_far_above_the_floor():
    rng = np.random.default_rng(0)
    n, d = 2000, 16
    shared = rng.normal(size=(n, 1))
    z = shared + 0.5 * rng.normal(size=(n, d))  # pairwise rho = 1 / 1.25 = 0.8
    assert obs.mean_squared_correlation(z) == pytest.approx(0.8**2, rel=0.05)


def test_a_collapsed_encoder_is_collapsed_not_decorrelated():
    """All dimensions dead (a constant embedding): the statistic is undefined, every dimension
    counts as dead and the embedding as collapsed; with half the dimensions dead, only the live
    ones enter the statistic."""
    rng = np.random.default_rng(1)
    n, d = 1000, 32
    h = rng.normal(size=(n, 8))
    constant = np.tile(rng.normal(size=(1, d)), (n, 1))
    values = representation_observables(h, constant)
    assert np.isnan(values["sigma_corr_mean_sq"]) and values["dead_dims"] == d
    assert values["collapsed"] == 1
    assert any("collapse" in m for m in collapse_warnings(values))
    half = rng.normal(size=(n, d))
    half[:, d // 2 :] = 0.0
    values = representation_observables(h, half)
    assert values["dead_dims"] == d // 2 and values["collapsed"] == 0
    live = np.corrcoef(half[:, : d // 2], rowvar=False) - np.eye(d // 2)
    expected = np.sum(live**2) / ((d // 2) * (d // 2 - 1))  # numpy's correlation, live dims only
    assert values["sigma_corr_mean_sq"] == pytest.approx(expected, rel=1e-10)
    healthy = representation_observables(h, rng.normal(size=(n, d)))
    assert healthy["collapsed"] == 0 and healthy["dead_dims"] == 0
    assert collapse_warnings(healthy) == []


def test_filled_batchnorm_statistics_match_train_mode():
    """A fresh ConvNet measured in eval mode after filling the BatchNorm statistics has an
    effective rank within 20% of the same network in train mode (batch statistics) on the same
    images; with the initial statistics (mean 0, variance 1) it does not."""
    torch.manual_seed(0)
    net = ConvNet(1, 8)
    g = torch.Generator().manual_seed(3)
    images = torch.rand(512, 1, 28, 28, generator=g) * 2 - 1
    with torch.no_grad():
        net.eval()
        before = obs.effective_rank(net(images).double().numpy())
        net.train()
        train_mode = obs.effective_rank(net(images).double().numpy())
        fill_batchnorm(net, net, images.split(128))
        net.eval()
        after = obs.effective_rank(net(images).double().numpy())
    assert after == pytest.approx(train_mode, rel=0.2)
    assert abs(before - train_mode) > 0.2 * train_mode


def test_liu_measurements_use_the_standardised_correlation():
    """With standardisation F1 F1^T is the Pearson correlation times (N-1)/N (eq. 18, unbiased)."""
    rng = np.random.default_rng(1)
    n, d = 400, 5
    z = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + 3.0
    wp = rng.normal(size=(d, d))
    corr = np.corrcoef(z, rowvar=False) * (n - 1) / n
    expected = np.linalg.norm(wp.T @ wp - corr) / np.linalg.norm(corr)
    liu = build_method("liu", ConvNet(1, 4), proj_hidden=8, proj_dim=d, batch_size=8)
    got = predictor_measurements(wp, liu.predictor_features(z), store=True)
    assert got["conservation_residual"] == pytest.approx(expected, rel=1e-12)
    assert got["wp"].shape == (d, d)
    assert "wp" not in predictor_measurements(wp, z, store=False)


def test_record_refuses_measurements_with_different_variables():
    history = [
        {"epoch": 0, "time": 0.0, "step": 0, "loss": 1.0},
        {"epoch": 1, "time": 0.5, "step": 4, "loss": 0.5, "knn_acc": 0.3},
    ]
    with pytest.raises(ValueError, match="step 4"):
        build_dataset(history, {"lr": [0.1] * 4}, {})
