"""The linear BYOL/SimSiam flow against its loss and against Tian et al. Theorem 2."""

import numpy as np
import pytest

from dynamics.integrate import SaveAt, integrate
from dynamics.models.linear_byol import (
    LinearBYOLModel,
    LinearBYOLParams,
    LinearSimSiamModel,
    LinearSimSiamParams,
)


def _numerical_gradient(f, x, h=1e-6):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        grad[idx] = (f(x + e) - f(x - e)) / (2 * h)
    return grad


@pytest.mark.parametrize("stop_gradient", [True, False])
def test_rhs_is_minus_the_gradient_of_the_population_loss(stop_gradient):
    """dW_p/dt = -alpha_p dL/dW_p - eta W_p; dW/dt = -dL/dW|_{W_a fixed} - eta W (or, without the
    stop-gradient, the full derivative with W_a = W), L = 1/2 E||W_p W x1 - W_a x2||^2."""
    params = LinearBYOLParams(
        dim=3, input_dim=4, x_spectrum="random", aug_spectrum="random", alpha_p=1.6, eta=0.07,
        stop_gradient=stop_gradient, seed=5,
    )  # fmt: skip
    model = LinearBYOLModel(params)
    rng = np.random.default_rng(1)
    w, wp, wa = (
        rng.standard_normal((3, 4)),
        rng.standard_normal((3, 3)),
        rng.standard_normal((3, 4)),
    )
    y = model.initial_state(w, wp, wa)
    b = model.layout.unpack(model.rhs(0.0, y))
    target = wa if stop_gradient else None

    def loss_w(x):
        return model.loss(x, wp, x if target is None else target)

    expected_w = -_numerical_gradient(loss_w, w) - params.eta * w
    expected_wp = (
        -params.alpha_p
        * _numerical_gradient(lambda x: model.loss(w, x, w if target is None else target), wp)
        - params.eta * wp
    )
    np.testing.assert_allclose(b["W"], expected_w, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(b["W_p"], expected_wp, rtol=1e-6, atol=1e-7)
    if stop_gradient:
        np.testing.assert_allclose(b["W_a"], params.beta * (w - wa))


def test_population_loss_matches_monte_carlo_views():
    """L = 1/2 E||W_p W x1 - W_a x2||^2 with xbar ~ N(0, X), x' = xbar + N(0, X')."""
    params = LinearBYOLParams(dim=2, input_dim=3, x_spectrum="random", aug_spectrum="random")
    model = LinearBYOLModel(params)
    rng = np.random.default_rng(2)
    w, wp, wa = (
        rng.standard_normal((2, 3)),
        rng.standard_normal((2, 2)),
        rng.standard_normal((2, 3)),
    )
    n = 400_000
    xbar = rng.multivariate_normal(np.zeros(3), model.x_corr, n)
    x1 = xbar + rng.multivariate_normal(np.zeros(3), model.aug_cov, n)
    x2 = xbar + rng.multivariate_normal(np.zeros(3), model.aug_cov, n)
    sample = 0.5 * np.mean(np.sum((x1 @ (wp @ w).T - x2 @ wa.T) ** 2, axis=1))
    assert model.loss(w, wp, wa) == pytest.approx(sample, rel=0.02)


def test_without_stopgrad_w_decays_to_zero_within_theorem2_bound():
    """Tian Theorem 2: H >= (sigma^2 + eta) I when X' = sigma^2 I, so
    ||W(t)|| <= e^{-(sigma^2 + eta) t} ||W(0)||."""
    params = LinearSimSiamParams(dim=5, input_dim=7, eta=0.02, sigma2=0.3, stop_gradient=False)
    model = LinearSimSiamModel(params)
    traj = integrate(model.rhs, model.initial_state(), SaveAt.uniform(40.0, 81))
    w = model.layout.unpack(traj.y)["W"]
    norms = np.linalg.norm(w, axis=(1, 2))
    bound = np.exp(-(params.sigma2 + params.eta) * traj.t) * norms[0]
    assert np.all(norms <= bound * (1 + 1e-8))
    assert norms[-1] < 1e-5 * norms[0]


def test_with_stopgrad_the_same_start_does_not_collapse():
    params = LinearSimSiamParams(dim=5, input_dim=7, eta=0.02, sigma2=0.3)
    model = LinearSimSiamModel(params)
    traj = integrate(model.rhs, model.initial_state(), SaveAt.uniform(40.0, 81))
    w = model.layout.unpack(traj.y)["W"]
    assert np.linalg.norm(w[-1]) > 0.1


def test_observables_of_the_default_run_match_theory():
    """Default linear BYOL: surviving eigenvalues at p*_+, W_p symmetric, W_a caught up."""
    model = LinearBYOLModel(LinearBYOLParams())
    traj = integrate(model.rhs, model.initial_state(), SaveAt.uniform(200.0, 101))
    ds = model.observables(traj.t, traj.y)
    final = ds.isel(time=-1)
    p_plus = model.closed_forms()["p_star_plus"]
    eig = final["wp_eig_real"].values
    alive = np.abs(eig) > 0.1
    assert 0 < alive.sum() < len(eig)  # both outcomes
    np.testing.assert_allclose(eig[alive], p_plus, rtol=1e-3)
    assert float(final["wp_asymmetry"]) < 1e-2
    assert float(final["tau"]) == pytest.approx(1.0, abs=1e-3)
    # the weight-space residual decays exactly as e^{-2 eta t} (Theorem 1)
    np.testing.assert_allclose(
        ds["conservation_residual_weight"], np.exp(-2 * 0.04 * ds["time"]), rtol=1e-6
    )
