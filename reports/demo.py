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
owns: a rerun replaces it. Every option is checked before the first step. Each step runs the real
command line as a subprocess, so the demo exercises exactly what a user runs.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import xarray as xr
from tqdm import tqdm

from empirical.methods import METHODS
from reports import audit as audit_mod
from reports.build import build, check_out
from symbolic.common.cli import ArgumentParser, UsageError, run_command, run_main
from symbolic.common.files import check_output_folder
from symbolic.common.lock import exclusive

DEFAULT_METHODS = ("byol", "simsiam", "directpred", "barlow_twins", "vicreg")
#: marks a work folder as the demo's own (a rerun may replace it)
WORK_MARKER = ".reports-demo"
#: Options of every ConvNet run: small and fast on 2 CPU cores.
TRAIN_COMMON = (
    "--data", "fashion-mnist", "--backbone", "convnet", "--batch-size", "128",
    "--val-size", "500", "--probe-train", "1000", "--probe-test", "1000", "--eval-size", "500",
    "--proj-hidden", "256", "--proj-dim", "32", "--threads", "1", "--quiet",
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
    "--quiet",
)  # fmt: skip
#: Eigenmode simulations for the phase portrait: eta below, near and above the collapse
#: threshold 1/(4 (1 + sigma^2)) = 1/6 at sigma^2 = 0.5, tau = 1.
EIGENMODE_ETAS = (0.01, 0.1, 0.2)
EIGENMODE_COMMON = ("--dim", "8", "--p0=-0.05:0.6", "--s0=0.02:0.45", "--t-end", "150")


def parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="python -m reports.demo",
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
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    return p


def validate(args) -> tuple[Path, Path]:
    """Check every option before the first step; returns (out, work)."""
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
    if args.audit not in ("auto", "none") and not Path(args.audit).is_file():
        raise UsageError(f"--audit {args.audit}: no such file (or give auto or none)")
    for name, command in train_commands(args).items():
        check_train(name, command)
    out = Path(args.out)
    check_out(out)
    check_output_folder(out)
    work = Path(args.work) if args.work else out.resolve().parent / "demo_work"
    check_output_folder(work, "--work")
    if work.exists() and any(work.iterdir()) and not (work / WORK_MARKER).exists():
        raise UsageError(f"--work {work}: not empty and not a demo work folder; not replacing")
    return out, work


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


def check_train(name: str, command: list[str]) -> None:
    """The options of one training step, checked as ``python -m empirical.train`` checks them
    (every bound of its options), so that a bad one stops the demo before its first step."""
    from empirical.train import build_parser as train_parser
    from empirical.train import configuration

    message = io.StringIO()
    try:
        with contextlib.redirect_stderr(message):
            parsed = train_parser().parse_args(command)
        configuration(parsed)
    except SystemExit:
        reason = (message.getvalue().strip().splitlines() or ["bad options"])[-1]
        raise UsageError(f"training step {name}: {reason}") from None
    except UsageError as err:
        raise UsageError(f"training step {name}: {err}") from None


def matched_scenario(run: Path) -> str:
    with xr.open_dataset(run / "measurements.nc") as ds:
        return str(ds.attrs.get("matched_scenario", "none"))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    out, work = validate(args)
    with exclusive(work, folder=False, what="--work"):  # one demo at a time in a work folder
        return run_demo(args, argv, out, work)


def run_demo(args, argv: Sequence[str] | None, out: Path, work: Path) -> int:
    """The demo's steps into ``work`` and the report into ``out`` (options already checked)."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / WORK_MARKER).write_text("python -m reports.demo owns this folder\n")
    py = [sys.executable, "-m"]
    runs = {name: [*py, "empirical.train", *argv] for name, argv in train_commands(args).items()}
    sims = []
    steps: list[tuple[str, object]] = []
    for name, command in runs.items():
        steps.append((f"train {name}", [*command, "--out", str(work / "runs" / name)]))
    for eta in EIGENMODE_ETAS:
        target = work / "results" / f"eigenmodes_eta{eta:g}.nc"
        sims.append(target)
        command = [
            *py, "dynamics.simulate", "eigenmodes", *EIGENMODE_COMMON, "--eta", f"{eta:g}",
            "--quiet", "--out", str(target),
        ]  # fmt: skip
        steps.append((f"simulate eigenmodes eta={eta:g}", command))
    timings: list[tuple[str, float]] = []
    start = time.perf_counter()
    quiet = args.quiet or not sys.stderr.isatty()
    with tqdm(total=len(steps) + 2 * len(runs) + 1, desc="demo", disable=quiet) as bar:

        def timed(name: str, action) -> None:
            bar.set_postfix_str(name)
            t0 = time.perf_counter()
            action()
            timings.append((name, time.perf_counter() - t0))
            bar.update(1)

        for name, command in steps:
            timed(name, lambda command=command: run_command(command))
        for name in runs:  # after training: a simulation is derived from a finished run
            folder = work / "runs" / name
            scenario = matched_scenario(folder)
            if scenario == "none":
                continue
            for initial, suffix in (("run", ""), ("seed", "_null")):
                target = work / "results" / f"{name}_{scenario}{suffix}.nc"
                sims.append(target)
                command = [*py, "dynamics.simulate", scenario, "--from-run", str(folder),
                           "--initial", initial, "--seed", str(args.seed + 1), "--quiet",
                           "--out", str(target)]  # fmt: skip
                timed(f"simulate {scenario} from {name} ({initial})",
                      lambda command=command: run_command(command))  # fmt: skip
        timed(
            "build report",
            lambda: build(
                [str(p) for p in sims],
                [str(work / "runs" / m) for m in runs],
                out,
                audit=args.audit,
                audit_timeout=audit_mod.DEFAULT_TIMEOUT_S,
                command=" ".join(["python -m reports.demo", *(argv or sys.argv[1:])]),
            ),
        )
    if not args.quiet:
        for name, seconds in timings:
            print(f"  {name:48s} {seconds:7.1f} s")
        print(f"demo finished in {time.perf_counter() - start:.0f} s; report in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, prog="python -m reports.demo"))
