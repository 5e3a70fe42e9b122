"""Per-epoch measurements of a training run, in the variable names of :mod:`symbolic.common.schema`.

Every observable is computed by :mod:`dynamics.observables` (the implementation the simulations
use) on float64 numpy copies of the online network's outputs for the fixed, un-augmented eval
subset (eval mode): projector outputs z (N, d) and backbone features h (N, D).

* ``sigma_*``, ``effective_rank``, ``z_std`` on z, the same with suffix ``_backbone`` on h;
* ``corr_eig`` (mode): eigenvalues of the feature correlation F1 F1^T = z^T z / N;
* for the linear-predictor methods (BYOL/SimSiam with ``--predictor linear``, DirectPred,
  DirectCopy, Liu et al.) ``predictor_observables(W_p, F1 F1^T)``: ``wp_eig_real``,
  ``wp_eig_imag``, ``wp_singular``, ``wp_sym_eig``, ``alignment_cos`` (mode), ``wp_asymmetry``,
  ``commutator_norm``, ``conservation_residual``, and W_p itself as ``wp`` (row, col) when
  d <= ``wp_store_limit``. For Liu et al. with standardisation, F1 is built from the standardised
  outputs (eq. 18, unbiased std), the predictor's actual input.
* probe accuracies (``knn_acc``, ``linear_acc`` on test; ``*_val`` on validation; the choices).

The ``mode`` index runs over the d projector dimensions, sorted by decreasing magnitude as the
observables return them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from dynamics import observables as obs
from empirical.probes import knn_probe, linear_probe

SCALAR_OBSERVABLES = ("effective_rank", "z_std")


@torch.no_grad()
def extract(
    model, split, transform: Callable, batch_size: int, workers: int, device, autocast
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backbone features h, projector outputs z and labels of a split (CPU float32 tensors)."""
    was_training = model.training
    model.eval()
    hs, zs, ys = [], [], []
    try:
        for images, labels in split.all_batches(batch_size, workers, device):
            with autocast():
                h, z = model.embed(transform(images))
            hs.append(h.float().cpu())
            zs.append(z.float().cpu())
            ys.append(labels.cpu())
    finally:
        model.train(was_training)
    return torch.cat(hs), torch.cat(zs), torch.cat(ys)


def standardise(z: np.ndarray) -> np.ndarray:
    """Liu et al. eq. 18: (z - mean) / std per dimension, unbiased std (0-variance dims -> 0)."""
    std = z.std(axis=0, ddof=1)
    return (z - z.mean(axis=0)) / np.where(std > 0, std, 1.0)


def representation_observables(h: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
    """sigma_*, effective_rank, z_std of z and (suffix _backbone) of h; corr_eig of z."""
    out = dict(obs.sigma_observables(z))
    out["effective_rank"] = obs.effective_rank(z)
    out["z_std"] = obs.z_std(z)
    for name, value in obs.sigma_observables(h).items():
        out[f"{name}_backbone"] = value
    out["effective_rank_backbone"] = obs.effective_rank(h)
    out["z_std_backbone"] = obs.z_std(h)
    out["corr_eig"] = obs.correlation_eigh(obs.feature_correlation(z))[0]
    return out


def predictor_measurements(
    wp: np.ndarray, z: np.ndarray, standardised: bool, store_limit: int
) -> dict[str, np.ndarray]:
    """W_p observables against the correlation of the predictor's input (see module docstring)."""
    features = standardise(z) if standardised else z
    out = dict(obs.predictor_observables(wp, obs.feature_correlation(features)))
    if wp.shape[0] <= store_limit:
        out["wp"] = wp
    return out


def probe_measurements(features: dict, num_classes: int) -> dict[str, float]:
    """kNN and linear probe on backbone features; ``features[split] = (h, labels)``."""
    knn = knn_probe(features["train"], features["val"], features["test"], num_classes)
    lin = linear_probe(features["train"], features["val"], features["test"], num_classes)
    return {
        "knn_acc": knn.test_acc,
        "knn_acc_val": knn.val_acc,
        "knn_k": float(knn.choice["k"]),
        "knn_temperature": float(knn.choice["temperature"]),
        "linear_acc": lin.test_acc,
        "linear_acc_val": lin.val_acc,
        "linear_penalty": float(lin.choice["penalty"]),
    }


def collapse_warnings(values: dict, dim: int) -> list[str]:
    """Messages when z_std is near 0 (< 0.05; ~1 when spread) or the rank is < 1% of d."""
    msgs = []
    if float(values["z_std"]) < 0.05:
        msgs.append(f"collapse warning: z_std = {float(values['z_std']):.4f} (near 0)")
    if float(values["effective_rank"]) < 0.01 * dim:
        msgs.append(
            f"collapse warning: effective rank {float(values['effective_rank']):.2f} "
            f"is below 1% of d = {dim}"
        )
    return msgs
