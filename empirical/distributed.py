"""Data-parallel helpers: process group from torchrun, gathers with gradients, synchronised BN.

Under DDP every rank holds B/W samples of a global batch of B. Losses whose statistics couple the
samples (Barlow Twins' cross-correlation, VICReg's variance and covariance, SimCLR's negatives,
Liu et al.'s correlation term) are evaluated on embeddings all-gathered *with gradients*
(``torch.distributed.nn.functional.all_gather``, whose backward sums the incoming gradients over
ranks), so each rank computes the global-batch loss L and receives W dL/dz for its own samples;
DDP's gradient average then gives exactly dL/dtheta of one process on the global batch.

torch's SyncBatchNorm runs only on accelerators; :class:`GatheredBatchNorm` does the same on the
CPU (gloo): mean and biased variance over the global batch, with the statistics gathered with
gradients, running statistics updated with the unbiased variance as BatchNorm does.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.nn.functional import all_gather

# torch 2.14 marks the autograd-aware all_gather deprecated in favour of a private module; it is
# the documented differentiable gather and works with gloo and NCCL.
warnings.filterwarnings(
    "ignore",
    message="torch.distributed.nn.functional.all_gather is deprecated",
    category=FutureWarning,
)


@dataclass(frozen=True)
class DistInfo:
    """Rank, world size and local rank of this process (world 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def init_from_env(device_type: str) -> DistInfo:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK); else world 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        # The main rank measures and probes after each epoch while the others wait at a
        # barrier; allow that to take long (NCCL's default timeout is 10 minutes).
        dist.init_process_group(
            backend="nccl" if device_type == "cuda" else "gloo", timeout=timedelta(hours=2)
        )
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward makes the incoming gradient contiguous.

    all_gather's backward hands the gradient slices to an all-to-all that, with gloo, reads them
    as contiguous memory; a transposed gradient (Liu et al.'s loss uses z2^T) then arrives
    scrambled on the other ranks. Measured: without this, the gathered z2 gradient of the liu
    loss is off by 135% (tests/empirical/test_ddp.py checks the fix).
    """

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.contiguous()


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all ranks along dim 0, differentiably (identity at world 1)."""
    if not is_distributed():
        return x
    parts = all_gather(x)
    return torch.cat([_ContiguousGrad.apply(p) for p in parts], dim=0)


def all_ranks(value):
    """``value`` from every rank, in rank order (``[value]`` in one process); a collective."""
    if not is_distributed():
        return [value]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate a detached ``x`` from all ranks (rank order)."""
    if not is_distributed():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


def mean_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """Average of a detached tensor over ranks (identity at world 1)."""
    if not is_distributed():
        return x
    x = x.clone()
    dist.all_reduce(x)
    return x / dist.get_world_size()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


class GatheredBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch of all ranks, for CPU process groups (gloo).

    y = (x - mu) / sqrt(var_biased + eps) * gamma + beta with mu, var over every rank's samples
    (channel dim 1). Outside distributed training it is an ordinary BatchNorm.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input (got {input.dim()}-D)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        dims = [d for d in range(x.dim()) if d != 1]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        total = gather_no_grad(count).sum()
        mean = gather_with_grad(x.sum(dim=dims)[None]).sum(dim=0) / total
        centred = x - mean.view(shape)
        var = gather_with_grad((centred**2).sum(dim=dims)[None]).sum(dim=0) / total
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = (
                    self.momentum
                    if self.momentum is not None
                    else 1.0 / float(self.num_batches_tracked)
                )
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * total / (total - 1))
        y = centred / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_sync_batchnorm(module: nn.Module, device_type: str) -> nn.Module:
    """Replace every BatchNorm by a synchronised one: torch's on accelerators, ours on the CPU."""
    if device_type != "cpu":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, GatheredBatchNorm
    ):
        ref = next(iter([*module.parameters(), *module.buffers()]), None)
        kind = {} if ref is None else {"device": ref.device, "dtype": ref.dtype}
        new = GatheredBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
            **({} if ref is None or not ref.is_floating_point() else kind),
        )
        if module.affine:
            with torch.no_grad():
                new.weight.copy_(module.weight)
                new.bias.copy_(module.bias)
        if module.track_running_stats:
            new.running_mean.copy_(module.running_mean)
            new.running_var.copy_(module.running_var)
            new.num_batches_tracked.copy_(module.num_batches_tracked)
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, device_type))
    return module
