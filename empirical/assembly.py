"""A run's parts from its configuration: resolved options, network, optimiser, views, precision.

:func:`resolve_auto` turns every 'auto' and unset option into the value the run uses (for this data,
device and number of processes); :func:`build_parts` builds the method (its BatchNorm synchronised
across processes, DDP- and compile-wrapped forward), the optimiser over its parameter groups and
the bf16 autocast when asked for. A run on the linear backbone fits its PCA here, on the training
split only.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import torch

from empirical import augment, recipes
from empirical.backbones import FLAT_BACKBONES, LinearEncoder, build_backbone
from empirical.data import Dataset, Split
from empirical.distributed import DistInfo, convert_sync_batchnorm
from empirical.methods import Method, get
from empirical.optim import build_optimizer, param_groups, scaled_lr
from symbolic.common.cli import UsageError


def resolve_auto(cfg, data: Dataset, device_type: str, world: int):
    """The configuration with every 'auto' and unset value resolved for this data and device."""
    backbone = cfg.backbone
    if backbone == "auto":
        backbone = "resnet18" if device_type == "cuda" else "convnet"
    image_size = cfg.image_size or (data.native_size if cfg.data.startswith("fashion") else 224)
    schedule_warmup = min(10.0, cfg.epochs / 10) if cfg.lr_schedule == "cosine" else 0.0
    augment_kind = cfg.augment
    if augment_kind == "auto":
        augment_kind = "shift" if backbone in FLAT_BACKBONES else get(cfg.method).augmentation
    crop = cfg.crop_min_scale
    if crop is None and augment_kind in recipes.RECIPES:
        crop = recipes.crop_min_scale(augment_kind)
    if cfg.batch_size % world:
        raise UsageError(f"--batch-size {cfg.batch_size}: not divisible by the {world} processes")
    values = dict(
        backbone=backbone,
        image_size=image_size,
        load_size=cfg.load_size or data.native_size,
        warmup_epochs=schedule_warmup if cfg.warmup_epochs is None else cfg.warmup_epochs,
        augment=augment_kind,
        crop_min_scale=crop,
        world_size=world,
    )
    return dataclasses.replace(cfg, **values)


def make_views(cfg, normalize: augment.Normalize, generator: torch.Generator):
    """The run's two-view augmentation drawing from ``generator`` (``view`` draws one view)."""
    if cfg.augment == "shift":
        return augment.ShiftFlipNoise(
            normalize, generator, cfg.aug_shift, cfg.aug_flip, cfg.aug_noise
        )
    views = recipes.views(cfg.augment, cfg.crop_min_scale)
    return augment.TwoViewAugment(cfg.image_size, normalize, generator, views)


def eval_view(images: torch.Tensor, size: int, normalize: augment.Normalize) -> torch.Tensor:
    """The un-augmented input: central ``size`` square (Resize 256 + CenterCrop 224 for folder
    data), resized to ``size`` when smaller, normalised (channels_last on CUDA)."""
    x = normalize(augment.center_resize(augment.central_square(images, size), size))
    return x.contiguous(memory_format=torch.channels_last) if x.is_cuda else x


def eval_batches(split: Split, n: int, cfg, view: Callable, device) -> Iterator[torch.Tensor]:
    """Un-augmented, normalised inputs of the first ``n`` images of ``split``."""
    bs = max(256, cfg.batch_size)
    for images, _ in split.head(n).all_batches(bs, device):
        yield view(images)


@dataclasses.dataclass
class Parts:
    """What :func:`build_parts` builds: the resolved configuration and the trained objects."""

    cfg: Any
    method: Method
    optimizer: torch.optim.Optimizer
    autocast: Callable


def build_parts(cfg, data: Dataset, train_split: Split, view, info: DistInfo, device) -> Parts:
    """Backbone (the linear one fitted on ``train_split``), method, optimiser and precision."""
    backbone = build_backbone(
        cfg.backbone,
        data.channels,
        cfg.image_size,
        cfg.stem,
        cfg.width,
        cfg.depth,
        cfg.input_dim,
        cfg.batchnorm,
    ).to(device)
    if isinstance(backbone, LinearEncoder):
        pixels = backbone.pca_components.shape[1]
        if cfg.input_dim > pixels:
            raise UsageError(f"--input-dim {cfg.input_dim}: the images have {pixels} pixels")
        backbone.fit(eval_batches(train_split, len(train_split), cfg, view, device))
    width = backbone.out_dim
    cfg = dataclasses.replace(
        cfg, proj_hidden=cfg.proj_hidden or width, proj_dim=cfg.proj_dim or width
    )
    if cfg.projector == "none":
        cfg = dataclasses.replace(cfg, proj_hidden=width, proj_dim=width)
    method: Method = get(cfg.method)(cfg, backbone).to(device)
    if info.world > 1:
        convert_sync_batchnorm(method, device.type)
    cuda = device.type == "cuda"
    if cuda:
        method.to(memory_format=torch.channels_last)
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and cuda)
    autocast = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16))
        if bf16
        else contextlib.nullcontext
    )
    method.autocast = autocast
    fixed = method.online.predictor if method.predictor_lr_fixed() else None
    groups = param_groups(method.online, cfg.weight_decay, fixed)
    peak = scaled_lr(cfg.lr, cfg.batch_size)
    optimizer = build_optimizer(cfg.optimizer, groups, peak, cfg.momentum, cfg.lars_eta)
    forward = method.online
    if info.world > 1:
        forward = torch.nn.parallel.DistributedDataParallel(
            forward, device_ids=[info.local_rank] if cuda else None
        )
    if cfg.compile:
        forward = torch.compile(forward)
    method.set_forward(forward)
    return Parts(cfg, method, optimizer, autocast)
