"""One training run: data, method, optimiser, schedules, measurements, checkpoints.

Per step: two augmented views on the device, the method's symbolic loss, the optimiser step with
the scheduled learning rate, the method's after-step update (EMA target, queue, DirectPred's
W_p), and the step's record in flow time (:mod:`empirical.flow`). Per measurement (each epoch's
end, or every ``measure_every`` steps): the observables of :mod:`empirical.measure` on the fixed
eval subset and the probes. Per epoch: ``measurements.nc`` (marked partial until the last
epoch) and an atomic ``checkpoint.pt``. Before the epoch-0 measurement (the randomly initialised
encoder) the BatchNorm running statistics are filled from un-augmented training images. A run
on the linear backbone first fits its PCA on the training split and writes ``moments.nc``
(X and X' through the run's own augmentation, :mod:`empirical.moments`).

Files in the run folder: ``config.toml`` (the resolved configuration; ``--config`` reads it),
``checkpoint.pt``, ``measurements.nc``, ``moments.nc`` (linear backbone), ``log.txt``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from empirical import augment, recipes
from empirical.backbones import FLAT_BACKBONES, LinearEncoder, build_backbone
from empirical.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from empirical.data import Dataset, epoch_order, open_dataset, rank_batches
from empirical.distributed import DistInfo, barrier, convert_sync_batchnorm
from empirical.flow import LARS_REASON, flow_step
from empirical.measure import (
    collapse_warnings,
    extract,
    fill_batchnorm,
    predictor_measurements,
    probe_measurements,
    representation_observables,
)
from empirical.methods import Method, get
from empirical.moments import measure_moments
from empirical.optim import (
    build_optimizer,
    ema_momentum,
    param_groups,
    scaled_lr,
    scheduled_lr,
    set_learning_rate,
)
from empirical.record import UNDEFINED, build_dataset, from_storable, to_storable
from empirical.resources import check_training_memory
from symbolic.common.cli import RunFailure, UsageError
from symbolic.common.files import write_text
from symbolic.common.options import resume_conflicts, to_toml
from symbolic.common.provenance import provenance
from symbolic.common.results import write_netcdf

CHECKPOINT = "checkpoint.pt"
RESULTS = "measurements.nc"
MOMENTS = "moments.nc"
CONFIG = "config.toml"
LOG = "log.txt"
#: un-augmented training images that fill the BatchNorm statistics before epoch 0
BN_FILL_IMAGES = 2048


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


def resolve(cfg, data: Dataset, device_type: str, world: int):
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


class Run:
    """Everything one training run holds: data, method, optimiser, schedules, history."""

    def __init__(self, cfg, info: DistInfo, device: torch.device, quiet: bool) -> None:
        self.info, self.device, self.quiet = info, device, quiet
        self.out = Path(cfg.out)
        torch.manual_seed(cfg.seed)
        self.data: Dataset = open_dataset(
            cfg.data, cfg.val_size, cfg.load_size or None, cfg.seed, device
        )
        cfg = resolve(cfg, self.data, device.type, info.world)
        self.cfg = cfg
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
        check_training_memory(cfg, self.data.channels, info.world, device)

        backbone = build_backbone(
            cfg.backbone,
            self.data.channels,
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
            backbone.fit(self.eval_batches(self.train_split, len(self.train_split)))
        width = backbone.out_dim
        cfg = dataclasses.replace(
            cfg, proj_hidden=cfg.proj_hidden or width, proj_dim=cfg.proj_dim or width
        )
        if cfg.projector == "none":
            cfg = dataclasses.replace(cfg, proj_hidden=width, proj_dim=width)
        self.cfg = cfg  # resolved: every value the run uses
        self.method: Method = get(cfg.method)(cfg, backbone).to(device)
        if info.world > 1:
            convert_sync_batchnorm(self.method, device.type)
        cuda = device.type == "cuda"
        if cuda:
            self.method.to(memory_format=torch.channels_last)
        bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and cuda)
        self.autocast = (
            (lambda: torch.autocast(device.type, dtype=torch.bfloat16))
            if bf16
            else contextlib.nullcontext
        )
        self.method.autocast = self.autocast
        fixed = self.method.online.predictor if self.method.predictor_lr_fixed() else None
        groups = param_groups(self.method.online, cfg.weight_decay, fixed)
        self.optimizer = build_optimizer(
            cfg.optimizer, groups, self.peak_lr, cfg.momentum, cfg.lars_eta
        )
        forward = self.method.online
        if info.world > 1:
            forward = torch.nn.parallel.DistributedDataParallel(
                forward, device_ids=[info.local_rank] if cuda else None
            )
        if cfg.compile:
            forward = torch.compile(forward)
        self.method.set_forward(forward)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(cfg.seed * 1000 + info.rank)
        self.augment = self.make_augment(self.generator)
        self.epoch = 0
        self.step = 0
        self.steps: dict[str, list[float]] = {}
        self.history: list[dict] = []
        self.loss_sums: dict[str, torch.Tensor] = {}  # loss terms summed since the last measurement
        self.loss_count = 0
        self.skipped_before: set[str] = set()  # unreadable files met before a --resume
        self.writer = None

    # ------------------------------------------------------------------ helpers
    def make_augment(self, generator: torch.Generator):
        cfg = self.cfg
        if cfg.augment == "shift":
            return augment.ShiftFlipNoise(
                self.normalize, generator, cfg.aug_shift, cfg.aug_flip, cfg.aug_noise
            )
        views = recipes.views(cfg.augment, cfg.crop_min_scale)
        return augment.TwoViewAugment(cfg.image_size, self.normalize, generator, views)

    def eval_batches(self, split, n: int):
        """Un-augmented, normalised inputs of the first ``n`` images of ``split``."""
        bs = max(256, self.cfg.batch_size)
        for images, _ in split.head(n).all_batches(bs, self.cfg.workers, self.device):
            yield self.eval_view(images)

    def skipped_files(self) -> list[str]:
        """Every unreadable image met by this run (and the runs it resumes)."""
        return sorted(self.skipped_before | {str(p) for p in self.data.skipped_files()})

    def log(self, message: str, err: bool = False) -> None:
        if not self.info.main:
            return
        if not self.quiet or err:
            print(message, file=sys.stderr if err else sys.stdout, flush=True)
        with open(self.out / LOG, "a") as fh:
            fh.write(message + "\n")

    def eval_view(self, images: torch.Tensor) -> torch.Tensor:
        x = augment.to_unit(images)
        size, side = self.cfg.image_size, x.shape[-1]
        if side > size:  # central crop (Resize 256 + CenterCrop 224 for folder data)
            o = (side - size) // 2
            x = x[..., o : o + size, o : o + size]
        x = augment.center_resize(x, size)
        x = self.normalize(x)
        return x.contiguous(memory_format=torch.channels_last) if x.is_cuda else x

    # ------------------------------------------------------------------ schedules
    def lr_at(self, step: int) -> float:
        cfg = self.cfg
        return scheduled_lr(
            step, self.total_steps, self.warmup_steps, self.peak_lr, cfg.lr_schedule
        )

    def tau_at(self, step: int) -> float | None:
        if self.method.target != "ema":
            return None
        return ema_momentum(step, self.total_steps, self.cfg.ema_base, self.cfg.ema_final)

    def record_step(self, step: int, lr: float, tau: float | None) -> None:
        """The step's schedule values and their meaning in flow time (:mod:`empirical.flow`)."""
        cfg = self.cfg
        lr_pred = self.peak_lr if self.method.predictor_lr_fixed() else lr
        flow = flow_step(
            step,
            lr,
            lr_pred,
            tau,
            cfg.weight_decay,
            cfg.momentum,
            self.method.loss_directions * self.method.loss_scale,
            cfg.optimizer,
        )
        previous = self.steps["flow_time"][-1] if self.steps.get("flow_time") else 0.0
        values = {
            "lr": lr,
            "lr_predictor": lr_pred,
            "ema_momentum": float("nan") if tau is None else tau,
            "weight_decay": cfg.weight_decay,
            "momentum": cfg.momentum,
            "flow_time": previous + flow["dt"],
            "eta": flow["eta"],
            "alpha_p": flow["alpha_p"],
            "beta": flow["beta"],
        }
        for key, value in values.items():
            self.steps.setdefault(key, []).append(float(value))

    def flow_time(self) -> float:
        return self.steps["flow_time"][-1] if self.steps.get("flow_time") else 0.0

    # ------------------------------------------------------------------ state
    def state(self) -> dict:
        return {
            "config": self.cfg.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "steps": {k: torch.tensor(v, dtype=torch.float64) for k, v in self.steps.items()},
            "model": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "rng": rng_state(),
            "history": [to_storable(e) for e in self.history],
            "skipped_files": self.skipped_files(),
        }

    def load_state(self, state: dict, path: Path) -> None:
        conflicts = resume_conflicts(state["config"], self.cfg)
        if conflicts:
            raise UsageError(
                f"--resume: {path} was made with other options ({'; '.join(conflicts[:3])}); "
                "use the same options or another --out"
            )
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.steps = {k: v.tolist() for k, v in state["steps"].items()}
        self.method.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        set_rng_state(state["rng"])
        self.history = [from_storable(e) for e in state["history"]]
        self.skipped_before = set(state["skipped_files"])

    # ------------------------------------------------------------------ measuring
    def measure(self) -> dict:
        """Observables and probes of the current online network (main rank only)."""
        cfg = self.cfg
        bs, workers = max(256, cfg.batch_size), cfg.workers
        n_test = max(cfg.probe_test, cfg.eval_size) if cfg.probe_test else 0
        splits = {"test": self.data.test.head(n_test if cfg.probes else cfg.eval_size)}
        if cfg.probes:
            splits.update(train=self.data.train.head(cfg.probe_train), val=self.data.val)
        feats = {}
        for name, split in splits.items():
            feats[name] = extract(
                self.method, split, self.eval_view, bs, workers, self.device, self.autocast
            )
        h_test, z_test, y_test = feats["test"]
        h_eval = h_test[: cfg.eval_size].double().numpy()
        z_eval = z_test[: cfg.eval_size].double().numpy()
        values = representation_observables(h_eval, z_eval)
        values["aug_ratio"] = self.augmentation_ratio()
        wp = self.method.predictor_matrix()
        store = self.method.dim <= cfg.wp_store_limit
        if wp is not None:
            features = self.method.predictor_features(z_eval)
            values.update(predictor_measurements(wp.double().cpu().numpy(), features, store))
        backbone = self.method.online.backbone
        if isinstance(backbone, LinearEncoder) and store:
            values["w"] = backbone.weight.detach().double().cpu().numpy()
            if self.method.target_net is not None:
                target = self.method.target_net.backbone.weight
                values["w_target"] = target.detach().double().cpu().numpy()
        if cfg.probes:
            n_probe = cfg.probe_test or len(h_test)
            probe_feats = {k: (v[0], v[2]) for k, v in feats.items()}
            probe_feats["test"] = (h_test[:n_probe], y_test[:n_probe])
            values.update(probe_measurements(probe_feats, self.data.num_classes))
        return values

    @torch.no_grad()
    def augmentation_ratio(self) -> float:
        """sigma^2 in feature space: tr(E[z z^T] - E[z1 z2^T]) / tr(E[z1 z2^T]) on two augmented
        views of the eval images (uncentred; in the linear theory tr(W X' W^T) / tr(W X W^T),
        the sigma^2 of the collapse threshold eta* = tau^2 / (4 (1 + sigma^2))). The views come
        from a generator of their own, so measuring leaves the training's random stream as it is.
        """
        cfg = self.cfg
        generator = torch.Generator(device=self.device)
        generator.manual_seed(cfg.seed * 1000 + 104729 + self.step)
        views = self.make_augment(generator)
        split = self.data.test.head(cfg.eval_size)
        self.method.eval()
        single = two = 0.0
        try:
            for images, _ in split.all_batches(max(256, cfg.batch_size), cfg.workers, self.device):
                v1, v2 = views(images)
                with self.autocast():
                    z1 = self.method.embed(v1)[1].double()
                    z2 = self.method.embed(v2)[1].double()
                single += float((z1 * z1).sum() + (z2 * z2).sum()) / 2
                two += float((z1 * z2).sum())
        finally:
            self.method.train()
        return (single - two) / two if two > 0 else float("nan")

    def record_measurement(self, schedule: dict[str, float]) -> dict:
        """A measurement now: the mean loss terms since the last one, the schedule's current
        values (``schedule``: lr, throughput, EMA momentum) and the observables."""
        means = {k: float(v) / self.loss_count for k, v in self.loss_sums.items()}
        self.loss_sums, self.loss_count = {}, 0
        entry = {
            "epoch": self.step / self.steps_per_epoch,
            "time": self.flow_time(),
            "step": self.step,
            **means,
            **schedule,
        }
        entry.update(self.measure())
        for message in collapse_warnings(entry) if self.step else ():
            self.log(f"step {self.step}: {message}", err=True)
        if self.writer is not None:
            for key, value in entry.items():
                if np.ndim(value) == 0 and key not in ("epoch", "step"):
                    self.writer.add_scalar(f"measure/{key}", float(value), self.step)
        return entry

    def write_results(self) -> None:
        cfg = self.cfg
        complete = self.epoch >= cfg.epochs
        status = (
            "complete"
            if complete
            else f"stopped after epoch {self.epoch} of {cfg.epochs}; continue with --resume"
        )
        extra = {}
        if cfg.optimizer != "sgd":
            extra["flow_time_undefined"] = LARS_REASON
        attrs = provenance(
            "training",
            cfg.method,
            cfg.to_dict(),
            dataset=self.data.name,
            epochs_completed=self.epoch,
            steps_per_epoch=self.steps_per_epoch,
            partial=int(not complete),
            status=status,
            flow_time="t = sum over steps of dt_k = D lr_k (1 - mu^(k+1))/(1 - mu) "
            "(empirical.flow; D = loss_directions x loss_scale)",
            predictor_decay="alpha_p_eta",
            epoch_zero="randomly initialised encoder before the first step",
            bn_statistics=f"BatchNorm running statistics filled from the first {BN_FILL_IMAGES} "
            "un-augmented training images before the epoch-0 measurement",
            sigma_conventions="sigma_corr_mean_sq: mean over pairs of alive dimensions of the "
            "squared Pearson correlation (floor sigma_floor = 1/(N-1)); pearson: ||Sigma - I||^2 "
            "with Sigma the Pearson correlation; moment: Sigma = M d / tr M, M = z^T z / N; on "
            "projector outputs, *_backbone on backbone features",
            knn="weighted kNN on l2-normalised backbone features, k and T chosen on validation",
            linear_probe="softmax regression on standardised backbone features, L2 penalty "
            "chosen on validation; accuracy on the test split",
            eval_subset=f"first {cfg.eval_size} test images, un-augmented",
            skipped_images=len(self.skipped_files()),
            torch_version=torch.__version__,
            hardware=torch.cuda.get_device_name(self.device)
            if self.device.type == "cuda"
            else f"cpu x {torch.get_num_threads()} threads",
            **self.method.describe(),
            **extra,
        )
        ds = build_dataset(self.history, self.steps, attrs)
        write_netcdf(ds, self.out / RESULTS, undefined=UNDEFINED)

    def write_moments(self) -> None:
        """``moments.nc``: X and X' in the linear backbone's input coordinates."""
        cfg = self.cfg
        backbone = self.method.online.backbone
        generator = torch.Generator(device=self.device)
        generator.manual_seed(cfg.seed * 1000 + 7919)  # not the training stream
        view = self.make_augment(generator).view
        n = min(cfg.moments_images, len(self.train_split))
        batches = (
            images
            for images, _ in self.train_split.head(n).all_batches(
                max(256, cfg.batch_size), cfg.workers, self.device
            )
        )
        ds = measure_moments(batches, view, backbone.project, cfg.moments_views)
        ds["pca_variance"] = ("input", backbone.pca_variance.cpu().numpy())
        ds.attrs.update(
            provenance(
                "moments",
                cfg.method,
                cfg.to_dict(),
                coordinates=f"the first {cfg.input_dim} principal components of the normalised "
                "training images (PCA fitted on the training split only)",
                augmentation=cfg.augment,
                images="the first n_images training images",
            ),
            n_images=ds.attrs["n_images"],
            n_views=ds.attrs["n_views"],
        )
        write_netcdf(ds, self.out / MOMENTS)

    # ------------------------------------------------------------------ training
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

    def train_epoch(self) -> None:
        cfg, info = self.cfg, self.info
        order = epoch_order(len(self.train_split), cfg.seed, self.epoch)
        positions = np.concatenate(rank_batches(order, cfg.batch_size, info.rank, info.world))
        per_rank = cfg.batch_size // info.world
        batches = self.train_split.batches(positions, per_rank, cfg.workers, self.device)
        bar = tqdm(
            total=self.steps_per_epoch,
            desc=f"epoch {self.epoch}/{cfg.epochs}",
            disable=self.quiet or not info.main or not sys.stderr.isatty(),
            leave=False,
            file=sys.stderr,
        )
        check_every = 1 if self.device.type == "cpu" else 10
        self.method.train()
        start = time.perf_counter()
        for i, (images, _) in enumerate(batches):
            lr = self.lr_at(self.step)
            set_learning_rate(self.optimizer, lr, self.peak_lr)
            v1, v2 = self.augment(images)
            if self.device.type == "cuda":
                v1 = v1.contiguous(memory_format=torch.channels_last)
                v2 = v2.contiguous(memory_format=torch.channels_last)
            with subnormals_flushed(self.device):
                loss, terms, out = self.method.training_loss(v1, v2)
                if i % check_every == 0:
                    self.check_finite(loss)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
            tau = self.tau_at(self.step)
            self.method.after_step(self.step, tau, out)
            values = {"loss": loss.detach(), **{f"loss_{k}": v for k, v in terms.items()}}
            if self.step == 0:  # the initial network's loss goes into the epoch-0 entry
                self.history[0].update({k: float(v) for k, v in values.items()})
            for k, v in values.items():
                self.loss_sums[k] = self.loss_sums.get(k, 0.0) + v
            self.loss_count += 1
            self.record_step(self.step, lr, tau)
            self.step += 1
            if self.writer is not None and info.main:
                self.writer.add_scalar("train/loss", float(loss.detach()), self.step)
                self.writer.add_scalar("train/lr", lr, self.step)
            images_s = (i + 1) * cfg.batch_size / (time.perf_counter() - start)
            if self.measure_now() and info.main:
                self.check_finite(self.loss_sums["loss"])
                schedule = {"throughput": images_s, "lr": lr}
                if tau is not None:
                    schedule["ema_momentum"] = tau
                self.history.append(self.record_measurement(schedule))
            if bar.n % 10 == 0 or i == self.steps_per_epoch - 1:
                bar.set_postfix(loss=f"{float(loss.detach()):.4f}", img_s=f"{images_s:.0f}")
            bar.update(1)
        bar.close()

    def epoch_line(self, entry: dict) -> str:
        base = self.history[0]
        parts = [f"epoch {entry['epoch']:g}/{self.cfg.epochs}", f"t={entry['time']:.4g}"]
        if "loss" in entry:
            parts.append(f"loss {entry['loss']:.4f}")
        if "knn_acc" in entry:
            parts += [
                f"knn {entry['knn_acc']:.3f} (random {base['knn_acc']:.3f})",
                f"linear {entry['linear_acc']:.3f} (random {base['linear_acc']:.3f})",
            ]
        parts += [
            f"z_std {float(entry['z_std']):.3f}",
            f"erank {float(entry['effective_rank']):.1f}",
            f"mean rho^2 {float(entry['sigma_corr_mean_sq']):.4f} "
            f"(floor {float(entry['sigma_floor']):.4f})",
        ]
        if entry.get("throughput"):
            parts.append(f"{entry['throughput']:.0f} img/s")
        skipped = len(self.skipped_files())
        if skipped:
            parts.append(f"skipped {skipped} unreadable images")
        return "  ".join(parts)

    def start(self) -> None:
        """The run folder's configuration, the data moments and the epoch-0 measurement."""
        cfg = self.cfg
        if cfg.tensorboard and self.info.main:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise UsageError(
                    "--tensorboard needs the tensorboard package (pip install tensorboard)"
                ) from None
            self.writer = SummaryWriter(cfg.tensorboard)
        if not self.info.main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        header = [f"python -m empirical.train --config {self.out / CONFIG} reruns this run"]
        write_text(self.out / CONFIG, to_toml(cfg.to_dict(), header))
        if cfg.eval_size <= self.method.dim:
            self.log(
                f"warning: --eval-size {cfg.eval_size} is not larger than d = {self.method.dim}: "
                "the correlation statistics are dominated by their estimator floor",
                err=True,
            )
        if (
            isinstance(self.method.online.backbone, LinearEncoder)
            and not (self.out / MOMENTS).exists()
        ):
            self.write_moments()

    def run(self, stop_after: int | None = None) -> int:
        """Train up to ``cfg.epochs`` (or stop after epoch ``stop_after``, schedule unchanged)."""
        cfg, info = self.cfg, self.info
        self.start()
        if not self.history:  # fresh run: the random-encoder baseline, measured once
            online = self.method.online
            images = self.eval_batches(self.train_split, BN_FILL_IMAGES)
            fill_batchnorm(online, online.forward_once, images)
            if info.main:
                schedule = {"throughput": 0.0, "lr": 0.0}
                if self.method.target == "ema":
                    schedule["ema_momentum"] = cfg.ema_base
                self.history.append(self.record_measurement(schedule))
                self.log(self.epoch_line(self.history[0]) + "  (random encoder)")
            else:
                self.history.append({})
        barrier()
        last = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
        while self.epoch < last:
            self.epoch += 1
            self.train_epoch()
            if info.main:
                self.write_results()
                save_checkpoint(self.state(), self.out / CHECKPOINT)
                self.log(self.epoch_line(self.history[-1]))
            barrier()
        if info.main:
            self.log(self.summary())
        if self.writer is not None:
            self.writer.close()
        return 0

    def summary(self) -> str:
        first, last = self.history[0], self.history[-1]
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
        status = "" if self.epoch >= self.cfg.epochs else " (stopped early: --resume continues)"
        lines = [
            f"summary: {self.cfg.method} on {self.data.name}, {self.epoch} epochs, "
            f"{self.step} steps, flow time t = {last['time']:.4g}{status}",
            f"  {'':34s} {'random':>10s} {'final':>10s}",
        ]
        for label, key in rows:
            lines.append(f"  {label:34s} {float(first[key]):10.4f} {float(last[key]):10.4f}")
        lines.append(f"  files: {self.out / RESULTS}, {self.out / CHECKPOINT}, {self.out / CONFIG}")
        return "\n".join(lines)


def resume(run: Run, path: Path) -> None:
    """Load the checkpoint at ``path`` into ``run``; UsageError naming a broken checkpoint."""
    try:
        state = load_checkpoint(path)
    except (RuntimeError, ValueError, OSError, EOFError, TypeError, KeyError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UsageError(f"--resume: cannot load {path}: {reason}") from None
    run.load_state(state, path)
