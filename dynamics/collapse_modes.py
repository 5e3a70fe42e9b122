"""The modes of a run's measured moments X, X' and their closed-form collapse thresholds.

The per-mode reduction (docs/theory.md (D7), Tian et al.'s eqs. 11-13, with the data moments of the
flow docs/theory.md (D1)). When X and X' commute, with common unit eigenvectors v_j (X v_j = x_j
v_j, X' v_j = x'_j v_j, lam_j = x_j + x'_j), the weights W = sum_j a_j v_j^T, W_p = sum_j p_j a_j
a_j^T / |a_j|^2, W_a = tau_j W on each v_j (orthogonal a_j) stay of that form, and each mode, u_j =
|a_j|^2, follows

    dp_j/dt   = alpha_p u_j (tau_j x_j - p_j lam_j) - eta p_j
    du_j/dt   = 2 u_j p_j (tau_j x_j - p_j lam_j) - 2 eta u_j
    dtau_j/dt = beta (1 - tau_j) - tau_j (p_j (tau_j x_j - p_j lam_j) - eta)

which is Tian's per-mode system (docs/theory.md (D7), s_j = u_j) with sigma^2 =
x'_j/x_j, eta/x_j and beta/x_j, in the time x_j t: the map integrates it with the vectorised
per-mode sweep (:func:`dynamics.sweep.modes.run_mode_points`). A non-collapsed fixed point
needs p_j (x_j - p_j lam_j) = eta (tau_j = 1 there), so it exists iff

    eta <= eta*_j = x_j^2 / (4 (x_j + x'_j))         (weight decay D eta*_j)

(docs/theory.md (D9), tau^2/(4(1+sigma^2)), for X = I; DirectSet's tau^2 c_j^2 / (4 (c_j + s_j^2))).
The threshold holds at any EMA rate and alpha_p; these move the collapse basin p_j < p*_- and the
time a mode takes, which is what the integration to the run's horizon adds.

When X and X' do not commute. The modes are the branches of the symmetric pencil X - p S,
S = X + X': mode j's threshold is eta*_j = max_p p e_j(p), e_j the j-th largest eigenvalue of
X - p S, and v_j the eigenvector at the maximiser p*_j, with x_j = v_j^T X v_j, x'_j = v_j^T X'
v_j (then p*_j = x_j / (2 lam_j) and eta*_j = x_j^2/(4 lam_j) as above). Exact: the commuting
case (v_j the common eigenvectors), and in general the threshold of a single surviving mode (a
rank-one fixed point W = a v^T needs p (X - p S) v = eta v). An approximation: the per-mode
integration and the thresholds of several surviving modes, which the non-orthogonal v_j couple
(neglected). How far the run's moments are from commuting is written to the result:
``commutator_ratio`` = ||X X' - X' X||_F / (2 ||X X'||_F) (0: commuting, at most 1) and
``offdiagonal_ratio``, the share of ||X'||_F off the diagonal in the eigenbasis of X; the
thresholds from that diagonal (the first-order estimate) are stored beside the pencil's."""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.optimize import minimize_scalar

#: a mode is alive when u_j >= this fraction of its smallest non-collapsed fixed point
ALIVE_FRACTION = 0.25
#: points of the scan of p in (0, 1] before each mode's maximiser is refined
P_SCAN = 400


def commutator_ratio(x_corr: np.ndarray, aug_cov: np.ndarray) -> float:
    """||X X' - X' X||_F / (2 ||X X'||_F): 0 when X and X' commute, at most 1."""
    product = x_corr @ aug_cov
    norm = np.linalg.norm(product)
    return float(np.linalg.norm(product - product.T) / (2 * norm)) if norm > 0 else 0.0


def offdiagonal_ratio(x_corr: np.ndarray, aug_cov: np.ndarray) -> float:
    """||offdiag(V^T X' V)||_F / ||X'||_F, V the eigenvectors of X."""
    _, vecs = np.linalg.eigh(x_corr)
    rotated = vecs.T @ aug_cov @ vecs
    norm = np.linalg.norm(rotated)
    return float(np.linalg.norm(rotated - np.diag(np.diag(rotated))) / norm) if norm > 0 else 0.0


def closed_form_threshold(x: np.ndarray, x_aug: np.ndarray) -> np.ndarray:
    """eta*_j = x_j^2 / (4 (x_j + x'_j)) (0 where x_j <= 0: no non-collapsed fixed point)."""
    x, x_aug = np.asarray(x, float), np.asarray(x_aug, float)
    lam = x + x_aug
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((x > 0) & (lam > 0), x**2 / (4 * lam), 0.0)


@dataclasses.dataclass(frozen=True)
class Modes:
    """The modes of (X, X'): rows of ``directions`` are the v_j, strongest threshold first."""

    directions: np.ndarray  # (k, k)
    x: np.ndarray
    x_aug: np.ndarray
    p_critical: np.ndarray
    threshold: np.ndarray  # eta*_j, flow units
    diagonal_threshold: np.ndarray  # from diag(V^T X' V), V the eigenvectors of X


def pencil_modes(x_corr: np.ndarray, aug_cov: np.ndarray) -> Modes:
    """Each mode j: maximise p e_j(p) over p in (0, 1] (e_j the j-th eigenvalue of X - p S;
    X - p S <= 0 for p >= 1 as X' >= 0), v_j its eigenvector there (module docstring)."""
    view = x_corr + aug_cov
    k = x_corr.shape[0]

    def branch(p: float, j: int) -> tuple[float, np.ndarray]:
        values, vectors = np.linalg.eigh(x_corr - p * view)
        return values[k - 1 - j], vectors[:, k - 1 - j]

    ps = np.linspace(0, 1, P_SCAN + 1)[1:]
    scan = np.array(
        [ps[i] * np.linalg.eigvalsh(x_corr - ps[i] * view)[::-1] for i in range(ps.size)]
    )
    directions, p_crit = np.zeros((k, k)), np.zeros(k)
    for j in range(k):
        i = int(np.argmax(scan[:, j]))
        lo, hi = ps[max(i - 1, 0)] if i > 0 else 0.0, ps[min(i + 1, ps.size - 1)]
        best = minimize_scalar(
            lambda p, j=j: -p * branch(p, j)[0], bounds=(lo, hi), method="bounded",
            options={"xatol": 1e-10},
        )  # fmt: skip
        p_crit[j] = best.x
        directions[j] = branch(best.x, j)[1]
    x = np.einsum("ji,ik,jk->j", directions, x_corr, directions)
    x_aug = np.einsum("ji,ik,jk->j", directions, aug_cov, directions)
    eig_x, vecs = np.linalg.eigh(x_corr)
    diagonal = closed_form_threshold(eig_x, np.diag(vecs.T @ aug_cov @ vecs))
    threshold = closed_form_threshold(x, x_aug)
    order = np.argsort(-threshold, kind="stable")
    return Modes(
        directions[order], x[order], x_aug[order], p_crit[order], threshold[order],
        np.sort(diagonal)[::-1],
    )  # fmt: skip


def mode_initial(modes: Modes, w0, wp0, wa0) -> dict[str, np.ndarray]:
    """u_j(0) = |W(0) v_j|^2, p_j(0) = a^T W_p(0) a / |a|^2 (a = W(0) v_j), tau_j(0) =
    <W_a(0) v_j, a> / |a|^2."""
    a = np.asarray(w0) @ modes.directions.T  # (d, k): column j is a_j
    aa = np.asarray(wa0) @ modes.directions.T
    u = np.sum(a * a, axis=0)
    safe = np.where(u > 0, u, 1.0)
    p = np.einsum("ij,ik,kj->j", a, np.asarray(wp0), a) / safe
    tau = np.where(u > 0, np.sum(aa * a, axis=0) / safe, 1.0)
    return {"u": u, "p": p, "tau": tau}


def alive_weight(modes: Modes, alpha_p) -> np.ndarray:
    """The smallest non-collapsed u_j, (x_j / (2 lam_j))^2 / alpha_p, times ALIVE_FRACTION."""
    lam = modes.x + modes.x_aug
    with np.errstate(divide="ignore", invalid="ignore"):
        p_low = np.where(lam > 0, modes.x / (2 * lam), 0.0)
    return ALIVE_FRACTION * p_low**2 / np.asarray(alpha_p, float)[..., None]


def at_most(alive: np.ndarray, strength: np.ndarray, width: int) -> np.ndarray:
    """``alive`` (points, modes) with at most ``width`` modes per point, the strongest kept:
    W has ``width`` rows, so no more modes can be alive."""
    if alive.shape[1] <= width:
        return alive
    order = np.argsort(-np.where(alive, np.broadcast_to(strength, alive.shape), -np.inf), axis=1)
    keep = np.zeros_like(alive)
    np.put_along_axis(keep, order[:, :width], True, axis=1)
    return alive & keep
