"""empirical.moments.measure: X and X' of any augmentation callable, against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from empirical.moments import measure


def images(m=3000, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, k, generator=g, dtype=torch.float64) * torch.tensor([2.0, 1.0, 0.5, 0.2])


def test_additive_noise_gives_x_and_sigma2_identity():
    """x' = x + s e: E[x'|x] = x, so X = mean x x^T, X' = s^2 I (exact in expectation)."""
    x = images()
    g = torch.Generator().manual_seed(1)
    ds = measure(lambda b: b + 0.3 * torch.randn(b.shape, generator=g, dtype=b.dtype), x, 8)
    expected_x = (x.T @ x / len(x)).numpy()
    np.testing.assert_allclose(ds["x_corr"].values, expected_x, atol=0.03)
    np.testing.assert_allclose(ds["aug_cov"].values, 0.09 * np.eye(4), atol=0.005)


def test_a_random_sign_moves_everything_into_the_augmentation_covariance():
    """x' = +-x with probability 1/2 each, per call and per image: xbar = 0, X = 0,
    X' = mean x x^T; a per-image callable gives the same."""
    x = images(m=2000)
    g = torch.Generator().manual_seed(2)

    def sign(b):
        return b * (2 * torch.randint(0, 2, (len(b), 1), generator=g) - 1)

    batched = measure(sign, x, 16)
    one = measure(lambda image: sign(image[None])[0], x, 16, per_image=True, batch_size=128)
    second = (x.T @ x / len(x)).numpy()
    for ds in (batched, one):
        np.testing.assert_allclose(ds["x_corr"].values, 0, atol=0.08)
        np.testing.assert_allclose(ds["aug_cov"].values, second, atol=0.15, rtol=0.05)
        assert ds.attrs["n_images"] == 2000 and ds.attrs["n_views"] == 16


def test_coordinates_map_views_to_the_encoder_input():
    """A linear map P: X and X' become P X P^T, P X' P^T."""
    x = images(m=500)
    g = torch.Generator().manual_seed(3)
    p = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]], dtype=torch.float64)
    view = lambda b: b + 0.5 * torch.randn(b.shape, generator=g, dtype=b.dtype)  # noqa: E731
    ds = measure(view, x, 4, coordinates=lambda v: v @ p.T)
    np.testing.assert_allclose(ds["aug_cov"].values, 0.25 * (p @ p.T).numpy(), atol=0.03)
    assert ds["x_corr"].shape == (2, 2)


@pytest.mark.parametrize(
    ("kwargs", "fragment"), [({"n_views": 1}, "n_views=1"), ({"batch_size": 0}, "batch_size=0")]
)
def test_bad_arguments_are_named(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        measure(lambda b: b, images(m=10), **kwargs)
