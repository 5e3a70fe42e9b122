"""The deep-linear flow of ``general`` (depth L): each layer's gradient is the chain rule through
the product W = W_L ... W_1 of the one-layer model's gradient G = dL/dW at that product,
dL/dW_1 = (W_L ... W_2)^T G and dL/dW_l = (W_L ... W_{l+1})^T G (W_{l-1} ... W_1)^T."""

from __future__ import annotations

import numpy as np
import pytest

from dynamics.models.general import GeneralModel, GeneralParams

SIZES = {"dim": 4, "input_dim": 5, "n_samples": 64, "batch_size": 16, "eta": 0.1}


@pytest.mark.parametrize("loss", ["barlow_twins", "vicreg", "nt_xent", "spectral"])
@pytest.mark.parametrize("depth", [2, 3])
def test_layer_gradients_are_the_chain_rule_of_the_product(loss, depth):
    deep = GeneralModel(GeneralParams(loss=loss, depth=depth, directions=2.0, **SIZES))
    flat = GeneralModel(GeneralParams(loss=loss, **SIZES))
    rng = np.random.default_rng(3)
    b = deep.layout.unpack(deep.initial_state())
    b["W_up"] = rng.standard_normal(b["W_up"].shape) / 2
    y = deep.layout.pack(**b)
    layers = [b["W"], *b["W_up"]]  # W_1 ... W_L

    def chain(factors, size):  # the product of factors[::-1] (the identity of size if none)
        out = np.eye(size)
        for f in factors:
            out = f @ out
        return out

    product = GeneralModel.encoder_matrix(b)
    np.testing.assert_allclose(product, chain(layers, 5), rtol=1e-12)
    g = flat.gradients({"W": product})["W"]  # dL/dW of the one-layer model at the product
    rhs = deep.layout.unpack(deep.rhs(0.0, y))
    for layer in range(depth):
        above = chain(layers[layer + 1 :], 4)
        below = chain(layers[:layer], 5)
        expected = -(above.T @ g @ below.T) / 2.0 - 0.1 * layers[layer]  # D = 2, eta = 0.1
        got = rhs["W"] if layer == 0 else rhs["W_up"][layer - 1]
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
