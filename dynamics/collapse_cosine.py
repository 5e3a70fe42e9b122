"""The cosine loss's collapse map: Bao 2025's concentrated cosine modes on a run's modes.

:func:`dynamics.models.cosine_modes.mode_survival` (docs/theory.md (D16)) says which modes survive
the cosine loss in Tian's isotropic setting (X = I, X' = sigma^2 I) for SimSiam (tau = 1). A run's
modes are not isotropic: the map applies it with one sigma^2 = sum_j x'_j / sum_j x_j over the
modes with x_j > 0, time and rates in units of their mean x (x t, eta / x), from the run's p_j(0)
and u_j(0); a mode with p_j(0) <= 0 or u_j(0) = 0 counts as dead, and the EMA rate does not enter
(tau = 1). These are approximations, stated in the result. The loss is scale-free: weight decay
shrinks the weights as e^{-eta t} at any eta and collapses no normalised mode, so no mode has a
threshold (+inf), and the closed-form count is every mode with p_j(0) > 0.
"""

from __future__ import annotations

import numpy as np

from dynamics.collapse_modes import Modes
from dynamics.models.cosine_modes import mode_survival


def cosine_live(modes: Modes, start: dict) -> np.ndarray:
    """The modes the cosine flow can keep: x_j > 0, p_j(0) > 0 and u_j(0) > 0."""
    return (modes.x > 0) & (start["p"] > 0) & (start["u"] > 0)


def cosine_alive(modes: Modes, start: dict, rates: dict) -> np.ndarray:
    """Alive at the horizon per grid point (rows) and mode (columns) under the cosine loss: one
    :func:`mode_survival` per distinct (eta, alpha_p, horizon) (module docstring)."""
    alive = np.zeros((rates["eta"].size, modes.x.size), bool)
    live = cosine_live(modes, start)
    if not live.any():
        return alive
    scale = float(np.mean(modes.x[live]))
    sigma2 = float(np.sum(modes.x_aug[live]) / np.sum(modes.x[live]))
    keys = np.stack([rates["eta"], rates["alpha_p"], rates["horizon"]], axis=1)
    distinct, inverse = np.unique(keys, axis=0, return_inverse=True)
    for i, (eta, alpha_p, horizon) in enumerate(distinct):
        survive = mode_survival(start["p"][live], eta / scale, sigma2, "cosine", alpha_p,
                                t_end=horizon * scale, s0=start["u"][live])  # fmt: skip
        alive[np.ix_(inverse.ravel() == i, np.flatnonzero(live))] = survive
    return alive
