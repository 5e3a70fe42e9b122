"""The whole pipeline on a CPU in minutes: ``python -m reports.demo --out report/``.

1. Trains several methods briefly on Fashion-MNIST with ``python -m empirical.train`` (small
   ConvNet, a subset of the images, a narrow projector; BYOL and SimSiam with a linear predictor
   and SGD so that the linear theory applies to them; DirectPred with its own SGD settings).
2. Simulates with ``python -m dynamics.simulate``: ``linear_byol`` and ``linear_simsiam`` with the
   BYOL/SimSiam runs' weight decay as eta, their projector width as dimension and their final
   gradient-flow time (sum of learning rates / (1 - momentum)) as end time; and the eigenmode
   system at three weight decays (below, near and above the collapse threshold) started off the
   invariant parabola, for the phase portrait.
3. Builds the report from these files with :func:`reports.build.build`.

Everything goes to ``--work`` (default: a ``demo_work`` folder beside ``--out``); the step
timings are printed at the end. Each step runs the real command line as a subprocess, so the
demo exercises exactly what a user runs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import xarray as xr
from tqdm import tqdm

from reports.build import build
from reports.inputs import momentum_time_scale
from symbolic.common.cli import ArgumentParser, RunFailure, UsageError, run_main
from symbolic.common.results import params_from_attrs

DEFAULT_METHODS = ("byol", "simsiam", "directpred", "barlow_twins", "vicreg")
#: Options of every training run: small and fast on 2 CPU cores.
TRAIN_COMMON = (
    "--data",
    "fashion-mnist",
    "--backbone",
    "convnet",
    "--batch-size",
    "128",
    "--val-size",
    "500",
    "--probe-train",
    "1000",
    "--probe-test",
    "1000",
    "--eval-size",
    "500",
    "--proj-hidden",
    "256",
    "--proj-dim",
    "32",
    "--quiet",
)
#: Per-method options: a linear predictor trained by SGD (Tian et al.'s STL-10 settings: lr 0.06
#: per 256 images, weight decay 4e-4) where the linear theory should apply.
TRAIN_EXTRA = {
    "byol": (
        "--predictor",
        "linear",
        "--optimizer",
        "sgd",
        "--lr",
        "0.06",
        "--weight-decay",
        "4e-4",
    ),
    "simsiam": ("--predictor", "linear", "--weight-decay", "4e-4"),
}
#: Eigenmode simulations for the phase portrait: eta below, near and above the collapse
#: threshold 1/(4 (1 + sigma^2)) = 1/6 at sigma^2 = 0.5, tau = 1.
EIGENMODE_ETAS = (0.01, 0.1, 0.2)
EIGENMODE_COMMON = ("--dim", "8", "--p0=-0.05:0.6", "--s0=0.02:0.45", "--t-end", "150")
#: Simulations matched to these runs.
MATCHED = {"byol": "linear_byol", "simsiam": "linear_simsiam"}


def parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m reports.demo",
        description="Simulate, train several methods briefly on the CPU, and build the report.",
    )
    p.add_argument("--out", default="report", help="report folder")
    p.add_argument(
        "--work",
        default=None,
        help="folder for runs and simulations (default: OUT's sibling 'demo_work')",
    )
    p.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help="comma-separated methods to train (python -m empirical.train --list)",
    )
    p.add_argument("--epochs", type=int, default=3, help="training epochs per method")
    p.add_argument("--train-subset", type=int, default=1536, help="training images per epoch")
    p.add_argument("--audit", default="auto", metavar="auto|none|FILE", help="claims audit")
    p.add_argument("--seed", type=int, default=0, help="seed of every run and simulation")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    return p


def run_step(command: list[str]) -> None:
    """Run one command; its exit status 2 is bad input (exit 2), any other failure exit 1."""
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode == 0:
        return
    last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
    shown = " ".join(command[2:5])
    if proc.returncode == 2:
        raise UsageError(f"`{shown} ...` rejected its input: {last}")
    raise RunFailure(f"`{shown} ...` failed with exit status {proc.returncode}: {last}")


def final_flow_time(run_folder: Path) -> tuple[float, float, int]:
    """(gradient-flow end time, weight decay, projector width) of a finished run."""
    with xr.open_dataset(run_folder / "measurements.nc") as ds:
        params = params_from_attrs(dict(ds.attrs))
        t_end = float(ds["time"].values[-1])
    return t_end * momentum_time_scale(params), float(params["weight_decay"]), params["proj_dim"]


def plan(args, work: Path) -> list[tuple[str, list[str]]]:
    """The training steps (simulations that depend on them are added after they ran)."""
    py = [sys.executable, "-m"]
    steps = []
    for method in args.methods:
        steps.append(
            (
                f"train {method}",
                [
                    *py,
                    "empirical.train",
                    method,
                    *TRAIN_COMMON,
                    *TRAIN_EXTRA.get(method, ()),
                    "--epochs",
                    str(args.epochs),
                    "--train-subset",
                    str(args.train_subset),
                    "--seed",
                    str(args.seed),
                    "--out",
                    str(work / "runs" / method),
                ],
            )
        )
    for eta in EIGENMODE_ETAS:
        steps.append(
            (
                f"simulate eigenmodes eta={eta:g}",
                [
                    *py,
                    "dynamics.simulate",
                    "eigenmodes",
                    *EIGENMODE_COMMON,
                    "--eta",
                    f"{eta:g}",
                    "--seed",
                    str(args.seed),
                    "--quiet",
                    "--out",
                    str(work / "results" / f"eigenmodes_eta{eta:g}.nc"),
                ],
            )
        )
    return steps


def matched_simulation(method: str, work: Path, seed: int) -> tuple[str, list[str]]:
    t_end, wd, dim = final_flow_time(work / "runs" / method)
    scenario = MATCHED[method]
    return (
        f"simulate {scenario}",
        [
            sys.executable,
            "-m",
            "dynamics.simulate",
            scenario,
            "--dim",
            str(dim),
            "--input-dim",
            str(2 * dim),
            "--eta",
            f"{wd:g}",
            "--t-end",
            f"{t_end:.6g}",
            "--seed",
            str(seed),
            "--quiet",
            "--out",
            str(work / "results" / f"{scenario}.nc"),
        ],
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not args.methods:
        raise UsageError("--methods: give at least one method")
    if args.epochs < 1 or args.train_subset < 128:
        raise UsageError("--epochs must be >= 1 and --train-subset >= 128 (one batch)")
    out = Path(args.out)
    work = Path(args.work) if args.work else out.resolve().parent / "demo_work"
    steps = plan(args, work)
    matched = [m for m in args.methods if m in MATCHED]
    timings: list[tuple[str, float]] = []
    start = time.perf_counter()
    quiet = args.quiet or not sys.stderr.isatty()
    with tqdm(total=len(steps) + len(matched) + 1, desc="demo", disable=quiet) as bar:

        def timed(name: str, action) -> None:
            bar.set_postfix_str(name)
            t0 = time.perf_counter()
            action()
            timings.append((name, time.perf_counter() - t0))
            bar.update(1)

        for name, command in steps:
            timed(name, lambda command=command: run_step(command))
        for method in matched:  # after training: they need the runs' flow time
            name, command = matched_simulation(method, work, args.seed)
            timed(name, lambda command=command: run_step(command))
        timed(
            "build report",
            lambda: build(
                [str(work / "results" / f"{MATCHED[m]}.nc") for m in matched]
                + [str(work / "results" / f"eigenmodes_eta{eta:g}.nc") for eta in EIGENMODE_ETAS],
                [str(work / "runs" / m) for m in args.methods],
                out,
                audit=args.audit,
                command=" ".join(["python -m reports.demo", *(argv or sys.argv[1:])]),
            ),
        )
    if not args.quiet:
        for name, seconds in timings:
            print(f"  {name:36s} {seconds:7.1f} s")
        print(f"demo finished in {time.perf_counter() - start:.0f} s; report in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, prog="python -m reports.demo"))
