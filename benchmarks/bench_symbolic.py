"""Benchmarks of symbolic (issue 3): derivation time and the cost of the torch losses.

1. ``python -m symbolic.derive all --check`` at N=3, d=2 in a fresh process (budget: 60 s).
2. Each loss of symbolic.losses on torch tensors against a plain hand-written torch loss of the
   same definition, forward + backward, N=256, d=2048 (budget: ratio <= 1.2). The hand-written
   losses are the official-style references of tests/symbolic/symbolic_reference.py, and for the
   three whose test reference loops over samples (linear BYOL, Liu et al., spectral) a vectorised
   version written here. Timings are interleaved, alternating which of the two runs first; the
   ratio of the fastest repetitions (least disturbed by other processes on a shared machine)
   and the ratio of the medians are reported.

Usage: python benchmarks/bench_symbolic.py [--n 256] [--d 2048] [--reps 15] [--device cpu]
       [--threads 1] [--skip-derive]
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "symbolic"))

from symbolic_reference import REFERENCES  # noqa: E402

from symbolic import losses  # noqa: E402


def linear_byol_plain(wp, f1, f2, eta=0.0):
    n = f1.shape[0]
    big1, big2 = f1.T / math.sqrt(n), f2.detach().T / math.sqrt(n)
    loss = 0.5 * (wp @ big1 - big2).pow(2).sum()
    return loss + eta / 2 * (wp.pow(2).sum() + big1.pow(2).sum())


def liu_plain(wp, z1, z2, c_inv=25.0, c_cov=1.0, k=8, standardize=True):
    n, d = z1.shape
    if standardize:
        z1 = (z1 - z1.mean(0)) / z1.std(0)
        z2 = (z2 - z2.mean(0)) / z2.std(0)
    inv = (wp @ z1.T - z2.T).pow(2).sum() / n
    gram = wp.T @ wp
    cov = 0.0
    for part in z1.chunk(k):
        p = part @ wp.T
        cov = cov + (gram - p.T @ p / part.shape[0]).pow(2).sum()
    return c_inv * inv + c_cov / d * cov


def spectral_plain(z1, z2):
    n = z1.shape[0]
    g = z1 @ z2.T
    diag = torch.diagonal(g)
    return -2 * diag.sum() / n + (g.pow(2).sum() - diag.pow(2).sum()) / (n * (n - 1))


BASELINES = {
    **REFERENCES,
    "linear_byol": linear_byol_plain,
    "liu": liu_plain,
    "spectral": spectral_plain,
}


def inputs(loss, n, d, device, generator):
    sizes = {"N": n, "d": d, "K": 4096}
    shapes = [(sizes[r], sizes[c]) for r, c in loss.shapes]
    return [torch.randn(*s, generator=generator).to(device) for s in shapes]


#: shortest measurement: fast losses are timed over as many calls as make it this long
MIN_MEASUREMENT_S = 0.05


def step_time(fn, arrays, device, calls=1):
    """Seconds per forward + backward, averaged over ``calls`` back-to-back calls (a loss of
    about a millisecond is timed over many calls, or scheduler noise decides the ratio)."""
    leaves = [a.clone().requires_grad_(True) for a in arrays]
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn(*leaves).backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / calls


def bench_losses(n, d, reps, device):
    print(
        f"torch losses, forward + backward, N={n}, d={d}, float32, {device}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        f"{'loss':13s} {'hand-written':>13s} {'symbolic':>10s} {'ratio':>7s}"
        f" {'median ratio':>13s}   (times: fastest repetition)"
    )
    generator = torch.Generator().manual_seed(0)
    ratios = {}
    for name in losses.names():
        loss = losses.get(name)
        arrays = inputs(loss, n, d, device, generator)
        baseline = BASELINES[name]
        repeat = max(3, reps // 5) if name == "liu" else reps
        for _ in range(2):  # warm up both
            step_time(loss, arrays, device)
            warm = step_time(baseline, arrays, device)
        calls = max(1, math.ceil(MIN_MEASUREMENT_S / warm))
        mine, theirs = [], []
        for rep in range(repeat):  # alternate which one goes first
            pair = [(theirs, baseline), (mine, loss)][:: 1 if rep % 2 else -1]
            for times, fn in pair:
                times.append(step_time(fn, arrays, device, calls))
        t_ref, t_mine = min(theirs), min(mine)
        ratios[name] = t_mine / t_ref
        median_ratio = statistics.median(mine) / statistics.median(theirs)
        print(
            f"{name:13s} {t_ref * 1e3:11.2f}ms {t_mine * 1e3:8.2f}ms {ratios[name]:7.2f}"
            f" {median_ratio:13.2f}"
        )
    worst = max(ratios, key=ratios.get)
    print(
        f"largest ratio: {ratios[worst]:.2f} ({worst}); budget 1.2: "
        f"{'met' if ratios[worst] <= 1.2 else 'NOT met'}"
    )
    return ratios


def bench_derive():
    cmd = [sys.executable, "-m", "symbolic.derive", "all", "--check", "--n", "3", "--d", "2"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    print(proc.stdout.rstrip())
    status = "OK" if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr.strip()}"
    print(
        f"'{' '.join(cmd[1:])}' in a fresh process: {seconds:.1f} s wall "
        f"(budget 60 s: {'met' if seconds < 60 else 'NOT met'}), {status}"
    )
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--skip-derive", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.skip_derive:
        bench_derive()
        print()
    bench_losses(args.n, args.d, args.reps, torch.device(args.device))


if __name__ == "__main__":
    main()
