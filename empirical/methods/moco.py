"""MoCo v2 (Chen et al. 2020): a momentum key encoder and a queue of negative keys.

Loss ``infonce`` (docs/theory.md (L3)): query z1 of the online network (which encodes view 1 only),
positive key the EMA target's projection of view 2 (stop-gradient), negatives the queue. After each
step the batch's l2-normalised keys (gathered over ranks, without gradient) replace the oldest queue
entries. Defaults: tau 0.2, momentum 0.999 (constant), K 65536, SGD lr 0.03 per 256 images.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from empirical.distributed import gather_no_grad
from empirical.methods.base import EMAOptions, Method
from symbolic.common.options import param


@dataclasses.dataclass(frozen=True)
class QueueOptions:
    queue_size: int = param(65536, "MoCo queue length K", at_least=1, at_most=1 << 24)


class MoCoV2(Method):
    name = "moco_v2"
    summary = "MoCo v2: momentum key encoder and a queue of negatives"
    reference = "Chen et al. 2020 (MoCo v2): tau 0.2, m 0.999, K 65536"
    losses = ("infonce",)
    loss_overrides = {"temperature": 0.2}
    augmentation = "moco_v2"
    target = "ema"
    gathered = "keys without gradient, to fill the queue"
    projector_layout = {"layers": 2, "batchnorm": False}
    online_views = 1  # the query of view 1; view 2 goes through the key encoder only
    options = (EMAOptions, QueueOptions)
    defaults = {
        "optimizer": "sgd",
        "lr": 0.03,
        "weight_decay": 1e-4,
        "proj_dim": 128,
        "ema_base": 0.999,
        "ema_final": 0.999,
    }

    def __init__(self, cfg, backbone) -> None:
        super().__init__(cfg, backbone)
        queue = F.normalize(torch.randn(cfg.queue_size, self.dim), dim=1)
        self.register_buffer("queue", queue)
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def loss_args(self, out: dict, v1: torch.Tensor, v2: torch.Tensor) -> tuple:
        out["key"] = self.target_embed(v2)
        return (out["z1"], out["key"], self.queue)

    def update_state(self, step: int, out: dict) -> None:
        keys = gather_no_grad(F.normalize(out["key"], dim=1))
        idx = (self.queue_ptr + torch.arange(keys.shape[0], device=keys.device)) % len(self.queue)
        self.queue[idx] = keys
        self.queue_ptr.copy_((self.queue_ptr + keys.shape[0]) % len(self.queue))
