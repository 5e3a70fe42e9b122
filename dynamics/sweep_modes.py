"""The per-mode model (scenario ``eigenmodes``) integrated over many grid points at once.

Each grid point is one row of :func:`dynamics.batch_integrate.integrate_batch`: the state of
:class:`~dynamics.models.eigenmodes.EigenmodeModel` (p_j, s_j, tau_j for every mode j) and the
right-hand side :func:`~dynamics.models.eigenmodes.mode_rhs` evaluated for all rows with per-row
eta, alpha_p, beta, sigma^2. Points are grouped by the swept parameters that change the initial
state or the structure (alpha_p through s_j(0) = p_j(0)^2/alpha_p + c0, p0, s0, c0, tau0,
simsiam); every group is integrated in one vectorised run (the seed is unused by this model).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from dynamics.batch_integrate import integrate_batch
from dynamics.models.eigenmodes import EigenmodeParams, fixed_points, mode_fates, mode_rhs

#: parameters that do not change the initial state or the structure (vectorised without
#: grouping): the right-hand side's eta, beta, sigma^2, and the seed (unused by this model)
RHS_ONLY = ("eta", "beta", "sigma2", "seed")
#: parameters passed per row to the right-hand side
RHS_PARAMS = ("eta", "alpha_p", "beta", "sigma2")


def _rhs(dim: int, simsiam: bool):
    """The per-mode right-hand side on states (3 dim, b), filling ``out`` (3 dim, b)."""

    def rhs(t, y, eta, alpha_p, beta, sigma2, out):
        blocks = (slice(0, dim), slice(dim, 2 * dim), slice(2 * dim, 3 * dim))
        p, s, tau = (y[b] for b in blocks)
        mode_rhs(p, s, tau, eta, alpha_p, beta, sigma2, simsiam, out=tuple(out[b] for b in blocks))
        return out

    return rhs


def run_mode_points(
    base: EigenmodeParams,
    columns: dict[str, np.ndarray],
    n_points: int,
    t_end: float,
    rtol: float,
    atol: float,
    blowup: float,
    conv_tol: float,
    progress: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Integrate ``n_points`` points, the swept values in ``columns`` (name -> (n_points,)).

    Returns per point: the final p_j (``wp_eig_real``), s_j, tau_j (n_points, dim); which modes
    collapsed or converged to p*_+ (closed forms at tau = 1, as the scenario's summary);
    ``time_to_converge`` (t_end where it never converged), ``converged``, ``diverged`` and the
    time reached ``t_reached``.
    """
    d = base.dim
    values = {
        name: np.broadcast_to(np.asarray(columns.get(name, getattr(base, name)), float), n_points)
        for name in RHS_PARAMS
    }
    keys = [name for name in columns if name not in RHS_ONLY]
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(*(columns[k].tolist() for k in keys), strict=True)):
        groups.setdefault(key, []).append(i)
    if not keys:
        groups = {(): list(range(n_points))}
    y = np.empty((n_points, 3 * d))
    t_reached = np.empty(n_points)
    diverged = np.empty(n_points, dtype=bool)
    t_conv = np.empty(n_points)
    for key, members in groups.items():
        idx = np.array(members)
        params = dataclasses.replace(base, **dict(zip(keys, key, strict=True)))
        y0 = np.concatenate(params.initial_modes())
        args = tuple(np.repeat(values[n][idx, None], d, axis=1) for n in RHS_PARAMS)
        result = integrate_batch(
            _rhs(d, params.simsiam),
            np.tile(y0, (idx.size, 1)),
            t_end,
            args=args,
            rtol=rtol,
            atol=atol,
            blowup=blowup,
            conv_tol=conv_tol,
            progress=progress,
            fills_out=True,
        )
        y[idx], t_reached[idx] = result.y, result.t
        diverged[idx], t_conv[idx] = result.diverged, result.t_converge
    p, s, tau = y[:, :d], y[:, d : 2 * d], y[:, 2 * d :]
    p_plus, p_minus = (
        np.nan_to_num(v, nan=0.0) for v in fixed_points(values["eta"], 1.0, values["sigma2"])
    )
    collapsed, converged = mode_fates(
        p, p_plus[:, None], p_minus[:, None], values["sigma2"][:, None]
    )
    done = ~np.isnan(t_conv) & ~diverged
    return {
        "wp_eig_real": p,
        "s": s,
        "tau": tau,
        "mode_collapsed": collapsed,
        "mode_converged": converged,
        "time_to_converge": np.where(done, t_conv, t_reached),
        "converged": done,
        "diverged": diverged,
        "t_reached": t_reached,
    }
