"""``python -m reports.reproduce``: train what the papers' claims need, decide each claim.

    python -m reports.reproduce --out report_claims/              # every claim, the CPU scale
    python -m reports.reproduce --claim tian-fig2 --seeds 5 --out report_claims/
    python -m reports.reproduce --list                            # the claims and their tests
    python -m reports.reproduce --quick --out /tmp/claims         # minutes (tests, CI)
    python -m reports.reproduce --scale gpu --out report_gpu/     # ResNet-18 on a CUDA device
    python -m reports.reproduce --out report_claims/ --resume     # continue an interrupted set
    python -m reports.reproduce --out report_claims/ --plan       # the plan and its time only

Every option is checked, every run's command line resolved by ``python -m empirical.train``'s
own parser, and the data checked, before the first run starts; the plan and its estimated time
are printed first, then one line per finished run. The runs are planned by
:mod:`reports.reproduce.plan` and run, resumed and verified by :mod:`reports.experiments` (a
damaged finished run is recomputed); :mod:`reports.reproduce.verdict` says how a verdict is
reached.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from reports.experiments import Finished, Workspace, add_runner_options, check_range, validate
from reports.experiments.options import MAX_JOBS, MAX_SEEDS
from reports.reproduce import outputs
from reports.reproduce.plan import ClaimSet, claim_set, plan_text, refine
from reports.reproduce.registry import EMPIRICAL_CLAIMS, EmpiricalClaim
from reports.reproduce.scale import SCALES, Scale
from reports.reproduce.verdict import MIN_SEEDS
from reports.tables import to_markdown
from symbolic.common.cli import ArgumentParser, UsageError, exit_main
from symbolic.common.files import check_output_folder
from symbolic.common.provenance import git_revision

PROG = "python -m reports.reproduce"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--out", default="report_claims", help="folder of the results and the runs")
    p.add_argument(
        "--claim",
        action="append",
        default=None,
        metavar="ID",
        help="a claim to reproduce (repeat or comma-separate; default: all, see --list)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=3,
        help=f"seeds per configuration ({MIN_SEEDS} to {MAX_SEEDS})",
    )
    p.add_argument(
        "--scale", default="cpu", choices=("cpu", "gpu"), help="sizes: cpu (MLP) or gpu (ResNet-18)"
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes: minutes, for tests and CI")
    p.add_argument("--data", default="fashion-mnist", help="fashion-mnist[:PATH] (the IDX files)")
    p.add_argument("--plan", action="store_true", help="print the plan and its time, run nothing")
    p.add_argument("--list", action="store_true", help="list the claims, their sources and tests")
    add_runner_options(p, None, "runs at a time (default: the scale's, 2 on the CPU)")
    return p


def listing() -> str:
    """The text of ``--list``: each claim, its source and the sentence it tests, its test."""
    blocks = []
    for c in EMPIRICAL_CLAIMS.values():
        blocks.append(
            f'{c.id}\n  {c.title}\n  source: {c.source}\n  tests: "{c.quote}"\n'
            f"  how: {c.describe()}"
        )
    return "\n\n".join(blocks)


def chosen_claims(values: list[str] | None) -> list[EmpiricalClaim]:
    """The claims named by --claim (all when none); UsageError naming an unknown one."""
    if not values:
        return list(EMPIRICAL_CLAIMS.values())
    known = ", ".join(EMPIRICAL_CLAIMS)
    ids = [v.strip() for value in values for v in value.split(",") if v.strip()]
    if not ids:
        raise UsageError(f"--claim {','.join(values)!r}: names no claim; the claims are {known}")
    for claim_id in ids:
        if claim_id not in EMPIRICAL_CLAIMS:
            raise UsageError(f"--claim {claim_id!r}: unknown; the claims are {known}")
    return [EMPIRICAL_CLAIMS[i] for i in dict.fromkeys(ids)]


def chosen_scale(args) -> Scale:
    """The scale; UsageError for --quick with --scale gpu."""
    if args.quick and args.scale == "gpu":
        raise UsageError("--quick and --scale gpu: choose one")
    if args.quick:
        return SCALES["quick"]
    return SCALES[args.scale]


def check_cuda(scale_name: str) -> None:
    """UsageError for --scale gpu without CUDA (checked to train, not to print --plan)."""
    import torch

    if scale_name == "gpu" and not torch.cuda.is_available():
        raise UsageError(
            "--scale gpu: no CUDA device is available on this machine (use --scale cpu)"
        )


def check_data(data: str, scale: Scale) -> None:
    """The data exists and holds the images the scale needs; UsageError otherwise."""
    from empirical.data import load_fashion_mnist, parse_data

    kind, path = parse_data(data)
    if kind != "fashion-mnist":
        raise UsageError(f"--data {data}: the claims are sized for fashion-mnist[:PATH]")
    arrays = load_fashion_mnist(path)
    n_train, n_test = len(arrays["train_labels"]), len(arrays["test_labels"])
    need = scale.val_size + scale.train_subset
    if need > n_train:
        raise UsageError(
            f"--data {data}: {n_train} training images, the {scale.name} scale needs {need}"
        )
    if scale.eval_size > n_test:
        raise UsageError(
            f"--data {data}: {n_test} test images, the {scale.name} scale needs {scale.eval_size}"
        )


def check_out(out: Path) -> None:
    """--out is a writable folder that is empty, or one this command made."""
    check_output_folder(out)
    if out.is_dir() and any(p.name != ".lock" for p in out.iterdir()):
        ours = (out / "work").is_dir() or (out / outputs.RESULT).exists()
        if not ours:
            raise UsageError(f"--out {out}: not empty and not a claims folder; not writing there")


#: what sets the sizes of a set of claims (a resumed set must keep them)
SIZE_OPTIONS = "--scale, --quick"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        print(listing())
        return 0
    claims = chosen_claims(args.claim)
    check_range("--seeds", args.seeds, MIN_SEEDS, MAX_SEEDS, "no verdict from fewer seeds")
    scale = chosen_scale(args)
    jobs = check_range("--jobs", scale.jobs if args.jobs is None else args.jobs, 1, MAX_JOBS)
    out = Path(args.out)
    check_out(out)
    claimed = claim_set(claims, scale, args.seeds, out / "work", args.data)
    commands = claimed.commands
    workspace = Workspace(claimed.work, PROG, "--out", [(out, "--out")])
    settings = {"scale": scale.name}
    resume = args.resume or args.plan  # --plan reads a planned folder as --resume would
    workspace.check(commands, settings, resume, fresh="refuse", options=SIZE_OPTIONS)
    check_data(args.data, scale)
    validate(commands)
    say = (lambda *a, **k: None) if args.quiet else print
    if args.plan:
        pending = [c for c in commands if workspace.state(c)[0] != "done"]
        say(plan_text(claimed, pending, jobs))
        return 0
    check_cuda(args.scale)
    with workspace:
        return run(claimed, workspace, args, jobs, say, argv)


def record_plan(workspace: Workspace, claimed: ClaimSet, resume: bool, command: str) -> None:
    """plan.json of the set: its scale, seeds, claims, the command, every run planned so far
    (again after each round of a refinement, with ``resume``: the earlier runs kept)."""
    workspace.begin(
        claimed.commands,
        {"scale": claimed.scale.name},
        resume,
        fresh="refuse",
        extra={
            "seeds": claimed.seeds,
            "claims": [c.id for c in claimed.claims],
            "command": command,
        },
        options=SIZE_OPTIONS,
    )


def run(claimed: ClaimSet, workspace: Workspace, args, jobs: int, say, argv) -> int:
    """Train what is left of the plan, decide the claims, write the outputs."""
    commands = claimed.commands
    command = " ".join([PROG, *(sys.argv[1:] if argv is None else argv)])
    record_plan(workspace, claimed, args.resume, command)
    states = [(c, *workspace.state(c)) for c in commands]
    pending = [(c, state) for c, state, _ in states if state != "done"]
    say(plan_text(claimed, [c for c, _ in pending], jobs))
    for c, _, why in states:
        if why:
            say(f"{c.name}: {why}")
    start = time.perf_counter()
    estimated = sum(c.estimate for c, _ in pending)
    progress = {"done": 0, "spent": 0.0, "estimated": 0.0, "total": len(pending)}

    def report(f: Finished) -> None:
        progress["done"] += 1
        progress["spent"] += f.seconds
        progress["estimated"] += f.command.estimate
        ratio = progress["spent"] / max(progress["estimated"], 1e-9)
        left = (estimated - progress["estimated"]) * ratio / jobs
        status = "ok" if f.failure is None else f"FAILED ({f.failure})"
        say(
            f"[{progress['done']:3d}/{progress['total']}] {f.command.label}: "
            f"{f.seconds:.0f} s (estimated {f.command.estimate:.0f} s) {status}; "
            f"{(time.perf_counter() - start) / 60:.1f} min elapsed, about {left / 60:.0f} min left",
            flush=True,
        )

    finished = workspace.run(pending, jobs, keep_going=True, report=report)
    while added := refine(claimed, lambda c, i: outputs.measured_for(c, workspace, i)):
        validate(added)  # the next round's command lines, before they start
        record_plan(workspace, claimed, True, command)
        left = [(c, state) for c in added if (state := workspace.state(c)[0]) != "done"]
        say(f"bisection: {len(left)} more runs", flush=True)
        progress["total"] += len(left)
        estimated += sum(c.estimate for c, _ in left)
        finished += workspace.run(left, jobs, keep_going=True, report=report)
    wall = time.perf_counter() - start
    records = outputs.evaluate(claimed, workspace)
    timings = workspace.timings()
    meta = {
        "scale": claimed.scale.name,
        "scale_description": claimed.scale.description,
        "seeds": claimed.seeds,
        "runs": len(claimed.commands),
        "wall_seconds": wall,
        "run_seconds": sum(timings.get(c.name, 0.0) for c in claimed.commands),
        "resumed": bool(args.resume),
        "jobs": jobs,
        "machine": f"{platform.machine()} with {os.cpu_count()} CPU cores",
        "git_revision": git_revision(),
        "command": command,
    }
    outputs.write(Path(args.out), records, meta)
    say(to_markdown(outputs.claims_table(records, len(claimed.seeds))))
    say(f"claims decided in {wall / 60:.1f} min; results in {args.out}/ (claims.md)")
    failed = [f for f in finished if f.failure is not None]
    if failed:
        names = ", ".join(f"{f.command.name} ({f.failure})" for f in failed[:3])
        print(f"{PROG}: {len(failed)} run(s) failed: {names}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    exit_main(main, prog=PROG)
