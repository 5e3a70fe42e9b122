"""Encoders: torchvision ResNets, a small ConvNet, and the encoders the linear theory describes.

Small-image stem (the CIFAR variant of He et al. 2016, sec. 4.2, as used by SimCLR and solo-learn
for 32 px inputs): conv1 becomes 3x3 / stride 1 / padding 1 and the max-pool is removed, so a
28-32 px image keeps its resolution into layer1. The classifier is removed: the encoder returns the
pooled features (512 for ResNet-18, 2048 for ResNet-50).

The ConvNet is for quick CPU runs: four 3x3 conv-BN-ReLU blocks (width w, 2w, 4w, 4w; the last
three with stride 2) and global average pooling, 4w features (128 at the default w = 32). On the
project's 2-core CPU it trains at about 480 two-view images/s at 28 px (ResNet-18 with the small
stem: about 24 images/s).

The theory's encoders (the model ladder of the bridge experiments):

- ``linear``: f = W c P (x - mu), one bias-free linear layer W (width x k) on the first k
  principal components of the flattened, normalised training images (P, mu fitted on the training
  split only, stored as buffers; Tian et al. 2021 eq. 1 with x in PCA coordinates), scaled by
  c = 1/sqrt(mean variance of the k components) so that a coordinate has variance 1 on average
  (learning rates then mean the same whatever the image size); with ``depth`` L > 1 the deep
  linear encoder f = W_L ... W_2 W_1 c P (x - mu), bias-free layers W_l (width x width above the
  first), whose flow is the deep-linear flow (``dynamics.simulate general --from-run``);
- ``mlp``: ``depth`` blocks Linear(width) [BatchNorm] ReLU on the flattened pixels.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

BACKBONES = ("convnet", "resnet18", "resnet50", "linear", "mlp")
#: backbones whose input is the flattened image (no spatial augmentation requirement)
FLAT_BACKBONES = ("linear", "mlp")
STEMS = ("auto", "small", "imagenet")


class ConvNet(nn.Module):
    """Four conv-BN-ReLU blocks and global average pooling; ``out_dim`` = 4 * width."""

    def __init__(self, in_channels: int, width: int = 32) -> None:
        super().__init__()
        widths = (width, 2 * width, 4 * width, 4 * width)
        layers: list[nn.Module] = []
        prev = in_channels
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers += [
                nn.Conv2d(prev, w, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
            ]
            prev = w
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_dim = prev

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def principal_components(
    batches: Iterable[torch.Tensor], k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean mu, components P (k, D), variances) of the rows of the batches (B, D), float64.

    The covariance is accumulated over the batches (sum x and sum x x^T, unbiased); P holds its
    eigenvectors with the k largest eigenvalues, in decreasing order, each signed so that its
    entry of largest magnitude is positive (a deterministic PCA).
    """
    n, total, outer = 0, None, None
    for x in batches:
        x = x.flatten(1).double()
        if total is None:
            total, outer = x.sum(0), x.T @ x
        else:
            total, outer = total + x.sum(0), outer + x.T @ x
        n += len(x)
    mu = total / n
    cov = (outer - n * torch.outer(mu, mu)) / (n - 1)
    variances, vectors = (torch.from_numpy(a) for a in np.linalg.eigh(cov.cpu().numpy()))  # LAPACK
    order = torch.argsort(variances, descending=True)[:k]
    components = vectors[:, order].T
    signs = torch.sign(components.gather(1, components.abs().argmax(1, keepdim=True)))
    device = mu.device  # the batches' (eigh runs in float64 LAPACK on the CPU)
    return mu, (components * signs).to(device), variances[order].to(device)


class LinearEncoder(nn.Module):
    """f = W c P (x - mu): bias-free W (width x k) on the first k principal components of x,
    scaled to unit mean variance; W = W_L ... W_1, a product of ``depth`` bias-free layers."""

    def __init__(self, in_features: int, input_dim: int, width: int, depth: int = 1) -> None:
        super().__init__()
        self.register_buffer("pca_mean", torch.zeros(in_features))
        self.register_buffer("pca_components", torch.zeros(input_dim, in_features))
        self.register_buffer("pca_variance", torch.zeros(input_dim))
        self.register_buffer("pca_scale", torch.ones(()))
        self.linear = nn.Linear(input_dim, width, bias=False)
        #: the layers W_2 ... W_L above the first (none for the linear encoder)
        self.above = nn.ModuleList(nn.Linear(width, width, bias=False) for _ in range(depth - 1))
        self.out_dim = width

    def fit(self, batches: Iterable[torch.Tensor]) -> None:
        """Fit P and mu to the training inputs (batches of images or of flat rows)."""
        mu, components, variances = principal_components(batches, self.pca_components.shape[0])
        self.pca_mean.copy_(mu)
        self.pca_scale.copy_(1 / variances.mean().sqrt())
        self.pca_components.copy_(components * self.pca_scale.double())
        self.pca_variance.copy_(variances * self.pca_scale.double() ** 2)

    @property
    def weight(self) -> torch.Tensor:
        """W = W_L ... W_1, shape (width, k)."""
        w = self.linear.weight
        for layer in self.above:
            w = layer.weight @ w
        return w

    def recorded_weights(self) -> dict[str, torch.Tensor]:
        """What a run records of the encoder: W (``w``) and, for a deep encoder, W_2 ... W_L
        stacked (depth - 1, width, width) as ``w_up``."""
        out = {"w": self.weight}
        if self.above:
            out["w_up"] = torch.stack([layer.weight for layer in self.above])
        return out

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """PCA coordinates c P (x - mu) of images x (N, C, H, W), rows as samples (the buffer
        ``pca_components`` holds c P, ``pca_variance`` the variances in these coordinates)."""
        flat = x.flatten(1)
        return (flat - self.pca_mean.to(flat.dtype)) @ self.pca_components.to(flat.dtype).T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear(self.project(x))
        for layer in self.above:
            h = layer(h)
        return h


def mlp_encoder(in_features: int, width: int, depth: int, batchnorm: bool) -> nn.Sequential:
    """``depth`` blocks Linear(width) [BatchNorm1d] ReLU on the flattened image."""
    layers: list[nn.Module] = [nn.Flatten()]
    prev = in_features
    for _ in range(depth):
        layers.append(nn.Linear(prev, width, bias=not batchnorm))
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU(inplace=True))
        prev = width
    net = nn.Sequential(*layers)
    net.out_dim = width
    return net


def _resnet(name: str, in_channels: int, small_stem: bool) -> nn.Module:
    import torchvision  # imported here: the ConvNet path needs only torch

    net = getattr(torchvision.models, name)(weights=None)
    if small_stem:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    elif in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    net.out_dim = net.fc.in_features
    net.fc = nn.Identity()
    return net


def resolve_stem(stem: str, image_size: int) -> str:
    """'auto' picks the small stem for images of at most 64 px, the ImageNet stem above."""
    if stem == "auto":
        return "small" if image_size <= 64 else "imagenet"
    return stem


def build_backbone(
    name: str,
    in_channels: int,
    image_size: int,
    stem: str = "auto",
    width: int = 32,
    depth: int = 1,
    input_dim: int = 32,
    batchnorm: bool = False,
) -> nn.Module:
    """The encoder ``name`` (one of :data:`BACKBONES`); it has an ``out_dim`` attribute.

    ``linear`` needs :meth:`LinearEncoder.fit` on training images before use.
    """
    pixels = in_channels * image_size * image_size
    if name == "convnet":
        return ConvNet(in_channels, width)
    if name == "linear":
        return LinearEncoder(pixels, input_dim, width, depth)
    if name == "mlp":
        return mlp_encoder(pixels, width, depth, batchnorm)
    if name in ("resnet18", "resnet50"):
        return _resnet(name, in_channels, resolve_stem(stem, image_size) == "small")
    raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
