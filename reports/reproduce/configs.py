"""The training configurations the claims share, as :class:`~reports.reproduce.registry.RunSpec`.

Every run uses the same encoder, heads, data, optimiser and measurements of its
:class:`~reports.reproduce.scale.Scale` (SGD with heavy-ball momentum 0.9 at a constant learning
rate, so that eta t is known in closed form; the same learning rate for every method but the two
whose unnormalised losses need a smaller one, :data:`LR_FACTOR`); a claim changes only
what it is about (the predictor, a loss term, the weight decay, the projector's width). Two
claims asking for the same configuration get the same options, hence the same key, hence the
same runs.
"""

from __future__ import annotations

from empirical.methods import METHODS
from reports.experiments import device_options as pinned_device
from reports.reproduce.registry import RunSpec
from reports.reproduce.scale import Scale

#: how many d x d statistics of the batch a method's loss computes per step (cost model): its
#: own, and again in each loss term the run records (one more forward pass per term, a third of
#: a forward and backward pass each; VICReg records 3 terms, Barlow Twins and Liu et al. 2)
PRODUCTS = {"barlow_twins": 1 * (1 + 2 / 3), "vicreg": 2 * (1 + 3 / 3), "liu": 2 * (1 + 2 / 3)}
#: learning rate of a method relative to the scale's: VICReg's and Liu et al.'s losses are not
#: normalised (VICReg's terms weigh 25, Liu's covariance term is quartic in W_p and the
#: features); on the CPU scale SGD at lr 0.05 gave a NaN loss within 20 steps for both, VICReg
#: trains at lr 0.01, Liu et al.'s variants without standardisation only at 0.003 or less
LR_FACTOR = {"vicreg": 0.2, "liu": 0.06}
#: Liu et al.'s Table 3 setting: one part (k = 1), c_inv = 1
LIU_TABLE3 = ("--loss-param", "k=1", "--loss-param", "c_inv=1")


def measurement_options(scale: Scale, steps: int, probes: bool, count: int) -> tuple[str, ...]:
    """Measurement sizes and cadence: ``count`` evenly spaced measurements after the random
    encoder's; kNN and linear probes on backbone features unless ``probes`` is False."""
    every = max(1, steps // count)
    options = (
        "--measure-every", str(every), "--val-size", str(scale.val_size),
        "--eval-size", str(scale.eval_size),
    )  # fmt: skip
    if not probes:
        return (*options, "--no-probes")
    return (
        *options, "--probe-train", str(scale.probe_train), "--probe-test", str(scale.probe_test),
    )  # fmt: skip


def device_options(scale: Scale) -> tuple[str, ...]:
    """On the CPU in fp32 with one torch thread (torch with 2 threads on a busy 2-core machine
    is far slower on small models), also on a machine with a GPU; the CUDA device otherwise."""
    if scale.device == "cpu":
        return (*pinned_device("cpu", "fp32"), "--threads", "1")
    return ("--device", "cuda")


def training(
    scale: Scale,
    method: str,
    label: str,
    *extra: str,
    weight_decay: float | None = None,
    proj_dim: int | None = None,
    proj_hidden: int | None = None,
    steps: int | None = None,
    batch: int | None = None,
    probes: bool = True,
    measurements: int | None = None,
) -> RunSpec:
    """A run of ``method`` at ``scale`` with the method's own ``extra`` options; the main runs'
    weight decay, output and hidden width, length, batch and number of measurements unless
    given."""
    steps = scale.steps if steps is None else steps
    batch = scale.batch if batch is None else batch
    dim = scale.proj_dim if proj_dim is None else proj_dim
    hidden = scale.proj_hidden if proj_hidden is None else proj_hidden
    wd = scale.weight_decay if weight_decay is None else weight_decay
    lr = scale.lr * LR_FACTOR.get(method, 1.0)
    options = (
        *scale.backbone, "--augment", scale.augment,
        "--proj-hidden", str(hidden), "--proj-dim", str(dim),
        "--optimizer", "sgd", "--lr", f"{lr:g}", "--momentum", f"{scale.momentum:g}",
        "--lr-schedule", "constant", "--weight-decay", f"{wd:g}",
        "--batch-size", str(batch), "--epochs", str(scale.epochs(steps, batch)),
        "--train-subset", str(scale.train_subset),
    )  # fmt: skip
    if METHODS[method].target == "ema":  # the method says whether it has an EMA target
        options += ("--ema-base", f"{scale.ema:g}", "--ema-final", f"{scale.ema:g}")
    count = scale.measurements if measurements is None else measurements
    options += (*extra, *measurement_options(scale, steps, probes, count), *device_options(scale))
    total = scale.epochs(steps, batch) * scale.steps_per_epoch(batch)
    products = PRODUCTS.get(method, 0.0)
    step = scale.step_seconds(scale.features, hidden, dim, products, batch)
    seconds = scale.run_seconds(total, step, probes, count, dim)
    return RunSpec(method, options, label, total, seconds)


def byol_linear(scale: Scale, weight_decay: float | None = None, probes: bool = True) -> RunSpec:
    """BYOL (cosine loss, EMA target) with a bias-free linear predictor W_p: the configuration
    of Tian et al. Fig. 2 and Liu et al. Figs. 1 and 3 (the main weight decay unless given)."""
    label = "BYOL, linear W_p" + ("" if weight_decay is None else f", wd {weight_decay:g}")
    return training(
        scale, "byol", label, "--predictor", "linear", weight_decay=weight_decay, probes=probes
    )


def sweep_run(scale: Scale, weight_decay: float) -> RunSpec:
    """A point of the weight-decay sweep of tian-collapse: the main BYOL run with a linear
    predictor at ``weight_decay``, measured without probes; at the main weight decay, the main
    run itself."""
    if weight_decay == scale.weight_decay:
        return byol_linear(scale)
    return byol_linear(scale, weight_decay, probes=False)


def byol_mlp(scale: Scale) -> RunSpec:
    """BYOL with its two-layer MLP predictor (hidden width = the projector's)."""
    return training(scale, "byol", "BYOL, MLP predictor", "--pred-hidden", str(scale.proj_hidden))


def simsiam(scale: Scale, *extra: str, label: str = "SimSiam", probes: bool = True) -> RunSpec:
    """SimSiam with its bottleneck MLP predictor (hidden width d / 4, at least 8)."""
    hidden = str(max(8, scale.proj_dim // 4))
    return training(scale, "simsiam", label, "--pred-hidden", hidden, *extra, probes=probes)


def liu(scale: Scale, *extra: str, label: str = "Liu et al.", probes: bool = True) -> RunSpec:
    """Liu et al.'s method in their Table 3 setting (k = 1, c_inv = 1), with ``extra`` ablations."""
    return training(scale, "liu", label, *LIU_TABLE3, *extra, probes=probes)
