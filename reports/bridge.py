"""The bridge: real training runs that the ODE must predict, and how far up the ladder it holds.

    python -m reports.bridge --out report_bridge/            # the whole ladder, 3 seeds
    python -m reports.bridge --quick --out report_bridge/    # minutes: small sizes, 2 seeds
    python -m reports.bridge --rungs 1,3b --seeds 3 --jobs 2 --out ...

Each rung is a real training run (``python -m empirical.train``) on Fashion-MNIST, several seeds.
Where the theory is exact or nearly so (a linear encoder on PCA coordinates, rungs 1-3) every run
gets the simulation derived from it (``python -m dynamics.simulate linear_byol|linear_simsiam
--from-run RUN``: its W(0), W_p(0), W_a(0), X and X' measured through its own augmentation, its
eta, alpha_p(t), beta(t) and measurement times) and the other-seed null of it (``--initial
seed``); the statistics of :mod:`reports.compare` then say, against the nulls (the frozen
network, the other seed, and the ablation nulls: the prediction without X', weight decay, EMA
lag, the two-direction clock or the momentum, and with X' wrong by a factor 2), whether the
run follows its prediction and which ingredients it tested; the tolerance is three times
the noise floor, the largest distance over the seeds between a run and its deterministic replay
(:mod:`dynamics.replay`). Where no input-space prediction exists (the MLP and ConvNet encoders,
rungs 5-6) the run is tested on what the theory predicts without X and X': W_p becomes
symmetric and aligns with the eigenvectors of the feature correlation (Tian et al. 2021, Sec. 5
and Theorem 3), against the frozen initial network.

The ladder (all with a linear predictor W_p, no projector, weight decay large enough that the
predicted decay e^{-2 eta t} falls to e^{-4.8} within every constant-lr run, also with
``--quick`` (rung 2's warm-up + cosine schedule reaches half of that flow time): past 2 eta t =
2 ln 10, where the end state of rungs 5-6 (W_p symmetric, aligned with F) is due,
:data:`reports.compare.END_STATE_DECAY`; the table states 2 eta t at the end of each rung):

1. linear encoder, the unnormalised loss of Tian's eq. 1 (``linear_byol``), SGD without
   momentum, constant learning rate, EMA target: the theory's own setting;
2. the same with heavy-ball momentum 0.9 and warm-up + cosine learning rate, predicted by the
   inertial (heavy-ball) flow of :mod:`dynamics.replay` (the first-order flow with the map from
   steps to flow time, :mod:`empirical.flow`, is its momentum-free null);
3. (a) SimSiam, W_a = W; (b) SimSiam without the stop-gradient (Tian Theorem 2: collapse);
4. a deep linear encoder W = W_2 W_1 (two bias-free layers on the PCA coordinates) with Barlow
   Twins' loss at the method rungs' sizes, against the deep-linear flow of its own loss
   (``general`` with ``depth`` 2; its runs are not replayed, so it has the other-seed null and
   a fixed tolerance only);
5. an MLP encoder on the pixels, depth 1 and 2;
6. the small ConvNet, at a quarter of the batch (its steps cost most on a CPU);

and one rung per method on a linear encoder (:mod:`reports.bridge_methods`):
``bt``, ``vicreg``, ``simclr``, ``spectral`` (SimCLR's method with the spectral contrastive
loss), ``liu``, ``byol_cosine`` (BYOL's cosine loss instead of eq. 1: what was rung 4), each
against the ``general`` simulation derived from its run (``python -m dynamics.simulate general
--from-run RUN``: the gradient flow of the run's own loss, the expected minibatch loss at its
batch size over its fixed augmented pairs) and its other-seed null; ``directpred`` and
``directcopy``, whose W_p is set from the features and not trained by the loss, have no
prediction (``--from-run`` refuses them; the row states its reason).

For rung 1 the error is also measured against the learning rate and the batch size at a fixed
flow time, and power laws error ~ lr^a, error ~ batch^b are fitted (finite steps and minibatch
noise are what the flow leaves out).

``--rungs collapse`` (not part of "all") adds the collapse map checked by training
(:mod:`reports.collapse_check`), written to OUT/collapse/, its runs under WORK/collapse/ on the
same runner (markers, ``--resume``); ``--rungs collapse_mlp`` the same question for an MLP encoder
from its feature-space moments (:mod:`reports.collapse_mlp`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from reports.bridge_results import (
    collect,
    collect_scaling,
    ladder_table,
    scaling_text,
    write_report,
)
from reports.collapse_check import COLLAPSE
from reports.collapse_mlp import COLLAPSE_MLP
from reports.experiments import Workspace, add_runner_options, check_range, validate
from reports.experiments import commands as cmd
from reports.experiments.commands import Command
from reports.experiments.options import (
    MAX_JOBS,
    MAX_SEEDS,
    add_device_options,
    check_device,
    device_options,
)
from reports.tables import to_markdown
from symbolic.common.cli import ArgumentParser, UsageError, exit_main
from symbolic.common.files import check_output_folder

PROG = "python -m reports.bridge"
#: options of every bridge run: no projector, SGD, no probes (a trained predictor is linear:
#: :data:`LINEAR_PREDICTOR` in the rung's options)
COMMON = (
    "--projector", "none", "--optimizer", "sgd", "--no-probes",
    "--threads", "1", "--val-size", "1000", "--eval-size", "2000",
)  # fmt: skip
LINEAR_PREDICTOR = ("--predictor", "linear")
#: the method rungs (one per method, linear encoder, :func:`method_rungs`)
METHOD_RUNGS = ("bt", "vicreg", "simclr", "spectral", "liu", "byol_cosine", "directpred",
                "directcopy")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Size:
    """How large the runs are: steps, batch, learning rate, weight decay, input dimension."""

    steps: int
    batch: int
    lr: float
    weight_decay: float
    input_dim: int
    width: int
    measure_every: int
    pool: int  # training images of every run, and the images of its moments X, X'
    seeds: int
    scaling_seeds: int
    eval_size: int
    pairs: int = 1024  # the augmented pairs of a method rung's prediction (its --pairs)
    quick: bool = False  # the --quick sizes (a field: ``python -m`` makes a second Size class)


FULL = Size(
    steps=2400,
    batch=256,
    lr=0.01,
    weight_decay=0.1,
    input_dim=32,
    width=32,
    measure_every=100,
    pool=8192,
    seeds=3,
    scaling_seeds=2,
    eval_size=2000,
)
QUICK = dataclasses.replace(
    FULL,
    steps=300,
    batch=128,
    weight_decay=0.8,
    input_dim=8,
    width=8,
    measure_every=25,
    pool=1024,
    seeds=2,
    scaling_seeds=1,
    eval_size=500,
    quick=True,
)


@dataclasses.dataclass(frozen=True)
class Rung:
    """One rung of the ladder: the run, and what the theory predicts for it."""

    key: str
    title: str
    method: str
    options: tuple[str, ...]
    scenario: str | None  # the simulation derived from the run, None: feature space only
    expect: str
    lr_factor: float = 1.0  # of the size's learning rate (momentum 0.9 moves 10x further)
    batch_factor: float = 1.0  # of the size's batch (the ConvNet: a quarter, for its cost)
    size: Size | None = None  # its own sizes (the method rungs: method_size), None: the ladder's
    refused: bool = False  # --from-run refuses its runs: its row states the refusal's reason


def linear_encoder(size: Size) -> tuple[str, ...]:
    """The options of a linear encoder on ``size.input_dim`` PCA coordinates, its moments and
    its ``size.pairs`` fixed augmented pairs drawn from the ``size.pool`` training images."""
    lin = ("--backbone", "linear", "--input-dim", str(size.input_dim), "--width", str(size.width))
    return (*lin, "--moments-images", str(size.pool), "--pairs", str(size.pairs))


def ladder(size: Size) -> list[Rung]:
    """The rungs at ``size`` (see the module docstring)."""
    from reports.bridge_methods import deep_linear_rung, method_rungs  # built from this module

    lin = (*linear_encoder(size), *LINEAR_PREDICTOR)
    l2 = ("--loss", "linear_byol")
    plain = ("--momentum", "0", "--lr-schedule", "constant")
    ema = ("--ema-base", "0.99", "--ema-final", "0.99")
    mlp = (*LINEAR_PREDICTOR, *l2, *plain, *ema)
    heavy = ("--momentum", "0.9", "--lr-schedule", "cosine", "--warmup-epochs", "0.5")
    simsiam = ("--no-fix-pred-lr",)
    return [
        Rung(
            "1",
            "linear encoder, eq. 1 loss, SGD, constant lr",
            "byol",
            (*lin, *l2, *plain, *ema),
            "linear_byol",
            "exact flow",
        ),
        Rung(
            "2",
            "+ momentum 0.9, warm-up + cosine lr",
            "byol",
            (*lin, *l2, *heavy, *ema),
            "linear_byol",
            "inertial (heavy-ball) flow",
            0.1,
        ),
        Rung(
            "3a",
            "SimSiam (W_a = W)",
            "simsiam",
            (*lin, *l2, *plain, *simsiam),
            "linear_simsiam",
            "exact flow",
        ),
        Rung(
            "3b",
            "SimSiam without stop-gradient",
            "simsiam",
            (*lin, *l2, *plain, *simsiam, "--loss-param", "stop_gradient=false"),
            "linear_simsiam",
            "collapse (Tian Theorem 2)",
        ),
        deep_linear_rung(size),
        Rung(
            "5a",
            "MLP encoder, depth 1",
            "byol",
            ("--backbone", "mlp", "--depth", "1", "--width", "64", *mlp),
            None,
            "feature space: W_p symmetric, aligned with F",
        ),
        Rung(
            "5b",
            "MLP encoder, depth 2",
            "byol",
            ("--backbone", "mlp", "--depth", "2", "--width", "64", *mlp),
            None,
            "feature space: W_p symmetric, aligned with F",
        ),
        Rung(
            "6",
            "ConvNet encoder (a quarter of the batch)",
            "byol",
            ("--backbone", "convnet", "--width", "8", *LINEAR_PREDICTOR, *l2, *plain, *ema),
            None,
            "feature space: W_p symmetric, aligned with F",
            batch_factor=0.25,
        ),
        *method_rungs(size),
    ]


#: checkpoints of a training run, about: its epochs are short (8 steps of a method rung); with
#: a checkpoint after every epoch and ``measurements.nc`` after every one that measured, a
#: full-size Barlow Twins run took 24.5 / 20.4 s, with 4 checkpoints 18.5 / 17.3 s (idle, 2
#: repeats, the same measurements; 2026-12-07, on that day's first, slower machine)
CHECKPOINTS = 4


def schedule(steps: int, batch: int, pool: int) -> tuple[str, ...]:
    """--epochs and --train-subset: ``steps`` optimiser steps (at least) at ``batch`` over the
    first ``pool`` training images (the images X and X' are measured on: the run's population
    is then exactly the one its simulation integrates); :data:`CHECKPOINTS` checkpoints."""
    per_epoch = max(1, pool // batch)
    epochs = -(-steps // per_epoch)
    every = max(1, epochs // CHECKPOINTS)
    return ("--epochs", str(epochs), "--train-subset", str(pool), "--checkpoint-every", str(every))


@dataclasses.dataclass
class LadderRuns:
    """Every command of the bridge (the trainings, then the simulations derived from them) with
    the files they write."""

    trainings: list[Command] = dataclasses.field(default_factory=list)
    simulations: list[Command] = dataclasses.field(default_factory=list)
    runs: dict[tuple[str, int], Path] = dataclasses.field(default_factory=dict)
    predictions: dict[tuple[str, int], tuple[Path, Path]] = dataclasses.field(default_factory=dict)
    scaling: dict[tuple[str, float, int], Path] = dataclasses.field(default_factory=dict)


def train_command(
    name: str,
    rung: Rung,
    size: Size,
    schedule_of: tuple[int, int, float, int],
    seed: int,
    out: Path,
    device: tuple[str, ...],
) -> Command:
    """``python -m empirical.train`` of ``rung`` for (steps, batch, lr, measure_every)."""
    steps, batch, lr, measure = schedule_of
    args = (
        rung.method, *COMMON, *rung.options, *schedule(steps, batch, size.pool),
        "--eval-size", str(size.eval_size), "--batch-size", str(batch),
        "--lr", str(lr * 256 / batch),  # the base lr per 256 images whose peak at this batch is lr
        "--weight-decay", str(size.weight_decay), "--measure-every", str(measure),
        "--seed", str(seed), *device,
    )  # fmt: skip
    return cmd.train(name, args, out)


def plan(
    rungs: Sequence[Rung],
    size: Size,
    seeds: int,
    scaling: bool,
    work: Path,
    device: tuple[str, ...] = device_options(),
) -> LadderRuns:
    """The commands: every rung for every seed, its prediction and null; the scaling runs."""
    p = LadderRuns()
    for rung in rungs:
        own = rung.size or size
        for seed in range(seeds):
            name = f"rung{rung.key}_seed{seed}"
            out = work / "runs" / name
            batch = round(own.batch * rung.batch_factor)
            knobs = (own.steps, batch, own.lr * rung.lr_factor, own.measure_every)
            p.trainings.append(train_command(name, rung, own, knobs, seed, out, device))
            p.runs[rung.key, seed] = out
            if rung.scenario is None:
                continue
            stem = work / "predictions" / name
            pair = cmd.prediction_and_null(stem, rung.scenario, out, seed, 1000 + seed)
            p.simulations += pair
            p.predictions[rung.key, seed] = (pair[0].output, pair[1].output)
    if scaling:
        first = rungs[0] if rungs and rungs[0].key == "1" else ladder(size)[0]
        add_scaling(p, first, size, work, device)
    return p


#: rung 1 at a fixed flow time, against the learning rate (at the default batch) and the batch
#: (at the default learning rate): the lr values span a decade
LR_FACTORS = (0.2, 0.63, 2.0)
BATCH_FACTORS = (0.25, 1.0, 4.0)


def add_scaling(p: LadderRuns, rung: Rung, size: Size, work: Path, device: tuple[str, ...]) -> None:
    flow_time = 2 * size.lr * size.steps / 2  # half of rung 1's flow time (BYOL: 2 lr a step)
    variants = [("lr", size.lr * f, size.batch) for f in LR_FACTORS]
    variants += [("batch", size.lr, int(size.batch * f)) for f in BATCH_FACTORS]
    for kind, lr, batch in variants:
        steps = max(20, round(flow_time / (2 * lr)))
        value = lr if kind == "lr" else batch
        for seed in range(size.scaling_seeds):
            name = f"{kind}{value:g}_seed{seed}"
            out = work / "scaling" / name
            knobs = (steps, batch, lr, max(1, steps // 10))
            p.trainings.append(train_command(name, rung, size, knobs, seed, out, device))
            pred = out.with_name(out.name + "_pred.nc")
            p.simulations.append(cmd.derived(f"{name}_pred", rung.scenario, out, "run", seed, pred))
            p.scaling[kind, value, seed] = pred


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--out", default="report_bridge", help="folder of the bridge report")
    p.add_argument("--work", default=None, help="runs and simulations (default: OUT/work)")
    p.add_argument(
        "--rungs",
        default="all",
        help="comma-separated rungs (1,2,3a,3b,4,5a,5b,6, the method rungs "
        + ",".join(METHOD_RUNGS)
        + ", collapse, collapse_mlp)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        help=f"seeds per rung, 2 to {MAX_SEEDS} (default 3; quick 2)",
    )
    p.add_argument("--quick", action="store_true", help="small sizes for tests and CI (minutes)")
    p.add_argument("--no-scaling", action="store_true", help="skip the lr / batch study")
    add_device_options(p)
    add_runner_options(
        p, os.cpu_count() or 1, "commands run at once, one thread each (default: the CPU count)"
    )
    return p


def chosen_rungs(value: str, everything: list[Rung]) -> tuple[list[Rung], list[str]]:
    """The ladder's rungs named by --rungs ("all": the whole ladder) and the collapse rungs named
    (collapse, collapse_mlp); UsageError naming an unknown one."""
    known = [r.key for r in everything]
    chosen = known if value == "all" else [k.strip() for k in value.split(",")]
    bad = [k for k in chosen if k not in (*known, COLLAPSE, COLLAPSE_MLP)]
    if bad:
        raise UsageError(
            f"--rungs {bad[0]!r}: unknown; the rungs are {', '.join(known)}, {COLLAPSE}, "
            f"{COLLAPSE_MLP}"
        )
    extra = [k for k in (COLLAPSE, COLLAPSE_MLP) if k in chosen]
    return [r for r in everything if r.key in chosen], extra


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    size = QUICK if args.quick else FULL
    seeds = size.seeds if args.seeds is None else args.seeds
    check_range("--seeds", seeds, 2, MAX_SEEDS, "no verdict from one seed")
    check_range("--jobs", args.jobs, 1, MAX_JOBS)
    rungs, collapse = chosen_rungs(args.rungs, ladder(size))
    out = check_output_folder(Path(args.out))
    work = Path(args.work) if args.work else out / "work"
    check_output_folder(work, "--work")
    check_device(args.device)
    device = device_options(args.device, args.precision)
    runs = plan(rungs, size, seeds, not args.no_scaling, work, device) if rungs else LadderRuns()
    validate([*runs.trainings, *runs.simulations])  # before anything runs
    workspace = Workspace(work, PROG, "--work", [(out, "--out"), (work, "--work")])
    settings = {"sizes": "quick" if args.quick else "full"}
    everything = [*runs.trainings, *runs.simulations]
    workspace.check(everything, settings, args.resume, "replace", options="--quick")
    with workspace:
        workspace.begin(everything, settings, args.resume, "replace", options="--quick")
        for name in collapse:  # the collapse map checked by training, on the same runner
            from reports.collapse_check import write_rung
            from reports.collapse_mlp import write_mlp_rung

            write = write_rung if name == COLLAPSE else write_mlp_rung
            write(out / name, workspace, work / name, seeds, args.jobs, settings, args.quiet)
        if collapse and not rungs:
            return 0
        start = time.perf_counter()
        execute(workspace, runs, args)
        summaries = collect(rungs, runs, seeds, args.jobs)
        scaling = collect_scaling(runs)
        wall = time.perf_counter() - start
        write_report(out, summaries, scaling, seeds, dataclasses.asdict(size), wall, args.quick)
    if not args.quiet:
        print(to_markdown(ladder_table(summaries, seeds, args.quick)))
        for s in scaling:
            print(scaling_text(s))
        print(f"bridge finished in {wall:.0f} s; report in {out}/report/")
    return 0


def execute(workspace: Workspace, runs: LadderRuns, args) -> None:
    """Every training, then every simulation derived from them, ``--jobs`` at a time (what
    finished in an earlier session kept on ``--resume``); RunFailure on the first failure."""
    quiet = args.quiet or not sys.stderr.isatty()
    total = len(runs.trainings) + len(runs.simulations)
    with tqdm(total=total, desc="bridge", disable=quiet) as bar:
        for stage in (runs.trainings, runs.simulations):
            bar.update(workspace.run_stage(stage, args.jobs, lambda finished: bar.update(1)))


if __name__ == "__main__":
    exit_main(main, prog=PROG)
