"""How large the experiments are: the CPU default, the quick check, and the GPU scale.

Every claim builds its runs from one :class:`Scale`: the encoder and heads, the optimiser, how
long the runs are, how they are measured, and a cost model for the plan's time estimate. The
sizes are chosen so that the theory's effect must be visible within the run (the reasons are in
each claim's docstring and in :data:`CPU`'s comment): the weight decay and the learning rate of
the main runs give eta t = wd x sum_k lr_k / (1 - mu) = 3 at their end on the CPU
(e^{-2 eta t} = 2.5e-3: the random initial predictor is forgotten), and the runs are long enough
that the learned encoder beats the random one on the probes.
"""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Scale:
    """The sizes of one set of claims (see the module docstring)."""

    name: str
    description: str
    device: str  # "cpu" or "cuda": the runs' --device
    backbone: tuple[str, ...]  # the encoder's options
    features: int  # the encoder's output width (for the cost model)
    augment: str  # the views: "byol" (crops, flips, ...) or "shift"
    proj_hidden: int
    proj_dim: int  # d, the projector's output width
    batch: int
    steps: int  # optimiser steps of a main run
    train_subset: int  # training images (epochs = steps / (train_subset / batch))
    measurements: int  # measurements after the random encoder's
    lr: float  # SGD learning rate per 256 images (constant; heavy-ball momentum 0.9)
    weight_decay: float  # of the main runs
    ema: float  # EMA momentum of the target (constant, Tian et al.'s 0.996)
    val_size: int
    probe_train: int
    probe_test: int
    eval_size: int
    # tian-collapse: the weight decays swept above the main one
    sweep_weight_decays: tuple[float, ...]
    # garrido-width: probe accuracy against the projector's output width
    widths: tuple[int, ...]
    width_steps: int
    width_batch: int
    width_methods: tuple[str, ...]
    # the cost model: seconds per step = step_s + flop_s * (flops of the heads) + quadratic_s *
    # (flops of the d x d statistics), and per run
    step_s: float
    flop_s: float
    quadratic_s: float  # per flop of the d x d statistics (with their d^2 elementwise work)
    measure_s: float  # one measurement with probes
    cubic_s: float  # per d^3 of a measurement (eigendecompositions, SVD of the projections)
    startup_s: float
    jobs: int  # default parallel runs

    @property
    def momentum(self) -> float:
        return 0.9

    def epochs(self, steps: int, batch: int | None = None) -> int:
        """Epochs over ``train_subset`` images giving at least ``steps`` steps of ``batch``."""
        return max(1, math.ceil(steps / self.steps_per_epoch(batch)))

    def steps_per_epoch(self, batch: int | None = None) -> int:
        return max(1, self.train_subset // (batch or self.batch))

    def eta_t(self, weight_decay: float, steps: int, lr: float, momentum: float) -> float:
        """eta t at the end of a constant-lr SGD run of ``steps`` steps, ``lr`` per 256 images
        (empirical.flow: eta = wd / D, t = D lr sum_k (1 - mu^(k+1)) / (1 - mu); D cancels)."""
        lr = lr * self.batch / 256
        if momentum == 0:
            return weight_decay * lr * steps
        mu = momentum
        return weight_decay * lr * (steps - mu * (1 - mu**steps) / (1 - mu)) / (1 - mu)

    def step_seconds(
        self, features: int, hidden: int, dim: int, products: float, batch: int | None = None
    ) -> float:
        """Estimated seconds of one training step of one job: a constant (the encoder, the
        views), the heads' matrix products on two views (forward and backward), and ``products``
        d x d statistics of the batch (Barlow Twins' cross-correlation: 1; VICReg's two
        covariances: 2)."""
        batch = batch or self.batch
        heads = 2 * 3 * 2 * batch * (features * hidden + hidden * dim)
        statistics = 2 * 3 * products * batch * dim * dim
        fixed = self.step_s * batch / self.batch
        return fixed + self.flop_s * heads + self.quadratic_s * statistics

    def run_seconds(
        self, steps: int, step_seconds: float, probes: bool, measurements: int, dim: int
    ) -> float:
        """Estimated seconds of one run: start-up, the steps, the measurements (the probes, and
        the eigendecompositions and SVD of the d-dimensional projections, O(d^3))."""
        measure = (self.measure_s if probes else self.measure_s / 6) + dim**3 * self.cubic_s
        return self.startup_s + steps * step_seconds + (measurements + 1) * measure


#: The default: the MLP encoder on Fashion-MNIST, 3000 steps of 256 images (30 epochs of 25 600
#: images), measured 10 times; eta t = 3 at the end of a main run (wd 2e-3, lr 0.05, mu 0.9).
#: Measured here: a larger weight decay (5e-3, eta t = 7.5) symmetrises W_p faster but leaves
#: the MLP's linear probe at the random encoder's; 1e-3 leaves W_p half asymmetric.
CPU = Scale(
    name="cpu",
    description="MLP encoder (2 x 256, BatchNorm) on Fashion-MNIST, 3000 steps of 256 images",
    device="cpu",
    backbone=("--backbone", "mlp", "--depth", "2", "--width", "256", "--batchnorm"),
    features=256,
    augment="shift",
    proj_hidden=256,
    proj_dim=64,
    batch=256,
    steps=3000,
    train_subset=25600,
    measurements=10,
    lr=0.05,
    weight_decay=2e-3,
    ema=0.996,
    val_size=1000,
    probe_train=5000,
    probe_test=5000,
    eval_size=2000,
    sweep_weight_decays=(0.1, 0.2, 0.4, 0.8),
    widths=(64, 256, 1024, 4096),
    width_steps=600,
    width_batch=128,
    width_methods=("vicreg", "simclr"),
    step_s=0.012,
    flop_s=1.0 / 60e9,
    quadratic_s=1.0 / 35e9,
    measure_s=3.5,
    cubic_s=1 / 6e9,
    startup_s=6.0,
    jobs=2,
)

#: Minutes in all, for tests and CI: tiny widths, 48 steps, still 3 seeds.
QUICK = dataclasses.replace(
    CPU,
    name="quick",
    description="tiny MLP (1 x 32) on 512 images, 48 steps: checks the pipeline, not the claims",
    backbone=("--backbone", "mlp", "--depth", "1", "--width", "32", "--batchnorm"),
    features=32,
    proj_hidden=32,
    proj_dim=16,
    batch=64,
    steps=48,
    train_subset=512,
    measurements=3,
    val_size=100,
    probe_train=200,
    probe_test=200,
    eval_size=200,
    sweep_weight_decays=(0.8,),
    widths=(16, 64),
    width_steps=48,
    width_batch=64,
    step_s=0.002,
    measure_s=0.3,
    startup_s=3.0,
)

#: ResNet-18 (small stem) on the whole Fashion-MNIST training split (55 000 images) on one CUDA
#: device, 6000 steps of 512 images (56 epochs), BYOL's augmentations; eta t = 6 at the end of a
#: main run (wd 1e-3, peak lr 0.1); four runs share the device at a time.
GPU = dataclasses.replace(
    CPU,
    name="gpu",
    description="ResNet-18 (small stem) on all of Fashion-MNIST, 6000 steps of 512 images, CUDA",
    device="cuda",
    backbone=("--backbone", "resnet18", "--stem", "small"),
    features=512,
    augment="byol",
    proj_hidden=2048,
    proj_dim=128,
    batch=512,
    steps=6000,
    train_subset=55000,
    measurements=10,
    weight_decay=1e-3,
    val_size=5000,
    probe_train=10000,
    probe_test=10000,
    eval_size=5000,
    sweep_weight_decays=(0.01, 0.03, 0.1, 0.3),
    widths=(64, 256, 1024, 4096, 8192),
    width_steps=3000,
    width_batch=512,
    width_methods=("vicreg", "barlow_twins", "simclr"),
    step_s=0.03,
    flop_s=1.0 / 20e12,
    quadratic_s=1.0 / 5e12,
    measure_s=10.0,
    cubic_s=1 / 6e9,
    startup_s=20.0,
    jobs=4,
)

SCALES = {s.name: s for s in (CPU, QUICK, GPU)}
