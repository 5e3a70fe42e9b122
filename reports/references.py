"""What a run's comparison needs beside its prediction, computed from the run's own record.

:mod:`dynamics.replay` replays the run's optimiser on its population loss (the noise floor of
:mod:`reports.compare`), integrates the inertial flow (the prediction of a run with heavy-ball
momentum) and the ablation nulls (the prediction with one ingredient removed): for a run with
Tian's eq. 1 from X and X' (:func:`dynamics.replay.load_problem`), for a run with another loss
on a linear encoder from the gradient of its own loss over its fixed augmented pairs
(:func:`dynamics.replay_general.load_problem`). Here they become
:class:`reports.compare.Trajectory` objects on the run's measurement times, each with the
||Sigma - I|| statistic its W(t) predicts on the run's held-out images
(:mod:`dynamics.predicted_sigma`), so that ``sigma_error`` has the same nulls and noise floor.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Hashable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import xarray as xr

from dynamics import replay, replay_general
from dynamics.from_run_methods import EQ1_LOSS
from dynamics.predicted_sigma import held_out_sigma
from reports.compare import Trajectory
from reports.inputs import Result, load_result
from reports.sigma_stat import SIGMA_VARIABLE


@dataclass
class References:
    """What a run's comparison needs beside its prediction, from the run's own record
    (:mod:`dynamics.replay`): its deterministic replay (the noise floor), the inertial flow (the
    prediction of a run with momentum) and the ablation nulls, on the run's times."""

    replay: Trajectory | None = None
    inertial: Trajectory | None = None
    ablations: dict[str, Trajectory] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def run_problems(run: Result) -> tuple[replay.Problem, replay.Problem]:
    """(the replay's problem, the prediction's problem) of the run: its own loss over its
    pairs for a loss other than eq. 1 where it can (else eq. 1's flows: ``exact_loss`` False)."""
    if str(run.attrs.get("loss_name")) != EQ1_LOSS:
        try:
            return (
                replay_general.load_problem(run.path),
                replay_general.load_problem(run.path, source="flow"),
            )
        except replay.NotReplayable:
            pass
    return replay.load_problem(run.path), replay.load_problem(run.path, source="flow")


def _sigma(run: Result):
    """W(t) -> the held-out mean squared correlation it predicts, or None without the run's
    held-out moments (moments.nc)."""
    path = Path(run.path)
    moments = (path if path.is_dir() else path.parent) / replay.MOMENTS_FILE
    if not moments.is_file():
        return None
    with xr.open_dataset(moments, engine="netcdf4") as m:
        if "eval_second_moment" not in m or "n_eval" not in m.attrs:
            return None
        mean, second = m["eval_mean"].values, m["eval_second_moment"].values
        n = int(m.attrs["n_eval"])
    return lambda w: held_out_sigma(w, mean, second, n)[SIGMA_VARIABLE]


def references(run: Result) -> References:
    """The :class:`References` of a run; empty with a note for a run that has none.

    The replay reads the optimiser's record (its weight decay ``weight_decay_step``); the
    inertial prediction and the ablation nulls read what a simulation derived from the run
    reads (wd = D ``eta_step``), so that they are the prediction's own physics; which
    ablations apply follows the run's configuration."""
    try:
        problem, flow = run_problems(run)
    except replay.NotReplayable as err:
        return References(notes=[f"no replay and no ablation nulls: {err}"])
    eta, alpha_p = run.eta(), run.alpha_p()
    sigma = _sigma(run)

    def traj(path: replay.Path_) -> Trajectory:
        wp = path.wp if path.wp.size else None
        s = sigma(path.w) if sigma is not None and run.has(SIGMA_VARIABLE) else None
        return Trajectory(path.t, wp, path.w, eta, alpha_p, sigma=s)

    out = References()
    try:
        if problem.exact_loss:
            out.replay = traj(replay.replay(problem))
        else:
            out.notes.append(
                "no noise floor: the run's loss is not eq. 1, so replaying eq. 1 is not its "
                "optimiser (fixed tolerances)"
            )
        # the inertial prediction and the ablation nulls (replay.ablations)
        flows = replay.ablations(flow, list(flow.applicable()), prediction=flow.momentum > 0)
        if "prediction" in flows:
            out.inertial = traj(flows.pop("prediction"))
        out.ablations = {ingredient: traj(path) for ingredient, path in flows.items()}
    except FloatingPointError as err:
        out.notes.append(f"replay or ablation failed ({err}): fixed tolerances, no ablations")
        return References(notes=out.notes)
    if not out.ablations:
        out.notes.append("no ablation null applies: the run trained with none of the ingredients")
    return out


#: the worker processes' thread counts: one BLAS (numpy's OpenBLAS) and one torch thread each
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_references(path: str | Path) -> References:
    """:func:`references` of the training run whose measurements are at ``path``."""
    return references(load_result(path, "training"))


@contextlib.contextmanager
def _one_thread_children() -> Iterator[None]:
    """:data:`ONE_THREAD` in the environment that spawned workers inherit (values already set
    win), restored afterwards."""
    saved = {k: os.environ.get(k) for k in ONE_THREAD}
    os.environ.update({k: v for k, v in ONE_THREAD.items() if saved[k] is None})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)


def references_of(runs: Mapping[Hashable, str | Path], jobs: int = 1) -> dict:
    """{key: :func:`run_references` of the run at ``runs[key]``}: in this process for ``jobs``
    1, else in ``jobs`` worker processes (spawned, one thread each: each run's replay and flows
    are single-threaded numpy and torch, so runs are what parallelises), the same numbers."""
    if jobs <= 1 or len(runs) <= 1:
        return {key: run_references(path) for key, path in runs.items()}
    spawn = multiprocessing.get_context("spawn")
    with (
        _one_thread_children(),
        ProcessPoolExecutor(min(jobs, len(runs)), mp_context=spawn) as pool,
    ):
        return dict(zip(runs, pool.map(run_references, runs.values()), strict=True))
