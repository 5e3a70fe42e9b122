"""dynamics.models.closed_gradients: each loss's gradient in closed form against torch autograd of
the registered loss block by block, and the general model's gradient (dispatch, ``symmetrize``)
against central differences of its numpy loss."""

import numpy as np
import pytest
import torch

import symbolic.losses as losses
from dynamics.models import closed_gradients
from dynamics.models.general import GeneralModel, GeneralParams, RunInputs

K, N, N1, D = 3, 8, 5, 3  # blocks, pairs per block, input and output dimensions
#: (loss, role, hyperparameters): every closed form, at settings that reach each of its terms
CASES = [
    ("spectral", "pair", {}),
    ("barlow_twins", "pair", {"lambd": 0.0051, "eps": 1e-5, "scale": 1.0}),
    ("barlow_twins", "pair", {"lambd": 0.5, "eps": 0.0, "scale": 0.1}),
    ("vicreg", "pair", {"sim_coeff": 25.0, "std_coeff": 25.0, "cov_coeff": 1.0, "eps": 1e-4}),
    ("liu", "predictor_pair",
     {"c_inv": 25.0, "c_cov": 1.0, "k": 2, "standardize": True, "eps": 0.0}),
    ("liu", "predictor_pair",
     {"c_inv": 2.0, "c_cov": 3.0, "k": 4, "standardize": False, "eps": 0.0}),
    ("liu", "predictor_pair",
     {"c_inv": 1.0, "c_cov": 1.0, "k": 1, "standardize": True, "eps": 0.5}),
    ("byol", "predict", {"scale": 1.0}),
    ("byol", "predict", {"scale": 2.5}),
]  # fmt: skip


def _state(rng, with_target: bool) -> dict[str, np.ndarray]:
    # rows of W at three scales: VICReg's standard deviations fall on both sides of its hinge
    blocks = {
        "W": rng.standard_normal((D, N1)) * np.array([[0.1], [0.4], [1.5]]),
        "W_p": rng.standard_normal((D, D)),
    }
    if with_target:
        blocks["W_a"] = rng.standard_normal((D, N1))
    return blocks


def _autograd(loss, role, blocks, v1, v2, hyper) -> dict[str, np.ndarray]:
    """dL/dW and dL/dW_p of one block's registered loss by torch autograd."""
    t = {k: torch.from_numpy(v).requires_grad_(k != "W_a") for k, v in blocks.items()}
    w, wp = t["W"], t["W_p"]
    wa = t.get("W_a", w)
    z1, z2 = v1 @ w.T, v2 @ w.T
    if role == "pair":
        args = (z1, z2)
    elif role == "predictor_pair":
        args = (wp, z1, z2)
    else:
        args = (z1 @ wp.T, z2 @ wp.T, v1 @ wa.T, v2 @ wa.T)
    value = losses.get(loss)(*args, **hyper)
    found = torch.autograd.grad(value, [w, wp], allow_unused=True)
    return {
        k: np.zeros_like(blocks[k]) if g is None else g.numpy()
        for k, g in zip(("W", "W_p"), found, strict=True)
    }


@pytest.mark.parametrize(
    ("loss", "role", "hyper", "with_target"),
    [(*case, False) for case in CASES] + [(*case, True) for case in CASES if case[1] == "predict"],
)
def test_closed_form_is_autograds_block_by_block(loss, role, hyper, with_target):
    """With an EMA target for the predictor's loss (the only one that reads it)."""
    rng = np.random.default_rng(7)
    blocks = _state(rng, with_target)
    x1, x2 = (torch.from_numpy(rng.standard_normal((K, N, N1))) for _ in range(2))
    form, _ = closed_gradients.FORMS[loss, role]
    found = form(blocks, closed_gradients.BlockViews(x1, x2), hyper)
    for b in range(K):
        expected = _autograd(loss, role, blocks, x1[b], x2[b], hyper)
        for name, grad in found.items():
            np.testing.assert_allclose(grad[b], expected[name], rtol=1e-9, atol=1e-12)
    if loss == "vicreg":  # the hinge is active for some standard deviations, not for all
        std = (x1 @ torch.from_numpy(blocks["W"]).T).std(dim=-2)
        assert bool((std < 1).any()) and bool((std > 1).any())


@pytest.mark.parametrize(("loss", "role", "hyper"), [CASES[2], CASES[4], CASES[7]])
def test_no_closed_form_at_a_zero_standard_deviation_or_norm(loss, role, hyper):
    """Barlow Twins' and Liu et al.'s standardisations without eps and the cosine at a zero
    embedding divide by zero: no closed form there (autograd of the loss's own floors
    answers)."""
    rng = np.random.default_rng(8)
    blocks = _state(rng, False)
    blocks["W"][0] = 0.0
    if loss == "byol":
        blocks["W"][:] = 0.0
    x1, x2 = (torch.from_numpy(rng.standard_normal((K, N, N1))) for _ in range(2))
    views = closed_gradients.BlockViews(x1, x2)
    assert closed_gradients.FORMS[loss, role][0](blocks, views, hyper) is None


@pytest.mark.parametrize("symmetrize", [False, True])
@pytest.mark.parametrize(
    ("loss", "role", "hyper"), [CASES[0], CASES[1], CASES[3], CASES[4], CASES[8]]
)
def test_general_models_gradient_is_its_numpy_losss_central_difference(
    loss, role, hyper, symmetrize
):
    """GeneralModel.gradients (which takes the closed form here) against central differences of
    its numpy loss (the mean over blocks, the swapped views added with ``symmetrize``) along a
    random direction of each trained block."""
    rng = np.random.default_rng(9)
    x1, x2 = rng.standard_normal((2, K * N, N1))
    params = GeneralParams(
        dim=D, input_dim=N1, n_samples=K * N, loss=loss, batch_size=N, symmetrize=symmetrize,
        loss_params={k: str(v) for k, v in hyper.items()},
    )  # fmt: skip
    model = GeneralModel(params, RunInputs(x1, x2))
    assert model.params.role == role and model._closed is not None
    state = {
        k: v for k, v in _state(rng, model.params.ema_target).items() if k in model.layout.shapes
    }
    assert model._closed_blocks(state) is not None
    grads = model.gradients(state)
    h = 1e-6
    for name in grads:
        v = rng.standard_normal(state[name].shape)
        up, down = ({**state, name: state[name] + sign * h * v} for sign in (1, -1))
        numeric = (model.loss_value(up) - model.loss_value(down)) / (2 * h)
        assert np.sum(grads[name] * v) == pytest.approx(numeric, rel=1e-6, abs=1e-9)
