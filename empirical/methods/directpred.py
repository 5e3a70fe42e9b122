"""DirectPred and DirectCopy (Tian, Chen, Ganguli 2021; Wang et al. 2021): BYOL with W_p set.

A running correlation of the detached online projector outputs f of both views (not centred; the
first batch initialises it),
    F_hat <- rho F_hat + (1 - rho) mean_batch(f f^T),
is kept in the model's state (so checkpoints carry it), and every ``freq`` steps W_p is set from
it by the rule of :mod:`symbolic.predictors` (computed in float64): DirectPred
W_p = U diag(p(s)) U^T (eq. 18-19, ``--eps-convention paper|code``), DirectCopy W_p = F_hat + eps I.
W_p is set after the optimiser step of steps k (0-based) with k % freq == 0 (``--freq-phase
start``: Tian et al.'s code, facebookresearch/luckmatters ssl/real-dataset/byol_trainer.py,
``regulate_predictor`` after ``optimizer.step()``, ``niter % predictor_freq == 0``) or with
(k + 1) % freq == 0 (``--freq-phase end``). W_p stays a parameter of the optimiser, as in their
code: between two sets the gradient of the loss trains it, so at freq 1 the rule alone decides
W_p (each step's gradient update is overwritten by the set that ends the step), and at freq > 1
the steps between sets also train it by gradient. The loss is BYOL's (``byol``, two directions
summed). Defaults: luckmatters' STL-10 settings (SGD, lr 0.06 per 256 images, weight decay 4e-4,
projector 512-128, tau 0.996).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from empirical.distributed import mean_over_ranks
from empirical.heads import LinearPredictor
from empirical.methods.base import EMAOptions, Method
from empirical.methods.byol import BYOL_MLP
from symbolic.common.options import param
from symbolic.predictors import CONVENTIONS, directcopy_matrix, directpred_matrix


@dataclasses.dataclass(frozen=True)
class CorrelationOptions:
    rho: float = param(0.3, "running-average coefficient rho of F_hat", at_least=0, below=1)
    eps: float = param(0.1, "eps of the rule", at_least=0, at_most=100)
    freq: int = param(1, "set W_p every freq steps", at_least=1, at_most=1_000_000)
    freq_phase: str = param(
        "start",
        "which step of each freq steps sets W_p: 'start' after steps 0, freq, 2 freq, ... "
        "(Tian et al.'s code), 'end' after steps freq-1, 2 freq-1, ...",
        choices=("start", "end"),
    )


def sets_predictor(step: int, freq: int, phase: str) -> bool:
    """Whether W_p is set after optimiser step ``step`` (0-based) for ``--freq-phase phase``."""
    return (step if phase == "start" else step + 1) % freq == 0


@dataclasses.dataclass(frozen=True)
class ConventionOptions:
    eps_convention: str = param(
        "code",
        "DirectPred: 'paper' p=sqrt(s)+eps*max(s); 'code' p=max(sqrt(s/max s)+eps, 1e-4)",
        choices=CONVENTIONS,
    )


def update_correlation(
    f_hat: torch.Tensor, ready: torch.Tensor, batch_corr: torch.Tensor, rho: float
) -> None:
    """In place: F_hat <- rho F_hat + (1 - rho) batch_corr, or F_hat <- batch_corr at first call.

    ``ready`` is a 0-d bool buffer marking that F_hat holds an estimate.
    """
    batch_corr = batch_corr.detach().to(f_hat.dtype)
    if bool(ready):
        f_hat.mul_(rho).add_(batch_corr, alpha=1 - rho)
    else:
        f_hat.copy_(batch_corr)
        ready.fill_(True)


class DirectCopy(Method):
    name = "directcopy"
    summary = "DirectCopy: linear predictor W_p = F_hat + eps I"
    reference = "Wang, Chen, Du, Tian 2021 (DirectCopy); docs/theory.md (L10)"
    losses = ("byol",)
    predictor = "set"
    target = "ema"
    applies_predictor = True
    gathered = "nothing; the batch f f^T is averaged over ranks for F_hat"
    projector_layout = BYOL_MLP
    options = (EMAOptions, CorrelationOptions)
    defaults = {
        "optimizer": "sgd",
        "lr": 0.06,
        "weight_decay": 4e-4,
        "proj_hidden": 512,
        "proj_dim": 128,
        "ema_base": 0.996,
    }

    def __init__(self, cfg, backbone) -> None:
        super().__init__(cfg, backbone)
        self.register_buffer("f_hat", torch.zeros(self.dim, self.dim))
        self.register_buffer("f_hat_ready", torch.zeros((), dtype=torch.bool))

    def build_predictor(self, dim: int) -> nn.Module:
        return LinearPredictor(dim)

    @property
    def loss_directions(self) -> int:
        return 2

    def loss_args(self, out: dict, v1: torch.Tensor, v2: torch.Tensor) -> tuple:
        return (out["p1"], out["p2"], self.target_embed(v1), self.target_embed(v2))

    def rule(self, f_hat: torch.Tensor) -> torch.Tensor:
        """W_p from F_hat (float64)."""
        return directcopy_matrix(f_hat, self.cfg.eps)

    def update_state(self, step: int, out: dict) -> None:
        z = torch.cat([out["z1"], out["z2"]]).detach().float()
        batch = mean_over_ranks(z.T @ z / len(z))
        update_correlation(self.f_hat, self.f_hat_ready, batch, self.cfg.rho)
        if sets_predictor(step, self.cfg.freq, self.cfg.freq_phase):
            wp = self.rule(self.f_hat.double())
            self.online.predictor.weight.copy_(wp.to(self.f_hat.dtype))


class DirectPred(DirectCopy):
    name = "directpred"
    summary = "DirectPred: linear predictor set from the eigenbasis of F_hat"
    reference = "Tian, Chen, Ganguli 2021, eq. 18-19; luckmatters STL-10 settings"
    options = (EMAOptions, CorrelationOptions, ConventionOptions)

    def rule(self, f_hat: torch.Tensor) -> torch.Tensor:
        return directpred_matrix(f_hat, self.cfg.eps, self.cfg.eps_convention)
