"""The methods whose loss takes the two views' projections: Barlow Twins, VICReg, SimCLR (NT-Xent,
or with ``--loss spectral`` HaoChen et al.'s spectral contrastive loss).

No predictor and no target: both branches are trained. Under DDP the projections of every rank
are gathered with gradients before the loss, so the cross-sample statistics (Barlow's
cross-correlation, VICReg's variance and covariance, SimCLR's negatives) are those of the global
batch (:mod:`empirical.distributed`).
"""

from __future__ import annotations

import torch

from empirical.distributed import gather_with_grad
from empirical.methods.base import Method, with_hypers

THREE_LAYERS = {"layers": 3, "batchnorm": True, "hidden_bias": False, "last_bias": False}


def _barlow_off_diag(fn, args, hp):
    unscaled = {**hp, "scale": 1.0}
    return fn(*args, **{**unscaled, "lambd": 1.0}) - fn(*args, **{**unscaled, "lambd": 0.0})


class PairMethod(Method):
    """A loss of the two views' projections z1, z2 (gathered over ranks with gradients)."""

    def loss_args(self, out: dict, v1: torch.Tensor, v2: torch.Tensor) -> tuple:
        return (gather_with_grad(out["z1"]), gather_with_grad(out["z2"]))


class BarlowTwins(PairMethod):
    name = "barlow_twins"
    summary = "Barlow Twins: cross-correlation to identity"
    reference = "Zbontar et al. 2021; facebookresearch/barlowtwins"
    losses = ("barlow_twins",)
    loss_terms = {
        "barlow_twins": {"on_diag": with_hypers(lambd=0.0, scale=1.0), "off_diag": _barlow_off_diag}
    }
    gathered = "z1, z2 with gradients (C over the global batch)"
    projector_layout = THREE_LAYERS
    defaults = {
        "optimizer": "lars",
        "lr": 0.2,
        "weight_decay": 1.5e-6,
        "proj_hidden": 8192,
        "proj_dim": 8192,
    }


class VICReg(PairMethod):
    name = "vicreg"
    summary = "VICReg: invariance, variance hinge, covariance"
    reference = "Bardes et al. 2022; facebookresearch/vicreg"
    losses = ("vicreg",)
    loss_terms = {
        "vicreg": {
            "invariance": with_hypers(sim_coeff=1.0, std_coeff=0.0, cov_coeff=0.0),
            "variance": with_hypers(sim_coeff=0.0, std_coeff=1.0, cov_coeff=0.0),
            "covariance": with_hypers(sim_coeff=0.0, std_coeff=0.0, cov_coeff=1.0),
        }
    }
    gathered = "z1, z2 with gradients (variance and covariance over the global batch)"
    projector_layout = {"layers": 3, "batchnorm": True, "hidden_bias": True, "last_bias": False}
    defaults = {
        "optimizer": "lars",
        "lr": 0.2,
        "weight_decay": 1e-6,
        "proj_hidden": 8192,
        "proj_dim": 8192,
    }


class SimCLR(PairMethod):
    name = "simclr"
    summary = "SimCLR: NT-Xent over 2N views"
    reference = "Chen et al. 2020 (SimCLR v1, ImageNet settings)"
    losses = ("nt_xent", "spectral")
    augmentation = "simclr"
    gathered = "z1, z2 with gradients (negatives from every rank)"
    defaults = {"optimizer": "lars", "lr": 0.3, "weight_decay": 1e-6, "proj_dim": 128}
