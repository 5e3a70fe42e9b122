"""Every training option, declared once; a method's configuration class is built from them.

:class:`TrainConfig` declares the options all methods share (each a
:func:`~symbolic.common.options.param`: default, help, allowed values); a method adds its own
option dataclasses (``Method.options``) and its defaults for the shared ones
(``Method.defaults``). :func:`config_class` joins the two into the dataclass that
``python -m empirical.train METHOD`` parses, checks, writes to ``OUT/config.toml`` (which
``--config`` reads back) and compares on ``--resume``.

Options whose default is ``None`` are resolved by the run (the backbone's width, the data's image
size, ...); the run writes the resolved values.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from empirical.backbones import BACKBONES, STEMS
from empirical.methods import METHODS, Method
from empirical.recipes import RECIPES, SUMMARY
from symbolic.common.options import ParameterError, param, validate
from symbolic.registry import loss_params_option

LARGE = 1 << 20


def augment_help(auto: str) -> str:
    """The help of ``--augment``; ``auto`` says what 'auto' is on an image backbone."""
    recipes = "; ".join(f"'{name}' {text}" for name, text in SUMMARY.items())
    return (
        f"views: {recipes} (empirical.recipes); 'shift' (random shift, flip, Gaussian noise; "
        f"the linear-theory experiments) (default: auto: {auto} on image backbones, shift for "
        "linear/mlp)"
    )


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The options every method shares."""

    method: str = param("", "the method (the command's first argument)", option=False)
    data: str = param("fashion-mnist", "fashion-mnist[:PATH], imagenet:PATH or folder:PATH")
    out: str = param("", "output folder (default: runs/METHOD)", resume_free=True)
    epochs: int = param(20, "training epochs", at_least=1, at_most=100_000)
    batch_size: int = param(256, "global batch (all ranks)", at_least=2, at_most=LARGE)
    lr: float = param(
        0.05, "base learning rate per 256 images; the peak lr is lr * batch / 256", above=0
    )
    lr_schedule: str = param(
        "cosine",
        "per-step learning rate: 'cosine' (linear warm-up, then half-cosine to 0) or 'constant'",
        choices=("cosine", "constant"),
    )
    warmup_epochs: float | None = param(
        None, "linear warm-up epochs (default: min(10, epochs / 10) with cosine, 0 constant)",
        at_least=0,
    )  # fmt: skip
    optimizer: str = param("sgd", "optimiser: 'sgd' or 'lars'", choices=("sgd", "lars"))
    weight_decay: float = param(1e-4, "weight decay (SGD: added to the gradient)", at_least=0)
    momentum: float = param(0.9, "heavy-ball momentum of SGD/LARS", at_least=0, below=1)
    lars_eta: float = param(1e-3, "LARS trust coefficient", above=0, at_most=1)
    backbone: str = param(
        "auto",
        "encoder: convnet, resnet18, resnet50, linear (W on PCA coordinates), mlp; auto: "
        "resnet18 on CUDA, convnet on the CPU",
        choices=("auto", *BACKBONES),
    )
    stem: str = param(
        "auto", "ResNet stem; auto: small (3x3, no max-pool) for images <= 64 px", choices=STEMS
    )
    width: int = param(
        32, "ConvNet base width (features 4*width); linear/mlp: output width", at_least=1,
        at_most=16384,
    )  # fmt: skip
    depth: int = param(
        1, "mlp backbone: number of Linear-ReLU blocks; linear: layers W_L ... W_1 (deep linear)",
        at_least=1, at_most=64,
    )  # fmt: skip
    batchnorm: bool = param(False, "mlp backbone: BatchNorm after each Linear")
    input_dim: int = param(
        32, "linear backbone: principal components of the images it sees", at_least=1,
        at_most=LARGE,
    )  # fmt: skip
    augment: str = param(
        "auto",
        augment_help("the method's recipe"),
        choices=("auto", *RECIPES, "shift"),
    )
    aug_shift: int = param(2, "shift augmentation: largest shift in pixels", at_least=0, at_most=64)
    aug_flip: bool = param(True, "shift augmentation: random horizontal flips")
    aug_noise: float = param(
        0.1, "shift augmentation: std of the Gaussian noise on the normalised input", at_least=0
    )
    image_size: int | None = param(
        None, "side of the augmented views (default: 28 for Fashion-MNIST, 224 else)",
        at_least=8, at_most=1024,
    )  # fmt: skip
    load_size: int | None = param(
        None, "folder data: side of the decoded central square (default 256)",
        at_least=8, at_most=2048,
    )  # fmt: skip
    crop_min_scale: float | None = param(
        None, "smallest area fraction of the random resized crop (default: the recipe's, 0.08 "
        "byol and simclr, 0.2 moco_v2)", above=0, at_most=1,
    )  # fmt: skip
    projector: str = param(
        "mlp", "projector: the method's MLP or 'none' (the encoder's output is the embedding)",
        choices=("mlp", "none"),
    )  # fmt: skip
    proj_hidden: int | None = param(
        None, "projector hidden width (default: the method's, else the backbone's width)",
        at_least=1, at_most=LARGE,
    )  # fmt: skip
    proj_dim: int | None = param(
        None, "projector output width d (default: the method's, else the backbone's)",
        at_least=1, at_most=LARGE,
    )  # fmt: skip
    loss: str = param("", "the training loss (a name in symbolic.losses; see --list)")
    loss_params: dict = loss_params_option("a loss hyperparameter NAME=VALUE (see --list)")
    train_subset: int = param(0, "train on the first N training images (0: all)", at_least=0)
    val_size: int = param(
        5000, "labelled validation images held out of the training images", at_least=1
    )
    probe_train: int = param(10000, "probe training images", at_least=1)
    probe_test: int = param(10000, "probe test images (0: all)", at_least=0)
    probes: bool = param(True, "kNN and linear probes at every measurement")
    eval_size: int = param(
        2000, "un-augmented test images for the measurements", at_least=2, at_most=LARGE
    )
    measure_every: int | None = param(
        None, "measure every this many steps (default: at the end of each epoch)", at_least=1
    )
    wp_store_limit: int = param(1024, "store W_p (and W) when d <= this", at_least=1)
    moments_views: int = param(
        16, "linear backbone: views per image K for X and X' (moments.nc)", at_least=2,
        at_most=4096,
    )  # fmt: skip
    moments_images: int = param(
        4000,
        "linear backbone: images M for X and X' (moments.nc); mlp: for X and X' of its "
        "output features at the end (feature_moments.nc)",
        at_least=2,
        at_most=LARGE,
    )
    pairs: int = param(
        1024,
        "linear backbone: augmented pairs N for the prediction of a loss other than eq. 1 "
        "(pairs.nc; pair i: two fresh views of image i mod M, M = moments-images)",
        at_least=2,
        at_most=LARGE,
    )
    workers: str = param(
        "auto", "image-decoding worker processes per training process (folder data): a number, "
        "or auto (the usable cores over the processes on this machine, less one)",
        metavar="N|auto", resume_free=True,
    )  # fmt: skip
    device: str = param(
        "auto", "auto: CUDA when available, else the CPU", choices=("auto", "cpu", "cuda")
    )
    precision: str = param(
        "auto", "auto: bf16 autocast on CUDA, fp32 on the CPU", choices=("auto", "fp32", "bf16")
    )
    compile: bool = param(False, "torch.compile the online network")
    threads: int | None = param(
        None, "CPU threads of torch (default: torch's choice; 1 is fastest for small models and "
        "on a busy machine)", at_least=1, at_most=1024, resume_free=True,
    )  # fmt: skip
    seed: int = param(0, "random seed", at_least=0, at_most=2**32 - 1)
    log_every: int = param(
        50, "the host waits for the device (loss check, progress, TensorBoard) every this many "
        "steps and at each epoch's end", at_least=1, resume_free=True,
    )  # fmt: skip
    checkpoint_every: int = param(
        1, "write the checkpoint (and measurements.nc) every this many epochs and after the "
        "last: more than 1 for runs of many short epochs, where the writes are a large share",
        at_least=1, resume_free=True,
    )  # fmt: skip
    tensorboard: str | None = param(
        None, "also log the scalars to this TensorBoard folder", resume_free=True
    )
    world_size: int = param(1, "processes (set by torchrun)", option=False, resume_free=True)

    def __post_init__(self):
        validate(self)
        if self.workers != "auto" and not (self.workers.isdigit() and int(self.workers) <= 256):
            raise ParameterError(
                f"workers={self.workers!r} is not allowed: auto or a whole number from 0 to 256"
            )
        if self.warmup_epochs is not None and self.warmup_epochs >= self.epochs:
            raise ParameterError(
                f"warmup_epochs={self.warmup_epochs!r} is not allowed: fewer than the "
                f"{self.epochs} epochs"
            )
        if self.backbone == "linear" and self.pairs < self.batch_size:
            raise ParameterError(
                f"pairs={self.pairs!r} is not allowed: at least the batch size {self.batch_size} "
                "(the prediction averages the loss over pairs // batch-size blocks)"
            )
        if not self.method:
            return
        method = METHODS[self.method]
        if self.loss not in method.losses:
            raise ParameterError(
                f"loss={self.loss!r} is not allowed: {method.name} trains with "
                f"{' or '.join(map(repr, method.losses))}"
            )
        try:
            hyper = method.loss_hyperparameters(self.loss, dict(self.loss_params))
            object.__setattr__(self, "loss_params", hyper)
            method.check(self)
        except ValueError as err:
            raise ParameterError(str(err)) from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: ``--help`` groups: title -> the shared options it shows (a method's own options, and any
#: option not named here, go to the group "method")
OPTION_GROUPS: dict[str, tuple[str, ...]] = {
    "data and views": (
        "data", "train_subset", "val_size", "image_size", "load_size", "workers", "augment",
        "aug_shift", "aug_flip", "aug_noise", "crop_min_scale",
    ),
    "model": (
        "backbone", "stem", "width", "depth", "batchnorm", "input_dim", "projector",
        "proj_hidden", "proj_dim",
    ),
    "optimisation": (
        "epochs", "batch_size", "lr", "lr_schedule", "warmup_epochs", "optimizer", "weight_decay",
        "momentum", "lars_eta", "seed", "device", "precision", "compile", "threads",
    ),
    "method": ("loss", "loss_params"),
    "measurement": (
        "eval_size", "measure_every", "probes", "probe_train", "probe_test", "wp_store_limit",
        "moments_views", "moments_images", "pairs",
    ),
    "output": ("out", "log_every", "checkpoint_every", "tensorboard"),
}  # fmt: skip


def option_groups(cls: type) -> dict[str, list[str]]:
    """The option fields of configuration class ``cls`` by ``--help`` group (every field once)."""
    names = [f.name for f in dataclasses.fields(cls)]
    grouped = {title: [n for n in group if n in names] for title, group in OPTION_GROUPS.items()}
    listed = {n for members in OPTION_GROUPS.values() for n in members}
    grouped["method"] += [n for n in names if n not in listed]
    return grouped


@typing.no_type_check
def config_class(method: type[Method]) -> type:
    """The configuration dataclass of ``method``: TrainConfig's options with the method's
    defaults, then the method's own options."""
    base_hints = typing.get_type_hints(TrainConfig)
    shared = {f.name: f for f in dataclasses.fields(TrainConfig)}
    fields: list[tuple[str, Any, dataclasses.Field]] = []
    defaults = {"loss": method.losses[0], **method.defaults}
    for name, value in defaults.items():
        if name in shared:
            meta = shared[name].metadata
            fields.append((name, base_hints[name], dataclasses.field(default=value, metadata=meta)))
    recipe = f"'{method.augmentation}', {SUMMARY[method.augmentation]}"
    meta = {**shared["augment"].metadata, "help": augment_help(recipe)}
    fields.append(("augment", str, dataclasses.field(default="auto", metadata=meta)))
    for mixin in method.options:
        hints = typing.get_type_hints(mixin)
        for f in dataclasses.fields(mixin):
            default = defaults.get(f.name, f.default)
            fields.append(
                (f.name, hints[f.name], dataclasses.field(default=default, metadata=f.metadata))
            )
    name = "".join(part.title() for part in method.name.split("_")) + "Config"
    return dataclasses.make_dataclass(name, fields, bases=(TrainConfig,), frozen=True)


def build_method(name: str, backbone, **options) -> Method:
    """An instance of method ``name`` on ``backbone`` with ``options`` (the rest: defaults)."""
    cls = METHODS[name]
    return cls(config_class(cls)(method=name, **options), backbone)


def method_listing(methods: dict[str, type[Method]]) -> str:
    """The text of ``--list``: each method, its loss and defaults."""
    from symbolic import losses

    lines = []
    for cls in methods.values():
        cfg = config_class(cls)
        loss = cls.losses[0]
        hp = {**losses.get(loss).defaults, **cls.loss_overrides}
        shown = ", ".join(f"{k}={v}" for k, v in hp.items()) or "none"
        fields = {f.name: f.default for f in dataclasses.fields(cfg)}
        ema = f", EMA {fields['ema_base']}->{fields['ema_final']}" if "ema_base" in fields else ""
        also = f" (also: {', '.join(cls.losses[1:])})" if len(cls.losses) > 1 else ""
        lines.append(
            f"{cls.name:13s} {cls.summary}\n"
            f"{'':13s} loss symbolic.losses['{loss}'] ({shown}){also}; projector "
            f"{fields['proj_hidden'] or 'feat'}-{fields['proj_dim'] or 'feat'}; predictor "
            f"{cls.predictor}; target {cls.target}; {fields['optimizer']} lr {fields['lr']} x "
            f"batch/256, wd {fields['weight_decay']}{ema}\n"
            f"{'':13s} DDP gathers: {cls.gathered}; {cls.reference}"
        )
    return "\n".join(lines)
