"""What a training run will need, estimated from its options before anything is allocated.

The network is built on PyTorch's ``meta`` device (shapes without storage) to count its
parameters and buffers exactly, whatever the method and its heads; the activations kept for the
backward pass are estimated per image from the backbone, the image side and the head widths.
Together with the optimiser state, the EMA target and the features the measurements extract, the
estimate is checked by :func:`symbolic.common.resources.check_memory` against the device's memory
(the GPU's for the network on CUDA), so that ``--proj-dim 1000000`` stops at once with one line
instead of an allocator traceback after the run folder was made.
"""

from __future__ import annotations

import dataclasses

import torch

from empirical.backbones import build_backbone, resolve_stem
from empirical.methods import get
from symbolic.common.resources import check_memory, float_bytes

#: activations kept per image and per pixel of the input (float32 numbers), by backbone; the
#: ResNets with the ImageNet stem work at a quarter of the resolution after it
ACTIVATIONS_PER_PIXEL = {
    ("convnet", "small"): 12.0,  # times the width: w, 2w, 4w, 4w channels, three kept each
    ("resnet18", "small"): 1000.0,
    ("resnet18", "imagenet"): 80.0,
    ("resnet50", "small"): 3000.0,
    ("resnet50", "imagenet"): 250.0,
}


def network_size(cfg, channels: int) -> tuple[float, float, float, int]:
    """(trainable parameters, frozen parameters and buffers, head width per image, feature
    width) of the method ``cfg`` describes, counted on the meta device."""
    with torch.device("meta"):
        backbone = build_backbone(
            cfg.backbone, channels, cfg.image_size, cfg.stem, cfg.width, cfg.depth,
            cfg.input_dim, cfg.batchnorm,
        )  # fmt: skip
        width = backbone.out_dim
        sized = dataclasses.replace(
            cfg, proj_hidden=cfg.proj_hidden or width, proj_dim=cfg.proj_dim or width
        )
        if cfg.projector == "none":
            sized = dataclasses.replace(sized, proj_hidden=width, proj_dim=width)
        method = get(cfg.method)(sized, backbone)
    trainable = sum(float(p.numel()) for p in method.parameters() if p.requires_grad)
    frozen = sum(float(p.numel()) for p in method.parameters() if not p.requires_grad)
    frozen += sum(float(b.numel()) for b in method.buffers())
    heads = 3.0 * sized.proj_hidden + 2.0 * sized.proj_dim + 3.0 * getattr(sized, "pred_hidden", 0)
    return trainable, frozen, heads, width + sized.proj_dim


def activations_per_image(cfg, channels: int) -> float:
    """Float32 numbers one image's forward pass keeps for the backward pass (an estimate)."""
    pixels = float(cfg.image_size) ** 2
    if cfg.backbone in ("linear", "mlp"):
        return pixels * channels + 4.0 * cfg.width * max(cfg.depth, 1)
    stem = "small" if cfg.backbone == "convnet" else resolve_stem(cfg.stem, cfg.image_size)
    per_pixel = ACTIVATIONS_PER_PIXEL[(cfg.backbone, stem)]
    if cfg.backbone == "convnet":
        per_pixel *= cfg.width
    return pixels * (per_pixel + channels)


def check_training_memory(cfg, channels: int, world: int, device: torch.device) -> None:
    """UsageError "--proj-dim 1000000 ...: needs ~X GiB, this machine has Y GiB" when the run
    cannot fit; ``cfg`` is the resolved configuration (backbone and image size known)."""
    trainable, frozen, heads, feature_width = network_size(cfg, channels)
    per_rank = cfg.batch_size // max(world, 1)
    # weights, gradients and momentum of the trained parameters; the rest once
    network = float_bytes(3 * trainable + frozen, itemsize=4)
    # two views through the online network, kept for the backward pass, and a quarter more for
    # what is transient (the target's forward pass, the loss)
    images = 2.5 * per_rank * (activations_per_image(cfg, channels) + heads)
    network += float_bytes(images, itemsize=4)
    n_features = cfg.eval_size + cfg.probe_train + cfg.probe_test + cfg.val_size
    features = float_bytes(2 * n_features * feature_width)  # float32 and float64 copies
    sizes = (
        f"--backbone {cfg.backbone} --width {cfg.width} --image-size {cfg.image_size} "
        f"--batch-size {cfg.batch_size} --proj-hidden {cfg.proj_hidden} --proj-dim {cfg.proj_dim}"
    )
    for name in ("pred_hidden", "queue_size"):  # the method's own sizes
        if hasattr(cfg, name):
            sizes += f" --{name.replace('_', '-')} {getattr(cfg, name)}"
    if device.type == "cuda":
        gpu = torch.cuda.get_device_properties(device).total_memory
        check_memory(network, sizes, available=gpu, where=f"the GPU {device}")
        check_memory(features, sizes)
    else:
        check_memory(network + features, sizes)
