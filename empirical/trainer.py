"""One training run: the loop. Its parts come from :mod:`empirical.assembly`, its record goes
through :class:`empirical.recorder.Recorder`, its checkpoints through :mod:`empirical.checkpoint`.

Per step (:meth:`Run.train_epoch`): two augmented views on the device, the method's symbolic
loss, the optimiser step with the scheduled learning rate, the method's after-step update (EMA
target, queue, DirectPred's W_p), and the step's record in flow time (:mod:`empirical.flow`). Per
measurement (each epoch's end, or every ``measure_every`` steps): the observables of
:mod:`empirical.measure` on the fixed eval subset and the probes. Per epoch: ``measurements.nc``
(marked partial until the last epoch) and an atomic ``checkpoint.pt``. Before the epoch-0
measurement (the randomly initialised encoder) the BatchNorm running statistics are filled from
un-augmented training images. A run on the linear backbone first fits its PCA on the training
split and writes ``moments.nc`` (X and X' through the run's own augmentation,
:mod:`empirical.moments`).

Files in the run folder: ``config.toml`` (the resolved configuration; ``--config`` reads it),
``checkpoint.pt``, ``measurements.nc``, ``moments.nc`` (linear backbone), ``log.txt``.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

from empirical import augment
from empirical.assembly import build_parts, eval_batches, eval_view, make_views, resolve_auto
from empirical.backbones import LinearEncoder
from empirical.checkpoint import CHECKPOINT, run_state, save_checkpoint
from empirical.data import Dataset, epoch_order, open_dataset, rank_batches
from empirical.distributed import DistInfo, barrier
from empirical.measure import collapse_warnings, fill_batchnorm
from empirical.optim import ema_momentum, scaled_lr, scheduled_lr, set_learning_rate
from empirical.pairs import write_run_pairs
from empirical.recorder import (
    BN_FILL_IMAGES,
    CONFIG,
    FEATURE_MOMENTS,
    MOMENTS,
    RESULTS,
    Recorder,
    epoch_line,
    evaluating,
)
from empirical.recorder import summary as summary_text
from empirical.resources import check_training_memory
from symbolic.common.cli import RunFailure, UsageError


@contextlib.contextmanager
def subnormals_flushed(device: torch.device):
    """Subnormal floats flushed to zero on the CPU while the block runs (the training step).

    A collapsing network's weights decay into subnormals, on which CPU arithmetic is about 200x
    slower (measured here: a 256 x 256 matmul, 37 ms against 0.16 ms; a collapsed BYOL run of
    the reproduced claims took 425 s instead of 60-90 s). Only the step's products run so:
    LAPACK needs gradual underflow (with subnormals flushed, ``np.linalg.svd`` of a collapsed
    run's features returned NaN), so measurements and ``after_step`` (DirectPred's eigh) keep it.
    """
    if device.type != "cpu":
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def collapse_line(entry: dict) -> str:
    """A summary's line for a collapsed last measurement ``entry`` (whose ratios over a
    numerically zero W or W_p the file holds as NaN, undefined), else ''."""
    if not entry.get("collapsed"):
        return ""
    return "\n  COLLAPSED: " + collapse_warnings(entry)[0].removeprefix("collapse warning: ")


class Run:
    """One training run: data, method, optimiser, schedules, the loop and its recorder."""

    def __init__(self, cfg, info: DistInfo, device: torch.device, quiet: bool) -> None:
        self.info, self.device, self.quiet = info, device, quiet
        torch.manual_seed(cfg.seed)
        self.data: Dataset = open_dataset(
            cfg.data, cfg.val_size, cfg.load_size or None, cfg.seed, device, cfg.workers
        )
        cfg = resolve_auto(cfg, self.data, device.type, info.world)
        self.train_split = self.data.train.head(cfg.train_subset)
        self.steps_per_epoch = len(self.train_split) // cfg.batch_size
        if self.steps_per_epoch < 1:
            raise UsageError(
                f"--batch-size {cfg.batch_size}: larger than the "
                f"{len(self.train_split)} training images"
            )
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.warmup_steps = round(cfg.warmup_epochs * self.steps_per_epoch)
        self.peak_lr = scaled_lr(cfg.lr, cfg.batch_size)
        self.normalize = augment.Normalize(self.data.mean, self.data.std, device)
        self.eval_view = functools.partial(eval_view, size=cfg.image_size, normalize=self.normalize)
        check_training_memory(cfg, self.data.channels, info.world, device)
        parts = build_parts(cfg, self.data, self.train_split, self.eval_view, info, device)
        self.cfg = cfg = parts.cfg  # resolved: every value the run uses
        self.method, self.optimizer, self.autocast = parts.method, parts.optimizer, parts.autocast
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(cfg.seed * 1000 + info.rank)
        self.views = make_views(cfg, self.normalize, self.generator)
        self.epoch = 0
        self.step = 0
        self.recorder = Recorder(
            cfg.out,
            self.data,
            cfg,
            steps_per_epoch=self.steps_per_epoch,
            loss_directions=self.method.loss_directions,
            loss_scale=self.method.loss_scale,
            eval_view=self.eval_view,
            views=functools.partial(make_views, cfg, self.normalize),
            describe=self.method.describe(),
            device=device,
            main=info.main,
            quiet=quiet,
        )
        self.out = self.recorder.out
        self.log = self.recorder.log

    # ------------------------------------------------------------------ the loop
    def train_epoch(self) -> None:
        """One epoch of this rank's batches; the host waits for the device only every
        ``log_every`` steps (loss check, progress, TensorBoard) and at measurements."""
        cfg, record = self.cfg, self.recorder
        bar = self.progress_bar()
        self.method.train()
        start = time.perf_counter()
        for i, (images, _) in enumerate(self.epoch_batches()):
            lr, tau = self.lr_at(self.step), self.tau_at(self.step)
            loss = self.train_step(images, lr, tau)
            self.step += 1
            images_s = (i + 1) * cfg.batch_size / (time.perf_counter() - start)
            if self.step % cfg.log_every == 0 or i == self.steps_per_epoch - 1:
                self.check_finite(loss)
                bar.set_postfix(loss=f"{float(loss):.4f}", img_s=f"{images_s:.0f}")
                record.log_train_scalars(self.step, loss, lr)
            if self.measure_now() and self.info.main:
                self.check_finite(record.loss_sums["loss"])
                self.measure(lr, tau, images_s)
            bar.update(1)
        bar.close()

    def train_step(self, images: torch.Tensor, lr: float, tau: float | None) -> torch.Tensor:
        """One optimiser step on a batch of uint8 images, recorded; no host synchronisation.
        Returns the loss (detached)."""
        method, optimizer = self.method, self.optimizer
        set_learning_rate(optimizer, lr, self.peak_lr)
        v1, v2 = self.training_views(images)
        with subnormals_flushed(self.device):
            loss, terms, out = method.training_loss(v1, v2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        method.after_step(self.step, tau, out)
        loss = loss.detach()
        self.recorder.record_step(
            self.step,
            lr=lr,
            wd=self.cfg.weight_decay,
            ema=tau,
            lr_predictor=self.peak_lr if method.predictor_lr_fixed() else lr,
            losses={"loss": loss, **{f"loss_{k}": v for k, v in terms.items()}},
        )
        return loss

    def run(self, stop_after: int | None = None) -> int:
        """Train up to ``cfg.epochs`` (or stop after epoch ``stop_after``, schedule unchanged)."""
        cfg, info = self.cfg, self.info
        self.start()
        if self.step == 0:  # fresh run: the random-encoder baseline, measured once
            online = self.method.online
            images = eval_batches(
                self.train_split, BN_FILL_IMAGES, cfg, self.eval_view, self.device
            )
            fill_batchnorm(online, online.forward_once, images)
            if info.main:
                ema = cfg.ema_base if self.method.target == "ema" else None
                entry = self.measure(0.0, ema, 0.0)
                self.log(self.epoch_line(entry) + "  (random encoder)")
        barrier()
        last = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
        logged = len(self.recorder.history)  # a line per measurement, not one per epoch
        while self.epoch < last:
            self.epoch += 1
            self.train_epoch()
            if self.epoch % cfg.checkpoint_every == 0 or self.epoch == last:
                self.save(final=self.epoch == last)
            if info.main and len(self.recorder.history) > logged:
                logged = len(self.recorder.history)
                self.log(self.epoch_line(self.recorder.history[-1]))
            barrier()
        if info.main:
            self.log(self.summary())
        self.recorder.close()
        return 0

    def save(self, final: bool) -> None:
        """The checkpoint, and ``measurements.nc`` where a measurement was taken since it was
        last written or the run stops here (``final``: the per-step record); a resumed run goes
        on from the checkpoint."""
        state = run_state(self)  # every rank: each one's augmentation stream is gathered
        if self.info.main:
            if self.recorder.unwritten() or final:
                self.recorder.write(self.epoch, self.cfg.epochs)
            save_checkpoint(state, self.out / CHECKPOINT)

    # ------------------------------------------------------------------ the step's parts
    def epoch_batches(self):
        """This rank's share of each global batch of the epoch's order (uint8 images)."""
        cfg, info = self.cfg, self.info
        order = epoch_order(len(self.train_split), cfg.seed, self.epoch)
        positions = np.concatenate(rank_batches(order, cfg.batch_size, info.rank, info.world))
        per_rank = cfg.batch_size // info.world
        return self.train_split.batches(positions, per_rank, self.device, stream="train")

    def training_views(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v1, v2 = self.views(images)
        if self.device.type == "cuda":
            v1 = v1.contiguous(memory_format=torch.channels_last)
            v2 = v2.contiguous(memory_format=torch.channels_last)
        return v1, v2

    def lr_at(self, step: int) -> float:
        cfg = self.cfg
        return scheduled_lr(
            step, self.total_steps, self.warmup_steps, self.peak_lr, cfg.lr_schedule
        )

    def tau_at(self, step: int) -> float | None:
        if self.method.target != "ema":
            return None
        return ema_momentum(step, self.total_steps, self.cfg.ema_base, self.cfg.ema_final)

    def check_finite(self, loss: torch.Tensor) -> None:
        if not bool(torch.isfinite(loss)):
            last = self.out / CHECKPOINT
            kept = (
                f"last good checkpoint: {last} (epoch {self.epoch - 1})"
                if last.exists()
                else "no checkpoint was written"
            )
            value = float(loss.detach())
            raise RunFailure(f"loss became {value} at epoch {self.epoch}, step {self.step}; {kept}")

    def measure_now(self) -> bool:
        every = self.cfg.measure_every
        if every is None:
            return self.step % self.steps_per_epoch == 0
        return self.step % every == 0 or self.step == self.total_steps

    def progress_bar(self) -> tqdm:
        return tqdm(
            total=self.steps_per_epoch,
            desc=f"epoch {self.epoch}/{self.cfg.epochs}",
            disable=self.quiet or not self.info.main or not sys.stderr.isatty(),
            leave=False,
            file=sys.stderr,
        )

    # ------------------------------------------------------------------ measuring
    def measure(self, lr: float, tau: float | None, images_s: float) -> dict:
        """The recorder's measurement of the online network now (main rank only)."""
        method = self.method
        weights = {}
        backbone = method.online.backbone
        if isinstance(backbone, LinearEncoder):
            weights.update(backbone.recorded_weights())
            if method.target_net is not None:
                weights["w_target"] = method.target_net.backbone.weight
        return self.recorder.measure(
            self.step,
            lr=lr,
            wd=self.cfg.weight_decay,
            ema=tau,
            encoder=method.embed,
            predictor=method.predictor_matrix(),
            predictor_features=method.predictor_features,
            weights=weights,
            throughput=images_s,
        )

    def start(self) -> None:
        """The run folder's configuration, the data moments (linear backbone)."""
        cfg = self.cfg
        notes = []
        if cfg.eval_size <= self.method.dim:
            notes.append(
                f"warning: --eval-size {cfg.eval_size} is not larger than d = {self.method.dim}: "
                "the correlation statistics are dominated by their estimator floor"
            )
        self.recorder.start(notes)
        backbone = self.method.online.backbone
        if not self.info.main or not isinstance(backbone, LinearEncoder):
            return
        if (self.out / MOMENTS).exists():
            return
        generator = torch.Generator(device=self.device)
        generator.manual_seed(cfg.seed * 1000 + 7919)  # not the training stream
        view = make_views(cfg, self.normalize, generator).view
        n = min(cfg.moments_images, len(self.train_split))
        batches = self.train_split.head(n).all_batches(max(256, cfg.batch_size), self.device)
        self.recorder.write_moments(
            (images for images, _ in batches),
            view,
            backbone.project,
            cfg.moments_views,
            backbone.pca_variance,
            coordinates=f"the first {cfg.input_dim} principal components of the normalised "
            "training images (PCA fitted on the training split only)",
            augmentation=cfg.augment,
            images="the first n_images training images",
            held_out=map(backbone.project, eval_batches(*self.held_out_images())),
        )
        write_run_pairs(self, functools.partial(make_views, cfg, self.normalize), n)

    def held_out_images(self) -> tuple:
        """eval_batches' arguments for the eval subset (the images the Sigma statistics use)."""
        return self.data.test, self.cfg.eval_size, self.cfg, self.eval_view, self.device

    def epoch_line(self, entry: dict) -> str:
        skipped = len(self.recorder.skipped_files())
        return epoch_line(entry, self.recorder.history[0], self.cfg.epochs, skipped)

    def summary(self) -> str:
        last = self.recorder.history[-1]
        status = "" if self.epoch >= self.cfg.epochs else " (stopped early: --resume continues)"
        title = (
            f"summary: {self.cfg.method} on {self.data.name}, {self.epoch} epochs, "
            f"{self.step} steps, flow time t = {last['time']:.4g}{status}{collapse_line(last)}"
        )
        files = (self.out / RESULTS, self.out / CHECKPOINT, self.out / CONFIG)
        return summary_text(self.recorder.history, title, files)


def write_feature_moments(run: Run) -> None:
    """A finished MLP-backbone run (main process; nothing otherwise): ``feature_moments.nc``,
    X and X' of its output features h through the run's own augmentation
    (:func:`empirical.moments.measure_moments`, the first ``--moments-images`` training images,
    ``--moments-views`` views each): the feature-space moments of the collapse map's MLP rung
    (reports.collapse_mlp)."""
    cfg = run.cfg
    if not run.info.main or run.epoch < cfg.epochs or cfg.backbone != "mlp":
        return
    generator = torch.Generator(device=run.device)
    generator.manual_seed(cfg.seed * 1000 + 7919)  # not the training stream
    view = make_views(cfg, run.normalize, generator).view
    n = min(cfg.moments_images, len(run.train_split))
    batches = run.train_split.head(n).all_batches(max(256, cfg.batch_size), run.device)
    backbone = run.method.online.backbone
    with evaluating(backbone):
        run.recorder.write_moments(
            (images for images, _ in batches), view,
            lambda x: backbone(x).reshape(len(x), -1), cfg.moments_views,
            file=FEATURE_MOMENTS, step=run.step, augmentation=cfg.augment,
            coordinates="the backbone's output features at the end of training",
        )  # fmt: skip
