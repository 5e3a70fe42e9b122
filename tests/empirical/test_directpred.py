"""DirectPred / DirectCopy: the W_p rule (symbolic.predictors, numpy and torch) against a
constructed and a direct eigendecomposition; the training method sets W_p by it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from empirical.backbones import ConvNet
from empirical.config import build_method
from empirical.methods.directpred import update_correlation
from symbolic.predictors import directcopy_matrix, directpred_matrix


def known_spectrum(d=6, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    s = np.array([4.0, 2.5, 1.0, 0.3, 0.04, 0.0])[:d]
    return q, s, q @ np.diag(s) @ q.T


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5])
def test_paper_and_code_conventions_on_a_known_eigenbasis(eps):
    q, s, f = known_spectrum()
    paper = q @ np.diag(np.sqrt(s) + eps * s.max()) @ q.T
    code = q @ np.diag(np.maximum(np.sqrt(s / s.max()) + eps, 1e-4)) @ q.T
    ft = torch.tensor(f, dtype=torch.float64)
    assert np.allclose(directpred_matrix(ft, eps, "paper").numpy(), paper, atol=1e-12)
    assert np.allclose(directpred_matrix(ft, eps, "code").numpy(), code, atol=1e-12)
    assert np.allclose(directpred_matrix(f, eps, "paper"), paper, atol=1e-12)  # numpy back end
    assert np.allclose(directpred_matrix(f, eps, "code"), code, atol=1e-12)


def test_the_conventions_differ_by_eps_code_equal_eps_paper_sqrt_smax():
    _, s, f = known_spectrum()
    ft = torch.tensor(f, dtype=torch.float64)
    eps = 0.05
    paper = directpred_matrix(ft, eps, "paper") / np.sqrt(s.max())
    code = directpred_matrix(ft, eps * np.sqrt(s.max()), "code")
    assert torch.allclose(paper, code, atol=1e-12)


def test_directcopy_is_f_plus_eps_identity():
    _, _, f = known_spectrum()
    ft = torch.tensor(f)
    assert torch.allclose(directcopy_matrix(ft, 0.3), ft + 0.3 * torch.eye(6, dtype=ft.dtype))
    assert np.allclose(directcopy_matrix(f, 0.3), f + 0.3 * np.eye(6))


def test_correlation_ema_first_batch_initialises():
    rng = np.random.default_rng(1)
    c1, c2, c3 = (torch.tensor(rng.normal(size=(4, 4))) for _ in range(3))
    f_hat, ready = torch.zeros(4, 4, dtype=torch.float64), torch.tensor(False)
    for c in (c1, c2, c3):
        update_correlation(f_hat, ready, c, 0.3)
    expected = 0.3 * (0.3 * c1 + 0.7 * c2) + 0.7 * c3
    assert torch.allclose(f_hat, expected)


@pytest.mark.parametrize("convention", ["paper", "code"])
def test_model_sets_wp_from_eigh_of_the_running_correlation(convention):
    """After two steps W_p = U diag(p(s)) U^T with (s, U) from numpy.linalg.eigh of F_hat."""
    torch.manual_seed(0)
    options = dict(proj_hidden=16, proj_dim=8, eps=0.1, eps_convention=convention)
    model = build_method("directpred", ConvNet(1, 4), **options)
    rho = model.cfg.rho
    outs = [{"z1": torch.randn(10, 8), "z2": torch.randn(10, 8)} for _ in range(2)]
    for step, out in enumerate(outs):
        model.after_step(step, 0.99, out)
    corrs = [torch.cat([o["z1"], o["z2"]]).double() for o in outs]
    corrs = [(z.T @ z / len(z)).numpy() for z in corrs]
    f_hat = rho * corrs[0] + (1 - rho) * corrs[1]
    s, u = np.linalg.eigh(f_hat)
    s = np.clip(s, 0, None)
    p = np.sqrt(s) + 0.1 * s.max() if convention == "paper" else np.sqrt(s / s.max()) + 0.1
    expected = u @ np.diag(np.maximum(p, 1e-4)) @ u.T
    assert np.allclose(model.predictor_matrix().double().numpy(), expected, atol=1e-5)
    assert np.allclose(model.f_hat.double().numpy(), f_hat, atol=1e-5)


def luckmatters_reference(outs, rho, eps, freq, start_phase):
    """Tian et al.'s loop written out (luckmatters byol_trainer.py train/update/regulate_predictor):
    per iteration niter, F <- rho F + (1 - rho) mean of f f^T over both views (first batch: F = it),
    then after the optimiser step W_p = rule(F) when niter % freq == 0 ('end' shifts by one).
    Returns W_p after each step (None: never set yet)."""
    f_hat, wp, history = None, None, []
    for niter, out in enumerate(outs):
        z = torch.cat([out["z1"], out["z2"]]).double().numpy()
        corr = z.T @ z / len(z)
        f_hat = corr if f_hat is None else rho * f_hat + (1 - rho) * corr
        phase = niter if start_phase else niter + 1
        if phase % freq == 0:
            s, u = np.linalg.eigh(f_hat)
            s = np.clip(s, 0, None)
            wp = u @ np.diag(np.maximum(np.sqrt(s / s.max()) + eps, 1e-4)) @ u.T
        history.append(wp)
    return history


@pytest.mark.parametrize("freq", [1, 3])
@pytest.mark.parametrize("phase", ["start", "end"])
def test_wp_is_set_at_the_steps_of_the_freq_phase(freq, phase):
    """W_p after every step equals the hand-written loop's; between sets it is not touched."""
    torch.manual_seed(1)
    options = dict(proj_hidden=16, proj_dim=6, eps=0.1, freq=freq, freq_phase=phase)
    model = build_method("directpred", ConvNet(1, 4), **options)
    initial = model.predictor_matrix().clone()
    outs = [{"z1": torch.randn(10, 6), "z2": torch.randn(10, 6)} for _ in range(7)]
    expected = luckmatters_reference(outs, model.cfg.rho, 0.1, freq, phase == "start")
    for step, out in enumerate(outs):
        model.after_step(step, 0.99, out)
        wp = model.predictor_matrix().double()
        reference = initial.double() if expected[step] is None else torch.tensor(expected[step])
        assert torch.allclose(wp, reference, atol=1e-5), (step, freq, phase)


def test_the_default_phase_is_tian_et_al_s():
    model = build_method("directpred", ConvNet(1, 4), proj_hidden=16, proj_dim=6, freq=3)
    assert model.cfg.freq_phase == "start"


def test_a_gradient_reaches_the_set_predictor():
    """W_p is trained by the loss between sets (freq > 1): its gradient is nonzero."""
    torch.manual_seed(2)
    model = build_method("directpred", ConvNet(1, 4), proj_hidden=16, proj_dim=6, freq=3)
    x = torch.rand(8, 1, 28, 28)
    loss, _, _ = model.training_loss(x, torch.flip(x, dims=(-1,)))
    loss.backward()
    grad = model.online.predictor.weight.grad
    assert grad is not None and float(grad.abs().max()) > 0
