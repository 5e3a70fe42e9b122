"""The whole pipeline on a CPU in minutes: ``python -m reports.demo --out report/``.

1. Trains briefly on Fashion-MNIST with ``python -m empirical.train``: BYOL on the linear encoder
   the theory describes (PCA coordinates, no projector, the unnormalised loss of Tian's eq. 1,
   plain SGD at a constant learning rate: the first rung of ``reports.bridge``), then several
   real methods on a small ConvNet (BYOL and SimSiam with a linear predictor, DirectPred,
   Barlow Twins, VICReg).
2. Derives a simulation from every run that a linear-theory scenario predicts
   (``python -m dynamics.simulate SCENARIO --from-run RUN``) and the other-seed null of each
   (``--initial seed``); integrates the eigenmode system at three weight decays for the phase
   portrait.
3. Builds the report from these files with :func:`reports.build.build`.

Everything goes to ``--work`` (default: a ``demo_work`` folder beside ``--out``), which the demo
owns: a rerun replaces it, ``--resume`` continues it. Every option and every command line is
checked before the first step (:mod:`reports.experiments`). Each step runs the real command line
as a subprocess, so the demo exercises exactly what a user runs; the training runs stay on the
CPU in fp32 unless ``--device``/``--precision`` say otherwise.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import xarray as xr
from tqdm import tqdm

from empirical.methods import METHODS
from reports import audit as audit_mod
from reports.build import build, check_out
from reports.experiments import (
    OWNER_FILE,
    Finished,
    Workspace,
    add_runner_options,
    check_range,
)
from reports.experiments import commands as cmd
from reports.experiments import validate as validate_commands
from reports.experiments.commands import Command
from reports.experiments.options import MAX_JOBS, add_device_options, check_device, device_options
from symbolic.common.cli import ArgumentParser, UsageError, exit_main
from symbolic.common.files import check_output_folder

PROG = "python -m reports.demo"
DEFAULT_METHODS = ("byol", "simsiam", "directpred", "barlow_twins", "vicreg")
#: marks a work folder as the demo's own (a rerun may replace it)
WORK_MARKER = OWNER_FILE
#: Options of every ConvNet run: small and fast on 2 CPU cores.
TRAIN_COMMON = (
    "--data", "fashion-mnist", "--backbone", "convnet", "--batch-size", "128",
    "--val-size", "500", "--probe-train", "1000", "--probe-test", "1000", "--eval-size", "500",
    "--proj-hidden", "256", "--proj-dim", "32", "--threads", "1",
)  # fmt: skip
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
        "--pred-hidden",
        "64",
    ),  # fmt: skip
    "simsiam": ("--predictor", "linear", "--weight-decay", "4e-4", "--pred-hidden", "64"),
}
#: The linear-encoder run (the bridge's first rung, shortened): 160 steps of flow time 0.04 and
#: eta = 0.4 / 2, so 2 eta t = 2.56 at the end and every asymptotic prediction is due.
LINEAR_RUN = (
    "byol", "--backbone", "linear", "--input-dim", "16", "--width", "16", "--projector", "none",
    "--predictor", "linear", "--loss", "linear_byol", "--optimizer", "sgd", "--momentum", "0",
    "--lr", "0.02", "--lr-schedule", "constant", "--weight-decay", "0.4", "--ema-base", "0.99",
    "--ema-final", "0.99", "--batch-size", "256", "--measure-every", "10", "--no-probes",
    "--eval-size", "500", "--val-size", "500", "--moments-images", "1000", "--threads", "1",
)  # fmt: skip
#: Eigenmode simulations for the phase portrait: eta below, near and above the collapse
#: threshold 1/(4 (1 + sigma^2)) = 1/6 at sigma^2 = 0.5, tau = 1.
EIGENMODE_ETAS = (0.01, 0.1, 0.2)
EIGENMODE_COMMON = ("--dim", "8", "--p0=-0.05:0.6", "--s0=0.02:0.45", "--t-end", "150")


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Train briefly on the CPU, derive the simulations, build the report.",
    )
    p.add_argument("--out", default="report", help="report folder")
    p.add_argument(
        "--work",
        default=None,
        help="folder for runs and simulations, owned by the demo (default: OUT's sibling "
        "'demo_work')",
    )
    p.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help="comma-separated methods to train on the ConvNet (python -m empirical.train --list)",
    )
    p.add_argument("--epochs", type=int, default=3, help="training epochs per ConvNet method")
    p.add_argument("--train-subset", type=int, default=1536, help="training images per epoch")
    p.add_argument("--audit", default="auto", metavar="auto|none|FILE", help="claims audit")
    p.add_argument("--seed", type=int, default=0, help="seed of every run and simulation")
    add_device_options(p)
    add_runner_options(p, 1, "commands run at once, one thread each")
    return p


def validate(args) -> tuple[Path, Path, DemoRuns]:
    """Check every option and every command line before the first step; returns (out, work,
    the commands)."""
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not args.methods:
        raise UsageError("--methods: give at least one method")
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise UsageError(f"--methods {unknown[0]!r}: unknown; known methods: {', '.join(METHODS)}")
    if args.epochs < 1:
        raise UsageError(f"--epochs {args.epochs} is not allowed: an integer >= 1")
    if args.train_subset < 128:
        raise UsageError(
            f"--train-subset {args.train_subset} is not allowed: an integer >= 128 (one batch)"
        )
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: must be >= 0")
    check_range("--jobs", args.jobs, 1, MAX_JOBS)
    check_device(args.device)
    if args.audit not in ("auto", "none") and not Path(args.audit).is_file():
        raise UsageError(f"--audit {args.audit}: no such file (or give auto or none)")
    out = Path(args.out)
    check_out(out)
    check_output_folder(out)
    work = Path(args.work) if args.work else out.resolve().parent / "demo_work"
    check_output_folder(work, "--work")
    runs = DemoRuns(args, work)
    validate_commands([*runs.first, *runs.possible_derived()])
    workspace(work).check(runs.first, {}, args.resume, fresh="replace")
    return out, work, runs


def workspace(work: Path) -> Workspace:
    """The demo's work folder, locked while it runs."""
    return Workspace(work, PROG, "--work", [(work, "--work")])


class DemoRuns:
    """The demo's commands: the trainings and the eigenmode simulations, then the simulations
    derived from the finished runs (the predictions and the other-seed nulls)."""

    def __init__(self, args, work: Path):
        self.work = work
        self.seed = args.seed
        device = device_options(args.device, args.precision)
        self.trainings = {
            name: cmd.train(f"train_{name}", (*argv, *device), work / "runs" / name)
            for name, argv in train_commands(args).items()
        }
        self.eigenmodes = [
            cmd.simulate(
                f"eigenmodes_eta{eta:g}",
                ("eigenmodes", *EIGENMODE_COMMON, "--eta", f"{eta:g}"),
                work / "results" / f"eigenmodes_eta{eta:g}.nc",
            )
            for eta in EIGENMODE_ETAS
        ]

    @property
    def first(self) -> list[Command]:
        return [*self.trainings.values(), *self.eigenmodes]

    def derived(self, name: str, scenario: str) -> list[Command]:
        """The prediction and the other-seed null of the run ``name`` by ``scenario``."""
        stem = self.work / "results" / f"{name}_{scenario}"
        run = self.trainings[name].output
        return list(cmd.prediction_and_null(stem, scenario, run, self.seed + 1, self.seed + 1))

    def possible_derived(self) -> list[Command]:
        """The derived simulations of every run whose method has a scenario (checked before
        anything runs; which are run depends on what each run records)."""
        return [
            c
            for name, train in self.trainings.items()
            if METHODS[train.args[0]].scenario
            for c in self.derived(name, METHODS[train.args[0]].scenario)
        ]


def train_commands(args) -> dict[str, list[str]]:
    """Each training step's ``python -m empirical.train`` arguments (without ``--out``)."""
    seed = ["--seed", str(args.seed)]
    runs = {"byol_linear_encoder": [*LINEAR_RUN, "--epochs", "8", "--train-subset", "5120", *seed]}
    for method in args.methods:
        runs[method] = [
            method, *TRAIN_COMMON, *TRAIN_EXTRA.get(method, ()),
            "--epochs", str(args.epochs), "--train-subset", str(args.train_subset), *seed,
        ]  # fmt: skip
    return runs


def matched_scenario(run: Path) -> str:
    with xr.open_dataset(run / "measurements.nc") as ds:
        return str(ds.attrs.get("matched_scenario", "none"))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out, work, runs = validate(args)
    with workspace(work) as ws:
        return run_demo(args, argv, out, ws, runs)


def run_demo(args, argv: Sequence[str] | None, out: Path, ws: Workspace, runs: DemoRuns) -> int:
    """The demo's steps into its work folder and the report into ``out`` (options checked)."""
    ws.begin(runs.first, {}, args.resume, fresh="replace")
    timings: list[tuple[str, float]] = []
    start = time.perf_counter()
    quiet = args.quiet or not sys.stderr.isatty()
    with tqdm(
        total=len(runs.first) + 2 * len(runs.trainings) + 1, desc="demo", disable=quiet
    ) as bar:

        def report(f: Finished) -> None:
            timings.append((f.command.name, f.seconds))
            bar.set_postfix_str(f.command.name)
            bar.update(1)

        bar.update(ws.run_stage(runs.first, args.jobs, report))
        derived = []
        for name, train in runs.trainings.items():  # after training: what each run records
            scenario = matched_scenario(train.output)
            if scenario != "none":
                derived += runs.derived(name, scenario)
        bar.update(ws.run_stage(derived, args.jobs, report))
        t0 = time.perf_counter()
        build(
            [str(c.output) for c in [*runs.eigenmodes, *derived]],
            [str(c.output) for c in runs.trainings.values()],
            out,
            audit=args.audit,
            audit_timeout=audit_mod.DEFAULT_TIMEOUT_S,
            command=" ".join([PROG, *(argv or sys.argv[1:])]),
        )
        timings.append(("build report", time.perf_counter() - t0))
        bar.update(1)
    if not args.quiet:
        for name, seconds in timings:
            print(f"  {name:48s} {seconds:7.1f} s")
        print(f"demo finished in {time.perf_counter() - start:.0f} s; report in {out}/")
    return 0


if __name__ == "__main__":
    exit_main(main, prog=PROG)
