"""How much of a method rung's noise floor is the prediction's fixed sample of pairs (docs/theory.md
(D18)): the minibatch noise shrinks with the learning rate, the sample's error with its size.

    python benchmarks/pair_sample.py [--methods bt,simclr] [--seeds 2] [--divisor 2] [--keep DIR]

Trains each method rung of the bridge (:func:`reports.bridge_methods.method_rungs`, as
``python -m reports.bridge`` plans it) at the quick size with 4096 pairs and the learning rate
divided by ``--divisor`` over as many times the steps (the same flow time), then replays each run
(:func:`dynamics.replay.replay`: its own optimiser, no minibatch noise) on its 4096 pairs and on
two disjoint samples of 1024 of them. Prints, per run, W's relative trajectory error
(:func:`reports.compare.relative_error`) of the run against each replay and between the two
1024-pair replays: the first is the minibatch noise with the 4096-pair sample's error, the last
the error of a 1024-pair sample (times sqrt 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import xarray as xr

from dynamics import replay, replay_general
from dynamics.models.general import GeneralModel
from reports.bridge import QUICK, plan
from reports.bridge_methods import method_rungs
from reports.compare import relative_error
from reports.experiments.pool import BLAS_THREADS

PAIRS, SAMPLE = 4096, 1024


def on_pairs(problem: replay.Problem, part: slice) -> replay.Problem:
    """``problem`` with its loss on the pairs ``part`` of its sample."""
    model = problem.loss.model
    given = model.inputs
    inputs = dataclasses.replace(given, x1=given.x1[part], x2=given.x2[part])
    loss = dataclasses.replace(problem.loss, model=GeneralModel(model.params, inputs))
    return dataclasses.replace(problem, loss=loss)


def errors(run: Path) -> dict[str, float]:
    """W's distances: run vs its replay on all pairs and on each half-sample, and between those."""
    with xr.open_dataset(run / "measurements.nc") as ds:
        w = ds["w"].values
    problem = replay_general.load_problem(run)
    parts = {"all": slice(None), "a": slice(0, SAMPLE), "b": slice(PAIRS - SAMPLE, PAIRS)}
    paths = {k: replay.replay(on_pairs(problem, part)).w for k, part in parts.items()}
    return {
        f"run vs replay, {PAIRS} pairs": relative_error(paths["all"], w),
        f"run vs replay, {SAMPLE} pairs (a)": relative_error(paths["a"], w),
        f"run vs replay, {SAMPLE} pairs (b)": relative_error(paths["b"], w),
        f"replay {SAMPLE} (a) vs (b)": relative_error(paths["a"], paths["b"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="bt,vicreg,simclr,spectral,byol_cosine,liu")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--divisor", type=int, default=2, help="lr / K over K x the steps")
    parser.add_argument("--keep", type=Path, help="train into DIR (and reuse its runs)")
    args = parser.parse_args()
    k = args.divisor
    size = dataclasses.replace(
        QUICK, steps=k * QUICK.steps, lr=QUICK.lr / k, measure_every=k * QUICK.measure_every,
        pairs=PAIRS,
    )  # fmt: skip
    wanted = args.methods.split(",")
    rungs = [r for r in method_rungs(size) if r.key in wanted and not r.refused]
    work = args.keep or Path(tempfile.mkdtemp(prefix="pair_sample_"))
    runs = plan(rungs, size, args.seeds, False, work)
    print(f"sizes {size}; runs in {work}", flush=True)
    for command in runs.trainings:
        out = command.output
        if not (out / "measurements.nc").is_file():
            argv = [sys.executable, "-m", command.module, *command.args]
            subprocess.run(argv, check=True, env={**BLAS_THREADS, **os.environ})
        row = ", ".join(f"{name} {value:.4f}" for name, value in errors(out).items())
        print(f"{command.name}: {row}", flush=True)


if __name__ == "__main__":
    main()
