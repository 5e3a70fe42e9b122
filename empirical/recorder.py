"""Record any PyTorch training loop as an ``empirical.train`` run folder.

A :class:`Recorder` is what ``python -m empirical.train`` measures and writes with, and what a
loop the toolkit did not write calls to get the same files::

    recorder = Recorder("runs/mine", data, {"method": "byol", "optimizer": "sgd", ...},
                        steps_per_epoch=len(loader), loss_directions=2)
    recorder.start()
    recorder.measure(0, lr=0.0, wd=wd, ema=tau0, encoder=model.embed)      # the initial network
    for step in range(steps):
        ...                                                                  # the loop's own step
        recorder.record_step(step, lr=lr, wd=wd, ema=tau, losses={"loss": loss.detach()})
        if (step + 1) % every == 0:
            recorder.measure(step + 1, lr=lr, wd=wd, ema=tau, encoder=model.embed,
                             predictor=W_p)
            recorder.write(epochs_completed=..., epochs=...)

Per step (:meth:`Recorder.record_step`, no host synchronisation): the schedule and its flow time
(:mod:`empirical.flow`: lr, the predictor's lr, EMA momentum, weight decay, heavy-ball momentum,
and dt, eta, alpha_p, beta) and the loss terms, summed on the device. A loop that calls only
:meth:`Recorder.measure` gets the schedule values it passes there, held constant since the previous
measurement. Per measurement (:meth:`Recorder.measure`): the mean loss terms since the previous one
and the observables of :mod:`empirical.measure` on the fixed un-augmented eval subset, with the
probes; the loss convention (how many one-direction losses of Tian et al.'s eq. 1 the loss sums,
``loss_directions``, times its factor ``loss_scale``: README "Loss conventions") sets the flow
time and is recorded in the attributes. Files in the run folder: ``config.toml``
(:meth:`Recorder.start`), ``measurements.nc`` (:meth:`Recorder.write`, schema of
:mod:`empirical.record`), ``moments.nc`` (:meth:`Recorder.write_moments`), ``log.txt``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from empirical.data import Dataset
from empirical.flow import LARS_REASON, flow_step
from empirical.measure import augmentation_ratio, collapse_warnings, network_measurements
from empirical.moments import measure_moments
from empirical.pairs import add_held_out
from empirical.record import UNDEFINED, build_dataset, summary_cells
from symbolic.common.cli import UsageError
from symbolic.common.files import write_text
from symbolic.common.options import to_toml
from symbolic.common.provenance import provenance
from symbolic.common.results import write_netcdf

RESULTS = "measurements.nc"
MOMENTS = "moments.nc"
#: X and X' of an MLP backbone's output features at the end of training
FEATURE_MOMENTS = "feature_moments.nc"
CONFIG = "config.toml"
LOG = "log.txt"
#: un-augmented training images that fill the BatchNorm statistics before epoch 0
BN_FILL_IMAGES = 2048


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the recorder reads from a run's configuration (the other keys are only stored)."""

    method: str = "own_loop"
    optimizer: str = "sgd"
    momentum: float = 0.9
    eval_size: int = 2000
    probes: bool = True
    probe_train: int = 10000
    probe_test: int = 10000
    wp_store_limit: int = 1024
    batch_size: int = 256
    seed: int = 0
    tensorboard: str | None = None

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Settings:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in names})


class Recorder:
    """The schedules, loss terms and measurements of one run, and the run folder they go to.

    ``data``: the :class:`empirical.data.Dataset` whose test split holds the eval subset and
    whose train/val splits the probes use; ``config``: the run's configuration (a mapping or a
    dataclass; stored whole in ``config.toml`` and the result's attributes, read through
    :class:`Settings`); ``eval_view``: uint8 images -> the encoder's un-augmented input;
    ``views(generator)``: the run's two-view augmentation drawing from ``generator`` (for
    ``aug_ratio``; none: not measured); ``describe``: attributes that say what the method is
    (:meth:`empirical.methods.Method.describe`); ``main``: False on every DDP rank but 0
    (those record schedules only and write nothing).
    """

    def __init__(
        self,
        out_dir: str | Path,
        data: Dataset,
        config: Any,
        *,
        steps_per_epoch: int,
        loss_directions: int = 1,
        loss_scale: float = 1.0,
        eval_view: Callable[[torch.Tensor], torch.Tensor] | None = None,
        views: Callable[[torch.Generator], Callable] | None = None,
        describe: Mapping[str, Any] | None = None,
        device: torch.device | str = "cpu",
        main: bool = True,
        quiet: bool = False,
    ) -> None:
        self.out = Path(out_dir)
        self.data = data
        self.config = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
        self.settings = Settings.of(self.config)
        self.steps_per_epoch = steps_per_epoch
        self.loss_directions = loss_directions
        self.loss_scale = loss_scale
        self.eval_view = eval_view or (lambda images: images.float() / 255)
        self.views = views
        conventions = {"loss_directions": loss_directions, "loss_scale": loss_scale}
        self.describe = {**conventions, **dict(describe or {})}
        self.device = torch.device(device)
        self.main, self.quiet = main, quiet
        self.steps: dict[str, list[float]] = {}
        self.history: list[dict] = []
        self.written = 0  # measurements in the last measurements.nc written
        self.loss_sums: dict[str, torch.Tensor] = {}  # loss terms summed since the last measurement
        self.loss_count = 0
        self.skipped_before: set[str] = set()  # unreadable files met before a --resume
        self.writer = None

    # ------------------------------------------------------------------ the folder
    def start(self, notes: Iterable[str] = ()) -> None:
        """The TensorBoard writer (``tensorboard`` in the configuration) and ``config.toml``."""
        if self.settings.tensorboard and self.main:
            self.writer = tensorboard_writer(self.settings.tensorboard)
        if not self.main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        header = [f"python -m empirical.train --config {self.out / CONFIG} reruns this run"]
        write_text(self.out / CONFIG, to_toml(self.config, header))
        for note in notes:
            self.log(note, err=True)

    def log(self, message: str, err: bool = False) -> None:
        """Print (unless quiet; warnings always, to stderr) and append to ``log.txt``."""
        if not self.main:
            return
        if not self.quiet or err:
            print(message, file=sys.stderr if err else sys.stdout, flush=True)
        with open(self.out / LOG, "a") as fh:
            fh.write(message + "\n")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    # ------------------------------------------------------------------ per step
    def record_step(
        self,
        step: int,
        *,
        lr: float,
        wd: float,
        ema: float | None = None,
        lr_predictor: float | None = None,
        momentum: float | None = None,
        losses: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        """Optimiser step ``step`` (0-based): its schedule in flow time and its loss terms.

        ``lr_predictor`` defaults to ``lr``, ``momentum`` to the configuration's. The losses are
        summed as given (device tensors stay on the device); the first step's go into the
        measurement of the initial network, if one was taken.
        """
        mu = self.settings.momentum if momentum is None else momentum
        lr_pred = lr if lr_predictor is None else lr_predictor
        flow = flow_step(
            step,
            lr,
            lr_pred,
            ema,
            wd,
            mu,
            self.loss_directions * self.loss_scale,
            self.settings.optimizer,
        )
        values = {
            "lr": lr,
            "lr_predictor": lr_pred,
            "ema_momentum": math.nan if ema is None else ema,
            "weight_decay": wd,
            "momentum": mu,
            "flow_time": self.flow_time() + flow["dt"],
            "eta": flow["eta"],
            "alpha_p": flow["alpha_p"],
            "beta": flow["beta"],
        }
        for key, value in values.items():
            self.steps.setdefault(key, []).append(float(value))
        losses = dict(losses or {})
        if step == 0 and self.history and self.history[0].get("step") == 0:
            self.history[0].update({k: float(v) for k, v in losses.items()})
        for key, value in losses.items():
            self.loss_sums[key] = self.loss_sums.get(key, 0.0) + value
        self.loss_count += 1

    def flow_time(self) -> float:
        """Flow time t after the steps recorded so far (NaN for LARS)."""
        return self.steps["flow_time"][-1] if self.steps.get("flow_time") else 0.0

    # ------------------------------------------------------------------ per measurement
    def measure(
        self,
        step: int,
        *,
        lr: float,
        wd: float,
        ema: float | None = None,
        encoder: Callable[[torch.Tensor], Any],
        predictor: torch.Tensor | None = None,
        predictor_features: Callable[[np.ndarray], np.ndarray] | None = None,
        weights: Mapping[str, torch.Tensor] | None = None,
        throughput: float = 0.0,
    ) -> dict:
        """The measurement after ``step`` optimiser steps, appended to the history and returned.

        ``encoder(x)`` gives the embedding z, or (backbone features h, z), of un-augmented
        inputs; a module, or a bound method of one, is put in eval mode while measured.
        ``predictor``: a linear predictor's W_p (d x d), measured against the correlation of
        ``predictor_features(z)`` (default z); ``weights``: linear encoders' W (``w``,
        ``w_target``), stored with W_p when d <= ``wp_store_limit``; ``throughput``: training
        images per second (0: not measured).
        """
        while len(self.steps.get("lr", ())) < step:  # a loop that records only measurements
            self.record_step(len(self.steps.get("lr", ())), lr=lr, wd=wd, ema=ema)
        self.loss_count = max(self.loss_count, 1)
        means = {k: float(v) / self.loss_count for k, v in self.loss_sums.items()}
        self.loss_sums, self.loss_count = {}, 0
        entry = {
            "epoch": step / self.steps_per_epoch,
            "time": self.flow_time(),
            "step": step,
            **means,
            "throughput": throughput,
            "lr": lr,
        }
        if ema is not None:
            entry["ema_momentum"] = ema
        entry.update(self.observe(step, encoder, predictor, predictor_features, weights))
        for message in collapse_warnings(entry) if step else ():
            self.log(f"step {step}: {message}", err=True)
        if self.writer is not None:
            for key, value in entry.items():
                if np.ndim(value) == 0 and key not in ("epoch", "step"):
                    self.writer.add_scalar(f"measure/{key}", float(value), step)
        self.history.append(entry)
        return entry

    def observe(self, step, encoder, predictor, predictor_features, weights) -> dict:
        """The observables and probes of the encoder now (:mod:`empirical.measure`)."""
        s = self.settings
        module = getattr(encoder, "__self__", encoder)
        with evaluating(module):
            values = network_measurements(
                encoder, self.data, s, self.eval_view, self.device, predictor, predictor_features
            )
            if self.views is not None:
                generator = torch.Generator(device=self.device)
                generator.manual_seed(s.seed * 1000 + 104729 + step)
                batches = self.data.test.head(s.eval_size).all_batches(
                    max(256, s.batch_size), self.device
                )
                values["aug_ratio"] = augmentation_ratio(
                    encoder, (images for images, _ in batches), self.views(generator)
                )
        if len(values["corr_eig"]) <= s.wp_store_limit:  # d, the embedding's width
            for key, w in (weights or {}).items():
                values[key] = w.detach().double().cpu().numpy()
        return values

    def log_train_scalars(self, step: int, loss: torch.Tensor, lr: float) -> None:
        """The training loss and lr in TensorBoard (a host synchronisation: call it sparingly)."""
        if self.writer is not None and self.main:
            self.writer.add_scalar("train/loss", float(loss.detach()), step)
            self.writer.add_scalar("train/lr", lr, step)

    # ------------------------------------------------------------------ files
    def unwritten(self) -> bool:
        """A measurement was taken since ``measurements.nc`` was last written (by this
        process)."""
        return len(self.history) > self.written

    def write(self, epochs_completed: float, epochs: float) -> None:
        """``measurements.nc``: the history and per-step record, marked partial until the end."""
        attrs = provenance(
            "training",
            self.settings.method,
            self.config,
            dataset=self.data.name,
            steps_per_epoch=self.steps_per_epoch,
            skipped_images=len(self.skipped_files()),
            **run_attributes(self.settings, epochs_completed, epochs, self.device),
            **self.describe,
        )
        ds = build_dataset(self.history, self.steps, attrs)
        write_netcdf(ds, self.out / RESULTS, undefined=UNDEFINED)
        self.written = len(self.history)

    def write_moments(
        self,
        batches: Iterable[torch.Tensor],
        view: Callable[[torch.Tensor], torch.Tensor],
        project: Callable[[torch.Tensor], torch.Tensor],
        n_views: int,
        variance: torch.Tensor | None = None,
        held_out: Iterable[torch.Tensor] | None = None,
        file: str = MOMENTS,
        **attrs: Any,
    ) -> None:
        """``file`` (moments.nc): X and X' (:func:`empirical.moments.measure_moments`) of the uint8
        image ``batches`` through ``view``, mapped by ``project`` to the encoder's coordinates;
        ``variance`` (the PCA variances) stored as ``pca_variance``, ``held_out`` inputs' moments
        (:func:`empirical.pairs.add_held_out`); ``attrs`` describe them."""
        ds = measure_moments(batches, view, project, n_views)
        if variance is not None:
            ds["pca_variance"] = ("input", variance.cpu().numpy())
        ds = add_held_out(ds, held_out) if held_out is not None else ds
        ds.attrs.update(
            provenance("moments", self.settings.method, self.config, **attrs),
            n_images=ds.attrs["n_images"],
            n_views=ds.attrs["n_views"],
        )
        write_netcdf(ds, self.out / file)

    def skipped_files(self) -> list[str]:
        """Every unreadable image met by this run (and the runs it resumes)."""
        return sorted(self.skipped_before | {str(p) for p in self.data.skipped_files()})


def tensorboard_writer(folder: str):
    """A TensorBoard ``SummaryWriter`` into ``folder``; UsageError without the package."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UsageError(
            "--tensorboard needs the tensorboard package (pip install tensorboard)"
        ) from None
    return SummaryWriter(folder)


@contextlib.contextmanager
def evaluating(module: Any):
    """``module`` in eval mode while the block runs (when it is a module), then as it was."""
    if not isinstance(module, torch.nn.Module):
        yield
        return
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def run_attributes(settings: Settings, epochs_completed: float, epochs: float, device) -> dict:
    """Status, conventions and hardware: the attributes that say how a result was made."""
    complete = epochs_completed >= epochs
    status = (
        "complete"
        if complete
        else f"stopped after epoch {epochs_completed} of {epochs}; continue with --resume"
    )
    attrs = {
        "epochs_completed": epochs_completed,
        "partial": int(not complete),
        "status": status,
        "flow_time": "t = sum over steps of dt_k = D lr_k (1 - mu^(k+1))/(1 - mu) "
        "(empirical.flow; D = loss_directions x loss_scale)",
        "predictor_decay": "alpha_p_eta",
        "epoch_zero": "randomly initialised encoder before the first step",
        "bn_statistics": f"BatchNorm running statistics filled from the first {BN_FILL_IMAGES} "
        "un-augmented training images before the epoch-0 measurement",
        "sigma_conventions": "sigma_corr_mean_sq: mean over pairs of alive dimensions of the "
        "squared Pearson correlation (floor sigma_floor = 1/(N-1)); pearson: ||Sigma - I||^2 "
        "with Sigma the Pearson correlation; moment: Sigma = M d / tr M, M = z^T z / N; on "
        "projector outputs, *_backbone on backbone features",
        "knn": "weighted kNN on l2-normalised backbone features, k and T chosen on validation",
        "linear_probe": "softmax regression on standardised backbone features, L2 penalty "
        "chosen on validation; accuracy on the test split",
        "eval_subset": f"first {settings.eval_size} test images, un-augmented",
        "torch_version": torch.__version__,
        "hardware": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu x {torch.get_num_threads()} threads",
    }
    if settings.optimizer != "sgd":
        attrs["flow_time_undefined"] = LARS_REASON
    return attrs


def epoch_line(entry: dict, first: dict, epochs: int, skipped: int) -> str:
    """One line per epoch: flow time, loss, probes against the random encoder ``first``, ..."""
    parts = [f"epoch {entry['epoch']:g}/{epochs}", f"t={entry['time']:.4g}"]
    if "loss" in entry:
        parts.append(f"loss {entry['loss']:.4f}")
    if "knn_acc" in entry:
        parts += [
            f"knn {entry['knn_acc']:.3f} (random {first['knn_acc']:.3f})",
            f"linear {entry['linear_acc']:.3f} (random {first['linear_acc']:.3f})",
        ]
    parts += [
        f"z_std {float(entry['z_std']):.3f}",
        f"erank {float(entry['effective_rank']):.1f}",
        f"mean rho^2 {float(entry['sigma_corr_mean_sq']):.4f} "
        f"(floor {float(entry['sigma_floor']):.4f})",
    ]
    if entry.get("throughput"):
        parts.append(f"{entry['throughput']:.0f} img/s")
    if skipped:
        parts.append(f"skipped {skipped} unreadable images")
    return "  ".join(parts)


def summary(history: list[dict], title: str, files: Iterable[Path]) -> str:
    """The run's summary table: first (random encoder) and last measurement."""
    last = history[-1]
    rows = [
        ("mean rho^2 (decorrelation)", "sigma_corr_mean_sq"),
        ("dead dimensions", "dead_dims"),
        ("effective rank", "effective_rank"),
        ("z_std", "z_std"),
    ]
    if "knn_acc" in last:
        rows = [("kNN accuracy", "knn_acc"), ("linear-probe accuracy", "linear_acc"), *rows]
    if "wp_asymmetry" in last:
        rows += [("W_p asymmetry", "wp_asymmetry"), ("W_p-F commutator", "commutator_norm")]
    lines = [title, f"  {'':34s} {'random':>10s} {'final':>10s}"]
    for label, key in rows:
        lines.append(f"  {label:34s} " + " ".join(f"{c:>10s}" for c in summary_cells(history, key)))
    lines.append(f"  files: {', '.join(map(str, files))}")
    return "\n".join(lines)
