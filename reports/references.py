"""What a run's comparison needs beside its prediction, computed from the run's own record.

:mod:`dynamics.replay` replays the run's optimiser on its population loss (the noise floor of
:mod:`reports.compare`), integrates the inertial flow (the prediction of a run with heavy-ball
momentum) and the ablation nulls (the prediction with one ingredient removed); here they
become :class:`reports.compare.Trajectory` objects on the run's measurement times.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dynamics import replay
from reports.compare import Trajectory
from reports.inputs import Result


@dataclass
class References:
    """What a run's comparison needs beside its prediction, from the run's own record
    (:mod:`dynamics.replay`): its deterministic replay (the noise floor), the inertial flow (the
    prediction of a run with momentum) and the ablation nulls, on the run's times."""

    replay: Trajectory | None = None
    inertial: Trajectory | None = None
    ablations: dict[str, Trajectory] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def references(run: Result) -> References:
    """The :class:`References` of a run; empty with a note for a run that has none.

    The replay reads the optimiser's record (its weight decay ``weight_decay_step``); the
    inertial prediction and the ablation nulls read what a simulation derived from the run
    reads (wd = D ``eta_step``), so that they are the prediction's own physics; which
    ablations apply follows the run's configuration."""
    try:
        problem = replay.load_problem(run.path)  # the optimiser's record: the replay
        flow = replay.load_problem(run.path, source="flow")  # what the prediction reads
    except replay.NotReplayable as err:
        return References(notes=[f"no replay and no ablation nulls: {err}"])
    eta, alpha_p = run.eta(), run.alpha_p()

    def traj(path: replay.Path_) -> Trajectory:
        return Trajectory(path.t, path.wp, path.w, eta, alpha_p)

    out = References()
    try:
        if problem.exact_loss:
            out.replay = traj(replay.replay(problem))
        else:
            out.notes.append(
                "no noise floor: the run's loss is not eq. 1, so replaying eq. 1 is not its "
                "optimiser (fixed tolerances)"
            )
        if flow.momentum > 0:
            out.inertial = traj(replay.flow(flow, inertial=True))
        for ingredient in flow.applicable():
            out.ablations[ingredient] = traj(replay.ablation(flow, ingredient))
    except FloatingPointError as err:
        out.notes.append(f"replay or ablation failed ({err}): fixed tolerances, no ablations")
        return References(notes=out.notes)
    return out
