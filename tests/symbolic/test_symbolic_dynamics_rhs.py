"""The dynamics models' right-hand sides against the gradients that symbolic derives.

Linear BYOL (Tian Lemma 1) is a population flow in X = E[x2 x1^T] and X + X' = E[x x^T]; a batch
of two views with exactly these second moments makes the batch loss of symbolic.losses linear_byol
(with stop-gradient) and, without it, Liu's invariance term 1/2 ||W_p F1 - F2||^2 equal to the
population loss, so their entry-wise sympy gradients must reproduce the model's velocities.
"""

from __future__ import annotations

import numpy as np
import pytest

from dynamics.models.free_features import FreeFeatureModel, FreeFeatureParams
from dynamics.models.linear_byol import LinearBYOLModel, LinearBYOLParams
from symbolic.derivation import derive

N1, DIM, N = 3, 2, 6  # input dimension, embedding dimension, batch (N >= 2 N1)
X_EIG = np.array([1.0, 0.7, 1.3])  # X = diag
AUG_EIG = np.array([0.5, 0.2, 0.4])  # X' = diag


def two_view_batch(rng):
    """x1, x2 (N, n1) with x1^T x1/N = x2^T x2/N = X + X' and x2^T x1/N = X exactly."""
    q, _ = np.linalg.qr(rng.normal(size=(N, 2 * N1)))
    q1, q2 = q[:, :N1], q[:, N1:]
    scale = np.sqrt(X_EIG + AUG_EIG)
    c = X_EIG / (X_EIG + AUG_EIG)
    x1 = np.sqrt(N) * q1 * scale
    x2 = np.sqrt(N) * (q1 * c + q2 * np.sqrt(1 - c**2)) * scale
    return x1, x2


def model(stop_gradient):
    params = LinearBYOLParams(
        dim=DIM,
        input_dim=N1,
        eta=0.07,
        alpha_p=1.7,
        x_spectrum=",".join(map(str, X_EIG)),
        aug_spectrum=",".join(map(str, AUG_EIG)),
        sigma2=1.0,
        stop_gradient=stop_gradient,
        seed=3,
    )
    return LinearBYOLModel(params)


def test_batch_has_the_population_moments():
    x1, x2 = two_view_batch(np.random.default_rng(0))
    np.testing.assert_allclose(x1.T @ x1 / N, np.diag(X_EIG + AUG_EIG), atol=1e-12)
    np.testing.assert_allclose(x2.T @ x2 / N, np.diag(X_EIG + AUG_EIG), atol=1e-12)
    np.testing.assert_allclose(x2.T @ x1 / N, np.diag(X_EIG), atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_linear_byol_rhs_is_the_derived_gradient(seed):
    rng = np.random.default_rng(seed)
    m = model(stop_gradient=True)
    q = m.params
    w, wa, wp = rng.normal(size=(DIM, N1)), rng.normal(size=(DIM, N1)), rng.normal(size=(DIM, DIM))
    x1, x2 = two_view_batch(rng)
    g_wp, g_f1, g_f2 = derive("linear_byol", N, DIM).gradient(wp, x1 @ w.T, x2 @ wa.T)
    assert not g_f2.any()  # the target is under stop-gradient
    d_w, d_wp, d_wa = m.velocities(w, wp, wa)
    np.testing.assert_allclose(d_wp, -q.alpha_p * g_wp - q.eta * wp, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(d_w, -g_f1.T @ x1 - q.eta * w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(d_wa, q.beta * (w - wa), rtol=1e-12)


def test_linear_byol_without_stop_gradient_is_the_derived_gradient():
    """Tian Theorem 2 flow: target = online network, both branches differentiated."""
    rng = np.random.default_rng(2)
    m = model(stop_gradient=False)
    q = m.params
    w, wp = rng.normal(size=(DIM, N1)), rng.normal(size=(DIM, DIM))
    x1, x2 = two_view_batch(rng)
    # Liu's invariance term without sg: c_inv ||W_p F1 - F2||^2 with c_inv = 1/2, no covariance
    hp = {"c_inv": 0.5, "c_cov": 0.0, "k": 1, "standardize": False}
    g_wp, g_z1, g_z2 = derive("liu", N, DIM, **hp).gradient(wp, x1 @ w.T, x2 @ w.T)
    d_w, d_wp, _ = m.velocities(w, wp, w)
    np.testing.assert_allclose(d_wp, -q.alpha_p * g_wp - q.eta * wp, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(d_w, -(g_z1.T @ x1 + g_z2.T @ x2) - q.eta * w, rtol=1e-10)


@pytest.mark.parametrize("alpha_p", [1.0, 2.5])
def test_free_feature_rhs_is_the_derived_gradient(alpha_p):
    params = FreeFeatureParams(dim=DIM, n_samples=4, eta=0.15, alpha_p=alpha_p, sigma2=0.4, seed=1)
    m = FreeFeatureModel(params)
    y = m.initial_state()
    state = m.layout.unpack(y)
    wp, big_f1 = state["W_p"], state["F1"]
    n = params.n_samples
    f1 = np.sqrt(n) * big_f1.T  # rows are samples: F1 = f1^T / sqrt(N)
    f2 = np.sqrt(n) * (big_f1 + m.offset).T
    g_wp, g_f1, _ = derive("linear_byol", n, DIM, eta=params.eta).gradient(wp, f1, f2)
    velocity = m.layout.unpack(m.rhs(0.0, y))
    # the loss carries the decay eta/2 (||W_p||^2 + ||F1||^2); the predictor's lr ratio scales
    # only the data term of dL/dW_p
    expected_wp = -alpha_p * (g_wp - params.eta * wp) - params.eta * wp
    expected_f1 = -np.sqrt(n) * g_f1.T  # dL/dF1 = sqrt(N) (dL/df1)^T
    np.testing.assert_allclose(velocity["W_p"], expected_wp, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(velocity["F1"], expected_f1, rtol=1e-10, atol=1e-12)
