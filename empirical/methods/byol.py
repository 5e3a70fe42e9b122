"""BYOL (Grill et al. 2020): an EMA target, a predictor on the online branch, no negatives.

Loss ``byol`` (docs/theory.md (L4)): per direction 2 - 2 cos(p_theta(z), sg(z'_xi)), the two
directions summed; or ``linear_byol`` (Tian et al. 2021 eq. 1, unnormalised, for the linear-theory
experiments), also summed over the two directions: L = l(W_p, f1, f2') + l(W_p, f2, f1') with f'
the target's features. Either way each step moves the weights as two steps of Tian's
one-direction flow, so the run's flow time counts 2 per unit learning rate
(``loss_directions = 2``). Defaults: the DeepMind 100-epoch preset (LARS, lr 0.45 per 256
images, weight decay 1e-6, projector 4096-256, predictor 4096, tau 0.99 -> 1).
"""

from __future__ import annotations

import torch

from empirical.methods.base import EMAOptions, PredictorMethod, PredictorOptions

BYOL_MLP = {"layers": 2, "batchnorm": True}


class BYOL(PredictorMethod):
    name = "byol"
    summary = "BYOL: EMA target, MLP predictor (or --predictor linear)"
    reference = "Grill et al. 2020; DeepMind byol configs (100-epoch preset)"
    losses = ("byol", "linear_byol")
    target = "ema"
    projector_layout = BYOL_MLP
    predictor_layout = BYOL_MLP
    options = (PredictorOptions, EMAOptions)
    defaults = {
        "optimizer": "lars",
        "lr": 0.45,
        "weight_decay": 1e-6,
        "proj_hidden": 4096,
        "proj_dim": 256,
        "pred_hidden": 4096,
        "ema_base": 0.99,
    }
    scenario = "linear_byol"

    @classmethod
    def check(cls, cfg) -> None:
        super().check(cfg)
        if not cfg.loss_params.get("stop_gradient", True):
            raise ValueError(
                "--loss-param stop_gradient=false: BYOL's target is an EMA copy that no gradient "
                "reaches; the no-stop-gradient ablation is simsiam's"
            )

    @property
    def loss_directions(self) -> int:
        return 2

    def loss_args(self, out: dict, v1: torch.Tensor, v2: torch.Tensor) -> tuple:
        t1, t2 = self.target_embed(v1), self.target_embed(v2)
        if self.cfg.loss == "linear_byol":
            return (self.predictor_weight(), out["z1"], out["z2"], t1, t2)
        return (out["p1"], out["p2"], t1, t2)

    def loss_value(self, fn, args: tuple) -> torch.Tensor:
        if self.cfg.loss == "linear_byol":
            wp, z1, z2, t1, t2 = args
            return fn(wp, z1, t2, **self.loss_params) + fn(wp, z2, t1, **self.loss_params)
        return fn(*args, **self.loss_params)
