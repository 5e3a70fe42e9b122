"""Agreement between a prediction and a measurement, each statistic next to its nulls.

A prediction is a simulation derived from a run (``dynamics.simulate ... --from-run RUN``), so
both live on the run's measurement times and in the run's coordinates; for a run with heavy-ball
momentum the prediction is the inertial flow of :mod:`dynamics.replay` (the first-order
simulation is then a null). Every statistic is an error (0 = identical, lower is better),
computed by a function whose docstring is its definition (the report prints them). Each is also
computed for the nulls that apply to it:

- ``other seed``: a simulation of the same run started from another seed's initial weights
  (``--from-run RUN --initial seed``); it applies to statistics whose prediction depends on the
  initial weights (trajectories), not to those the theory predicts whatever the start;
- ``frozen``: the run's own initial network, held fixed (every quantity stays at its first
  measurement);
- the **ablation nulls** (:data:`dynamics.replay.INGREDIENTS`): the same prediction with one
  ingredient of the physics removed (X' = 0 or wrong by 2x, no weight decay, W_a = W, the clock
  D = 1, the momentum-free flow), for each ingredient the run trained with; for a run of another
  loss (``general``) X' is edited in its fixed pairs (:mod:`dynamics.replay_general`).

**Tolerance from the noise floor.** The noise floor of a statistic is its value between the run
and its deterministic replay (:func:`dynamics.replay.replay`: the run's exact optimiser on the
population loss, eq. 1's or the expected minibatch loss over the run's fixed pairs, i.e. the
run without its minibatch noise), the largest over the seeds given (one run: its own). The
tolerance is :data:`NOISE_FACTOR` (3) times the noise floor, capped at the statistic's fixed
tolerance: a prediction agrees only when it is no further from the run than three times the
run's own minibatch noise (run - flow lies between |(run - replay) - (replay - flow)| and their
sum, so the flow's own error, the finite step it leaves out, is then at most about twice the
noise; the W_p asymmetry's finite-step error is 1-2x its noise floor in the runs of the tests,
which a factor 2 would call disagreement). Without a replay the fixed tolerance applies.
Where the cap binds (three times the noise floor is above the fixed tolerance) an error between
the two is **not decided**: the run's own minibatch noise could put it there, so this run is
too noisy for the statistic to decide; unless the prediction is further than the tolerance
from the run's replay, which has no minibatch noise: then the flow misses the run's optimiser
(its finite step) and the comparison **disagrees**, saying so.

**Symmetries.** For a loss invariant under an orthogonal map of the embeddings
(:mod:`dynamics.symmetry`: NT-Xent, the spectral and cosine losses) the minibatch noise moves a
run along W -> Q W with no restoring force, so beside the W trajectory the comparison reports
it up to that map (:func:`orbit_error`), with the same nulls and noise floor, where the
prediction declares the symmetry.

A comparison **agrees** only when the statistic is within its tolerance, at least
:data:`NULL_MARGIN` (3) times smaller than the frozen and other-seed nulls AND at least 3 times
smaller than every ablation null; within tolerance and 3x below the frozen and other-seed nulls
but not 3x below an ablation null, or with no ablation null at all (no replay, no nulls), the
physics was **not tested** by this run (the finding gives the numbers or why); within tolerance
but not 3x below the frozen or other-seed null it is **not distinguishable from the null**;
outside the tolerance it **disagrees**. Modes are paired by eigenvector overlap (the Hungarian
assignment on |<u_i, v_j>|), never by sorted rank.

Properties of the run (Theorem 1's decay, the end state) do not read the prediction: they are
reported as properties, each against a null where the property fails (the frozen network; the
run's flow without weight decay). The asymptotic ones are tested only on a run long enough for
them to be due (:func:`untested`); the end-state ones only with at least :data:`MIN_ALIVE` (3)
alive feature modes, each stated with the alive modes and RankMe.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dynamics.observables import asymmetry, collapsed
from dynamics.symmetry import OUTPUT_ROTATION
from reports.finding import FINDING_VERDICTS, NOISE_FACTOR, NULL_MARGIN, Row
from reports.sigma_stat import sigma_error
from reports.wp_stats import asymmetry_error, collapse_error, collapsed_at_end, spectrum_error

# the verdict, defined in reports.finding
__all__ = ["NOISE_FACTOR", "NULL_MARGIN", "FINDING_VERDICTS", "Row"]

#: the fewest alive feature modes on which an end-state verdict is given
MIN_ALIVE = 3


class ShortPrediction(ValueError):
    """A prediction that does not cover the run's measurement times (it is never extrapolated)."""


@dataclass
class Trajectory:
    """What a comparison reads of a simulation or a run, on common times ``t``.

    ``wp`` (T, d, d) and ``w`` (T, d, n) where stored; ``eta`` and ``alpha_p`` where the
    conservation law applies (constant alpha_p).
    """

    t: np.ndarray
    wp: np.ndarray | None = None
    w: np.ndarray | None = None
    eta: float | None = None
    alpha_p: float | None = None
    alignment: np.ndarray | None = None  # cos(W_p u_j, u_j) (T, d), u_j of the features' F
    corr_eig: np.ndarray | None = None  # eigenvalues of the features' correlation (T, d)
    rankme: np.ndarray | None = None  # RankMe of the features (T,)
    sigma: np.ndarray | None = None  # mean squared correlation on held-out images (T,)
    #: the symmetries of its loss a prediction declares (dynamics.symmetry.OUTPUT_ROTATION)
    symmetries: tuple[str, ...] = ()

    def at(self, times: np.ndarray) -> Trajectory:
        """This trajectory linearly interpolated onto ``times`` (entrywise); ShortPrediction
        when ``times`` reach outside it (a prediction shorter than its run is refused)."""
        times = np.asarray(times, dtype=float)
        span = max(abs(self.t[-1] - self.t[0]), 1e-300)
        slack = 1e-9 * span
        if times.size and (times[0] < self.t[0] - slack or times[-1] > self.t[-1] + slack):
            raise ShortPrediction(
                f"the prediction covers t = {self.t[0]:.6g}..{self.t[-1]:.6g}, the run "
                f"t = {times[0]:.6g}..{times[-1]:.6g}; a prediction is never extrapolated"
            )
        out = {}
        for name in ("wp", "w", "sigma"):
            values = getattr(self, name)
            if values is not None:
                flat = values.reshape(len(self.t), -1)
                cols = [np.interp(times, self.t, flat[:, j]) for j in range(flat.shape[1])]
                out[name] = np.stack(cols, 1).reshape(len(times), *values.shape[1:])
        return Trajectory(
            np.asarray(times), eta=self.eta, alpha_p=self.alpha_p, symmetries=self.symmetries, **out
        )

    def frozen(self) -> Trajectory:
        """The null of the initial network held fixed: every entry at its first value."""
        out = {}
        for name in ("wp", "w", "alignment", "corr_eig", "rankme", "sigma"):
            values = getattr(self, name)
            if values is not None:
                out[name] = np.broadcast_to(values[:1], values.shape).copy()
        return Trajectory(self.t, eta=self.eta, alpha_p=self.alpha_p, **out)


def relative_error(predicted: np.ndarray, measured: np.ndarray) -> float:
    """sqrt(sum_t ||M(t) - P(t)||_F^2 / sum_t ||P(t)||_F^2) over the common times: the relative
    Frobenius error of a matrix trajectory (W_p or W), 0 for identical trajectories."""
    num = np.sum((measured - predicted) ** 2)
    den = np.sum(predicted**2)
    return float(np.sqrt(num / den)) if den > 0 else float("nan")


def orbit_error(predicted: np.ndarray, measured: np.ndarray) -> float:
    """sqrt(sum_t min_{Q_t in O(d)} ||Q_t M(t) - P(t)||_F^2 / sum_t ||P(t)||_F^2): the relative
    Frobenius error of the W trajectory up to an orthogonal map of the outputs at each time,
    for a loss invariant under W -> Q W (W_p -> Q W_p Q^T, W_a -> Q W_a), whose flow and run
    are determined only up to Q (minibatch noise moves a run along that orbit freely). The
    minimum is the orthogonal Procrustes problem (Schoenemann 1966): ||M||^2 + ||P||^2 -
    2 ||P M^T||_* (nuclear norm). 0 when M(t) = Q_t P(t); at most :func:`relative_error`."""
    cross = predicted @ np.swapaxes(measured, -1, -2)
    nuclear = np.sum(np.linalg.svd(cross, compute_uv=False))
    den = np.sum(predicted**2)
    num = max(float(np.sum(measured**2) + den - 2 * nuclear), 0.0)
    return float(np.sqrt(num / den)) if den > 0 else float("nan")


def decay_rate(t: np.ndarray, residual: np.ndarray) -> float:
    """Fitted decay rate k: minus the least-squares slope of ln r(t) against t (0 < r < inf)."""
    ok = np.isfinite(residual) & (residual > 0)
    if np.count_nonzero(ok) < 2 or np.ptp(t[ok]) == 0:
        return float("nan")
    return float(-np.polyfit(t[ok], np.log(residual[ok]), 1)[0])


def decay_exponent(traj: Trajectory) -> float | None:
    """2 eta (t_end - t_0): the exponent of the predicted decay e^{-2 eta t} over the run (Tian
    et al. 2021, Theorem 1); None for a run without one eta or without flow time (LARS)."""
    if traj.eta is None or not np.all(np.isfinite(traj.t[[0, -1]])):
        return None
    return float(2 * traj.eta * (traj.t[-1] - traj.t[0]))


def conservation_error(traj: Trajectory) -> float:
    """|k - 2 eta| / (2 eta) for the weight-space residual of Tian's Theorem 1.

    r(t) = ||W W^T - W_p^T W_p / alpha_p||_F decays as e^{-2 eta t} for any X, X', initial
    weights and target when alpha_p is constant (Tian et al. 2021, Theorem 1); k is its fitted
    rate (:func:`decay_rate`). Needs W and W_p in weight space (a linear encoder) and a run with
    2 eta t >= 1 (:func:`untested`).
    """
    if traj.w is None or traj.wp is None or not traj.eta or traj.alpha_p is None:
        return float("nan")
    m = traj.w @ np.swapaxes(traj.w, -1, -2)
    m = m - np.swapaxes(traj.wp, -1, -2) @ traj.wp / traj.alpha_p
    k = decay_rate(traj.t, np.linalg.norm(m, axis=(-2, -1)))
    return abs(k - 2 * traj.eta) / (2 * traj.eta)


def final_asymmetry(traj: Trajectory) -> float:
    """||W_p - W_p^T||_F / ||W_p + W_p^T||_F at the run's last measurement; the theory predicts
    0 (Tian et al. 2021, Sec. 5 and Fig. 2: with weight decay W_p becomes symmetric). A
    property of the run alone: it needs no X, X' and applies to any encoder. A limit, due once
    e^{-eta t} is below the tolerance (:data:`END_STATE_DECAY`); computed only for a run without
    a simulation, which predicts the value at the run's own end instead."""
    return float(asymmetry(traj.wp[-1:])[0])


def final_misalignment(traj: Trajectory) -> float:
    """1 - mean_j cos(W_p u_j, u_j) at the last measurement, over the eigenvectors u_j of the
    feature correlation whose eigenvalue has not collapsed (``dynamics.observables.collapsed``
    relative to the largest); the theory predicts 0 (Tian et al. 2021, Theorem 3: W_p's
    eigenspaces align with those of F). A property of the run alone and a limit, as
    :func:`final_asymmetry`."""
    cos, eig = traj.alignment[-1], np.abs(traj.corr_eig[-1])
    alive = ~collapsed(eig, np.max(eig))
    return float(1.0 - np.mean(cos[alive])) if np.any(alive) else float("nan")


#: The 2 eta t by which the end state (W_p symmetric, aligned with F) is due: e^{-eta t} <= 0.1,
#: the tolerance. The relative asymmetry of W_p relaxes more slowly than Theorem 1's residual: in
#: the exact simulations of the bridge's linear-encoder rungs it falls as e^{-k t} with k = 0.048
#: at eta = 0.05 for BYOL (about eta, slowed by the EMA target) and k = 0.096 for SimSiam (2 eta),
#: so at 2 eta t = 4 the theory itself still predicts an asymmetry of 0.11.
END_STATE_DECAY = 2 * math.log(10)


@dataclass(frozen=True)
class Statistic:
    """An error statistic: its definition, tolerance, inputs and which nulls apply."""

    key: str
    quantity: str
    tolerance: float  # fixed; with a replay the noise floor sets it (capped at this)
    compute: Callable[..., float]
    needs: tuple[str, ...]
    initial_dependent: bool  # the other-seed null applies
    pairwise: bool = True  # compare(prediction, measurement); False: a property of the run
    decay_needed: float = 0.0  # the 2 eta t a run must reach for the prediction to be due
    limit: bool = False  # a t -> inf prediction: only for a run no simulation predicts
    noise_floor: bool = False  # its tolerance comes from the run's replay where there is one
    features: bool = False  # an end-state property of the features: needs MIN_ALIVE modes
    symmetry: str = ""  # computed only where the prediction declares this symmetry of its loss

    @property
    def definition(self) -> str:
        return " ".join(inspect.getdoc(self.compute).split())

    @property
    def kind(self) -> str:
        """'prediction' (prediction against run) or 'property' (of the run alone)."""
        return "prediction" if self.pairwise else "property"


def _trajectory_statistic(key: str, quantity: str, compute: Callable) -> Statistic:
    return Statistic(key, quantity, 0.1, compute, ("wp",) if key != "w_error" else ("w",), True,
                     noise_floor=True)  # fmt: skip


STATISTICS: dict[str, Statistic] = {
    s.key: s
    for s in (
        _trajectory_statistic("wp_error", "W_p trajectory", relative_error),
        _trajectory_statistic("w_error", "W trajectory", relative_error),
        dataclasses.replace(
            _trajectory_statistic(
                "w_orbit_error", "W trajectory up to output rotation", orbit_error
            ),
            needs=("w",),
            symmetry=OUTPUT_ROTATION,
        ),
        dataclasses.replace(
            _trajectory_statistic("sigma_error", "||Sigma - I|| over time", sigma_error),
            needs=("sigma",),
        ),
        _trajectory_statistic("spectrum_error", "W_p eigenvalues over time", spectrum_error),
        dataclasses.replace(
            _trajectory_statistic("asymmetry_error", "W_p asymmetry over time", asymmetry_error),
            tolerance=0.05,
        ),
        Statistic(
            "collapse_error", "collapsed modes at the end", 0.1, collapse_error, ("wp",), True
        ),
        Statistic(
            "conservation_error",
            "decay of W W^T - W_p^T W_p/alpha_p at 2 eta (Theorem 1; property of the run)",
            0.2,
            conservation_error,
            ("w", "wp"),
            False,
            pairwise=False,
            decay_needed=1.0,
        ),
        Statistic(
            "final_asymmetry",
            "asymmetry of W_p at the end (predicted 0; property of the run)",
            0.1,
            final_asymmetry,
            ("wp",),
            False,
            pairwise=False,
            decay_needed=END_STATE_DECAY,
            limit=True,
            features=True,
        ),
        Statistic(
            "final_misalignment",
            "misalignment of W_p with F at the end (predicted 0; property of the run)",
            0.1,
            final_misalignment,
            ("alignment", "corr_eig"),
            False,
            pairwise=False,
            decay_needed=END_STATE_DECAY,
            limit=True,
            features=True,
        ),
    )
}


def untested(traj: Trajectory, predicted: bool = False) -> dict[str, str]:
    """The statistics a run is too short to test, each with why: 2 eta t at the end of the run
    is below the statistic's ``decay_needed`` (eta = 0: never due). Empty for a run without
    one eta or without flow time (LARS): nothing says it is too short. ``predicted``: a
    simulation predicts the run, so the end-state limits (``Statistic.limit``) are not tested
    and not listed."""
    exponent = decay_exponent(traj)
    if exponent is None:
        return {}
    return {
        s.key: f"{s.quantity}: needs 2 eta t >= {s.decay_needed:.2g}, reached {exponent:.2g}"
        for s in STATISTICS.values()
        if exponent < s.decay_needed and not (s.limit and predicted)
    }


def alive_modes(traj: Trajectory) -> tuple[int, int] | None:
    """(alive, d): the feature-correlation modes at the end that have not collapsed
    (``dynamics.observables.collapsed`` against the largest), None without ``corr_eig``."""
    if traj.corr_eig is None:
        return None
    eig = np.abs(traj.corr_eig[-1])
    return int(np.sum(~collapsed(eig, np.max(eig)))), int(eig.size)


def statistic_between(stat: Statistic, predicted: Trajectory | None, measured: Trajectory) -> float:
    """``stat`` of ``measured`` against ``predicted`` (a property: of ``measured`` alone); NaN
    where either lacks what it needs."""
    if not all(getattr(measured, n) is not None for n in stat.needs):
        return float("nan")
    if not stat.pairwise:
        return stat.compute(measured)
    if predicted is None or not all(getattr(predicted, n) is not None for n in stat.needs):
        return float("nan")
    name = stat.needs[0]
    return stat.compute(getattr(predicted, name), getattr(measured, name))


def noise_floor(replay: Trajectory, measurement: Trajectory) -> dict[str, float]:
    """Each noise-floor statistic between the run and its replay (the minibatch noise)."""
    return {
        s.key: statistic_between(s, replay, measurement)
        for s in STATISTICS.values()
        if s.noise_floor
    }


def _context(stat: Statistic, predicted: Trajectory | None, measured: Trajectory, row: Row):
    if stat.key == "collapse_error" and predicted is not None:
        d = predicted.wp.shape[-1]
        row.context = (
            f"predicted {int(np.sum(collapsed_at_end(predicted.wp)))} of {d} modes collapsed, "
            f"the run {int(np.sum(collapsed_at_end(measured.wp)))}"
        )
    if stat.features and (alive := alive_modes(measured)) is not None:
        rank = f", RankMe {measured.rankme[-1]:.3g}" if measured.rankme is not None else ""
        row.context = f"alive modes {alive[0]} of {alive[1]}{rank}"
        if alive[0] < MIN_ALIVE:
            row.undecided = f"fewer than {MIN_ALIVE} alive modes: no verdict"


def compare(
    prediction: Trajectory | None,
    measurement: Trajectory,
    other_seed: Trajectory | None = None,
    ablations: dict[str, Trajectory] | None = None,
    replay: Trajectory | None = None,
    floor: dict[str, float] | None = None,
) -> list[Row]:
    """Every statistic the trajectories allow, each with its nulls (see the module docstring).

    ``prediction`` and ``other_seed`` are interpolated onto the measurement's times (a
    prediction that does not cover them raises ShortPrediction); ``ablations``: ingredient ->
    the prediction without it, on the measurement's times; ``replay``: the run's deterministic
    replay, whose distance from the run is the noise floor and from the prediction the flow's
    own error (``Row.replay_gap``); ``floor``: the noise floor per statistic measured over
    several seeds (overrides the replay's). Without a prediction only
    the properties of the run are computed.
    """
    times = measurement.t
    predicted = prediction.at(times) if prediction is not None else None
    seeded = other_seed.at(times) if other_seed is not None else None
    frozen = measurement.frozen()
    if floor is None and replay is not None:
        floor = noise_floor(replay, measurement)
    too_short = untested(measurement, predicted=prediction is not None)
    rows = []
    for stat in STATISTICS.values():
        if stat.key in too_short or (stat.limit and prediction is not None):
            continue
        if stat.symmetry and (predicted is None or stat.symmetry not in predicted.symmetries):
            continue
        value = statistic_between(stat, predicted, measurement)
        if not np.isfinite(value):
            continue
        row = Row(stat.key, stat.quantity, value, stat.tolerance, kind=stat.kind)
        if stat.noise_floor and floor and np.isfinite(floor.get(stat.key, np.nan)):
            row.noise_limit = NOISE_FACTOR * floor[stat.key]
            row.tolerance = min(row.noise_limit, stat.tolerance)
            row.tolerance_rule = f"{NOISE_FACTOR:g} x noise floor {floor[stat.key]:.3g}"
        elif stat.noise_floor:
            row.tolerance_rule = "fixed (no replay of the run)"
        if stat.noise_floor and replay is not None:
            row.replay_gap = statistic_between(stat, predicted, replay)
        _context(stat, predicted, measurement, row)
        if stat.pairwise:
            row.nulls["frozen"] = statistic_between(stat, frozen, measurement)
            for ingredient, traj in (ablations or {}).items():
                row.ablations[ingredient] = statistic_between(stat, traj, measurement)
        else:  # a property of the run: the frozen network measured the same way
            row.nulls["frozen"] = statistic_between(stat, predicted, frozen)
            if stat.key == "conservation_error" and "weight decay" in (ablations or {}):
                flow = dataclasses.replace(ablations["weight decay"], eta=measurement.eta,
                                           alpha_p=measurement.alpha_p)  # fmt: skip
                row.nulls["no weight decay"] = statistic_between(stat, None, flow)
        if not stat.initial_dependent:
            row.not_applicable["other seed"] = "the prediction does not depend on the start"
        elif seeded is None:
            row.not_applicable["other seed"] = "no other-seed simulation given"
        else:
            row.nulls["other seed"] = statistic_between(stat, seeded, measurement)
        rows.append(row)
    return rows
