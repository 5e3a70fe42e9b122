"""Bao 2025's check in training: the L2 (eq. 1) and the cosine BYOL loss below and above eta_c.

    python -m reports.bao_sweep --out DIR [--quick] [--jobs N]

1. A pilot run (one epoch, no weight decay) measures X and X' through the augmentation; the
   collapse map's pencil modes (:mod:`dynamics.collapse_map`) give each mode's threshold
   D eta*_j = D x_j^2 / (4 (x_j + x'_j)) (docs/theory.md (D9) per mode, D = 2 for BYOL); eta_c
   is the largest: above it Tian's L2 flow keeps no mode.
2. Linear-encoder BYOL runs with the options of the collapse check (SGD, momentum 0, constant lr
   and EMA, ``reports.collapse_check.train_command``) at weight decays :data:`FACTORS` x eta_c,
   with ``--loss linear_byol`` (eq. 1) and ``--loss byol`` (the cosine loss of the bridge's rung 4).
3. Each run is measured on the pilot's modes v_j: u_j = ||W v_j||^2 at the end, ||W||_F at the
   end over its start, and the modes alive by two rules: the collapse check's absolute rule
   (u_j >= 1/4 of the smallest non-collapsed L2 fixed point; the L2 loss is not scale-free) and
   the normalised rule of the cosine modes (sqrt(u_j / max_k u_k) >= ALIVE_SHARE, the share of
   the normalised spectrum, :func:`dynamics.models.cosine_modes.mode_survival`).

Predicted: the L2 ODE's count is the closed form (thresholds above the weight decay); the cosine
ODE (docs/theory.md (D16)) has no threshold: weight decay only rescales its time, every mode
stays in the normalised spectrum at any weight decay.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import xarray as xr

from dynamics.collapse_modes import alive_weight, pencil_modes
from dynamics.models.cosine_modes import ALIVE_SHARE
from reports.collapse_check import CheckSize, train_command
from symbolic.common.cli import exit_main, run_command
from symbolic.common.files import write_text
from symbolic.common.provenance import git_revision

#: weight decays of the runs, in units of eta_c (the largest per-mode L2 threshold)
FACTORS = (0.3, 3.0)
LOSSES = ("linear_byol", "byol")
#: default and --quick sizes (8 PCA inputs: every mode's threshold is bracketed by FACTORS)
SIZES = {
    "default": CheckSize(input_dim=8, width=8, epochs=24, pool=4096, measure_every=384),
    "quick": CheckSize(input_dim=8, width=8, epochs=12, pool=2048, measure_every=96),
}


@dataclasses.dataclass
class Outcome:
    """One trained run on the pilot's modes."""

    loss: str
    weight_decay: float
    norm_ratio: float  # ||W||_F at the end over ||W||_F at the start
    alive_absolute: int
    alive_normalised: int
    predicted_l2: int
    predicted_cosine: int


def measure(run: Path, modes, thresholds: np.ndarray, loss: str, wd: float) -> Outcome:
    """The run's final W on the pilot's modes, both rules, beside both predictions."""
    with xr.open_dataset(run / "measurements.nc", engine="netcdf4") as ds:
        w = ds["w"].values
        alpha_p = float(ds["alpha_p_step"].values[-1])
    u = np.sum((w[-1] @ modes.directions.T) ** 2, axis=0)
    absolute = u >= alive_weight(modes, np.asarray(alpha_p))[0]
    normalised = np.sqrt(u / np.max(u)) >= ALIVE_SHARE if np.max(u) > 0 else np.zeros_like(u)
    k = min(w.shape[1], w.shape[2])
    return Outcome(
        loss, wd, float(np.linalg.norm(w[-1]) / np.linalg.norm(w[0])),
        int(absolute.sum()), int(normalised.sum()),
        predicted_l2=int(min(np.sum(thresholds > wd), k)), predicted_cosine=k,
    )  # fmt: skip


def run_sweep(work: Path, size: CheckSize, jobs: int) -> dict:
    """The pilot, then every (loss, weight decay) run under ``work``; every number."""
    start = time.perf_counter()
    pilot = work / "pilot"
    run_command(train_command("pilot", size, 0.0, 0, 1, pilot).argv())
    with xr.open_dataset(pilot / "moments.nc", engine="netcdf4") as m:
        modes = pencil_modes(m["x_corr"].values, m["aug_cov"].values)
    thresholds = 2 * modes.threshold  # D = 2: BYOL sums both directions
    eta_c = float(thresholds.max())
    runs = {
        (loss, round(f * eta_c, 6)): work / f"{loss}_wd{f:g}"
        for loss in LOSSES for f in FACTORS
    }  # fmt: skip
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(
                run_command,
                train_command(out.name, size, wd, 0, size.epochs, out, loss=loss).argv(),
            )
            for (loss, wd), out in runs.items()
        ]
        for future in futures:
            future.result()
    outcomes = [measure(out, modes, thresholds, loss, wd) for (loss, wd), out in runs.items()]
    return {
        "eta_c": eta_c,
        "thresholds": thresholds.tolist(),
        "outcomes": outcomes,
        "wall_seconds": time.perf_counter() - start,
        "size": dataclasses.asdict(size),
    }


def table(result: dict) -> list[str]:
    """The markdown table: weight decay x loss -> alive modes measured and predicted."""
    lines = [
        "| loss | weight decay | wd / eta_c | ‖W‖ end/start | alive (absolute) | "
        "alive (normalised) | L2 ODE | cosine ODE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in result["outcomes"]:
        lines.append(
            f"| {o.loss} | {o.weight_decay:.4g} | {o.weight_decay / result['eta_c']:.2g} | "
            f"{o.norm_ratio:.3g} | {o.alive_absolute} | {o.alive_normalised} | "
            f"{o.predicted_l2} | {o.predicted_cosine} |"
        )
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.bao_sweep", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder of the runs and table")
    parser.add_argument("--quick", action="store_true", help="the small size (tests)")
    parser.add_argument("--jobs", type=int, default=2, help="trainings at once (default 2)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs={args.jobs} is not allowed: an integer >= 1")
    size = SIZES["quick" if args.quick else "default"]
    result = run_sweep(args.out / "runs", size, args.jobs)
    lines = [
        "# Bao 2025: the L2 and the cosine loss below and above eta_c",
        "",
        f"eta_c = {result['eta_c']:.4g} (largest per-mode threshold D eta*_j of the pilot's "
        f"X, X'); sizes {result['size']}; wall {result['wall_seconds']:.0f} s; "
        f"git {git_revision()}.",
        "",
        *table(result),
    ]
    write_text(args.out / "bao_sweep.md", "\n".join(lines) + "\n")
    record = {
        **{k: v for k, v in result.items() if k != "outcomes"},
        "runs": [dataclasses.asdict(o) for o in result["outcomes"]],
        "git_revision": git_revision(),
    }
    write_text(args.out / "provenance.json", json.dumps(record, indent=2) + "\n")
    print("\n".join(table(result)))
    return 0


if __name__ == "__main__":
    exit_main(main, prog="python -m reports.bao_sweep")
