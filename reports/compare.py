"""Agreement between a prediction and a measurement, each statistic next to its nulls.

A prediction is a simulation derived from a run (``dynamics.simulate ... --from-run RUN``), so
both live on the run's measurement times and in the run's coordinates. Every statistic is an
error (0 = identical, lower is better), computed by a function whose docstring is its definition
(the report prints them). Each is also computed for the nulls that apply to it:

- ``other seed``: a simulation of the same run started from another seed's initial weights
  (``--from-run RUN --initial seed``); it applies to statistics whose prediction depends on the
  initial weights (trajectories), not to those the theory predicts whatever the start;
- ``frozen``: the run's own initial network, held fixed (every quantity stays at its first
  measurement): it applies to every statistic.

A comparison **agrees** only when the statistic is within its tolerance AND at least
:data:`NULL_MARGIN` (3) times smaller than the best null that applies; within tolerance but not
that far below a null it is **not distinguishable from the null**; outside the tolerance it
**disagrees**. Modes are paired by eigenvector overlap (the Hungarian assignment on
|<u_i, v_j>|), never by sorted rank.

The asymptotic predictions are tested only on a run long enough for them to be due
(:func:`untested`): Theorem 1's decay at rate 2 eta once 2 eta t >= 1 (the residual has fallen
to e^{-1}), the end state (W_p symmetric and aligned with F) once the transient e^{-2 eta t} is
below the statistic's tolerance; a shorter run says which were not computed and why.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from dynamics.observables import asymmetry, collapsed

#: how much smaller than the best null a statistic must be to count as agreement
NULL_MARGIN = 3.0
VERDICTS = ("agrees", "disagrees", "not distinguishable from the null", "not computed")


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

    def at(self, times: np.ndarray) -> Trajectory:
        """This trajectory linearly interpolated onto ``times`` (entrywise)."""
        out = {}
        for name in ("wp", "w"):
            values = getattr(self, name)
            if values is not None:
                flat = values.reshape(len(self.t), -1)
                cols = [np.interp(times, self.t, flat[:, j]) for j in range(flat.shape[1])]
                out[name] = np.stack(cols, 1).reshape(len(times), *values.shape[1:])
        return Trajectory(np.asarray(times), eta=self.eta, alpha_p=self.alpha_p, **out)

    def frozen(self) -> Trajectory:
        """The null of the initial network held fixed: every entry at its first value."""
        out = {}
        for name in ("wp", "w", "alignment", "corr_eig"):
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


def paired_spectra(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of the symmetric parts of a and b (d x d), paired by eigenvector overlap.

    With (lambda_i, u_i) and (mu_j, v_j) the eigenpairs of (a + a^T)/2 and (b + b^T)/2, modes are
    matched by the assignment that maximises sum |<u_i, v_pi(i)>| (Hungarian algorithm); returns
    (lambda, mu_pi) in that pairing.
    """
    la, ua = np.linalg.eigh((a + a.T) / 2)
    lb, ub = np.linalg.eigh((b + b.T) / 2)
    rows, cols = linear_sum_assignment(-np.abs(ua.T @ ub))
    return la[rows], lb[cols]


def spectrum_error(predicted: np.ndarray, measured: np.ndarray) -> float:
    """Relative RMS error of the W_p eigenvalues over time, modes paired by eigenvectors.

    At each time the eigenvalues of the symmetric parts of the simulated and the measured W_p are
    paired by eigenvector overlap, the Hungarian algorithm's assignment maximising the summed
    |<u_i, v_j>| (:func:`paired_spectra`); the statistic is
    sqrt(sum (mu - lambda)^2 / sum lambda^2) over all times and modes.
    """
    pairs = [paired_spectra(p, m) for p, m in zip(predicted, measured, strict=True)]
    sim = np.concatenate([p for p, _ in pairs])
    run = np.concatenate([m for _, m in pairs])
    den = np.sum(sim**2)
    return float(np.sqrt(np.sum((run - sim) ** 2) / den)) if den > 0 else float("nan")


def asymmetry_error(predicted: np.ndarray, measured: np.ndarray) -> float:
    """RMS over time of the difference of the asymmetries ||W_p - W_p^T||/||W_p + W_p^T|| of
    the measured and the simulated W_p (absolute; the asymmetry lies in [0, inf))."""
    return float(np.sqrt(np.mean((asymmetry(measured) - asymmetry(predicted)) ** 2)))


def collapse_error(predicted: np.ndarray, measured: np.ndarray) -> float:
    """Fraction of modes whose collapse the prediction gets wrong, at the last time.

    Modes are the eigenvalues of the symmetric part of W_p at the last time, paired by
    eigenvector overlap (:func:`paired_spectra`); a mode is collapsed by the toolkit's one
    criterion (``dynamics.observables.collapsed``: below 2% of a reference scale), the scale
    being the largest such eigenvalue magnitude of the trajectory.
    """
    sim, run = paired_spectra(predicted[-1], measured[-1])
    scales = [
        np.max(np.abs(np.linalg.eigvalsh((x + np.swapaxes(x, -1, -2)) / 2)))
        for x in (predicted, measured)
    ]
    return float(np.mean(collapsed(sim, scales[0]) != collapsed(run, scales[1])))


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
    tolerance: float
    compute: Callable[..., float]
    needs: tuple[str, ...]
    initial_dependent: bool  # the other-seed null applies
    pairwise: bool = True  # compare(prediction, measurement); False: a property of one trajectory
    decay_needed: float = 0.0  # the 2 eta t a run must reach for the prediction to be due
    limit: bool = False  # a t -> inf prediction: only for a run no simulation predicts

    @property
    def definition(self) -> str:
        return " ".join(inspect.getdoc(self.compute).split())


STATISTICS: dict[str, Statistic] = {
    s.key: s
    for s in (
        Statistic("wp_error", "W_p trajectory", 0.1, relative_error, ("wp",), True),
        Statistic("w_error", "W trajectory", 0.1, relative_error, ("w",), True),
        Statistic(
            "spectrum_error", "W_p eigenvalues over time", 0.1, spectrum_error, ("wp",), True
        ),
        Statistic(
            "asymmetry_error", "W_p asymmetry over time", 0.05, asymmetry_error, ("wp",), True
        ),
        Statistic(
            "collapse_error", "collapsed modes at the end", 0.1, collapse_error, ("wp",), True
        ),
        Statistic(
            "conservation_error",
            "decay of W W^T - W_p^T W_p/alpha_p at 2 eta (Theorem 1)",
            0.2,
            conservation_error,
            ("w", "wp"),
            False,
            pairwise=False,
            decay_needed=1.0,
        ),
        Statistic(
            "final_asymmetry",
            "asymmetry of W_p at the end (predicted 0)",
            0.1,
            final_asymmetry,
            ("wp",),
            False,
            pairwise=False,
            decay_needed=END_STATE_DECAY,
            limit=True,
        ),
        Statistic(
            "final_misalignment",
            "misalignment of W_p with F at the end (predicted 0)",
            0.1,
            final_misalignment,
            ("alignment", "corr_eig"),
            False,
            pairwise=False,
            decay_needed=END_STATE_DECAY,
            limit=True,
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


@dataclass
class Row:
    """One statistic for one run: its value, the nulls' values and the verdict."""

    key: str
    quantity: str
    value: float
    tolerance: float
    nulls: dict[str, float] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)

    @property
    def best_null(self) -> float:
        finite = [v for v in self.nulls.values() if np.isfinite(v)]
        return min(finite) if finite else float("nan")

    @property
    def verdict(self) -> str:
        """agrees / disagrees / not distinguishable from the null / not computed (see module)."""
        if not np.isfinite(self.value):
            return "not computed"
        if self.value > self.tolerance:
            return "disagrees"
        null = self.best_null
        if np.isfinite(null) and null > self.value and NULL_MARGIN * self.value <= null:
            return "agrees"
        return "not distinguishable from the null"


def _compute(stat: Statistic, predicted: Trajectory | None, measured: Trajectory) -> float:
    if not all(getattr(measured, n) is not None for n in stat.needs):
        return float("nan")
    if not stat.pairwise:
        return stat.compute(measured)
    if predicted is None or not all(getattr(predicted, n) is not None for n in stat.needs):
        return float("nan")
    name = stat.needs[0]
    return stat.compute(getattr(predicted, name), getattr(measured, name))


def compare(
    prediction: Trajectory | None,
    measurement: Trajectory,
    other_seed: Trajectory | None = None,
) -> list[Row]:
    """Every statistic the trajectories allow, each with its nulls (see the module docstring).

    ``prediction`` and ``other_seed`` are interpolated onto the measurement's times; without a
    prediction only the statistics of the run alone (the theory's predictions that need no
    simulation) are computed.
    """
    times = measurement.t
    predicted = prediction.at(times) if prediction is not None else None
    seeded = other_seed.at(times) if other_seed is not None else None
    frozen = measurement.frozen()
    too_short = untested(measurement, predicted=prediction is not None)
    rows = []
    for stat in STATISTICS.values():
        if stat.key in too_short or (stat.limit and prediction is not None):
            continue
        value = _compute(stat, predicted, measurement)
        if not np.isfinite(value):
            continue
        row = Row(stat.key, stat.quantity, value, stat.tolerance)
        if stat.pairwise:
            row.nulls["frozen"] = _compute(stat, frozen, measurement)
        else:  # a property of the run: the frozen network measured the same way
            row.nulls["frozen"] = _compute(stat, predicted, frozen)
        if not stat.initial_dependent:
            row.not_applicable["other seed"] = "the prediction does not depend on the start"
        elif seeded is None:
            row.not_applicable["other seed"] = "no other-seed simulation given"
        else:
            row.nulls["other seed"] = _compute(stat, seeded, measurement)
        rows.append(row)
    return rows
