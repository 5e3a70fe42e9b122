"""The runs of a set of claims, and the plan's time estimate.

The runs are every distinct training configuration the chosen claims need (claims that need
the same configuration share its runs), trained once per seed into ``OUT/work/runs/KEY/seedS``
by the real ``python -m empirical.train``; an adaptive claim (tian-collapse's bisection of the
weight decay) adds runs round by round, from the measurements of the runs so far
(:func:`refine`). :mod:`reports.experiments` checks every command line before it starts,
records the plan, runs ``--jobs`` at a time and resumes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from reports.experiments import commands
from reports.experiments.commands import Command
from reports.reproduce.registry import EmpiricalClaim, Experiment, Refinement, RunSpec
from reports.reproduce.scale import Scale

if TYPE_CHECKING:
    from reports.reproduce.measured import Measured


@dataclasses.dataclass
class ClaimSet:
    """The claims, their experiments at the scale, and the runs of every distinct configuration
    (every seed) on ``data``."""

    scale: Scale
    seeds: list[int]
    claims: list[EmpiricalClaim]
    experiments: dict[str, Experiment]
    specs: list[RunSpec]
    work: Path
    data: str
    #: claim id -> the runs its experiment's ``refine`` asked for so far (role -> spec, seeds)
    refined: dict[str, Refinement] = dataclasses.field(default_factory=dict)

    def folder(self, spec: RunSpec, seed: int) -> Path:
        return self.work / "runs" / spec.key / f"seed{seed}"

    def command(self, spec: RunSpec, seed: int) -> Command:
        """``python -m empirical.train METHOD OPTIONS --data DATA --seed S --out FOLDER``."""
        args = (spec.method, *spec.options, "--data", self.data, "--seed", str(seed))
        return commands.train(
            f"{spec.key}/seed{seed}",
            args,
            self.folder(spec, seed),
            label=f"{spec.label} seed {seed}",
            estimate=spec.seconds,
        )

    @property
    def commands(self) -> list[Command]:
        """Every run, longest first (the schedule :func:`makespan` estimates), seeds together;
        then the runs the refinements added, in the order they were asked for."""
        ordered = sorted(self.specs, key=lambda s: (-s.seconds, s.key))
        fixed = [self.command(spec, seed) for spec in ordered for seed in self.seeds]
        added = [
            self.command(spec, seed)
            for refinement in self.refined.values()
            for spec, seeds in refinement.values()
            for seed in seeds
        ]
        return list({c.name: c for c in [*fixed, *added]}.values())

    def roles(self, claim_id: str) -> Refinement:
        """role -> (configuration, seeds) of one claim: its fixed runs over every seed, then
        the runs its refinement added, over the seeds they were asked for."""
        experiment = self.experiments[claim_id]
        fixed = {r: (spec, tuple(self.seeds)) for r, spec in experiment.runs.items()}
        return {**fixed, **self.refined.get(claim_id, {})}


def claim_set(
    claims: Sequence[EmpiricalClaim], scale: Scale, seeds: int, work: Path, data: str
) -> ClaimSet:
    """Every claim's experiment at ``scale`` and the distinct runs they need, ``seeds`` each."""
    experiments = {c.id: c.build(scale) for c in claims}
    specs: dict[str, RunSpec] = {}
    for experiment in experiments.values():
        for spec in experiment.runs.values():
            specs.setdefault(spec.key, spec)
    return ClaimSet(
        scale, list(range(seeds)), list(claims), experiments, list(specs.values()), work, data
    )


def refine(claims: ClaimSet, measure: Callable[[ClaimSet, str], Measured]) -> list[Command]:
    """One round of every adaptive experiment (:attr:`Experiment.refine`) from the measurements
    so far (``measure(claims, claim_id)``): the runs it asks for that the set lacks, added to
    ``claims.refined`` and returned (none: every refinement is done)."""
    names = {c.name for c in claims.commands}
    added = []
    for claim in claims.claims:
        experiment = claims.experiments[claim.id]
        if experiment.refine is None:
            continue
        asked = experiment.refine(measure(claims, claim.id))
        refined = claims.refined.setdefault(claim.id, {})
        for role, (spec, seeds) in asked.items():
            before = refined.get(role, (spec, ()))[1]
            refined[role] = (spec, tuple(sorted(set(before) | set(seeds))))
            for seed in seeds:
                command = claims.command(spec, seed)
                if command.name not in names:
                    names.add(command.name)
                    added.append(command)
    return added


def refine_estimate(claims: ClaimSet, workers: int) -> tuple[int, float]:
    """(runs, seconds) the refinements may add at most: each round one run per seed, the
    rounds one after another."""
    runs, seconds = 0, 0.0
    for experiment in claims.experiments.values():
        rounds = experiment.refine_rounds
        round_runs = [experiment.refine_seconds] * len(claims.seeds)
        runs += rounds * len(round_runs)
        seconds += rounds * makespan(round_runs, workers)
    return runs, seconds


def makespan(durations: Sequence[float], workers: int) -> float:
    """Wall time of ``durations`` run ``workers`` at a time, longest first (greedy LPT)."""
    loads = [0.0] * max(1, workers)
    for d in sorted(durations, reverse=True):
        loads[loads.index(min(loads))] += d
    return max(loads)


def plan_text(claims: ClaimSet, pending: Sequence[Command], jobs: int) -> str:
    """The plan: every configuration, its runs left, their estimated time, and the total."""
    users: dict[str, list[str]] = {}
    for claim_id, experiment in claims.experiments.items():
        for spec in experiment.runs.values():
            users.setdefault(spec.key, []).append(claim_id)
    left: dict[str, int] = {}
    for command in pending:
        key = command.name.split("/")[0]
        left[key] = left.get(key, 0) + 1
    lines = [
        f"plan: {len(claims.claims)} claims, scale {claims.scale.name} "
        f"({claims.scale.description}), {len(claims.seeds)} seeds",
        f"  {'configuration':44s} {'method':13s} {'steps':>6s} {'runs left':>9s} "
        f"{'s/run':>6s}  claims",
    ]
    for spec in claims.specs:
        lines.append(
            f"  {spec.label[:44]:44s} {spec.method:13s} {spec.steps:6d} {left.get(spec.key, 0):9d} "
            f"{spec.seconds:6.0f}  {', '.join(dict.fromkeys(users[spec.key]))}"
        )
    total = makespan([c.estimate for c in pending], jobs)
    runs = len(claims.specs) * len(claims.seeds)
    lines.append(
        f"{len(pending)} of {runs} runs to train, {jobs} at a time: estimated "
        f"{total / 60:.0f} min on an idle machine (cost model of the scale; other work on the "
        "machine slows it)"
    )
    extra, seconds = refine_estimate(claims, jobs)
    if extra:
        lines.append(
            f"then up to {extra} runs of bisection, round by round: up to {seconds / 60:.0f} min"
        )
    return "\n".join(lines)
