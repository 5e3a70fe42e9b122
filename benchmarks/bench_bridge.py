"""Speed of the bridge's first rungs: the trainer against a plain torch loop of the same arithmetic.

    python benchmarks/bench_bridge.py [--steps 400] [--batch 256] [--repeat 3]

Rung 1 (linear encoder on 32 PCA coordinates, linear predictor, no projector, Tian's eq. 1 loss
summed over both directions, SGD, EMA target) and rung 5a (MLP encoder, depth 1, width 64): the
training throughput ``python -m empirical.train`` records (images per second over the training
steps, measurements excluded), against a loop written directly in torch that does the same work
per step: the same augmentation (shift, flip, noise), the forward passes of both views and the
target, the loss, backward, SGD with weight decay, the EMA update. One thread (what the bridge
uses). Best of ``--repeat``; the ratio (trainer / plain) is the share of time the toolkit's
machinery leaves to the arithmetic.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import xarray as xr

from empirical.augment import Normalize, ShiftFlipNoise
from empirical.backbones import LinearEncoder, mlp_encoder
from empirical.data import open_dataset

RUNGS = {
    "rung 1 (linear, 32 PCs)": ["--backbone", "linear", "--input-dim", "32", "--width", "32"],
    "rung 5a (MLP depth 1, width 64)": ["--backbone", "mlp", "--depth", "1", "--width", "64"],
}
COMMON = [
    "--projector", "none", "--predictor", "linear", "--loss", "linear_byol", "--optimizer",
    "sgd", "--momentum", "0", "--lr-schedule", "constant", "--ema-base", "0.99", "--ema-final",
    "0.99", "--no-probes", "--threads", "1", "--quiet", "--eval-size", "500",
    "--moments-images", "512", "--moments-views", "2", "--lr", "0.01", "--weight-decay", "0.01",
]  # fmt: skip


def trainer_throughput(options: list[str], steps: int, batch: int) -> float:
    """Images/s of empirical.train over one epoch of ``steps`` steps (its recorded throughput)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "empirical.train", "byol", *COMMON, *options, "--epochs",
               "1", "--train-subset", str(steps * batch), "--batch-size", str(batch),
               "--out", str(out)]  # fmt: skip
        subprocess.run(cmd, check=True)
        with xr.open_dataset(out / "measurements.nc") as ds:
            return float(ds["throughput"].values[-1])


def plain_throughput(kind: str, steps: int, batch: int) -> float:
    """Images/s of the same work written as a plain torch loop."""
    torch.set_num_threads(1)
    data = open_dataset("fashion-mnist", 5000, None, 0, torch.device("cpu"))
    images = data.train.images[: steps * batch]
    g = torch.Generator().manual_seed(0)
    views = ShiftFlipNoise(Normalize(data.mean, data.std, "cpu"), g, 2, True, 0.1)
    if kind.startswith("rung 1"):
        encoder = LinearEncoder(784, 32, 32)
        encoder.fit(views.normalize(images[:4096].float() / 255).flatten(1).split(512))
        dim = 32
    else:
        encoder, dim = mlp_encoder(784, 64, 1, False), 64
    predictor = torch.nn.Linear(dim, dim, bias=False)
    target = {name: p.detach().clone() for name, p in encoder.named_parameters()}
    params = [*encoder.parameters(), *predictor.parameters()]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.0, weight_decay=0.1)

    def half(f1, f2):
        return 0.5 * ((f1 @ predictor.weight.T - f2) ** 2).sum() / len(f1)

    start = time.perf_counter()
    for k in range(steps):
        x = images[k * batch : (k + 1) * batch]
        v1, v2 = views(x)
        z1, z2 = encoder(v1), encoder(v2)
        with torch.no_grad():
            t1, t2 = (torch.func.functional_call(encoder, target, (v,)) for v in (v1, v2))
        loss = half(z1, t2) + half(z2, t1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            torch._foreach_mul_(list(target.values()), 0.99)
            torch._foreach_add_(list(target.values()), list(encoder.parameters()), alpha=0.01)
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    print(f"{args.steps} steps of batch {args.batch}, 1 thread, best of {args.repeat}")
    for name, options in RUNGS.items():
        ours = max(trainer_throughput(options, args.steps, args.batch) for _ in range(args.repeat))
        plain = max(plain_throughput(name, args.steps, args.batch) for _ in range(args.repeat))
        print(f"{name:34s} trainer {ours:8.0f} img/s  plain loop {plain:8.0f} img/s  "
              f"ratio {ours / plain:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
