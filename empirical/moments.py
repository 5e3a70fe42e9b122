"""The data moments of the linear theory, measured through a run's own augmentation pipeline.

Tian et al. 2021, Lemma 1 (docs/theory.md (D1)): X = E_x[xbar xbar^T] with xbar = E[x'|x] (the
augmentation-averaged data correlation) and X' = E_x[Cov(x'|x)] (the augmentation covariance),
for x' an augmented view in the encoder's input coordinates (for the linear backbone: its PCA
coordinates). Monte Carlo with K views x'_{i1..iK} of each of M images x_i:

    xhat_i = (1/K) sum_k x'_ik,   C_i = (1/(K-1)) sum_k (x'_ik - xhat_i)(x'_ik - xhat_i)^T,
    X' ~ (1/M) sum_i C_i,          X ~ (1/M) sum_i (xhat_i xhat_i^T - C_i / K),

both unbiased: E[C_i] = Cov(x'|x_i), and E[xhat_i xhat_i^T] = xbar_i xbar_i^T + Cov(x'|x_i)/K, the
bias of a sample mean that the C_i / K term removes. The standard error of each entry is the
standard deviation of the per-image terms over sqrt(M).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
import xarray as xr

from symbolic.common.schema import INPUT, INPUT_COL


@torch.no_grad()
def measure_moments(
    batches: Iterable[torch.Tensor],
    view: Callable[[torch.Tensor], torch.Tensor],
    coordinates: Callable[[torch.Tensor], torch.Tensor],
    n_views: int,
) -> xr.Dataset:
    """``x_corr`` (X), ``aug_cov`` (X') and their standard errors ``x_corr_se``, ``aug_cov_se``.

    ``batches`` yields uint8 images, ``view`` draws one augmented view of a batch, ``coordinates``
    maps views to the encoder's input coordinates (N, k).
    """
    sums = {"x": 0.0, "x2": 0.0, "c": 0.0, "c2": 0.0}
    m = 0
    for images in batches:
        views = torch.stack([coordinates(view(images)).double() for _ in range(n_views)])
        mean = views.mean(0)  # (B, k)
        centred = views - mean
        cov = torch.einsum("kbi,kbj->bij", centred, centred) / (n_views - 1)
        term = torch.einsum("bi,bj->bij", mean, mean) - cov / n_views
        sums["x"] = sums["x"] + term.sum(0)
        sums["x2"] = sums["x2"] + (term**2).sum(0)
        sums["c"] = sums["c"] + cov.sum(0)
        sums["c2"] = sums["c2"] + (cov**2).sum(0)
        m += len(images)

    def mean_and_error(first, second):
        mean = first / m
        var = (second / m - mean**2) * m / (m - 1)
        return mean.cpu().numpy(), np.sqrt(np.clip(var.cpu().numpy(), 0, None) / m)

    x_corr, x_se = mean_and_error(sums["x"], sums["x2"])
    aug_cov, aug_se = mean_and_error(sums["c"], sums["c2"])
    dims = (INPUT, INPUT_COL)
    k = x_corr.shape[0]
    return xr.Dataset(
        {
            "x_corr": (dims, (x_corr + x_corr.T) / 2),
            "aug_cov": (dims, (aug_cov + aug_cov.T) / 2),
            "x_corr_se": (dims, x_se),
            "aug_cov_se": (dims, aug_se),
        },
        coords={INPUT: np.arange(k), INPUT_COL: np.arange(k)},
        attrs={"n_images": m, "n_views": n_views, "estimator": __doc__.split("\n\n")[1]},
    )


def _batches(images: torch.Tensor | Iterable[torch.Tensor], batch_size: int):
    """Batches of a tensor of images (first axis: images), or the batches of an iterable."""
    if isinstance(images, torch.Tensor):
        if images.ndim < 2 or len(images) < 2:
            raise ValueError(f"images has shape {tuple(images.shape)}: expected (M >= 2, ...)")
        yield from images.split(batch_size)
    else:
        yield from images


def measure(
    views_fn: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor | Iterable[torch.Tensor],
    n_views: int = 16,
    coordinates: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 256,
    per_image: bool = False,
) -> xr.Dataset:
    """X and X' of any augmentation: the ``--moments`` file of ``dynamics.simulate``.

    ``views_fn``: one augmented view of a batch of images (``per_image``: of one image, e.g. a
    torchvision transform; the views are stacked), drawing fresh randomness at every call;
    ``images``: a tensor (M, ...) or an iterable of batches; ``coordinates``: views -> the
    encoder's input coordinates (N, k) (default: each view flattened); ``n_views``: K >= 2 views
    per image. Returns :func:`measure_moments`'s Dataset (``x_corr``, ``aug_cov`` and their
    standard errors, the estimator in the attributes); write it with
    :func:`symbolic.common.results.write_netcdf`.
    """
    if isinstance(n_views, bool) or not isinstance(n_views, int) or n_views < 2:
        raise ValueError(f"n_views={n_views!r} is not allowed: an integer >= 2")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is not allowed: an integer >= 1")
    view = views_fn
    if per_image:

        def view(batch: torch.Tensor) -> torch.Tensor:
            return torch.stack([views_fn(image) for image in batch])

    flat = coordinates or (lambda v: v.reshape(len(v), -1))
    return measure_moments(_batches(images, batch_size), view, flat, n_views)
