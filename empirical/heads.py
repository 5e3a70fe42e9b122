"""Projector and predictor heads: MLPs (Linear-BN-ReLU blocks) and the bias-free linear predictor.

Each method's layout follows its paper / official code (see :mod:`empirical.methods` for who uses
which): BYOL Linear-BN-ReLU-Linear (4096 -> 256); SimSiam three bias-free layers ending in a
non-affine BN, predictor bottleneck 512; Barlow Twins / VICReg / Liu et al. three layers, last one
bias-free; SimCLR Linear-BN-ReLU-Linear; MoCo v2 Linear-ReLU-Linear (no BN).
"""

from __future__ import annotations

import torch
from torch import nn


def mlp(
    in_dim: int,
    hidden: int,
    out_dim: int,
    layers: int = 2,
    batchnorm: bool = True,
    hidden_bias: bool = True,
    last_bias: bool = True,
    last_bn: bool = False,
) -> nn.Sequential:
    """``layers`` Linear layers; every one but the last followed by [BN] and ReLU.

    ``last_bn`` appends a non-affine BatchNorm1d after the last Linear (SimSiam's projector).
    """
    mods: list[nn.Module] = []
    prev = in_dim
    for _ in range(layers - 1):
        mods.append(nn.Linear(prev, hidden, bias=hidden_bias))
        if batchnorm:
            mods.append(nn.BatchNorm1d(hidden))
        mods.append(nn.ReLU(inplace=True))
        prev = hidden
    mods.append(nn.Linear(prev, out_dim, bias=last_bias))
    if last_bn:
        mods.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*mods)


class LinearPredictor(nn.Module):
    """p = W_p z (rows as samples: p = z W_p^T), W_p square and bias-free (Tian et al. 2021, eq. 1).

    Initialised as torch's default Linear initialisation (uniform, bound 1/sqrt(d)).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim, bias=False)

    @property
    def weight(self) -> torch.Tensor:
        """W_p, shape (d, d); acts on column vectors."""
        return self.linear.weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z)
