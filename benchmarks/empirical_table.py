"""Evidence table: every method trained on the same budget, against the random-encoder baseline.

    python benchmarks/empirical_table.py --run --out runs/evidence [--epochs 6 ...]
    python benchmarks/empirical_table.py --out runs/evidence          # table of existing runs

``--run`` trains each method one after another (``python -m empirical.train METHOD`` under
``nice -n 10``) with one shared budget (the options below; the same ConvNet and the same head
widths for every method, each method's own loss hyperparameters and optimiser), then reads every
``OUT/METHOD/measurements.nc`` and prints a Markdown table (also written to ``OUT/table.md``):
kNN and linear-probe accuracy (final, and the random encoder of epoch 0), ||Sigma - I||_F^2 / d of
projector outputs in both conventions (Pearson correlation; uncentred second moment), effective
rank and z_std, and for the linear-predictor methods the W_p asymmetry, the mean eigen-alignment
cos(W_p u_j, u_j) over the modes holding 99% of the trace of F1 F1^T, and the commutator norm.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

METHODS = [
    ("byol", []),
    ("byol_linear", ["--predictor", "linear"]),
    ("simsiam", []),
    ("barlow_twins", []),
    ("vicreg", []),
    ("simclr", []),
    ("moco_v2", []),
    ("directpred", ["--eps-convention", "code"]),
    ("directpred_paper", ["--eps-convention", "paper"]),
    ("directcopy", []),
    ("liu", []),
]


def budget_args(args) -> list[str]:
    return [
        "--data",
        args.data,
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--train-subset",
        str(args.train_subset),
        "--backbone",
        "convnet",
        "--width",
        str(args.width),
        "--proj-hidden",
        str(args.proj_hidden),
        "--proj-dim",
        str(args.proj_dim),
        "--pred-hidden",
        str(args.proj_hidden),
        "--val-size",
        str(args.val_size),
        "--probe-train",
        str(args.probe_train),
        "--probe-test",
        str(args.probe_test),
        "--eval-size",
        str(args.eval_size),
        "--queue-size",
        str(args.queue_size),
        "--seed",
        str(args.seed),
        "--quiet",
    ]


def run_all(args) -> None:
    for label, extra in METHODS:
        out = args.out / label
        if (out / "measurements.nc").exists():
            print(f"{label}: already done, skipped", flush=True)
            continue
        method = label.split("_linear")[0].split("_paper")[0]
        cmd = [
            "env",
            f"OMP_NUM_THREADS={args.threads}",
            "nice",
            "-n",
            "10",
            sys.executable,
            "-m",
            "empirical.train",
            method,
            "--out",
            str(out),
            *budget_args(args),
            *extra,
        ]
        print("$ " + " ".join(cmd), flush=True)
        start = time.perf_counter()
        res = subprocess.run(cmd)
        print(f"{label}: exit {res.returncode}, {time.perf_counter() - start:.0f} s", flush=True)


def mean_alignment(ds: xr.Dataset) -> float:
    """Mean cos(W_p u_j, u_j) over the leading modes that hold 99% of trace(F1 F1^T)."""
    eig = np.abs(ds["corr_eig"].values[-1])
    keep = np.cumsum(eig) / eig.sum() <= 0.99
    keep[0] = True
    return float(np.mean(ds["alignment_cos"].values[-1][keep]))


def row(label: str, ds: xr.Dataset) -> list[str]:
    last = {v: ds[v].values[-1] for v in ds.data_vars if ds[v].dims[:1] == ("epoch",)}
    first = {v: ds[v].values[0] for v in ds.data_vars if ds[v].dims[:1] == ("epoch",)}
    cells = [
        label,
        f"{int(ds['epoch'].values[-1])} / {int(ds['step_at_epoch_end'].values[-1])}",
        f"{last['knn_acc']:.3f} ({first['knn_acc']:.3f})",
        f"{last['linear_acc']:.3f} ({first['linear_acc']:.3f})",
        f"{last['sigma_dist_pearson_per_dim']:.3f} ({first['sigma_dist_pearson_per_dim']:.3f})",
        f"{last['sigma_dist_moment_per_dim']:.3g} ({first['sigma_dist_moment_per_dim']:.3g})",
        f"{last['effective_rank']:.1f}",
        f"{last['z_std']:.3f}",
    ]
    if "wp_asymmetry" in ds:
        cells += [
            f"{last['wp_asymmetry']:.3f} ({first['wp_asymmetry']:.3f})",
            f"{mean_alignment(ds):.3f}",
            f"{last['commutator_norm']:.3f}",
        ]
    else:
        cells += ["-", "-", "-"]
    cells.append(f"{np.mean(ds['throughput'].values[1:]):.0f}")
    return cells


def table(out: Path) -> str:
    header = [
        "method",
        "epochs / steps",
        "kNN acc (random)",
        "linear acc (random)",
        "‖Σ−I‖²/d Pearson (random)",
        "‖Σ−I‖²/d moment (random)",
        "eff. rank",
        "z_std",
        "W_p asym. (init)",
        "W_p align.",
        "‖[F,W_p]‖ rel.",
        "img/s",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    commands = []
    for label, _ in METHODS:
        path = out / label / "measurements.nc"
        if not path.exists():
            lines.append(f"| {label} | not run |" + " |" * (len(header) - 2))
            continue
        ds = xr.open_dataset(path)
        lines.append("| " + " | ".join(row(label, ds)) + " |")
        commands.append(f"    {ds.attrs['command']}")
    return "\n".join(lines) + "\n\nCommands:\n" + "\n".join(commands) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--out", type=Path, default=Path("runs/evidence"))
    p.add_argument("--run", action="store_true", help="train the methods first")
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--train-subset", type=int, default=10000)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--proj-hidden", type=int, default=512)
    p.add_argument("--proj-dim", type=int, default=128)
    p.add_argument("--val-size", type=int, default=2000)
    p.add_argument("--probe-train", type=int, default=5000)
    p.add_argument("--probe-test", type=int, default=5000)
    p.add_argument("--eval-size", type=int, default=2000)
    p.add_argument("--queue-size", type=int, default=4096)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OMP threads per run (1: on a shared 2-core machine two threads were "
        "measured 2.7x slower, 83 against 220 img/s)",
    )
    args = p.parse_args()
    if args.run:
        run_all(args)
    text = table(args.out)
    print(text)
    (args.out / "table.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
