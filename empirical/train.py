"""``python -m empirical.train METHOD --data DATA --epochs N --out DIR``: train and measure.

One process, or one per device under ``torchrun --nproc-per-node K -m empirical.train ...`` (DDP;
BatchNorm synchronised; each method's cross-sample statistics gathered with gradients, see
:mod:`empirical.methods`). Per step: two augmented views on the device, the symbolic loss,
optimiser step with the scheduled lr, EMA / queue / DirectPred update. Per epoch: measurements of
:mod:`empirical.measure` on the fixed eval subset, probes, the netCDF file ``measurements.nc``
and an atomic ``checkpoint.pt``. ``--resume`` continues from the checkpoint; on the CPU the
result is bit-identical to an uninterrupted run. A NaN or infinite loss stops the run with exit
status 1 and leaves the last good checkpoint in place.

Files in --out: ``config.json`` (resolved configuration), ``checkpoint.pt``, ``measurements.nc``,
``log.txt`` (the per-epoch lines and warnings).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from empirical import augment
from empirical.backbones import build_backbone
from empirical.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from empirical.config import RESUME_FREE, Config, build_parser, method_listing, resolve
from empirical.data import Dataset, epoch_order, open_dataset, rank_batches
from empirical.distributed import DistInfo, barrier, convert_sync_batchnorm, init_from_env
from empirical.measure import (
    collapse_warnings,
    extract,
    predictor_measurements,
    probe_measurements,
    representation_observables,
)
from empirical.methods import Architecture, SSLModel, get_spec
from empirical.optim import (
    build_optimizer,
    ema_momentum,
    param_groups,
    set_learning_rate,
    warmup_cosine,
)
from empirical.record import build_dataset, from_storable, to_storable
from symbolic.common.cli import RunFailure, UsageError, run_main
from symbolic.common.provenance import provenance
from symbolic.common.results import write_netcdf

CHECKPOINT = "checkpoint.pt"
RESULTS = "measurements.nc"
CONFIG = "config.json"
LOG = "log.txt"


class Run:
    """Everything one training run holds: data, model, optimiser, schedules, history."""

    def __init__(self, cfg: Config, info: DistInfo, device: torch.device, quiet: bool) -> None:
        self.cfg, self.info, self.device, self.quiet = cfg, info, device, quiet
        self.out = Path(cfg.out)
        torch.manual_seed(cfg.seed)
        self.data: Dataset = open_dataset(
            cfg.data, cfg.val_size, cfg.load_size or None, cfg.seed, device
        )
        if not cfg.image_size:
            cfg.image_size = self.data.native_size if cfg.data.startswith("fashion") else 224
        if not cfg.load_size:
            cfg.load_size = self.data.native_size
        self.train_split = self.data.train.head(cfg.train_subset)
        self.steps_per_epoch = len(self.train_split) // cfg.batch_size
        if self.steps_per_epoch < 1:
            raise UsageError(
                f"--batch-size {cfg.batch_size}: larger than the "
                f"{len(self.train_split)} training images"
            )
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.warmup_steps = round(cfg.warmup_epochs * self.steps_per_epoch)

        spec = get_spec(cfg.method)
        backbone = build_backbone(
            cfg.backbone, self.data.channels, cfg.image_size, cfg.stem, cfg.width
        )
        cfg.proj_hidden = cfg.proj_hidden or backbone.out_dim
        arch = Architecture(
            cfg.proj_hidden,
            cfg.proj_dim,
            cfg.predictor,
            cfg.pred_hidden,
            cfg.ema_base,
            cfg.ema_final,
            cfg.queue_size,
            cfg.rho,
            cfg.eps,
            cfg.eps_convention,
            cfg.freq,
        )
        self.model = SSLModel(spec, arch, backbone, cfg.loss_params).to(device)
        if info.world > 1:
            convert_sync_batchnorm(self.model, device.type)
        cuda = device.type == "cuda"
        if cuda:
            self.model.to(memory_format=torch.channels_last)
        bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and cuda)
        self.autocast = (
            (lambda: torch.autocast(device.type, dtype=torch.bfloat16))
            if bf16
            else contextlib.nullcontext
        )
        self.model.autocast = self.autocast
        fixed = self.model.online.predictor if spec.fix_pred_lr else None
        groups = param_groups(self.model.online, cfg.weight_decay, fixed)
        self.optimizer = build_optimizer(
            cfg.optimizer, groups, cfg.peak_lr, cfg.momentum, cfg.lars_eta
        )
        forward = self.model.online
        if info.world > 1:
            forward = torch.nn.parallel.DistributedDataParallel(
                forward, device_ids=[info.local_rank] if cuda else None
            )
        if cfg.compile:
            forward = torch.compile(forward)
        self.model.set_forward(forward)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(cfg.seed * 1000 + info.rank)
        self.normalize = augment.Normalize(self.data.mean, self.data.std, device)
        self.augment = augment.TwoViewAugment(
            cfg.image_size,
            self.normalize,
            self.generator,
            augment.byol_views(cfg.crop_min_scale),
        )
        self.epoch = 0
        self.step = 0
        self.flow_time: list[float] = []
        self.history: list[dict] = []
        self.skipped_before: set[str] = set()  # unreadable files met before a --resume

    # ------------------------------------------------------------------ helpers
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

    # ------------------------------------------------------------------ state
    def state(self) -> dict:
        return {
            "config": self.cfg.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "flow_time": torch.tensor(self.flow_time, dtype=torch.float64),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "rng": rng_state(),
            "history": [to_storable(e) for e in self.history],
            "skipped_files": self.skipped_files(),
        }

    def load_state(self, state: dict) -> None:
        saved = state["config"]
        for key, value in self.cfg.to_dict().items():
            if key not in RESUME_FREE and saved.get(key) != value:
                raise UsageError(
                    f"--resume: {self.out / CHECKPOINT} was made with {key}={saved.get(key)!r}, "
                    f"this run has {key}={value!r}; use the same options or another --out"
                )
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.flow_time = state["flow_time"].tolist()
        self.model.load_state_dict(state["model"])
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
        splits = {
            "train": self.data.train.head(cfg.probe_train),
            "val": self.data.val,
            "test": self.data.test.head(n_test),
        }
        feats = {}
        for name, split in splits.items():
            h, z, y = extract(
                self.model, split, self.eval_view, bs, workers, self.device, self.autocast
            )
            feats[name] = (h, z, y)
        h_test, z_test, y_test = feats["test"]
        h_eval = h_test[: cfg.eval_size].double().numpy()
        z_eval = z_test[: cfg.eval_size].double().numpy()
        values = representation_observables(h_eval, z_eval)
        wp = self.model.predictor_matrix()
        if wp is not None:
            standardised = self.cfg.method == "liu" and bool(cfg.loss_params.get("standardize"))
            values.update(
                predictor_measurements(
                    wp.double().cpu().numpy(), z_eval, standardised, cfg.wp_store_limit
                )
            )
        n_probe = cfg.probe_test or len(h_test)
        probe_feats = {k: (v[0], v[2]) for k, v in feats.items()}
        probe_feats["test"] = (h_test[:n_probe], y_test[:n_probe])
        values.update(probe_measurements(probe_feats, self.data.num_classes))
        return values

    def record_epoch(self, train_stats: dict) -> dict:
        entry = {
            "epoch": self.epoch,
            "time": self.flow_time[-1] if self.flow_time else 0.0,
            "step": self.step,
        }
        entry.update(train_stats)
        entry.update(self.measure())
        for message in collapse_warnings(entry, self.cfg.proj_dim) if self.epoch else ():
            self.log(f"epoch {self.epoch}: {message}", err=True)
        return entry

    def write_results(self) -> None:
        cfg = self.cfg
        attrs = provenance(
            "training",
            cfg.method,
            cfg.to_dict(),
            dataset=self.data.name,
            epochs_completed=self.epoch,
            steps_per_epoch=self.steps_per_epoch,
            flow_time="t = sum over steps of the scheduled learning rate (peak lr x schedule)",
            epoch_zero="randomly initialised encoder before the first step",
            sigma_conventions="pearson: Pearson correlation (unit diagonal); moment: uncentred "
            "second moment z^T z / N; on projector outputs, *_backbone on backbone features",
            wp_feature_space="standardised projector outputs (Liu eq. 18)"
            if cfg.method == "liu" and cfg.loss_params.get("standardize")
            else "projector outputs",
            knn="weighted kNN on l2-normalised backbone features, k and T chosen on validation",
            linear_probe="softmax regression on standardised backbone features, L2 penalty "
            "chosen on validation; accuracy on the test split",
            eval_subset=f"first {cfg.eval_size} test images, un-augmented",
            skipped_images=len(self.skipped_files()),
            torch_version=torch.__version__,
            hardware=torch.cuda.get_device_name(self.device)
            if self.device.type == "cuda"
            else f"cpu x {torch.get_num_threads()} threads",
        )
        ds = build_dataset(self.history, np.array(self.flow_time), attrs)
        write_netcdf(ds, self.out / RESULTS)

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

    def train_epoch(self) -> dict:
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
        sums: dict[str, torch.Tensor] = {}
        check_every = 1 if self.device.type == "cpu" else 10
        self.model.train()
        start = time.perf_counter()
        for i, (images, _) in enumerate(batches):
            lr = warmup_cosine(self.step, self.total_steps, self.warmup_steps, cfg.peak_lr)
            set_learning_rate(self.optimizer, lr, cfg.peak_lr)
            v1, v2 = self.augment(images)
            if self.device.type == "cuda":
                v1 = v1.contiguous(memory_format=torch.channels_last)
                v2 = v2.contiguous(memory_format=torch.channels_last)
            loss, terms, out = self.model.training_loss(v1, v2)
            if i % check_every == 0:
                self.check_finite(loss)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            tau = None
            if cfg.ema_base is not None:
                tau = ema_momentum(self.step, self.total_steps, cfg.ema_base, cfg.ema_final)
            self.model.after_step(self.step, tau, out)
            values = {"loss": loss.detach(), **{f"loss_{k}": v for k, v in terms.items()}}
            if self.step == 0:  # loss of the initial network: the epoch-0 entry
                self.history[0].update({k: float(v) for k, v in values.items()})
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v
            self.step += 1
            self.flow_time.append((self.flow_time[-1] if self.flow_time else 0.0) + lr)
            if bar.n % 10 == 0 or i == self.steps_per_epoch - 1:
                elapsed = time.perf_counter() - start
                bar.set_postfix(
                    loss=f"{float(loss.detach()):.4f}",
                    img_s=f"{(i + 1) * cfg.batch_size / elapsed:.0f}",
                )
            bar.update(1)
        bar.close()
        seconds = time.perf_counter() - start
        means = {k: float(v) / self.steps_per_epoch for k, v in sums.items()}
        self.check_finite(torch.tensor(means["loss"]))
        means.update(throughput=self.steps_per_epoch * cfg.batch_size / seconds, lr=lr)
        if tau is not None:
            means["ema_momentum"] = tau
        return means

    def epoch_line(self, entry: dict) -> str:
        base = self.history[0]
        parts = [f"epoch {entry['epoch']}/{self.cfg.epochs}", f"t={entry['time']:.3f}"]
        if "loss" in entry:
            parts.append(f"loss {entry['loss']:.4f}")
        parts += [
            f"knn {entry['knn_acc']:.3f} (random {base['knn_acc']:.3f})",
            f"linear {entry['linear_acc']:.3f} (random {base['linear_acc']:.3f})",
            f"z_std {float(entry['z_std']):.3f}",
            f"erank {float(entry['effective_rank']):.1f}",
            f"||S-I||^2/d {float(entry['sigma_dist_pearson_per_dim']):.3f}",
        ]
        if entry.get("throughput"):
            parts.append(f"{entry['throughput']:.0f} img/s")
        skipped = len(self.skipped_files())
        if skipped:
            parts.append(f"skipped {skipped} unreadable images")
        return "  ".join(parts)

    def run(self, stop_after: int | None = None) -> int:
        """Train up to ``cfg.epochs`` (or stop after epoch ``stop_after``, schedule unchanged)."""
        cfg, info = self.cfg, self.info
        if info.main:
            self.out.mkdir(parents=True, exist_ok=True)
            _write_json(self.out / CONFIG, cfg.to_dict())
        if not self.history:  # fresh run: the random-encoder baseline, measured once
            if info.main:
                start = {"throughput": 0.0, "lr": 0.0}
                if cfg.ema_base is not None:
                    start["ema_momentum"] = cfg.ema_base
                self.history.append(self.record_epoch(start))
                self.log(self.epoch_line(self.history[0]) + "  (random encoder)")
            else:
                self.history.append({})
        barrier()
        last = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
        while self.epoch < last:
            self.epoch += 1
            stats = self.train_epoch()
            if info.main:
                self.history.append(self.record_epoch(stats))
                self.write_results()
                save_checkpoint(self.state(), self.out / CHECKPOINT)
                self.log(self.epoch_line(self.history[-1]))
            barrier()
        if info.main:
            self.log(self.summary())
        return 0

    def summary(self) -> str:
        first, last = self.history[0], self.history[-1]
        rows = [
            ("kNN accuracy", "knn_acc"),
            ("linear-probe accuracy", "linear_acc"),
            ("||Sigma - I||_F^2 / d (Pearson)", "sigma_dist_pearson_per_dim"),
            ("||Sigma - I||_F^2 / d (moment)", "sigma_dist_moment_per_dim"),
            ("effective rank", "effective_rank"),
            ("z_std", "z_std"),
        ]
        if "wp_asymmetry" in last:
            rows += [("W_p asymmetry", "wp_asymmetry"), ("W_p-F commutator", "commutator_norm")]
        lines = [
            f"summary: {self.cfg.method} on {self.data.name}, {self.epoch} epochs, "
            f"{self.step} steps, flow time t = {last['time']:.4f}",
            f"  {'':34s} {'random':>10s} {'final':>10s}",
        ]
        for label, key in rows:
            lines.append(f"  {label:34s} {float(first[key]):10.4f} {float(last[key]):10.4f}")
        lines.append(f"  files: {self.out / RESULTS}, {self.out / CHECKPOINT}, {self.out / CONFIG}")
        return "\n".join(lines)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        print(method_listing())
        return 0
    if not args.method:
        raise UsageError("name a method to train (see --list)")
    device = _device(args.device)
    try:
        get_spec(args.method)
    except ValueError as err:
        raise UsageError(str(err)) from None
    info = init_from_env(device.type)
    if device.type == "cuda":
        torch.cuda.set_device(info.local_rank)
        device = torch.device("cuda", info.local_rank)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    cfg = resolve(args, device.type, info.world)
    out = Path(cfg.out)
    checkpoint = out / CHECKPOINT
    if args.resume and not checkpoint.exists():
        raise UsageError(f"--resume: no checkpoint at {checkpoint}")
    if not args.resume and checkpoint.exists():
        raise UsageError(
            f"--out {out} already holds a run ({checkpoint}); pass --resume to "
            "continue it or choose another --out"
        )
    run = Run(cfg, info, device, args.quiet)
    if args.resume:
        try:
            state = load_checkpoint(checkpoint)
        except (RuntimeError, ValueError, OSError, pickle.UnpicklingError) as err:
            raise UsageError(f"--resume: cannot load {checkpoint}: {err}") from None
        run.load_state(state)
        run.log(f"resumed {checkpoint} at epoch {run.epoch}, step {run.step}")
    try:
        return run.run(args.stop_after)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(run_main(main))
