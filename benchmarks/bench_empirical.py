"""Speed of the empirical package on this machine: augmentation, training steps, probes.

Run: ``python benchmarks/bench_empirical.py [--quick]``. Prints images/s and ratios measured in
this one run (no numbers are asserted anywhere):

1. two-view BYOL augmentation, batched with per-sample draws (ours) against a loop applying
   torchvision.transforms.v2 image by image (the way to get per-sample randomness from v2);
2. BYOL training steps (two views, online + EMA target, backward, LARS) for the ConvNet and
   ResNet-18 with the ImageNet and the small-image stem, with 1 and 2 torch threads;
3. the linear probe (full-batch L-BFGS) with 1 and 2 threads.
"""

from __future__ import annotations

import argparse
import time

import torch

from empirical import augment
from empirical.backbones import build_backbone
from empirical.config import build_method
from empirical.optim import LARS, param_groups
from empirical.probes import fit_softmax


def timed(fn, repeat: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def bench_augment(batch: int, channels: int, size: int, repeat: int) -> None:
    from torchvision.transforms import v2

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, channels, size, size), dtype=torch.uint8, generator=g)
    norm = augment.Normalize((0.5,) * channels, (0.25,) * channels, "cpu")
    ours = augment.TwoViewAugment(size, norm, g)
    ksize = augment.blur_kernel_size(size)

    def view(blur_p, sol_p):
        return v2.Compose([
            v2.RandomResizedCrop(size, antialias=False), v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8), v2.RandomGrayscale(0.2),
            v2.RandomApply([v2.GaussianBlur(ksize, (0.1, 2.0))], p=blur_p),
            v2.RandomSolarize(0.5, p=sol_p), v2.Normalize((0.5,) * channels, (0.25,) * channels),
        ])  # fmt: skip

    v1, v2_ = view(1.0, 0.0), view(0.1, 0.2)

    def loop():
        x = images.float() / 255
        torch.stack([v1(im) for im in x]), torch.stack([v2_(im) for im in x])

    t_ours, t_loop = timed(lambda: ours(images), repeat), timed(loop, max(1, repeat // 2))
    print(
        f"augment {batch}x{channels}x{size}x{size}: batched per-sample {batch / t_ours:8.0f} img/s"
        f" | torchvision v2 per-image loop {batch / t_loop:8.0f} img/s | ratio "
        f"{t_loop / t_ours:5.1f}x"
    )


def bench_training(backbone: str, stem: str, batch: int, size: int, threads: int, steps: int):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build_backbone(backbone, 1, size, stem, 32)
    model = build_method("byol", net)  # the paper's heads: 4096-256, predictor 4096
    opt = LARS(param_groups(model.online, 1e-6), lr=0.1)
    g = torch.Generator().manual_seed(1)
    aug = augment.TwoViewAugment(size, augment.Normalize((0.286,), (0.353,), "cpu"), g)
    images = torch.randint(0, 256, (batch, 1, size, size), dtype=torch.uint8, generator=g)

    def step():
        v1, v2 = aug(images)
        loss, _, out = model.training_loss(v1, v2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.after_step(0, 0.99, out)

    t = timed(step, steps)
    print(
        f"train BYOL {backbone:8s} stem {stem:8s} {size}px batch {batch} threads {threads}: "
        f"{batch / t:7.1f} img/s ({t:.2f} s/step)"
    )
    return batch / t


def bench_probe(threads: int, n: int = 10000, dim: int = 128) -> float:
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(n, dim, dtype=torch.float64, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    t = timed(lambda: fit_softmax(x, y, 10, 1e-3), 2)
    print(f"linear probe fit {n}x{dim}, threads {threads}: {t:.2f} s")
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, no ResNets")
    args = parser.parse_args()
    repeat = 2 if args.quick else 5
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads available")
    bench_augment(256, 1, 28, repeat)
    bench_augment(64, 3, 96, repeat)
    rates = {}
    configs = [("convnet", "auto", 256)]
    if not args.quick:
        configs += [("resnet18", "imagenet", 64), ("resnet18", "small", 32)]
    for backbone, stem, batch in configs:
        for threads in (1, 2):
            rates[(backbone, stem, threads)] = bench_training(
                backbone, stem, batch, 28, threads, 2 if backbone != "convnet" else repeat
            )
    for backbone, stem, _ in configs:
        r1, r2 = rates[(backbone, stem, 1)], rates[(backbone, stem, 2)]
        print(f"threads 2 / 1 for {backbone} ({stem}): {r2 / r1:.2f}x")
    t1, t2 = bench_probe(1), bench_probe(2)
    print(f"probe threads 2 / 1 time ratio: {t2 / t1:.2f}")


if __name__ == "__main__":
    main()
