"""The measurements of a training run, in the variable names of :mod:`symbolic.common.schema`.

Every observable is computed by :mod:`dynamics.observables` (the implementation the simulations
use) on float64 numpy copies of the online network's outputs for the fixed, un-augmented eval
subset (eval mode): projector outputs z (N, d) and backbone features h (N, D).

* ``sigma_*``, ``dead_dims`` (centred std), ``effective_rank`` (RankMe),
  ``effective_rank_centred``, ``z_std``, ``collapsed`` on z, the same with suffix
  ``_backbone`` on h; the headline decorrelation statistic is ``sigma_corr_mean_sq`` (the mean
  squared off-diagonal Pearson correlation, floor ``sigma_floor`` = 1/(N-1));
* ``corr_eig`` (mode): eigenvalues of the feature correlation F1 F1^T = z^T z / N;
* for a linear predictor, ``predictor_observables(W_p, F1 F1^T)`` with F1 built from the
  predictor's actual input (``Method.predictor_features``): ``wp_eig_*``, ``wp_singular``,
  ``wp_sym_eig``, ``alignment_cos``, ``wp_asymmetry``, ``commutator_norm``,
  ``conservation_residual``, and W_p itself as ``wp`` (row, col) when d <= ``wp_store_limit``;
* for a linear encoder, W as ``w`` (row, input) and the target's W_a as ``w_target``;
* probe accuracies (``knn_acc``, ``linear_acc`` on test; ``*_val`` on validation; the choices).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from dynamics import observables as obs
from empirical.probes import knn_probe, linear_probe


def split_embedding(out) -> tuple[torch.Tensor, torch.Tensor]:
    """(h, z) from an encoder's output: the pair it returns, or its one tensor as both."""
    return tuple(out) if isinstance(out, tuple | list) else (out, out)


@torch.no_grad()
def extract(
    encoder: Callable, split, transform: Callable, batch_size: int, device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backbone features h, embeddings z and labels of a split (float32, on the device).

    ``encoder(transform(images))`` gives z or (h, z); the caller sets eval mode.
    """
    hs, zs, ys = [], [], []
    for images, labels in split.all_batches(batch_size, device):
        h, z = split_embedding(encoder(transform(images)))
        hs.append(h.float())
        zs.append(z.float())
        ys.append(labels)
    return torch.cat(hs), torch.cat(zs), torch.cat(ys)


def network_measurements(
    encoder: Callable,
    data,
    settings,
    eval_view: Callable,
    device,
    predictor: torch.Tensor | None = None,
    predictor_features: Callable | None = None,
) -> dict:
    """Observables of the encoder on the eval subset, W_p's against its input, and the probes.

    ``settings`` holds eval_size, probes, probe_train, probe_test, wp_store_limit and
    batch_size (:class:`empirical.recorder.Settings`); W_p is stored when d <= wp_store_limit.
    """
    s = settings
    bs = max(256, s.batch_size)
    n_test = max(s.probe_test, s.eval_size) if s.probe_test else 0
    splits = {"test": data.test.head(n_test if s.probes else s.eval_size)}
    if s.probes:
        splits.update(train=data.train.head(s.probe_train), val=data.val)
    feats = {name: extract(encoder, split, eval_view, bs, device) for name, split in splits.items()}
    h_test, z_test, y_test = feats["test"]
    h_eval = h_test[: s.eval_size].double().cpu().numpy()
    z_eval = z_test[: s.eval_size].double().cpu().numpy()
    values = representation_observables(h_eval, z_eval)
    if predictor is not None:
        features = z_eval if predictor_features is None else predictor_features(z_eval)
        wp = predictor.detach().double().cpu().numpy()
        values.update(predictor_measurements(wp, features, z_eval.shape[1] <= s.wp_store_limit))
    if s.probes:
        n_probe = s.probe_test or len(h_test)
        probe_feats = {k: (v[0], v[2]) for k, v in feats.items()}
        probe_feats["test"] = (h_test[:n_probe], y_test[:n_probe])
        values.update(probe_measurements(probe_feats, data.num_classes))
    return values


@torch.no_grad()
def augmentation_ratio(encoder: Callable, batches, views: Callable) -> float:
    """sigma^2 in feature space: tr(Cov(z) - Cov(z1, z2)) / tr(Cov(z1, z2)) on two augmented
    views (``views(images)`` -> v1, v2) of the uint8 image ``batches`` (centred, so that a
    common offset of z is not counted as signal; in the linear theory with centred inputs
    tr(W X' W^T) / tr(W X W^T), the sigma^2 of the collapse threshold
    eta* = tau^2 / (4 (1 + sigma^2)), Tian et al. 2021). ``views`` should draw from a generator
    of its own, so that measuring leaves the training's random stream as it is.
    """
    single = two = 0.0
    sums, n = [0.0, 0.0], 0
    for images in batches:
        v1, v2 = views(images)
        z1 = split_embedding(encoder(v1))[1].double()
        z2 = split_embedding(encoder(v2))[1].double()
        single += float((z1 * z1).sum() + (z2 * z2).sum()) / 2
        two += float((z1 * z2).sum())
        sums = [sums[0] + z1.sum(0), sums[1] + z2.sum(0)]
        n += len(z1)
    if n == 0:
        return float("nan")
    m1, m2 = sums[0] / n, sums[1] / n
    cov_single = single / n - float((m1 * m1).sum() + (m2 * m2).sum()) / 2
    cov_two = two / n - float((m1 * m2).sum())
    return (cov_single - cov_two) / cov_two if cov_two > 0 else float("nan")


@torch.no_grad()
def fill_batchnorm(module: nn.Module, forward: Callable, batches) -> int:
    """Fill the running statistics of every BatchNorm of ``module`` from ``batches`` of inputs.

    ``forward(x)`` runs the module on a batch (every BatchNorm it holds must see the batch).
    The running mean and variance are reset and recomputed as the cumulative average over the
    batches (momentum None), forward passes in train mode without gradients; the momentum is
    then restored. Without this, an eval-mode measurement of a fresh network uses mean 0 and
    variance 1 and misreports its representation. Returns the number of inputs used.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    was_training = module.training
    module.train()
    seen = 0
    try:
        for x in batches:
            forward(x)
            seen += len(x)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        module.train(was_training)
    return seen


def representation_observables(h: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
    """sigma_*, dead_dims, effective_rank (RankMe) and effective_rank_centred, z_std of z and
    (suffix _backbone) of h; corr_eig; collapsed (the one criterion,
    :func:`dynamics.observables.representation_collapsed`)."""
    out = dict(obs.sigma_observables(z))
    out["effective_rank"] = obs.effective_rank(z)
    out["effective_rank_centred"] = obs.centred_effective_rank(z)
    out["z_std"] = obs.z_std(z)
    for name, value in obs.sigma_observables(h).items():
        out[f"{name}_backbone"] = value
    out["effective_rank_backbone"] = obs.effective_rank(h)
    out["effective_rank_centred_backbone"] = obs.centred_effective_rank(h)
    out["z_std_backbone"] = obs.z_std(h)
    out["corr_eig"] = obs.correlation_eigh(obs.feature_correlation(z))[0]
    out["collapsed"] = float(obs.representation_collapsed(z))
    return out


def predictor_measurements(wp: np.ndarray, features: np.ndarray, store: bool) -> dict:
    """W_p observables against the correlation of the predictor's input ``features`` (N, d)."""
    out = dict(obs.predictor_observables(wp, obs.feature_correlation(features)))
    if store:
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


def collapse_warnings(values: dict) -> list[str]:
    """Messages for a collapsed embedding (:func:`dynamics.observables.representation_collapsed`)
    and for dead dimensions."""
    msgs = []
    if values.get("collapsed"):
        msgs.append(
            f"collapse warning: z_std = {float(values['z_std']):.4f}, centred effective rank "
            f"{float(values['effective_rank_centred']):.2f}, "
            f"{int(values['dead_dims'])} dead dimensions"
        )
    elif values.get("dead_dims", 0) > 0:
        msgs.append(f"{int(values['dead_dims'])} dead dimensions (centred std < 2% of the largest)")
    return msgs
