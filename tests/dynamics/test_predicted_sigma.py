"""The Sigma statistics predicted from W and the images' moments against the same statistics
measured on the images (dynamics.observables on the samples z = W x): identical for the images'
own moments (to 1e-7: RankMe takes the square root of an eigenvalue that is 0 to rounding for
a dead dimension), within sampling error for the population's."""

from __future__ import annotations

import numpy as np
import pytest

from dynamics import observables as obs
from dynamics.predicted_sigma import held_out_sigma

N, N1, D = 400, 10, 6


def images(rng, n=N):
    """Correlated, non-centred inputs (n, n1): x = mu + A g."""
    a = rng.standard_normal((N1, N1)) / np.sqrt(N1)
    return 0.7 + rng.standard_normal((n, N1)) @ a.T, a


def measured(z):
    values = obs.sigma_observables(z)
    values["effective_rank"] = obs.effective_rank(z)
    values["z_norm"] = np.linalg.norm(z) / np.sqrt(z.shape[0])
    return values


@pytest.mark.parametrize("dead", [False, True])
def test_prediction_from_the_moments_equals_the_statistic_of_the_images(dead):
    rng = np.random.default_rng(1)
    x, _ = images(rng)
    w = rng.standard_normal((D, N1))
    if dead:  # a dead dimension: constant output (a zero row of W)
        w[2] = 0.0
    predicted = held_out_sigma(w, x.mean(0), x.T @ x / N, N)
    direct = measured(x @ w.T)
    for name, value in predicted.items():
        np.testing.assert_allclose(value, direct[name], rtol=1e-7, atol=1e-12, err_msg=name)
    assert predicted["dead_dims"] == float(dead)


def test_population_moments_predict_the_sample_pearson_to_sampling_error():
    """With the population moments (mu, A A^T + mu mu^T) the prediction is the population
    correlation; the sample Pearson correlation of N images scatters around it by about
    (1 - rho^2)/sqrt(N) per entry."""
    rng = np.random.default_rng(2)
    _, a = images(rng, 2)
    mu = np.full(N1, 0.7)
    w = rng.standard_normal((D, N1))
    cov = w @ a @ a.T @ w.T
    rho = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    predicted = held_out_sigma(w, mu, a @ a.T + np.outer(mu, mu), N)
    np.testing.assert_allclose(predicted["sigma_dist_pearson"], np.sum((rho - np.eye(D)) ** 2))
    n_big = 20000
    x = mu + rng.standard_normal((n_big, N1)) @ a.T
    sample = obs.pearson_correlation(x @ w.T)
    off = ~np.eye(D, dtype=bool)
    assert np.max(np.abs(sample - rho)[off]) < 4 / np.sqrt(n_big)
    direct = measured(x @ w.T)["sigma_corr_mean_sq"]
    assert abs(direct - predicted["sigma_corr_mean_sq"]) < 0.02 * predicted["sigma_corr_mean_sq"]
