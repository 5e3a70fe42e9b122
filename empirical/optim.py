"""Optimisers and per-step schedules.

Learning rate: lr = base_lr * global_batch / 256 (Goyal et al. 2017, used by every method here),
linear warm-up then half-cosine to 0 (or constant), evaluated per step s = 0 .. S-1 (W warm-up
steps):
    lr(s) = lr * (s + 1) / W                                    for s < W
    lr(s) = lr * (1 + cos(pi (s - W) / (S - W))) / 2            for s >= W (cosine)
    lr(s) = lr                                                  for s >= W (constant)
EMA momentum (BYOL, Grill et al. 2020, sec. 3.2), per step k of K:
    tau(k) = tau_end - (tau_end - tau_base) (1 + cos(pi k / K)) / 2
What a step means in flow time: :mod:`empirical.flow`.

LARS (You et al. 2017, as in BYOL and Barlow Twins): for each adapted parameter w with gradient g,
    g <- g + wd w;  g <- trust * eta * ||w|| / ||g|| * g (1 when either norm is 0);
    v <- momentum v + g;  w <- w - lr v.
Biases and normalisation parameters form a separate group without weight decay and without the
trust ratio (plain momentum SGD), with both SGD and LARS.
"""

from __future__ import annotations

import math

import torch
from torch import nn

NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def split_parameters(modules: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(adapted, excluded): excluded are biases and parameters of normalisation layers."""
    excluded_ids = set()
    for module in modules.modules():
        for name, param in module.named_parameters(recurse=False):
            if isinstance(module, NORM_TYPES) or name == "bias":
                excluded_ids.add(id(param))
    adapted, excluded = [], []
    for param in modules.parameters():
        if param.requires_grad:
            (excluded if id(param) in excluded_ids else adapted).append(param)
    return adapted, excluded


def param_groups(
    model: nn.Module, weight_decay: float, fixed_lr: nn.Module | None = None
) -> list[dict]:
    """Optimiser groups: weights (decay, adaptation) and biases/norm parameters (neither).

    Parameters of ``fixed_lr`` (SimSiam's predictor, ``--fix-pred-lr``) get groups marked
    ``fixed_lr``: they keep the base learning rate, without the cosine decay.
    """
    fixed_ids = {id(p) for p in fixed_lr.parameters()} if fixed_lr is not None else set()
    adapted, excluded = split_parameters(model)
    groups = []
    for params, decay, adapt in ((adapted, weight_decay, True), (excluded, 0.0, False)):
        for fixed in (False, True):
            chosen = [p for p in params if (id(p) in fixed_ids) == fixed]
            if chosen:
                groups.append(
                    {
                        "params": chosen,
                        "weight_decay": decay,
                        "lars_adapt": adapt,
                        "fixed_lr": fixed,
                    }
                )
    return groups


class LARS(torch.optim.Optimizer):
    """Layer-wise adaptive rate scaling with momentum (see module docstring for the update)."""

    def __init__(
        self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, eta: float = 1e-3
    ) -> None:
        defaults = dict(
            lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta, lars_adapt=True
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every group with ``torch._foreach_*`` kernels (a few per group, not
        per parameter) and no host synchronisation."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if group["lars_adapt"]:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
                w_norm = torch.stack(torch._foreach_norm(params))
                g_norm = torch.stack(torch._foreach_norm(grads))
                trust = torch.where(
                    (w_norm > 0) & (g_norm > 0), group["eta"] * w_norm / g_norm, 1.0
                )
                grads = torch._foreach_mul(grads, list(trust.unbind()))
            states = [self.state[p] for p in params]
            if any("momentum_buffer" not in s for s in states):  # the first step
                for state, g in zip(states, grads, strict=True):
                    state["momentum_buffer"] = torch.clone(g).detach()
            else:
                buffers = [s["momentum_buffer"] for s in states]
                torch._foreach_mul_(buffers, group["momentum"])
                torch._foreach_add_(buffers, grads)
            buffers = [s["momentum_buffer"] for s in states]
            torch._foreach_add_(params, buffers, alpha=-group["lr"])
        return loss


def build_optimizer(
    name: str, groups: list[dict], lr: float, momentum: float, lars_eta: float
) -> torch.optim.Optimizer:
    """'sgd' (momentum SGD, decay per group) or 'lars'."""
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    if name == "lars":
        return LARS(groups, lr=lr, momentum=momentum, eta=lars_eta)
    raise ValueError(f"unknown optimizer {name!r}; choose sgd or lars")


def scaled_lr(base_lr: float, global_batch: int) -> float:
    """The linear scaling rule lr = base_lr * batch / 256."""
    return base_lr * global_batch / 256


def scheduled_lr(
    step: int, total_steps: int, warmup_steps: int, peak: float, schedule: str = "cosine"
) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up to ``peak``, then half-cosine to 0
    (``schedule='cosine'``) or ``peak`` (``'constant'``)."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if schedule == "constant":
        return peak
    span = max(1, total_steps - warmup_steps)
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / span))


def ema_momentum(step: int, total_steps: int, base: float, final: float = 1.0) -> float:
    """BYOL's cosine EMA schedule from ``base`` (step 0) to ``final`` (step ``total_steps``)."""
    return final - (final - base) * (1 + math.cos(math.pi * step / max(1, total_steps))) / 2


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float, peak: float) -> None:
    """Set the scheduled lr on every group; ``fixed_lr`` groups keep ``peak``."""
    for group in optimizer.param_groups:
        group["lr"] = peak if group.get("fixed_lr") else lr
