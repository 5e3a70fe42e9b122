"""The plan of a set of claims, its time estimate, and its execution with progress and resume.

The plan is every distinct training configuration the chosen claims need (claims that need
the same configuration share its runs), trained once per seed into
``OUT/work/runs/KEY/seedS``; an adaptive claim (tian-collapse's bisection of the weight
decay) adds runs round by round, from the measurements of the runs so far (:func:`refine`).
Before the first step every run's command line is parsed and
resolved by ``python -m empirical.train``'s own parser (a bad option is exit status 2 before
anything runs) and the data is checked for the sizes the plan needs. ``OUT/work/plan.json``
records the commands; ``--resume`` skips the runs that finished (their ``measurements.nc`` is
complete), continues the ones a checkpoint exists for (``empirical.train --resume``), and starts
the rest; it refuses a plan whose commands changed (other sizes, other data). Runs are
subprocesses of the real command, ``--jobs`` at a time; a run that fails (exit status 1: NaN
loss) is recorded and the others go on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import xarray as xr

from reports.reproduce.registry import Claim, Experiment, Refinement, RunSpec
from reports.reproduce.scale import Scale
from symbolic.common.cli import UsageError
from symbolic.common.files import write_text

if TYPE_CHECKING:
    from reports.reproduce.measured import Measured

PLAN = "plan.json"
TIMINGS = "timings.json"


@dataclasses.dataclass(frozen=True)
class Job:
    """One run: a configuration and a seed, in its folder."""

    spec: RunSpec
    seed: int
    folder: Path
    estimate: float

    @property
    def name(self) -> str:
        return f"{self.spec.key}/seed{self.seed}"

    def command(self, data: str, resume: bool = False) -> list[str]:
        """``python -m empirical.train METHOD OPTIONS --data DATA --seed S --out FOLDER``."""
        argv = [
            sys.executable, "-m", "empirical.train", self.spec.method, *self.spec.options,
            "--data", data, "--seed", str(self.seed), "--out", str(self.folder), "--quiet",
        ]  # fmt: skip
        return [*argv, "--resume"] if resume else argv


@dataclasses.dataclass
class Plan:
    """The claims, their experiments at the scale, and the distinct runs (every seed)."""

    scale: Scale
    seeds: list[int]
    claims: list[Claim]
    experiments: dict[str, Experiment]
    jobs: list[Job]
    work: Path
    #: claim id -> the runs its experiment's ``refine`` asked for so far (role -> spec, seeds)
    refined: dict[str, Refinement] = dataclasses.field(default_factory=dict)

    def folder(self, spec: RunSpec, seed: int) -> Path:
        return self.work / "runs" / spec.key / f"seed{seed}"

    def roles(self, claim_id: str) -> Refinement:
        """role -> (configuration, seeds) of one claim: its fixed runs over every seed, then
        the runs its refinement added, over the seeds they were asked for."""
        fixed = {
            r: (spec, tuple(self.seeds)) for r, spec in self.experiments[claim_id].runs.items()
        }
        return {**fixed, **self.refined.get(claim_id, {})}


def refine(plan: Plan, measure: Callable[[Plan, str], Measured]) -> list[Job]:
    """One round of every adaptive experiment (:attr:`Experiment.refine`) from the measurements
    so far (``measure(plan, claim_id)``): the runs it asks for that the plan lacks, added to the
    plan and returned (none: every refinement is done)."""
    names = {job.name for job in plan.jobs}
    added = []
    for claim in plan.claims:
        experiment = plan.experiments[claim.id]
        if experiment.refine is None:
            continue
        asked = experiment.refine(measure(plan, claim.id))
        refined = plan.refined.setdefault(claim.id, {})
        for role, (spec, seeds) in asked.items():
            before = refined.get(role, (spec, ()))[1]
            refined[role] = (spec, tuple(sorted(set(before) | set(seeds))))
            for seed in seeds:
                job = Job(spec, seed, plan.folder(spec, seed), spec.seconds)
                if job.name not in names:
                    names.add(job.name)
                    plan.jobs.append(job)
                    added.append(job)
    return added


def refine_estimate(plan: Plan, workers: int) -> tuple[int, float]:
    """(runs, seconds) the refinements may add at most: each round one run per seed, the
    rounds one after another."""
    runs, seconds = 0, 0.0
    for experiment in plan.experiments.values():
        rounds = experiment.refine_rounds
        round_jobs = [experiment.refine_seconds] * len(plan.seeds)
        runs += rounds * len(round_jobs)
        seconds += rounds * makespan(round_jobs, workers)
    return runs, seconds


def make_plan(claims: Sequence[Claim], scale: Scale, seeds: int, work: Path) -> Plan:
    """Every claim's experiment at ``scale`` and the distinct runs they need, ``seeds`` each."""
    experiments = {c.id: c.build(scale) for c in claims}
    specs: dict[str, RunSpec] = {}
    for experiment in experiments.values():
        for spec in experiment.runs.values():
            specs.setdefault(spec.key, spec)
    jobs = []
    for spec in specs.values():
        for seed in range(seeds):
            folder = work / "runs" / spec.key / f"seed{seed}"
            jobs.append(Job(spec, seed, folder, spec.seconds))
    return Plan(scale, list(range(seeds)), list(claims), experiments, jobs, work)


def validate(plan: Plan, data: str) -> None:
    """Parse and resolve every distinct command with empirical.train's own parser and
    configuration (the option checks of a run), before anything runs; UsageError naming the
    run and the problem."""
    from empirical.train import build_parser, configuration

    parser = build_parser()
    seen = set()
    for job in plan.jobs:
        if job.spec.key in seen:
            continue
        seen.add(job.spec.key)
        argv = job.command(data)[3:]
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):
                configuration(parser.parse_args(argv))
        except SystemExit:
            last = (stderr.getvalue().strip().splitlines() or ["bad option"])[-1]
            raise UsageError(f"run {job.spec.label!r}: {last}") from None
        except UsageError as err:
            raise UsageError(f"run {job.spec.label!r}: {err}") from None


def run_state(folder: Path) -> str:
    """'done' (a complete measurements.nc), 'resume' (a checkpoint to continue) or 'new'."""
    results = folder / "measurements.nc"
    if results.exists():
        try:
            with xr.open_dataset(results) as ds:
                if int(ds.attrs.get("partial", 1)) == 0:
                    return "done"
        except (OSError, ValueError):
            pass
    return "resume" if (folder / "checkpoint.pt").exists() else "new"


def check_resume(plan: Plan, data: str, resume: bool) -> None:
    """Refuse to overwrite another plan's runs, or to resume with changed commands."""
    path = plan.work / PLAN
    if not path.exists():
        return
    if not resume:
        raise UsageError(
            f"--out {plan.work.parent} already holds a set of claims ({path}); pass --resume to "
            "continue it or choose another --out"
        )
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))["commands"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UsageError(f"--resume: cannot read {path} ({err})") from None
    for job in plan.jobs:
        before = recorded.get(job.name)
        if before is not None and before != job.command(data)[3:]:
            raise UsageError(
                f"--resume: run {job.name} was planned with other options (other --scale, "
                "--data or version); use the same options or another --out"
            )


def write_plan(plan: Plan, data: str, extra: dict) -> None:
    """``OUT/work/plan.json``: the scale, the seeds, the claims and every run's command (merged
    with the commands of an earlier plan in the same folder)."""
    path = plan.work / PLAN
    commands = {}
    if path.exists():
        commands = json.loads(path.read_text(encoding="utf-8")).get("commands", {})
    commands.update({job.name: job.command(data)[3:] for job in plan.jobs})
    record = {
        "scale": plan.scale.name,
        "seeds": plan.seeds,
        "claims": [c.id for c in plan.claims],
        "commands": commands,
        **extra,
    }
    write_text(path, json.dumps(record, indent=2) + "\n")


def makespan(durations: Sequence[float], workers: int) -> float:
    """Wall time of ``durations`` run ``workers`` at a time, longest first (greedy LPT)."""
    loads = [0.0] * max(1, workers)
    for d in sorted(durations, reverse=True):
        loads[loads.index(min(loads))] += d
    return max(loads)


def order(jobs: Sequence[Job]) -> list[Job]:
    """Longest runs first (the schedule :func:`makespan` estimates), seeds together."""
    return sorted(jobs, key=lambda j: (-j.estimate, j.spec.key, j.seed))


@dataclasses.dataclass
class Finished:
    """A run that ended: its wall time and, if it failed, the reason (its last error line)."""

    job: Job
    seconds: float
    failure: str | None = None


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "no message"
    return lines[-1] if lines else "no message"


def execute(
    jobs: Sequence[Job], data: str, workers: int, report: Callable[[Finished], None]
) -> list[Finished]:
    """Run the jobs ``workers`` at a time (each ``empirical.train`` in its own process);
    ``report`` is called as each ends. A run's exit status 2 (bad input) stops everything with
    a UsageError; any other failure is recorded in its Finished. Interrupted (Ctrl-C): the
    running processes are stopped and the KeyboardInterrupt propagates (``--resume`` continues).
    """
    pending = list(jobs)
    running: dict[subprocess.Popen, tuple[Job, float, Path]] = {}
    done: list[Finished] = []
    try:
        while pending or running:
            while pending and len(running) < max(1, workers):
                job = pending.pop(0)
                state = run_state(job.folder)
                if state == "new" and job.folder.exists():
                    shutil.rmtree(job.folder)  # an earlier start that wrote no checkpoint
                job.folder.parent.mkdir(parents=True, exist_ok=True)
                err = job.folder.parent / f"seed{job.seed}.stderr"
                with open(err, "w", encoding="utf-8") as fh:
                    proc = subprocess.Popen(
                        job.command(data, resume=state == "resume"),
                        stdout=subprocess.DEVNULL,
                        stderr=fh,
                    )
                running[proc] = (job, time.perf_counter(), err)
            time.sleep(0.2)
            for proc in [p for p in running if p.poll() is not None]:
                job, start, err = running.pop(proc)
                seconds = time.perf_counter() - start
                if proc.returncode == 2:
                    raise UsageError(f"run {job.name} rejected its input: {_last_line(err)}")
                failure = None if proc.returncode == 0 else _last_line(err)
                finished = Finished(job, seconds, failure)
                done.append(finished)
                report(finished)
    finally:
        for proc in running:
            proc.terminate()
        for proc in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
    return done


def load_timings(work: Path) -> dict[str, float]:
    """Seconds of every run finished in this folder so far (earlier sessions included)."""
    path = work / TIMINGS
    if not path.exists():
        return {}
    try:
        return {str(k): float(v) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def save_timings(work: Path, timings: dict[str, float]) -> None:
    write_text(work / TIMINGS, json.dumps(timings, indent=2, sort_keys=True) + "\n")
