"""The ||Sigma - I|| statistic of a prediction against its run (registered in reports.compare).

A run measures the decorrelation of its features on held-out clean images,
``sigma_corr_mean_sq`` (the mean squared off-diagonal Pearson correlation over alive dimensions,
||Sigma - I||_F^2 / (d (d - 1)) when none is dead; Liu et al. 2022, Fig. 1 plots the total); a
simulation derived from the run predicts the same statistic from its W(t) and the images' moments
(:mod:`dynamics.predicted_sigma`). The comparison reads it as the trajectory field ``sigma``.
"""

from __future__ import annotations

import numpy as np

#: the variable of a run and of a derived simulation that the statistic compares
SIGMA_VARIABLE = "sigma_corr_mean_sq"


def sigma_error(predicted: np.ndarray, measured: np.ndarray) -> float:
    """sqrt(sum_t (m(t) - p(t))^2 / sum_t p(t)^2) of the mean squared off-diagonal correlation
    (||Sigma - I||_F^2 / (d (d-1)) on the run's held-out images) over the times where both are
    defined: the relative error of the predicted decorrelation trajectory, 0 when identical."""
    ok = np.isfinite(predicted) & np.isfinite(measured)
    den = np.sum(predicted[ok] ** 2)
    if not np.any(ok) or den <= 0:
        return float("nan")
    return float(np.sqrt(np.sum((measured[ok] - predicted[ok]) ** 2) / den))
