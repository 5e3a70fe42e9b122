"""The W_p spectrum statistics of a prediction against its run (registered in reports.compare).

Each is an error (0 = identical) between the simulated and the measured W_p trajectories
(T, d, d); modes are paired by eigenvector overlap (the Hungarian assignment on
|<u_i, v_j>|), never by sorted rank.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from dynamics.observables import asymmetry, collapsed


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


def collapsed_at_end(x: np.ndarray) -> np.ndarray:
    """Which modes of the symmetric part of W_p have collapsed at the last time, by the
    toolkit's one criterion (``dynamics.observables.collapsed``) against the largest such
    eigenvalue magnitude of the trajectory."""
    scale = np.max(np.abs(np.linalg.eigvalsh((x + np.swapaxes(x, -1, -2)) / 2)))
    return collapsed(np.linalg.eigvalsh((x[-1] + x[-1].T) / 2), scale)


def collapse_error(predicted: np.ndarray, measured: np.ndarray) -> float:
    """Fraction of modes whose collapse the prediction gets wrong, at the last time; computed
    only where the prediction has a collapsed mode by the run's end (its collapse is due).

    Modes are the eigenvalues of the symmetric part of W_p at the last time, paired by
    eigenvector overlap (:func:`paired_spectra`); a mode is collapsed by the toolkit's one
    criterion (``dynamics.observables.collapsed``: below 2% of a reference scale), the scale
    being the largest such eigenvalue magnitude of the trajectory.
    """
    if not np.any(collapsed_at_end(predicted)):
        return float("nan")
    sim, run = paired_spectra(predicted[-1], measured[-1])
    scales = [
        np.max(np.abs(np.linalg.eigvalsh((x + np.swapaxes(x, -1, -2)) / 2)))
        for x in (predicted, measured)
    ]
    return float(np.mean(collapsed(sim, scales[0]) != collapsed(run, scales[1])))
