"""Liu, Suganuma, Okatani 2022: a linear predictor, no stop-gradient, standardised features.

Loss ``liu`` (their eq. 17-19, docs/theory.md (L9)) takes W_p and both views' projector outputs; no
branch is detached and there is no EMA target. As in the paper (section 4, "and the other way") and
the authors' code, the loss is applied in both directions and summed,
L = l(W_p, z1, z2) + l(W_p, z2, z1); ``--one-way`` keeps only the first. Under DDP the projections
are gathered with gradients so that the k parts of eq. 19 are those of the global batch. Defaults:
their best ImageNet setting (projector 8192^3, k = 8, c_inv = 25, c_cov = 1; LARS lr 0.3 per 256
images).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from empirical.distributed import gather_with_grad
from empirical.heads import LinearPredictor
from empirical.methods.base import Method, with_hypers
from empirical.methods.pair import THREE_LAYERS
from symbolic import losses
from symbolic.common.options import param
from symbolic.ops import NUMPY


@dataclasses.dataclass(frozen=True)
class LiuOptions:
    one_way: bool = param(
        False, "apply the loss in one direction only (default: both, summed, as the paper)"
    )


class Liu(Method):
    name = "liu"
    summary = "Liu et al.: linear predictor, no stop-gradient, standardised, k parts"
    reference = "Liu, Suganuma, Okatani 2022, eq. 17-19 (8192^3, k=8, c_inv=25, c_cov=1)"
    losses = ("liu",)
    loss_terms = {
        "liu": {
            "invariance": with_hypers(c_inv=1.0, c_cov=0.0),
            "covariance": with_hypers(c_inv=0.0, c_cov=1.0),
        }
    }
    predictor = "trained"
    gathered = "z1, z2 with gradients (k parts of the global batch)"
    projector_layout = THREE_LAYERS
    options = (LiuOptions,)
    defaults = {
        "optimizer": "lars",
        "lr": 0.3,
        "weight_decay": 1e-6,
        "proj_hidden": 8192,
        "proj_dim": 8192,
    }

    @classmethod
    def check(cls, cfg) -> None:
        super().check(cfg)
        k = cfg.loss_params.get("k", 8)
        if cfg.batch_size % k:
            raise ValueError(
                f"--batch-size {cfg.batch_size}: must be a multiple of the liu parts k={k} "
                "(--loss-param k=...)"
            )

    def build_predictor(self, dim: int) -> nn.Module:
        return LinearPredictor(dim)

    @property
    def loss_directions(self) -> int:
        return 1 if self.cfg.one_way else 2

    def loss_args(self, out: dict, v1: torch.Tensor, v2: torch.Tensor) -> tuple:
        wp = self.online.predictor.weight
        return (wp, gather_with_grad(out["z1"]), gather_with_grad(out["z2"]))

    def loss_value(self, fn, args: tuple) -> torch.Tensor:
        wp, z1, z2 = args
        loss = fn(wp, z1, z2, **self.loss_params)
        if not self.cfg.one_way:
            loss = loss + fn(wp, z2, z1, **self.loss_params)
        return loss

    def predictor_features(self, z):
        """Standardised outputs (eq. 18, the loss's own standardisation) when the loss
        standardises: W_p's input."""
        if not self.loss_params.get("standardize"):
            return z
        return losses.batch_standardize(NUMPY, z, self.loss_params["eps"], unbiased=True)

    def describe(self) -> dict:
        standardised = bool(self.loss_params.get("standardize"))
        return {
            **super().describe(),
            "wp_feature_space": "standardised projector outputs (Liu eq. 18)"
            if standardised
            else "projector outputs",
        }
