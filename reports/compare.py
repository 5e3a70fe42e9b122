"""Agreement statistics between a simulation (prediction) and a training run (measurement).

Both are aligned on flow time t (SPEC section 2: t = sum of learning rates; a simulation's ``time``
is t, a run's ``time`` coordinate along ``epoch`` is t). Each statistic below is a function whose
docstring is its definition; the report prints these docstrings verbatim, so the text in the
report and the code cannot drift apart. Inputs are numpy arrays (xarray Datasets in the result
schema for :func:`compare`); every statistic returns plain floats.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr

#: A mode counts as collapsed when |eig_j(W_p)| < max(COLLAPSE_RTOL * max_k |eig_k(W_p)|,
#: COLLAPSE_ATOL).
COLLAPSE_RTOL = 0.05
COLLAPSE_ATOL = 1e-6

#: A statistic "agrees" when it lies within these bounds; stated in the report.
TOLERANCE = {
    "decay_rate": 0.2,  # relative deviation of the fitted rate from 2 eta, at most
    "spectrum_correlation": 0.9,  # Pearson r, at least
    "asymmetry_end": 0.05,  # absolute difference, at most
    "alignment_end": 0.1,  # absolute difference, at most
    "collapse_agreement": 0.9,  # fraction of modes classified alike, at least
    "trajectory_error": 0.25,  # relative RMS error, at most
}


def decay_rate(t: np.ndarray, residual: np.ndarray) -> float:
    """Fitted decay rate k of the conservation residual r(t).

    k is minus the ordinary least-squares slope of ln r(t) against t over all samples with
    0 < r < inf: ln r(t) ~ ln r_0 - k t. Tian Theorem 1 (and Liu Theorem 3.1) predict
    r(t) = r_0 e^{-2 eta t}, so the prediction is k = 2 eta; the agreement statistic is the relative
    deviation |k - 2 eta| / (2 eta) (the absolute deviation |k| when eta = 0).
    """
    t = np.asarray(t, dtype=float)
    r = np.asarray(residual, dtype=float)
    ok = np.isfinite(r) & (r > 0) & np.isfinite(t)
    if np.count_nonzero(ok) < 2 or np.ptp(t[ok]) == 0:
        return float("nan")
    slope = np.polyfit(t[ok], np.log(r[ok]), 1)[0]
    return float(-slope)


def relative_deviation(measured: float, predicted: float) -> float:
    """|measured - predicted| / |predicted|, or |measured| when the prediction is 0."""
    if predicted == 0:
        return float(abs(measured))
    return float(abs(measured - predicted) / abs(predicted))


def spectrum_correlation(
    eig_real: np.ndarray, eig_imag: np.ndarray | None, corr_eig: np.ndarray
) -> float:
    """Pearson correlation r between |eig_j(W_p)|^2 and eig_j(F F^T) across modes j.

    Computed at one time (the report uses the last measurement). Both spectra are sorted by
    decreasing magnitude and paired by rank; |eig_j(W_p)|^2 = Re^2 + Im^2. Liu Theorem 3.1
    (W_p^T W_p -> F F^T) with a symmetric W_p that shares the eigenbasis of F F^T predicts
    |eig_j(W_p)|^2 = eig_j(F F^T), i.e. r = 1. NaN when either spectrum is constant.
    """
    re = np.asarray(eig_real, dtype=float)
    im = np.zeros_like(re) if eig_imag is None else np.asarray(eig_imag, dtype=float)
    a = np.sort(re**2 + im**2)[::-1]
    b = np.sort(np.abs(np.asarray(corr_eig, dtype=float)))[::-1]
    n = min(a.size, b.size)
    a, b = a[:n], b[:n]
    if n < 2 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def end_difference(predicted_end: float, measured_end: float) -> float:
    """|measured - predicted| of a quantity at the last time of the run and of the simulation.

    Used for the asymmetry ||W_p - W_p^T||_F / ||W_p + W_p^T||_F (0 for a symmetric W_p; Tian
    et al. Fig. 2 and Liu et al. Fig. 4 report that W_p becomes symmetric) and for the mean
    alignment.
    """
    return float(abs(measured_end - predicted_end))


def collapsed_modes(
    eig_abs: np.ndarray, rtol: float = COLLAPSE_RTOL, atol: float = COLLAPSE_ATOL
) -> np.ndarray:
    """Mask of collapsed modes: |eig_j(W_p)| < max(rtol * max_k |eig_k(W_p)|, atol)."""
    mag = np.abs(np.asarray(eig_abs, dtype=float))
    top = np.max(mag) if mag.size else 0.0
    return mag < max(rtol * top, atol)


def collapse_agreement(predicted_abs: np.ndarray, measured_abs: np.ndarray) -> float:
    """Agreement on which modes collapsed: 1 - |f_measured - f_predicted|.

    f is the fraction of modes classified as collapsed at the last time, a mode being collapsed
    when |eig_j(W_p)| < max(0.05 max_k |eig_k(W_p)|, 1e-6) (COLLAPSE_RTOL, COLLAPSE_ATOL).
    Because modes are sorted by decreasing magnitude, the collapsed modes form the tail of the
    list; with the same number of modes in both, the statistic is exactly the fraction of modes
    classified alike.
    """
    f_pred = float(np.mean(collapsed_modes(predicted_abs)))
    f_meas = float(np.mean(collapsed_modes(measured_abs)))
    return 1.0 - abs(f_meas - f_pred)


def mean_alignment(alignment: np.ndarray, eig_abs: np.ndarray) -> float:
    """Mean of cos(W_p u_j, u_j) over the modes that did not collapse, at one time.

    u_j are the eigenvectors of the feature correlation; for a collapsed mode W_p u_j ~ 0 and the
    cosine is undefined, so those modes are left out (all modes if every mode collapsed). Tian
    Theorem 3 predicts alignment, i.e. cosines near 1. The statistic is the absolute difference
    between the run's mean alignment and the simulation's.
    """
    cos = np.asarray(alignment, dtype=float)
    alive = ~collapsed_modes(eig_abs)[: cos.size]
    if not np.any(alive):
        alive = np.ones(cos.shape, dtype=bool)
    return float(np.nanmean(cos[alive]))


def interpolate_modes(t_from: np.ndarray, values: np.ndarray, t_to: np.ndarray) -> np.ndarray:
    """Linear interpolation of a (time, mode) array onto the times ``t_to``, mode by mode."""
    values = np.asarray(values, dtype=float)
    return np.stack([np.interp(t_to, t_from, values[:, j]) for j in range(values.shape[1])], 1)


def sort_real(eig_real: np.ndarray) -> np.ndarray:
    """Real parts of the eigenvalues sorted in decreasing order along the last axis."""
    return -np.sort(-np.asarray(eig_real, dtype=float), axis=-1)


def trajectory_error(
    t_sim: np.ndarray, eig_sim: np.ndarray, t_run: np.ndarray, eig_run: np.ndarray
) -> float:
    """Relative RMS error between measured and simulated eigenvalue trajectories of W_p.

    At each time the real parts Re eig_j(W_p) are sorted in decreasing order (continuous in t,
    unlike an order by magnitude) and paired by rank. The simulation's sorted values are
    linearly interpolated onto the run's flow times that lie inside the simulated interval; over
    those times and the top min(n_sim, n_run) ranks, error = sqrt(mean (run - sim)^2) /
    sqrt(mean sim^2). 0 for identical trajectories; NaN when no run time lies inside the
    simulated interval.
    """
    t_sim, t_run = np.asarray(t_sim, dtype=float), np.asarray(t_run, dtype=float)
    inside = (t_run >= t_sim[0]) & (t_run <= t_sim[-1])
    n = min(np.shape(eig_sim)[1], np.shape(eig_run)[1])
    if not np.any(inside):
        return float("nan")
    sim = interpolate_modes(t_sim, sort_real(eig_sim)[:, :n], t_run[inside])
    run = sort_real(eig_run)[inside, :n]
    ok = np.isfinite(run)
    scale = np.sqrt(np.mean(sim[ok] ** 2))
    if scale == 0:
        return float("nan")
    return float(np.sqrt(np.mean((run[ok] - sim[ok]) ** 2)) / scale)


@dataclass(frozen=True)
class Agreement:
    """One row of the agreement table."""

    key: str
    quantity: str
    predicted: float
    measured: float
    statistic: str
    value: float

    @property
    def agrees(self) -> bool | None:
        """Within :data:`TOLERANCE`; None when the statistic could not be computed (NaN)."""
        if not np.isfinite(self.value):
            return None
        bound = TOLERANCE[self.key]
        larger_is_better = self.key in ("spectrum_correlation", "collapse_agreement")
        return bool(self.value >= bound) if larger_is_better else bool(self.value <= bound)


#: The functions whose docstrings define each agreement statistic of the report.
DEFINITIONS: dict[str, tuple[Callable, ...]] = {
    "decay_rate": (decay_rate,),
    "spectrum_correlation": (spectrum_correlation,),
    "asymmetry_end": (end_difference,),
    "alignment_end": (mean_alignment,),
    "collapse_agreement": (collapse_agreement,),
    "trajectory_error": (trajectory_error,),
}


def definition(key: str) -> str:
    """The docstrings of the functions that define the statistic ``key``, as one paragraph."""
    return " ".join(" ".join(inspect.getdoc(f).split()) for f in DEFINITIONS[key])


def _last(ds: xr.Dataset, name: str, axis: str) -> np.ndarray:
    return np.asarray(ds[name].isel({axis: -1}).values, dtype=float)


def _eig_abs(ds: xr.Dataset, axis: str) -> np.ndarray:
    re = _last(ds, "wp_eig_real", axis)
    im = _last(ds, "wp_eig_imag", axis) if "wp_eig_imag" in ds else np.zeros_like(re)
    return np.hypot(re, im)


def compare(
    sim: xr.Dataset,
    run: xr.Dataset,
    eta: float,
    time_scale: float = 1.0,
    trained_predictor: bool = True,
) -> list[Agreement]:
    """Every agreement statistic that the two files allow, for a run with weight decay ``eta``.

    ``sim`` has dimension ``time``; ``run`` has dimension ``epoch`` and a ``time`` coordinate,
    multiplied by ``time_scale`` to put it on the simulation's time axis. Statistics whose
    variables are missing from either file are left out, and so is the decay rate when the
    run's W_p is not trained by gradient descent (``trained_predictor=False``: DirectPred and
    DirectCopy set W_p from the feature correlation, so the conservation law does not apply).
    """
    out: list[Agreement] = []
    t_run = np.asarray(run["time"].values, dtype=float) * time_scale
    t_sim = np.asarray(sim["time"].values, dtype=float)
    if "conservation_residual" in run and trained_predictor:
        k = decay_rate(t_run, run["conservation_residual"].values)
        out.append(
            Agreement(
                "decay_rate",
                "decay rate of the conservation residual",
                2 * eta,
                k,
                "|k - 2 eta| / (2 eta)",
                relative_deviation(k, 2 * eta),
            )
        )
    if all(v in run for v in ("wp_eig_real", "corr_eig")):
        im = _last(run, "wp_eig_imag", "epoch") if "wp_eig_imag" in run else None
        r = spectrum_correlation(
            _last(run, "wp_eig_real", "epoch"), im, _last(run, "corr_eig", "epoch")
        )
        out.append(
            Agreement(
                "spectrum_correlation",
                "|eig(W_p)|^2 vs eig(F F^T) at the end",
                1.0,
                r,
                "Pearson r",
                r,
            )
        )
    if "wp_asymmetry" in run and "wp_asymmetry" in sim:
        a_sim = float(_last(sim, "wp_asymmetry", "time"))
        a_run = float(_last(run, "wp_asymmetry", "epoch"))
        out.append(
            Agreement(
                "asymmetry_end",
                "asymmetry of W_p at the end",
                a_sim,
                a_run,
                "|difference|",
                end_difference(a_sim, a_run),
            )
        )
    has_eig = "wp_eig_real" in run and "wp_eig_real" in sim
    if has_eig and "alignment_cos" in run and "alignment_cos" in sim:
        al_sim = mean_alignment(_last(sim, "alignment_cos", "time"), _eig_abs(sim, "time"))
        al_run = mean_alignment(_last(run, "alignment_cos", "epoch"), _eig_abs(run, "epoch"))
        out.append(
            Agreement(
                "alignment_end",
                "alignment cos(W_p u_j, u_j) at the end",
                al_sim,
                al_run,
                "|difference|",
                end_difference(al_sim, al_run),
            )
        )
    if has_eig:
        e_sim, e_run = _eig_abs(sim, "time"), _eig_abs(run, "epoch")
        out.append(
            Agreement(
                "collapse_agreement",
                "fraction of collapsed modes",
                float(np.mean(collapsed_modes(e_sim))),
                float(np.mean(collapsed_modes(e_run))),
                "1 - |difference|",
                collapse_agreement(e_sim, e_run),
            )
        )
        err = trajectory_error(t_sim, sim["wp_eig_real"].values, t_run, run["wp_eig_real"].values)
        out.append(
            Agreement(
                "trajectory_error",
                "eigenvalue trajectories of W_p",
                float("nan"),
                float("nan"),
                "relative RMS error",
                err,
            )
        )
    return out


def collapsed_description(eig_abs: np.ndarray) -> str:
    """Which modes (1-based ranks) collapsed, as text: 'none', 'all', or 'modes 5-8 of 8'."""
    mask = collapsed_modes(eig_abs)
    n = mask.size
    idx = np.flatnonzero(mask) + 1
    if idx.size == 0:
        return f"none of {n}"
    if idx.size == n:
        return f"all {n}"
    if np.all(np.diff(idx) == 1):
        return f"modes {idx[0]}-{idx[-1]} of {n}" if idx.size > 1 else f"mode {idx[0]} of {n}"
    return f"modes {', '.join(map(str, idx))} of {n}"
