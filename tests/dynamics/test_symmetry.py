"""The output-rotation symmetry a comparison quotients out (dynamics/symmetry.py): declared for
exactly the losses whose flow is equivariant under W(0) -> Q W(0).

The independent source is the flow itself: integrating the general model from Q W(0) (W_p(0)
-> Q W_p(0) Q^T) must give Q W(t) for a loss that declares the symmetry (NT-Xent, the spectral
loss, BYOL's cosine loss) and must not for one that does not (Barlow Twins, VICReg: their
per-feature terms pick out the output axes). VICReg's and Liu et al.'s are only checked to be
undeclared (VICReg's variance hinge makes its flow slow to integrate)."""

from __future__ import annotations

import numpy as np
import pytest

from dynamics import symmetry
from dynamics.integrate import SaveAt, SolverSettings, integrate
from dynamics.models.general import GeneralModel, GeneralParams

CASES = {"nt_xent": True, "spectral": True, "byol": True, "barlow_twins": False}


def _final_w(model: GeneralModel, y0: np.ndarray) -> np.ndarray:
    traj = integrate(model.rhs, y0, SaveAt.uniform(1.0, 2), SolverSettings(rtol=1e-9, atol=1e-11))
    assert traj.complete
    return model.layout.unpack(traj.y[-1])["W"]


@pytest.mark.parametrize("loss", list(CASES))
def test_the_symmetry_is_declared_where_the_flow_is_equivariant(loss):
    params = GeneralParams(dim=3, input_dim=5, n_samples=32, batch_size=16, eta=0.1, loss=loss)
    model = GeneralModel(params)
    assert (symmetry.OUTPUT_ROTATION in model.symmetries) == CASES[loss]
    blocks = model.layout.unpack(model.initial_state())
    q = np.linalg.qr(np.random.default_rng(4).standard_normal((3, 3)))[0]
    turned = {k: q @ v for k, v in blocks.items() if k in ("W", "W_a")}
    if "W_p" in blocks:
        turned["W_p"] = q @ blocks["W_p"] @ q.T
    w = _final_w(model, model.layout.pack(**blocks))
    w_turned = _final_w(model, model.layout.pack(**{**blocks, **turned}))
    gap = np.linalg.norm(w_turned - q @ w) / np.linalg.norm(w)
    if CASES[loss]:
        assert gap < 1e-6
    else:
        assert gap > 1e-3


@pytest.mark.parametrize("loss", ["vicreg", "liu"])
def test_losses_with_per_feature_terms_declare_no_symmetry(loss):
    params = GeneralParams(dim=4, input_dim=5, n_samples=32, batch_size=16, loss=loss)
    assert GeneralModel(params).symmetries == ()
