"""SimSiam (Chen & He 2021): shared weights, stop-gradient on the target branch, a predictor.

Loss ``simsiam`` (docs/theory.md (L5)): 1/2 D(h(z1), sg z2) + 1/2 D(h(z2), sg z1), D the negative
cosine; or ``linear_byol`` (Tian et al. 2021 eq. 1 with W_a = W), averaged over the two directions
like SimSiam's, so one unit of learning rate is one unit of Tian's flow time
(``loss_directions = 1``). The predictor keeps the peak learning rate (the official
``--fix-pred-lr``) unless ``--no-fix-pred-lr``; the run then records alpha_p(t) = lr_peak / lr(t).
Defaults: the official ImageNet recipe (SGD, lr 0.05 per 256 images, weight decay 1e-4, projector
2048-2048 ending in a non-affine BN, bottleneck predictor 512), MoCo v2's augmentation as the
official code.
"""

from __future__ import annotations

import dataclasses

import torch

from empirical.methods.base import PredictorMethod, PredictorOptions
from symbolic.common.options import param


@dataclasses.dataclass(frozen=True)
class SimSiamOptions:
    fix_pred_lr: bool = param(
        True, "keep the predictor at the peak learning rate (the official --fix-pred-lr)"
    )


class SimSiam(PredictorMethod):
    name = "simsiam"
    summary = "SimSiam: shared weights, stop-gradient, bottleneck predictor"
    reference = "Chen & He 2021; facebookresearch/simsiam (--fix-pred-lr)"
    losses = ("simsiam", "linear_byol")
    target = "online"
    augmentation = "moco_v2"  # main_simsiam.py: "MoCo v2's aug"
    predictor_layout = {"layers": 2, "batchnorm": True, "hidden_bias": False}
    projector_layout = {
        "layers": 3,
        "batchnorm": True,
        "hidden_bias": False,
        "last_bias": False,
        "last_bn": True,
    }
    options = (PredictorOptions, SimSiamOptions)
    defaults = {
        "optimizer": "sgd",
        "lr": 0.05,
        "weight_decay": 1e-4,
        "proj_hidden": 2048,
        "proj_dim": 2048,
        "pred_hidden": 512,
    }
    scenario = "linear_simsiam"

    def predictor_lr_fixed(self) -> bool:
        return self.cfg.fix_pred_lr and self.online.predictor is not None

    def loss_args(self, out: dict, v1: torch.Tensor, v2: torch.Tensor) -> tuple:
        if self.cfg.loss == "linear_byol":
            return (self.predictor_weight(), out["z1"], out["z2"])
        return (out["p1"], out["p2"], out["z1"], out["z2"])

    def loss_value(self, fn, args: tuple) -> torch.Tensor:
        if self.cfg.loss == "linear_byol":
            wp, z1, z2 = args  # the loss stops the gradient through its target argument
            return (fn(wp, z1, z2, **self.loss_params) + fn(wp, z2, z1, **self.loss_params)) / 2
        return fn(*args, **self.loss_params)
