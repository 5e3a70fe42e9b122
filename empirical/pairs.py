"""What a linear run's prediction needs beyond X and X': a fixed sample of augmented pairs and
the second moment of the held-out clean images.

- ``pairs.nc``: ``x1``, ``x2`` (pair, input), N pairs of augmented views in the encoder's input
  coordinates, drawn through the run's own two-view augmentation from its training images (image
  i mod M for pair i, a fresh augmentation each), with its own generator (seed recorded). The
  losses that are not functions of X and X' alone (cosine BYOL, Barlow Twins' per-batch
  standardisation, VICReg, NT-Xent, Liu et al.) are predicted by the gradient flow of their
  expected minibatch loss at the run's batch size B over this sample: the mean of the loss over
  the N // B consecutive blocks of B pairs
  (:meth:`dynamics.models.general.GeneralModel.minibatch_loss`); N is ``--pairs``.
- ``eval_mean`` (input) and ``eval_second_moment`` (input, input_col) in ``moments.nc``: mean m
  and uncentred second moment S = (1/N) sum_i x_i x_i^T of the run's un-augmented eval subset (the
  images its Sigma statistics are measured on) in the same coordinates, so that Sigma of the
  features z = W x follows from any W: Cov(z) = W (S - m m^T) W^T
  (:mod:`dynamics.predicted_sigma`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
import xarray as xr

from symbolic.common.provenance import provenance
from symbolic.common.results import write_netcdf
from symbolic.common.schema import INPUT, INPUT_COL, PAIR

PAIRS = "pairs.nc"
#: offset of the pairs' generator seed from the run's seed x 1000 (not the training stream)
PAIRS_SEED_OFFSET = 7927


@torch.no_grad()
def draw_pairs(
    images: torch.Tensor,
    views: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    coordinates: Callable[[torch.Tensor], torch.Tensor],
    n_pairs: int,
    batch: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """(x1, x2), each (n_pairs, k) float64: pair i is two views of image i mod M of ``images``
    (uint8, M images) through ``views``, mapped by ``coordinates``."""
    index = torch.arange(n_pairs) % len(images)
    x1, x2 = [], []
    for start in range(0, n_pairs, batch):
        v1, v2 = views(images[index[start : start + batch]])
        x1.append(coordinates(v1).double().cpu())
        x2.append(coordinates(v2).double().cpu())
    return torch.cat(x1).numpy(), torch.cat(x2).numpy()


def pairs_dataset(x1: np.ndarray, x2: np.ndarray, seed: int, **attrs) -> xr.Dataset:
    """``pairs.nc``'s content: the two views (pair, input) and what they are."""
    ds = xr.Dataset({"x1": ((PAIR, INPUT), x1), "x2": ((PAIR, INPUT), x2)})
    ds.attrs.update(attrs, n_pairs=int(x1.shape[0]), pairs_seed=int(seed))
    return ds


@torch.no_grad()
def held_out_moments(inputs: Iterable[torch.Tensor]) -> tuple[dict[str, tuple], int]:
    """``eval_mean`` m and ``eval_second_moment`` S = (1/N) sum x x^T of the input-coordinate
    rows of ``inputs`` (float64), as Dataset variables, and N."""
    total, outer, n = 0.0, 0.0, 0
    for x in inputs:
        x = x.double().cpu()
        total, outer, n = total + x.sum(0), outer + x.T @ x, n + len(x)
    return {
        "eval_mean": (INPUT, (total / n).numpy()),
        "eval_second_moment": ((INPUT, INPUT_COL), (outer / n).numpy()),
    }, n


def add_held_out(ds: xr.Dataset, inputs: Iterable[torch.Tensor]) -> xr.Dataset:
    """``moments.nc``'s content ``ds`` with the held-out moments of ``inputs`` and their count
    ``n_eval`` (:func:`held_out_moments`)."""
    variables, n_eval = held_out_moments(inputs)
    ds = ds.assign(variables)
    ds.attrs.update(n_eval=n_eval, eval_moments="the eval subset, un-augmented (Sigma's images)")
    return ds


def write_run_pairs(run, views, n_images: int) -> None:
    """``pairs.nc`` in the folder of ``run`` (an :class:`empirical.trainer.Run` on the linear
    backbone): ``--pairs`` pairs of its first ``n_images`` training images through
    ``views(generator)`` (the run's augmentation) on a generator of their own (seed: the run's
    x 1000 + PAIRS_SEED_OFFSET), in the backbone's input coordinates."""
    cfg, recorder, device = run.cfg, run.recorder, run.device
    split, project = run.train_split, run.method.online.backbone.project
    seed = cfg.seed * 1000 + PAIRS_SEED_OFFSET
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    images = torch.cat([b for b, _ in split.head(n_images).all_batches(256, device)])
    x1, x2 = draw_pairs(images, views(generator), project, cfg.pairs)
    ds = pairs_dataset(x1, x2, seed, augmentation=cfg.augment)
    ds.attrs["images"] = f"the first {n_images} training images"
    ds.attrs.update(provenance("pairs", recorder.settings.method, recorder.config, **ds.attrs))
    write_netcdf(ds, recorder.out / PAIRS)
