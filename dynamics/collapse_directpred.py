"""DirectPred's collapse map: the per-mode reduction with W_p set from the features' correlation.

DirectPred (Tian, Chen & Ganguli 2021, eqs. 18-19; docs/theory.md (L10);
:mod:`dynamics.models.directpred`) does not train W_p: W_p = U diag(p(s)) U^T from a running
average F_hat of E[f f^T] = W (X + X') W^T, dF_hat/dt = rho (W (X + X') W^T - F_hat). In the
per-mode form of :mod:`dynamics.collapse_modes` (W = sum_j a_j v_j^T, the a_j orthogonal) F_hat
has the eigenvalue s_j along a_j, and with the rule of the paper, p_j = s_j^alpha + eps max_k s_k
(alpha = 1/2: DirectPred; DirectSet(alpha): ``--exponent``), each mode follows

    du_j/dt   = 2 u_j (p_j (tau_j x_j - p_j lam_j) - eta)
    dtau_j/dt = beta (1 - tau_j) - tau_j (p_j (tau_j x_j - p_j lam_j) - eta)
    ds_j/dt   = rho (lam_j u_j - s_j)

(W and W_a as for the trained predictor, Lemma 1). A non-collapsed fixed point needs p_j (x_j -
p_j lam_j) = eta at tau_j = 1, as for the trained predictor, and the rule reaches every p_j >= 0:
the thresholds are the same closed form eta*_j = x_j^2 / (4 lam_j) (DirectSet's tau^2 c_j^2 /
(4 (c_j + s_j^2))), whatever alpha and eps. What differs is the basin and the time: p_j follows
u_j (p_j = (lam_j u_j)^alpha at rest, eps = 0), so a mode whose p_j starts below p*_- decays even
below its threshold, and the stable point is p*_+. The eps term couples the modes of a grid
point (max_k s_k): they are integrated together. The convention 'code' (scale-free) has no
non-collapsed fixed point in the unnormalised loss (:mod:`dynamics.models.directpred`): not
offered. Start: s_j(0) = lam_j u_j(0) (F_hat(0) = W(0) (X + X') W(0)^T, as the scenario
``directpred``); a mode is alive when u_j is at least :data:`~dynamics.collapse_modes.
ALIVE_FRACTION` of its smallest non-collapsed fixed point, s_j^alpha + eps s_j = x_j / (2 lam_j).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dynamics.batch_integrate import integrate_batch
from dynamics.collapse_modes import ALIVE_FRACTION, Modes
from dynamics.integrate import SaveAt, SolverSettings
from dynamics.models.directpred import paper_fixed_point


@dataclasses.dataclass(frozen=True)
class DirectPredRule:
    """The rule p = s^exponent + eps max s and the rate rho of F_hat (flow time)."""

    exponent: float = 0.5
    eps: float = 0.1
    rho: float = 5.0


def mode_system(modes: Modes, rule: DirectPredRule):
    """dy/dt of columns (grid points) whose rows are (u_1..u_k, tau_1..tau_k, s_1..s_k)."""
    k = modes.x.size
    x, lam = modes.x[:, None], (modes.x + modes.x_aug)[:, None]

    def rhs(t, y, a):
        u, tau, s = y[:k], y[k : 2 * k], np.maximum(y[2 * k :], 0.0)
        p = s**rule.exponent + rule.eps * s.max(axis=0)
        growth = p * (tau * x - p * lam) - a["eta"]
        return np.concatenate(
            [2 * u * growth, a["beta"] * (1 - tau) - tau * growth, rule.rho * (lam * u - s)]
        )

    return rhs


def integrate_directpred(
    modes: Modes, start: dict, rates: dict, rule: DirectPredRule, solver: SolverSettings
) -> np.ndarray:
    """u_j at the horizon for every grid point (rows) and mode (columns) under DirectPred."""
    n, k = rates["eta"].size, modes.x.size
    lam = modes.x + modes.x_aug
    y0 = np.concatenate([start["u"], start["tau"], lam * start["u"]])
    u_final = np.zeros((n, k))
    rhs = mode_system(modes, rule)
    for horizon in np.unique(rates["horizon"]):
        at = np.flatnonzero(rates["horizon"] == horizon)
        args = {"eta": rates["eta"][at], "beta": rates["beta"][at]}
        columns = np.repeat(y0[:, None], at.size, axis=1)
        out = integrate_batch(rhs, columns, SaveAt.final(float(horizon)), solver, args)
        u_final[at] = out.y[:k].T
    return u_final


def directpred_alive_weight(modes: Modes, rule: DirectPredRule) -> np.ndarray:
    """ALIVE_FRACTION of the smallest non-collapsed u_j: s_j / lam_j with s_j^alpha + eps s_j =
    x_j / (2 lam_j) (0 for a mode without a non-collapsed fixed point)."""
    lam = modes.x + modes.x_aug
    vertex = np.where(lam > 0, modes.x / (2 * np.where(lam > 0, lam, 1.0)), 0.0)
    s = np.array([paper_fixed_point(v, rule.eps, rule.exponent) for v in vertex])
    return ALIVE_FRACTION * np.where(lam > 0, s / np.where(lam > 0, lam, 1.0), 0.0)
