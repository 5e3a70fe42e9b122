"""Conservation laws against their closed forms: Tian et al. Theorem 1, Liu et al. Theorem 3.1."""

import numpy as np
import pytest

from dynamics.integrate import SaveAt, SolverSettings, integrate
from dynamics.models.free_features import FreeFeatureModel, FreeFeatureParams
from dynamics.models.linear_byol import LinearBYOLModel, LinearBYOLParams

T_END = 30.0


def _theorem1_relative_error(params: LinearBYOLParams) -> np.ndarray:
    """max_t ||e^{2 eta t}(W W^T - W_p^T W_p/alpha_p) - C|| / ||C|| along the trajectory."""
    model = LinearBYOLModel(params)
    traj = integrate(
        model.rhs,
        model.initial_state(),
        SaveAt.uniform(T_END, 61),
        SolverSettings(rtol=1e-12, atol=1e-14),
    )
    assert traj.complete
    b = model.layout.unpack(traj.y)
    w, wp = b["W"], b["W_p"]
    lhs = w @ np.swapaxes(w, 1, 2) - np.swapaxes(wp, 1, 2) @ wp / params.alpha_p
    lhs = np.exp(2 * params.eta * traj.t)[:, None, None] * lhs
    c = lhs[0]
    return np.linalg.norm(lhs - c, axis=(1, 2)) / np.linalg.norm(c)


NON_ISOTROPIC = dict(
    dim=6,
    input_dim=9,
    x_spectrum="random",
    aug_spectrum="random",
    alpha_p=2.5,
    beta=0.3,
    eta=0.05,
    sigma2=0.7,
    seed=3,
)


def test_theorem1_holds_for_non_isotropic_data_and_alpha_p_not_1():
    err = _theorem1_relative_error(LinearBYOLParams(**NON_ISOTROPIC))
    assert err.max() < 1e-8


def test_theorem1_needs_the_same_decay_on_the_predictor():
    """With the predictor's decay alpha_p*eta (one SGD weight decay) the law breaks ..."""
    err = _theorem1_relative_error(LinearBYOLParams(**NON_ISOTROPIC, predictor_decay="alpha_p_eta"))
    assert err.max() > 1e-3


def test_theorem1_with_sgd_decay_is_exact_again_when_alpha_p_is_1():
    """... unless alpha_p = 1, where alpha_p*eta = eta: the law's condition, both ways."""
    params = {**NON_ISOTROPIC, "alpha_p": 1.0}
    err = _theorem1_relative_error(LinearBYOLParams(**params, predictor_decay="alpha_p_eta"))
    assert err.max() < 1e-8


def test_simsiam_and_no_stopgrad_keep_theorem1_only_with_stopgrad():
    """Theorem 1 holds for any W_a (SimSiam: W_a = W); its proof uses the stop-gradient."""
    simsiam = {**NON_ISOTROPIC, "beta": 1.0}
    assert _theorem1_relative_error(LinearBYOLParams(**simsiam)).max() < 1e-8
    err = _theorem1_relative_error(LinearBYOLParams(**simsiam, stop_gradient=False))
    assert err.max() > 1e-3


@pytest.mark.parametrize("alpha_p", [1.0, 0.4])
def test_liu_theorem_3_1_free_features(alpha_p):
    """W_p^T W_p / alpha_p - F1 F1^T = e^{-2 eta t} C (Liu et al. 2022, Theorem 3.1)."""
    params = FreeFeatureParams(dim=5, n_samples=11, eta=0.07, alpha_p=alpha_p, sigma2=0.3, seed=1)
    model = FreeFeatureModel(params)
    traj = integrate(
        model.rhs,
        model.initial_state(),
        SaveAt.uniform(25.0, 51),
        SolverSettings(rtol=1e-12, atol=1e-14),
    )
    b = model.layout.unpack(traj.y)
    wp, f1 = b["W_p"], b["F1"]
    lhs = np.swapaxes(wp, 1, 2) @ wp / alpha_p - f1 @ np.swapaxes(f1, 1, 2)
    lhs = np.exp(2 * params.eta * traj.t)[:, None, None] * lhs
    err = np.linalg.norm(lhs - lhs[0], axis=(1, 2)) / np.linalg.norm(lhs[0])
    assert err.max() < 1e-8
    # and the dynamics are not trivial: W_p and F1 both move by O(1)
    assert np.linalg.norm(wp[-1] - wp[0]) > 0.1 * np.linalg.norm(wp[0])
