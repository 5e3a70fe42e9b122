"""Command-line options of ``python -m empirical.train`` and their resolution into one config.

Options left at ``None`` take the method's official value (:mod:`empirical.methods`); loss
hyperparameters default to ``symbolic.losses.get(name).defaults`` (then the method's overrides,
e.g. MoCo v2's temperature 0.2) and are changed with ``--loss-param NAME=VALUE``. The resolved
config (every value actually used) is what the run saves in ``OUT/config.json``, in the result
file's provenance and in its checkpoints.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from empirical.backbones import BACKBONES, STEMS
from empirical.directpred import EPS_CONVENTIONS
from empirical.methods import METHODS, get_spec, loss_function
from symbolic.common.cli import ArgumentParser, UsageError


@dataclass
class Config:
    """Every setting of a training run, resolved (see ``build_parser`` for the meanings)."""

    method: str
    data: str = "fashion-mnist"
    out: str = ""
    epochs: int = 20
    batch_size: int = 256
    lr: float = 0.0  # base lr per 256 images
    peak_lr: float = 0.0  # lr * batch_size / 256
    optimizer: str = "sgd"
    weight_decay: float = 0.0
    momentum: float = 0.9
    lars_eta: float = 1e-3
    warmup_epochs: float = 0.0
    backbone: str = "convnet"
    stem: str = "auto"
    width: int = 32
    image_size: int = 0
    load_size: int = 0
    crop_min_scale: float = 0.08
    proj_hidden: int = 0
    proj_dim: int = 0
    predictor: str = "none"
    pred_hidden: int = 0
    ema_base: float | None = None
    ema_final: float = 1.0
    queue_size: int = 65536
    rho: float = 0.3
    eps: float = 0.1
    eps_convention: str = "code"
    freq: int = 1
    loss: str = ""
    loss_params: dict = field(default_factory=dict)
    train_subset: int = 0
    val_size: int = 5000
    probe_train: int = 10000
    probe_test: int = 10000
    eval_size: int = 2000
    wp_store_limit: int = 1024
    workers: int = 4
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    seed: int = 0
    world_size: int = 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: Keys that may differ between a run and its --resume (they do not change the computation).
RESUME_FREE = ("out", "workers", "world_size")


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m empirical.train",
        description="Train a self-supervised method and record the observables of SPEC section 3\n"
        "per epoch (netCDF), with checkpoints and the resolved configuration in --out.",
    )
    p.add_argument("method", nargs="?", help="method to train (see --list)")
    p.add_argument("--list", action="store_true", help="list the methods and their defaults")
    p.add_argument(
        "--data", default="fashion-mnist", help="fashion-mnist[:PATH], imagenet:PATH or folder:PATH"
    )
    p.add_argument("--out", default=None, help="output folder (default runs/METHOD)")
    p.add_argument("--epochs", type=int, default=20, help="training epochs")
    p.add_argument("--batch-size", type=int, default=256, help="global batch (all ranks)")
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="base learning rate per 256 images (default: the method's); the peak "
        "learning rate is lr * batch / 256",
    )
    p.add_argument(
        "--optimizer", choices=("sgd", "lars"), default=None, help="default: the method's"
    )
    p.add_argument("--weight-decay", type=float, default=None, help="default: the method's")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD/LARS momentum")
    p.add_argument("--lars-eta", type=float, default=1e-3, help="LARS trust coefficient")
    p.add_argument(
        "--warmup-epochs",
        type=float,
        default=None,
        help="linear warm-up epochs (default min(10, epochs / 10))",
    )
    p.add_argument(
        "--backbone",
        choices=("auto", *BACKBONES),
        default="auto",
        help="auto: resnet18 on CUDA, convnet on the CPU",
    )
    p.add_argument(
        "--stem",
        choices=STEMS,
        default="auto",
        help="ResNet stem; auto: small (3x3, no max-pool) for images <= 64 px",
    )
    p.add_argument("--width", type=int, default=32, help="ConvNet base width (features 4*width)")
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="side of the augmented views (default: 28 for Fashion-MNIST, 224 else)",
    )
    p.add_argument(
        "--load-size",
        type=int,
        default=None,
        help="folder data: side of the decoded central square (default 256)",
    )
    p.add_argument(
        "--crop-min-scale",
        type=float,
        default=0.08,
        help="smallest area fraction of the random resized crop",
    )
    p.add_argument("--proj-hidden", type=int, default=None, help="projector hidden width")
    p.add_argument("--proj-dim", type=int, default=None, help="projector output width d")
    p.add_argument(
        "--predictor",
        choices=("default", "mlp", "linear"),
        default="default",
        help="BYOL/SimSiam predictor: the paper's MLP or a bias-free linear d x d",
    )
    p.add_argument("--pred-hidden", type=int, default=None, help="MLP predictor hidden width")
    p.add_argument(
        "--ema-base",
        type=float,
        default=None,
        help="EMA momentum at step 0 (cosine to --ema-final); default: the method's",
    )
    p.add_argument("--ema-final", type=float, default=None, help="EMA momentum at the last step")
    p.add_argument("--queue-size", type=int, default=65536, help="MoCo v2 queue length K")
    p.add_argument("--rho", type=float, default=0.3, help="DirectPred/DirectCopy: F_hat EMA rho")
    p.add_argument("--eps", type=float, default=0.1, help="DirectPred/DirectCopy: eps")
    p.add_argument(
        "--eps-convention",
        choices=EPS_CONVENTIONS,
        default="code",
        help="DirectPred: 'paper' p=sqrt(s)+eps*max(s); 'code' p=max(sqrt(s/max s)+eps, 1e-4)",
    )
    p.add_argument(
        "--freq", type=int, default=1, help="DirectPred/DirectCopy: set W_p every freq steps"
    )
    p.add_argument(
        "--loss-param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a loss hyperparameter (repeatable; see --list)",
    )
    p.add_argument(
        "--train-subset", type=int, default=0, help="train on the first N training images (0: all)"
    )
    p.add_argument(
        "--val-size",
        type=int,
        default=5000,
        help="labelled validation images held out of the training images",
    )
    p.add_argument("--probe-train", type=int, default=10000, help="probe training images")
    p.add_argument("--probe-test", type=int, default=10000, help="probe test images (0: all)")
    p.add_argument(
        "--eval-size",
        type=int,
        default=2000,
        help="un-augmented test images for the per-epoch measurements",
    )
    p.add_argument(
        "--wp-store-limit", type=int, default=1024, help="store W_p per epoch when d <= this"
    )
    p.add_argument("--workers", type=int, default=4, help="image-decoding workers (folders)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="auto: bf16 autocast on CUDA, fp32 on the CPU",
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the online network")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument(
        "--stop-after",
        type=int,
        default=None,
        help="stop after this epoch (the schedules keep --epochs; continue with --resume)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    return p


def parse_value(name: str, text: str, kind: str):
    """Parse ``text`` as the hyperparameter kind ('real', 'int', 'bool') of symbolic's registry."""
    try:
        if kind == "bool":
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if kind == "int":
            return int(text)
        return float(text)
    except ValueError:
        expected = {"bool": "true or false", "int": "an integer"}.get(kind, "a real number")
        raise UsageError(f"--loss-param {name}={text!r}: expected {expected}") from None


def loss_params(loss: str, overrides: dict, items: list[str]) -> dict:
    """The loss hyperparameters: symbolic defaults, the method's overrides, then the user's.

    Names, types and ranges are checked by the loss itself (``Loss.resolve``).
    """
    fn = loss_function(loss)
    params = {**dict(fn.defaults), **overrides}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise UsageError(f"--loss-param {item!r}: expected NAME=VALUE")
        if name not in fn.hypers:
            known = ", ".join(fn.hypers) or "none"
            raise UsageError(
                f"--loss-param {name!r}: the {loss} loss has no such "
                f"hyperparameter (known: {known})"
            )
        params[name] = parse_value(name, text, fn.hypers[name].kind)
    try:
        return fn.resolve(params)
    except (TypeError, ValueError) as err:
        raise UsageError(f"--loss-param: {err}") from None


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise UsageError(message)


def resolve(args, device_type: str, world_size: int) -> Config:
    """Fill the method defaults into the parsed ``args`` and validate every value."""
    spec = get_spec(args.method)
    _check(args.epochs >= 1, f"--epochs {args.epochs}: must be at least 1")
    _check(args.batch_size >= 2, f"--batch-size {args.batch_size}: must be at least 2")
    _check(
        args.batch_size % world_size == 0,
        f"--batch-size {args.batch_size}: must be divisible by the {world_size} processes",
    )
    lr = spec.base_lr if args.lr is None else args.lr
    _check(lr > 0 and math.isfinite(lr), f"--lr {lr}: must be a positive number")
    wd = spec.weight_decay if args.weight_decay is None else args.weight_decay
    _check(wd >= 0 and math.isfinite(wd), f"--weight-decay {wd}: must be >= 0")
    _check(0 <= args.momentum < 1, f"--momentum {args.momentum}: must be in [0, 1)")
    _check(args.lars_eta > 0, f"--lars-eta {args.lars_eta}: must be positive")
    warmup = min(10.0, args.epochs / 10) if args.warmup_epochs is None else args.warmup_epochs
    _check(0 <= warmup < args.epochs, f"--warmup-epochs {warmup}: must be in [0, epochs)")
    backbone = args.backbone
    if backbone == "auto":
        backbone = "resnet18" if device_type == "cuda" else "convnet"
    _check(args.width >= 1, f"--width {args.width}: must be positive")
    _check(0 < args.crop_min_scale <= 1, f"--crop-min-scale {args.crop_min_scale}: not in (0, 1]")
    predictor = spec.predictor
    if args.predictor != "default":
        _check(
            spec.predictor in ("mlp", "linear"),
            f"--predictor {args.predictor}: {spec.name} has no trainable predictor to change",
        )
        predictor = args.predictor
    ema_base = spec.ema_base if args.ema_base is None else args.ema_base
    ema_final = spec.ema_final if args.ema_final is None else args.ema_final
    if spec.uses_target:
        for name, v in (("--ema-base", ema_base), ("--ema-final", ema_final)):
            _check(0 <= v <= 1, f"{name} {v}: must be in [0, 1]")
    else:
        _check(args.ema_base is None, f"--ema-base: {spec.name} has no EMA target")
        ema_base = None
    _check(0 <= args.rho < 1, f"--rho {args.rho}: must be in [0, 1)")
    _check(args.eps >= 0, f"--eps {args.eps}: must be >= 0")
    _check(args.freq >= 1, f"--freq {args.freq}: must be >= 1")
    _check(args.queue_size >= 1, f"--queue-size {args.queue_size}: must be positive")
    for name in ("proj_hidden", "proj_dim", "pred_hidden", "image_size", "load_size"):
        value = getattr(args, name)
        _check(value is None or value >= 1, f"--{name.replace('_', '-')} {value}: must be >= 1")
    for name in ("train_subset", "probe_test"):
        _check(getattr(args, name) >= 0, f"--{name.replace('_', '-')}: must be >= 0")
    for name in ("val_size", "probe_train", "eval_size", "wp_store_limit"):
        value = getattr(args, name)
        _check(value >= 1, f"--{name.replace('_', '-')} {value}: must be >= 1")
    _check(args.workers >= 0, f"--workers {args.workers}: must be >= 0")
    _check(
        args.stop_after is None or args.stop_after >= 1,
        f"--stop-after {args.stop_after}: must be >= 1",
    )
    params = loss_params(spec.loss, spec.loss_overrides, args.loss_param)
    if "k" in params:
        _check(
            args.batch_size % params["k"] == 0,
            f"--batch-size {args.batch_size}: must be a multiple of the liu parts k="
            f"{params['k']} (--loss-param k=...)",
        )
    return Config(
        method=spec.name,
        data=args.data,
        out=args.out or f"runs/{spec.name}",
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=lr,
        peak_lr=lr * args.batch_size / 256,
        optimizer=args.optimizer or spec.optimizer,
        weight_decay=wd,
        momentum=args.momentum,
        lars_eta=args.lars_eta,
        warmup_epochs=warmup,
        backbone=backbone,
        stem=args.stem,
        width=args.width,
        image_size=args.image_size or 0,
        load_size=args.load_size or 0,
        crop_min_scale=args.crop_min_scale,
        proj_hidden=args.proj_hidden or spec.proj_hidden or 0,
        proj_dim=args.proj_dim or spec.proj_dim or 0,
        predictor=predictor,
        pred_hidden=args.pred_hidden or spec.pred_hidden,
        ema_base=ema_base,
        ema_final=ema_final,
        queue_size=args.queue_size,
        rho=args.rho,
        eps=args.eps,
        eps_convention=args.eps_convention,
        freq=args.freq,
        loss=spec.loss,
        loss_params=params,
        train_subset=args.train_subset,
        val_size=args.val_size,
        probe_train=args.probe_train,
        probe_test=args.probe_test,
        eval_size=args.eval_size,
        wp_store_limit=args.wp_store_limit,
        workers=args.workers,
        device=device_type,
        precision=args.precision,
        compile=args.compile,
        seed=args.seed,
        world_size=world_size,
    )


def method_listing() -> str:
    """The text of ``--list``: each method, its loss and official hyperparameters."""
    lines = []
    for spec in METHODS.values():
        try:
            defaults = {**dict(loss_function(spec.loss).defaults), **spec.loss_overrides}
            hp = ", ".join(f"{k}={v}" for k, v in defaults.items()) or "none"
        except (ImportError, KeyError, AttributeError) as err:
            hp = f"(symbolic.losses unavailable: {err})"
        ema = f", EMA {spec.ema_base}->{spec.ema_final}" if spec.uses_target else ""
        widths = f"projector {spec.proj_hidden or 'feat'}-{spec.proj_dim}"
        lines.append(
            f"{spec.name:13s} {spec.summary}\n"
            f"{'':13s} loss symbolic.losses['{spec.loss}'] ({hp}); {widths}; predictor "
            f"{spec.predictor}; {spec.optimizer} lr {spec.base_lr} x batch/256, wd "
            f"{spec.weight_decay}{ema}\n{'':13s} DDP gathers: {spec.gathered}; {spec.reference}"
        )
    return "\n".join(lines)
