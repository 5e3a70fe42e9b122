"""Where the full bridge's time goes: one rung-1 training, its derived simulation, its report.

    python benchmarks/bridge_training.py [--rung 1] [--quick] [--keep DIR]
    python benchmarks/bridge_training.py --report-only RUN [RUN ...]   (existing run folders)

Runs the commands exactly as ``python -m reports.bridge`` plans them (:func:`reports.bridge.plan`,
seed 0, through the bridge's own runner environment :data:`reports.experiments.pool.BLAS_THREADS`):
the training, the simulation derived from it and its other-seed null, then the report stage's
in-process work for that run (:func:`reports.references.references`: the replay, the inertial
flow and the ablation nulls). Prints wall and CPU seconds of each phase (CPU: the child's user +
system time), and the training's own split (from ``measurements.nc``: its throughput over the
training steps). On a machine shared with other jobs, wall times are inflated and CPU times are
what compares between two revisions (run this script at each one).

``--report-only`` times the report stage alone on existing runs, in the same process and
conditions: each run's ablation nulls integrated one at a time (the former path) against
:func:`dynamics.replay.ablations` (one stacked integration for eq. 1, one by one for another
loss), and the references of all the runs
sequentially against two worker processes (:func:`reports.references.references_of`).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reports.bridge import FULL, QUICK, ladder, plan
from reports.experiments.pool import BLAS_THREADS
from reports.inputs import load_result


def timed_child(argv: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, env={**BLAS_THREADS, **os.environ})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def report_stage(run: Path) -> tuple[float, float]:
    """(wall, CPU) of the report stage's in-process work for one run (a child, for its BLAS)."""
    code = (
        "from reports.inputs import load_result; from reports.references import references; "
        f"references(load_result({str(run / 'measurements.nc')!r}, 'training'))"
    )
    return timed_child([sys.executable, "-c", code])


def cpu_now() -> float:
    """CPU seconds of this process and its finished children."""
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def report_only(runs: list[Path]) -> list[tuple[str, float, float]]:
    """(name, wall, CPU) of the report stage's variants on existing runs (module docstring)."""
    from dynamics import replay
    from reports.references import references_of, run_problems

    def timed(name, work):
        cpu, start = cpu_now(), time.perf_counter()
        work()
        return (name, time.perf_counter() - start, cpu_now() - cpu)

    flows = [run_problems(load_result(r / "measurements.nc", "training"))[1] for r in runs]
    rows = []
    for run, flow in zip(runs, flows, strict=True):
        ingredients = list(flow.applicable())
        one_at_a_time = lambda f=flow, i=ingredients: [replay.ablation(f, x) for x in i]  # noqa: E731
        stacked = lambda f=flow, i=ingredients: replay.ablations(f, i)  # noqa: E731
        rows.append(timed(f"{run.name}: nulls one at a time", one_at_a_time))
        rows.append(timed(f"{run.name}: nulls by replay.ablations", stacked))
    paths = {r: r / "measurements.nc" for r in runs}
    rows.append(timed("references of all runs, 1 process", lambda: references_of(paths, 1)))
    rows.append(timed("references of all runs, 2 workers", lambda: references_of(paths, 2)))
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rung", default="1")
    p.add_argument("--quick", action="store_true", help="the --quick sizes")
    p.add_argument("--keep", default=None, help="work folder to keep (default: a temporary one)")
    p.add_argument("--report-only", nargs="+", type=Path, default=None, metavar="RUN")
    args = p.parse_args()
    if args.report_only:
        print(f"load: {os.getloadavg()[0]:.1f} (1-minute average, {os.cpu_count()} CPUs)")
        for name, wall, cpu in report_only(args.report_only):
            print(f"{name:48s} wall {wall:7.1f} s   CPU {cpu:7.1f} s")
        print(f"load: {os.getloadavg()[0]:.1f}")
        return 0
    size = QUICK if args.quick else FULL
    rung = [r for r in ladder(size) if r.key == args.rung]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        runs = plan(rung, size, 2, False, work)
        training, simulations = runs.trainings[0], runs.simulations[:2]
        print(f"load: {os.getloadavg()[0]:.1f} (1-minute average, {os.cpu_count()} CPUs)")
        rows = [("training", *timed_child(training.argv()))]
        rows += [(f"simulation {s.name}", *timed_child(s.argv())) for s in simulations]
        if simulations:
            rows.append(("report stage (references)", *report_stage(training.output)))
        for name, wall, cpu in rows:
            print(f"{name:40s} wall {wall:7.1f} s   CPU {cpu:7.1f} s")
        print(f"load: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
