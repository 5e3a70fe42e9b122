"""The literature's closed forms built in as scenarios, each against its formula and its loss.

stepwise_bt (Simon et al. 2023) and isoloss (Halvagal et al. 2023) integrate matrix flows; the
per-mode solutions stored beside them are derived by hand in the models' docstrings. Each test
checks the matrix flow against one independent source: autograd of the loss written from its
definition, or the per-mode closed form, to 1e-6 (the issue's bar).
"""

import json

import numpy as np
import pytest
import torch

from dynamics import scenarios
from dynamics.models.isoloss import predictor_power
from dynamics.simulate import RunSettings, simulate

TIGHT = {"rtol": 1e-11, "atol": 1e-14}


def _model(name, **params):
    scenario = scenarios.get(name)
    return scenario.model(scenario.params(**params))


# ---- stepwise linear Barlow Twins -------------------------------------------------------------


def test_stepwise_bt_rhs_is_minus_the_gradient_of_the_unnormalised_bt_loss():
    """dW/dt = -d/dW ||W Gamma W^T - I||_F^2 at a random (not aligned) W, by autograd."""
    model = _model("stepwise_bt", gamma="1.3,0.7,0.2", seed=3)
    w = np.random.default_rng(0).standard_normal((3, 3))
    wt = torch.tensor(w, requires_grad=True)
    gamma = torch.tensor(model.cross_corr)
    loss = torch.sum((wt @ gamma @ wt.T - torch.eye(3, dtype=torch.float64)) ** 2)
    loss.backward()
    rhs = model.layout.unpack(model.rhs(0.0, model.layout.pack(W=w)))["W"]
    np.testing.assert_allclose(rhs, -wt.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("gamma", "scale"), [("1,0.5,0.25", 1e-3), ("3,0.8,0.1,0.05", 0.05)])
def test_stepwise_bt_follows_the_logistic_closed_form(gamma, scale):
    ds = simulate(
        "stepwise_bt", RunSettings(t_end=40.0, n_out=161, **TIGHT), gamma=gamma, init_scale=scale
    )
    assert float(np.max(np.abs(ds["lambda_mode"] - ds["lambda_mode_closed_form"]))) < 1e-6
    assert float(ds["offdiag_norm"].max()) < 1e-8  # the aligned start stays aligned
    # each mode whose step lies well inside the run has been learned: lambda_j = 1
    half = np.array(json.loads(ds.attrs["half_time"]))
    learned = 8 * np.array([float(g) for g in gamma.split(",")]) * (40.0 - half) > 20
    assert learned.sum() >= 3
    np.testing.assert_allclose(ds["lambda_mode"].isel(time=-1).values[learned], 1.0, atol=1e-6)


def test_stepwise_bt_half_times_are_where_the_flow_reaches_one_half():
    """Integrate exactly up to each stored half-time: lambda_j there is 1/2."""
    params = {"gamma": "1,0.5,0.25", "init_scale": 1e-3}
    half = json.loads(
        simulate("stepwise_bt", RunSettings(t_end=1.0, n_out=2), **params).attrs["half_time"]
    )
    # Simon et al.'s small-start times for these (the science audit's "oracle" values)
    np.testing.assert_allclose(half, [1.7269, 3.6272, 7.6009], atol=1e-4)
    for j, t_half in enumerate(half):
        ds = simulate("stepwise_bt", RunSettings(t_end=t_half, n_out=2, **TIGHT), **params)
        assert abs(float(ds["lambda_mode"].isel(time=-1, mode=j)) - 0.5) < 1e-6
        # the other modes are far from their step: the steps are separated
        others = np.delete(ds["lambda_mode"].isel(time=-1).values, j)
        assert np.all((others > 0.99) | (others < 0.01))


def test_stepwise_bt_rejects_a_bad_spectrum():
    with pytest.raises(ValueError, match="gamma='1,-2'"):
        scenarios.get("stepwise_bt").params(gamma="1,-2")


# ---- Euclidean BYOL and IsoLoss (Halvagal et al. 2023) ---------------------------------------


def _population_gradient(model, w, loss):
    """-dL/dW of the population loss with X = I, X' = sigma^2 I, W_p = F^alpha under no gradient.

    Euclidean: L = 1/2 E||W_p W x1 - sg(W x2)||^2; IsoLoss: L = 1/2 E||W x1 - sg(W x1 - W_p W x1
    + W x2)||^2 -- both written out in second moments and differentiated by autograd.
    """
    q = model.params
    d = q.dim
    wt = torch.tensor(w, requires_grad=True)
    wd = wt.detach()
    vals, vecs = torch.linalg.eigh(wd @ wd.T)
    wp = (vecs * vals.clamp(min=0) ** q.alpha) @ vecs.T
    eye = torch.eye(d, dtype=torch.float64)
    s_mat = (1 + q.sigma2) * eye  # E[x1 x1^T] = X + X'
    if loss == "euclidean":
        a = wp @ wt  # prediction of view 1; target sg(W x2), E[x1 x2^T] = X = I
        value = 0.5 * torch.trace(a @ s_mat @ a.T) - torch.trace(a @ wd.T)
    else:
        target_1 = (eye - wp) @ wd  # the sg(z1 - W_p z1) part, applied to x1
        value = 0.5 * torch.trace(wt @ s_mat @ wt.T) - torch.trace(wt @ s_mat @ target_1.T)
        value = value - torch.trace(wt @ wd.T)  # the sg(z2) part: E[x1 x2^T] = I
    value.backward()
    return -wt.grad.numpy()


@pytest.mark.parametrize("loss", ["euclidean", "iso"])
@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_isoloss_rhs_is_minus_the_gradient_of_its_loss(loss, alpha):
    model = _model("isoloss", dim=4, loss=loss, alpha=alpha, sigma2=0.3)
    w = np.random.default_rng(1).standard_normal((4, 4)) * 0.6
    rhs = model.layout.unpack(model.rhs(0.0, model.layout.pack(W=w)))["W"]
    np.testing.assert_allclose(rhs, _population_gradient(model, w, loss), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("loss", ["euclidean", "iso"])
@pytest.mark.parametrize(("alpha", "sigma2"), [(0.5, 0.2), (1.0, 0.5), (0.25, 0.1)])
def test_isoloss_eigenvalues_follow_the_closed_form_to_their_fixed_point(loss, alpha, sigma2):
    ds = simulate(
        "isoloss",
        RunSettings(t_end=60.0, n_out=121, **TIGHT),
        dim=5,
        loss=loss,
        alpha=alpha,
        sigma2=sigma2,
        init_scale=0.8,
        seed=2,
    )
    assert float(np.max(np.abs(ds["corr_eig"] - ds["corr_eig_closed_form"]))) < 1e-6
    fixed = (1 + sigma2) ** (-1 / alpha)
    assert ds.attrs["fixed_point"] == pytest.approx(fixed, rel=1e-12)
    # every mode that started within a factor 20 of u* = 1/k has reached the fixed point (a
    # smaller start under the Euclidean loss escapes only after ~ 1/(2 alpha u0): its point)
    u0 = ds["corr_eig"].isel(time=0).values ** alpha
    near = u0 > 0.05 / (1 + sigma2)
    assert near.sum() >= 3
    np.testing.assert_allclose(ds["corr_eig"].isel(time=-1).values[near], fixed, atol=1e-6)


def test_euclidean_modes_learn_at_eigenvalue_dependent_rates_iso_at_equal_rates():
    """Halvagal et al.'s point: under the Euclidean loss a small eigenvalue is a small learning
    rate (du/dt = 2 alpha u^2 (1 - k u)), under IsoLoss every mode starts at the same relative
    rate 2 alpha (du/dt = 2 alpha u (1 - k u)): measured on the closed forms' own derivative."""
    u0 = np.array([0.05, 0.2])
    dt = 1e-6
    for loss, expected in (
        ("euclidean", 2 * 0.5 * u0 * (1 - 1.2 * u0)),
        ("iso", 2 * 0.5 * (1 - 1.2 * u0)),
    ):
        u = predictor_power(np.array([0.0, dt]), u0, k=1.2, alpha=0.5, loss=loss)
        rate = (u[1] - u[0]) / dt / u0  # relative growth rate of each mode at t = 0
        np.testing.assert_allclose(rate, expected, rtol=1e-4)


def test_isoloss_starts_above_the_fixed_point_and_decays_to_it():
    """init_scale 3: some eigenvalues start above lambda*, where G's other branch applies."""
    ds = simulate(
        "isoloss", RunSettings(t_end=30.0, n_out=61, **TIGHT), dim=3, init_scale=3.0, seed=5
    )
    assert float(ds["corr_eig"].isel(time=0).max()) > 10 * ds.attrs["fixed_point"]
    assert float(np.max(np.abs(ds["corr_eig"] - ds["corr_eig_closed_form"]))) < 1e-6


# ---- DirectSet(alpha) (Tian et al. 2021, Sec. 6) ---------------------------------------------


@pytest.mark.parametrize("exponent", [0.25, 1.0])
def test_directset_fixed_point_and_threshold_for_any_exponent(exponent):
    """W_p = F_hat^alpha: surviving modes reach p*_+ with F_hat eigenvalue s* solving
    s*^alpha + eps s* = p*_+ (brentq in paper_fixed_point; checked here against the rule itself),
    and above eta* = tau^2 / (4 (1 + sigma^2)) (tau = 1) every mode collapses, whatever alpha."""
    from dynamics.models.directpred import paper_fixed_point
    from dynamics.models.eigenmodes import collapse_threshold, fixed_points

    common = dict(
        dim=4,
        input_dim=6,
        sigma2=0.4,
        eps=0.1,
        rho_rate=3.0,
        exponent=exponent,
        convention="paper",
        init_scale=1.5,
    )
    eta = 0.05
    ds = simulate("directpred", RunSettings(t_end=200.0, n_out=5), eta=eta, **common)
    final = ds.isel(time=-1)
    p_plus = fixed_points(eta, 1.0, 0.4)[0]
    s_star = paper_fixed_point(p_plus, 0.1, exponent)
    assert s_star**exponent + 0.1 * s_star == pytest.approx(p_plus, rel=1e-12)
    np.testing.assert_allclose(final["wp_eig_real"].values, p_plus, rtol=1e-6)
    np.testing.assert_allclose(final["fhat_eig"].values, s_star, rtol=1e-6)
    eta_star = float(collapse_threshold(1.0, 0.4))
    above = simulate("directpred", RunSettings(t_end=300.0, n_out=3), eta=1.2 * eta_star, **common)
    first, last = above["corr_eig"].isel(time=0), above["corr_eig"].isel(time=-1)
    assert float(last.max()) < 1e-3 * float(first.max())


# ---- VICReg's aligned solution through the hinge ---------------------------------------------


def _vicreg_population_loss(model, w):
    """VICReg's loss (official weights and halvings) of z = W x in second moments, in torch."""
    q, d = model.params, model.dim
    wt = torch.tensor(w, requires_grad=True)
    cov = wt @ torch.tensor(model.view_corr) @ wt.T
    std = torch.sqrt(torch.diagonal(cov))
    off = cov - torch.diag(torch.diagonal(cov))
    inv = q.sim_coeff / d * 2 * q.sigma2 * torch.sum(wt**2)  # E||z1 - z2||^2 / d, X' = s^2 I
    var = q.std_coeff / d * torch.relu(1 - std).sum()  # (hinge(z1) + hinge(z2)) / 2
    cov_term = q.cov_coeff / d * 2 * torch.sum(off**2)  # both views
    return wt, inv + var + cov_term


def test_vicreg_aligned_velocity_is_minus_the_gradient_off_the_hinge():
    model = _model("vicreg_aligned", init="random")
    w = np.random.default_rng(0).standard_normal((4, 4)) * 0.3  # std_j = 0.26 .. 1.6
    wt, value = _vicreg_population_loss(model, w)
    value.backward()
    np.testing.assert_allclose(model.velocity(w), -wt.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert model.loss(w) == pytest.approx(value.item(), rel=1e-12)


@pytest.mark.parametrize("init_scale", [0.3, 1.5])
def test_vicreg_aligned_reaches_the_closed_form_std_through_the_hinge(init_scale):
    """std* = min(1, mu (c + s^2)/(4 lambda s^2)) = (1, 1, 0.75, 0.5) at the official weights
    (the science audit's R12 case), and the whole piecewise trajectory, to 1e-6: from below
    (two modes slide along std = 1) and from above (every mode first decays onto the hinge)."""
    ds = simulate(
        "vicreg_aligned", RunSettings(t_end=3.0, n_out=61, **TIGHT), init_scale=init_scale
    )
    np.testing.assert_allclose(json.loads(ds.attrs["std_star"]), [1, 1, 0.75, 0.5], rtol=1e-12)
    np.testing.assert_allclose(ds["feature_std"].isel(time=-1), [1, 1, 0.75, 0.5], atol=1e-6)
    assert float(np.max(np.abs(ds["feature_std"] - ds["feature_std_closed_form"]))) < 1e-6


def test_vicreg_random_start_finds_a_lower_loss_than_the_aligned_point():
    """The aligned point is not the minimiser at nu = 1: a random start ends with every std at 1
    on a rank-2 covariance, below the aligned point's loss (a dimensional collapse)."""
    aligned = _model("vicreg_aligned")
    star = np.array(aligned.closed_forms()["std_star"])
    aligned_loss = float(aligned.loss(np.diag(star / np.sqrt(aligned.c + 0.5))))
    ds = simulate(
        "vicreg_aligned",
        RunSettings(t_end=10.0, n_out=3, method="Radau", rtol=1e-8, atol=1e-10),
        init="random",
        init_scale=1.0,
    )
    final_loss = float(ds["loss"].isel(time=-1))
    assert final_loss < aligned_loss - 1.0
    np.testing.assert_allclose(ds["feature_std"].isel(time=-1), 1.0, atol=1e-6)
