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
are printed first, then one line per finished run. See :mod:`reports.reproduce.runner` for the
plan, resume and execution, :mod:`reports.reproduce.verdict` for how a verdict is reached.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from reports.reproduce import outputs, runner
from reports.reproduce.registry import CLAIMS, Claim
from reports.reproduce.scale import SCALES, Scale
from reports.reproduce.verdict import MIN_SEEDS
from reports.tables import to_markdown
from symbolic.common.cli import ArgumentParser, UsageError, run_main
from symbolic.common.files import check_output_folder
from symbolic.common.lock import exclusive
from symbolic.common.provenance import git_revision

PROG = "python -m reports.reproduce"


def parser() -> ArgumentParser:
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
        "--seeds", type=int, default=3, help=f"seeds per configuration (at least {MIN_SEEDS})"
    )
    p.add_argument(
        "--scale", default="cpu", choices=("cpu", "gpu"), help="sizes: cpu (MLP) or gpu (ResNet-18)"
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes: minutes, for tests and CI")
    p.add_argument(
        "--jobs", type=int, default=None, help="runs at a time (default: the scale's, 2 on the CPU)"
    )
    p.add_argument("--data", default="fashion-mnist", help="fashion-mnist[:PATH] (the IDX files)")
    p.add_argument("--resume", action="store_true", help="continue the set of claims in --out")
    p.add_argument("--plan", action="store_true", help="print the plan and its time, run nothing")
    p.add_argument("--list", action="store_true", help="list the claims, their sources and tests")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    return p


def listing() -> str:
    """The text of ``--list``: each claim, its source and the sentence it tests, its test."""
    blocks = []
    for c in CLAIMS.values():
        blocks.append(
            f'{c.id}\n  {c.title}\n  source: {c.source}\n  tests: "{c.quote}"\n'
            f"  how: {c.describe()}"
        )
    return "\n\n".join(blocks)


def chosen_claims(values: list[str] | None) -> list[Claim]:
    """The claims named by --claim (all when none); UsageError naming an unknown one."""
    if not values:
        return list(CLAIMS.values())
    ids = [v.strip() for value in values for v in value.split(",") if v.strip()]
    for claim_id in ids:
        if claim_id not in CLAIMS:
            raise UsageError(f"--claim {claim_id!r}: unknown; the claims are {', '.join(CLAIMS)}")
    return [CLAIMS[i] for i in dict.fromkeys(ids)]


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
    if out.is_dir() and any(out.iterdir()):
        ours = (out / "work" / runner.PLAN).exists() or (out / outputs.RESULT).exists()
        if not ours:
            raise UsageError(f"--out {out}: not empty and not a claims folder; not writing there")


def plan_text(plan: runner.Plan, pending: list[runner.Job], jobs: int) -> str:
    """The plan: every configuration, its runs left, their estimated time, and the total."""
    users: dict[str, list[str]] = {}
    for claim_id, experiment in plan.experiments.items():
        for spec in experiment.runs.values():
            users.setdefault(spec.key, []).append(claim_id)
    left = {j.name for j in pending}
    lines = [
        f"plan: {len(plan.claims)} claims, scale {plan.scale.name} ({plan.scale.description}), "
        f"{len(plan.seeds)} seeds",
        f"  {'configuration':44s} {'method':13s} {'steps':>6s} {'runs left':>9s} "
        f"{'s/run':>6s}  claims",
    ]
    seen = set()
    for job in plan.jobs:
        if job.spec.key in seen:
            continue
        seen.add(job.spec.key)
        n = sum(1 for j in plan.jobs if j.spec.key == job.spec.key and j.name in left)
        lines.append(
            f"  {job.spec.label[:44]:44s} {job.spec.method:13s} {job.spec.steps:6d} {n:9d} "
            f"{job.estimate:6.0f}  {', '.join(dict.fromkeys(users[job.spec.key]))}"
        )
    total = runner.makespan([j.estimate for j in pending], jobs)
    lines.append(
        f"{len(pending)} of {len(plan.jobs)} runs to train, {jobs} at a time: estimated "
        f"{total / 60:.0f} min on an idle machine (cost model of the scale; other work on the "
        "machine slows it)"
    )
    extra, seconds = runner.refine_estimate(plan, jobs)
    if extra:
        lines.append(
            f"then up to {extra} runs of bisection, round by round: up to {seconds / 60:.0f} min"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.list:
        print(listing())
        return 0
    claims = chosen_claims(args.claim)
    if args.seeds < MIN_SEEDS:
        raise UsageError(f"--seeds {args.seeds}: at least {MIN_SEEDS} (no verdict from one seed)")
    scale = chosen_scale(args)
    jobs = scale.jobs if args.jobs is None else args.jobs
    if jobs < 1:
        raise UsageError(f"--jobs {jobs}: at least 1")
    out = Path(args.out)
    check_out(out)
    check_data(args.data, scale)
    plan = runner.make_plan(claims, scale, args.seeds, out / "work")
    runner.validate(plan, args.data)
    say = (lambda *a, **k: None) if args.quiet else print
    if args.plan:
        runner.check_resume(plan, args.data, resume=True)
        pending = [j for j in plan.jobs if runner.run_state(j.folder) != "done"]
        say(plan_text(plan, pending, jobs))
        return 0
    check_cuda(args.scale)
    out.mkdir(parents=True, exist_ok=True)
    with exclusive(out, folder=True):
        return run(plan, args, jobs, say, argv)


def run(plan: runner.Plan, args, jobs: int, say, argv) -> int:
    """Train what is left of the plan, decide the claims, write the outputs."""
    runner.check_resume(plan, args.data, args.resume)
    command = " ".join([PROG, *(sys.argv[1:] if argv is None else argv)])
    runner.write_plan(plan, args.data, {"command": command})
    pending = runner.order([j for j in plan.jobs if runner.run_state(j.folder) != "done"])
    say(plan_text(plan, pending, jobs))
    timings = runner.load_timings(plan.work)
    start = time.perf_counter()
    estimated = sum(j.estimate for j in pending)
    progress = {"done": 0, "spent": 0.0, "estimated": 0.0, "total": len(pending)}

    def report(f: runner.Finished) -> None:
        timings[f.job.name] = f.seconds
        runner.save_timings(plan.work, timings)
        progress["done"] += 1
        progress["spent"] += f.seconds
        progress["estimated"] += f.job.estimate
        ratio = progress["spent"] / max(progress["estimated"], 1e-9)
        left = (estimated - progress["estimated"]) * ratio / jobs
        status = "ok" if f.failure is None else f"FAILED ({f.failure})"
        say(
            f"[{progress['done']:3d}/{progress['total']}] {f.job.spec.label} seed {f.job.seed}: "
            f"{f.seconds:.0f} s (estimated {f.job.estimate:.0f} s) {status}; "
            f"{(time.perf_counter() - start) / 60:.1f} min elapsed, about {left / 60:.0f} min left",
            flush=True,
        )

    finished = runner.execute(pending, args.data, jobs, report)
    while added := runner.refine(plan, outputs.measured_for):
        runner.write_plan(plan, args.data, {"command": command})
        pending = runner.order([j for j in added if runner.run_state(j.folder) != "done"])
        say(f"bisection: {len(pending)} more runs", flush=True)
        progress["total"] += len(pending)
        estimated += sum(j.estimate for j in pending)
        finished += runner.execute(pending, args.data, jobs, report)
    wall = time.perf_counter() - start
    records = outputs.evaluate(plan)
    meta = {
        "scale": plan.scale.name,
        "scale_description": plan.scale.description,
        "seeds": plan.seeds,
        "runs": len(plan.jobs),
        "wall_seconds": wall,
        "run_seconds": sum(timings.get(j.name, 0.0) for j in plan.jobs),
        "resumed": bool(args.resume),
        "jobs": jobs,
        "machine": f"{platform.machine()} with {os.cpu_count()} CPU cores",
        "git_revision": git_revision(),
        "command": " ".join([PROG, *(sys.argv[1:] if argv is None else argv)]),
    }
    outputs.write(Path(args.out), records, meta)
    say(to_markdown(outputs.claims_table(records, len(plan.seeds))))
    say(f"claims decided in {wall / 60:.1f} min; results in {args.out}/ (claims.md)")
    failed = [f for f in finished if f.failure is not None]
    if failed:
        names = ", ".join(f"{f.job.name} ({f.failure})" for f in failed[:3])
        print(f"{PROG}: {len(failed)} run(s) failed: {names}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, prog=PROG))
