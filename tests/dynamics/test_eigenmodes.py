"""The eigenmode-reduced system against the full matrix flow, the scalar system and closed forms."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from dynamics.integrate import SaveAt, integrate
from dynamics.models.eigenmodes import (
    EigenmodeModel,
    EigenmodeParams,
    collapse_threshold,
    fixed_points,
)
from dynamics.models.linear_byol import LinearBYOLModel, LinearBYOLParams

P0 = np.array([-0.08, 0.02, 0.15, 0.3, 0.55, 0.9])
S0 = np.array([0.3, 0.05, 0.4, 0.2, 0.6, 1.1])
COMMON = dict(eta=0.03, alpha_p=1.7, beta=0.6, sigma2=0.4)


def _eigenmodes(p0, s0, tau0=0.5, simsiam=False, t_end=20.0, n_out=41, **kw):
    params = EigenmodeParams(
        dim=len(p0),
        p0=",".join(str(float(v)) for v in p0),
        s0=",".join(str(float(v)) for v in s0),
        tau0=tau0,
        simsiam=simsiam,
        **{**COMMON, **kw},
    )
    model = EigenmodeModel(params)
    traj = integrate(model.rhs, model.initial_state(), SaveAt.uniform(t_end, n_out))
    assert traj.complete
    return traj.t, model.layout.unpack(traj.y)


def test_per_mode_system_equals_full_matrix_flow_in_aligned_isotropic_state():
    """Tian et al. Sec. 4: W_p = U diag(p) U^T, W = U diag(sqrt s) V^T, W_a = tau W decouple."""
    d = len(P0)
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.standard_normal((d, d)))
    v, _ = np.linalg.qr(rng.standard_normal((d, d)))
    tau0 = 0.5
    w0 = u @ np.diag(np.sqrt(S0)) @ v.T
    wp0 = u @ np.diag(P0) @ u.T
    full = LinearBYOLModel(LinearBYOLParams(dim=d, input_dim=d, **COMMON))
    traj = integrate(full.rhs, full.initial_state(w0, wp0, tau0 * w0), SaveAt.uniform(20.0, 41))
    wp = full.layout.unpack(traj.y)["W_p"]
    full_eigs = np.sort(np.linalg.eigvals(wp).real, axis=1)
    _, modes = _eigenmodes(P0, S0, tau0=tau0)
    np.testing.assert_allclose(full_eigs, np.sort(modes["p"], axis=1), atol=1e-6)
    # s_j are the eigenvalues of F = W X W^T = W W^T here
    w = full.layout.unpack(traj.y)["W"]
    full_s = np.sort(np.linalg.eigvalsh(w @ np.swapaxes(w, 1, 2)), axis=1)
    np.testing.assert_allclose(full_s, np.sort(modes["s"], axis=1), atol=1e-6)


def _scalar_byol(t, y, eta, alpha_p, beta, sigma2):
    """Tian et al. App. D.4: w' = w_p (w_a - w_p w (1+s2)) - eta w, etc. (written independently)."""
    w, wp, wa = y
    err = wa - wp * w * (1 + sigma2)
    return [wp * err - eta * w, alpha_p * w * err - eta * wp, beta * (w - wa)]


def test_per_mode_system_equals_scalar_system():
    tau0 = 0.5
    t, modes = _eigenmodes(P0, S0, tau0=tau0)
    for j in range(len(P0)):
        w0 = np.sqrt(S0[j])
        sol = solve_ivp(
            _scalar_byol,
            (0, t[-1]),
            [w0, P0[j], tau0 * w0],
            t_eval=t,
            args=tuple(COMMON.values()),
            rtol=1e-11,
            atol=1e-13,
            method="DOP853",
        )
        w, wp, wa = sol.y
        np.testing.assert_allclose(modes["p"][:, j], wp, atol=1e-7)
        np.testing.assert_allclose(modes["s"][:, j], w**2, atol=1e-7)
        np.testing.assert_allclose(modes["tau"][:, j], wa / w, atol=1e-6)


def test_invariant_closed_form():
    """s_j - p_j^2/alpha_p = e^{-2 eta t} c_j with c_j = s_j(0) - p_j(0)^2/alpha_p."""
    t, modes = _eigenmodes(P0, S0)
    c = S0 - P0**2 / COMMON["alpha_p"]
    expected = np.exp(-2 * COMMON["eta"] * t)[:, None] * c
    np.testing.assert_allclose(
        modes["s"] - modes["p"] ** 2 / COMMON["alpha_p"], expected, atol=1e-9
    )


@pytest.mark.parametrize("eta,tau,sigma2", [(0.05, 1.0, 0.5), (0.01, 0.7, 0.0), (0.1, 1.3, 1.2)])
def test_fixed_points_are_the_roots_of_the_phase_line(eta, tau, sigma2):
    """On the parabola dp/dt = p (p (tau - (1+s2) p) - eta): roots of (1+s2)p^2 - tau p + eta."""
    plus, minus = fixed_points(eta, tau, sigma2)
    roots = np.sort(np.roots([1 + sigma2, -tau, eta]).real)
    np.testing.assert_allclose([minus, plus], roots, rtol=1e-12)
    assert collapse_threshold(tau, sigma2) == pytest.approx(tau**2 / (4 * (1 + sigma2)))


def test_modes_above_the_basin_edge_reach_p_plus_and_below_collapse():
    """SimSiam (tau = 1) on the invariant parabola: the basin boundary is p*_- (Tian Fig. 4b)."""
    eta, sigma2, alpha_p = 0.08, 0.5, 1.0
    plus, minus = fixed_points(eta, 1.0, sigma2)
    p0 = np.array([0.3 * minus, 0.9 * minus, 1.1 * minus, 2 * minus, 0.5, 1.0])
    t, modes = _eigenmodes(
        p0, p0**2 / alpha_p, simsiam=True, t_end=600.0, eta=eta, sigma2=sigma2, alpha_p=alpha_p
    )
    final = modes["p"][-1]
    np.testing.assert_allclose(final[p0 > minus], plus, rtol=1e-6)
    assert np.all(np.abs(final[p0 < minus]) < 1e-6)


def test_every_mode_collapses_above_the_threshold():
    sigma2 = 0.5
    eta = 1.2 * collapse_threshold(1.0, sigma2)
    p0 = np.array([0.05, 0.3, 0.6, 1.0, 2.0])
    _, modes = _eigenmodes(
        p0, p0**2, simsiam=True, t_end=600.0, eta=eta, sigma2=sigma2, alpha_p=1.0
    )
    assert np.all(np.abs(modes["p"][-1]) < 1e-6)
    assert np.all(modes["s"][-1] < 1e-10)


def test_fixed_points_absent_above_threshold():
    plus, minus = fixed_points(0.2, 1.0, 0.5)
    assert np.isnan(plus) and np.isnan(minus)
