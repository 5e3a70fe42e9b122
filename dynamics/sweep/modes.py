"""The per-mode model (scenario ``eigenmodes``) integrated over many grid points at once.

The modes of :class:`~dynamics.models.eigenmodes.EigenmodeModel` are independent (one tau_j per
mode, docs/theory.md (D7)), so every (grid point, mode) pair is one column of
:func:`dynamics.batch_integrate.integrate_batch`, with its own initial state, parameters and
step sizes. s_j is not integrated: the invariant s_j - p_j^2/alpha_p = c_j e^{-2 eta t} (exact)
gives it from p_j, and the state of a column is (p_j, tau_j), or p_j alone for SimSiam (tau_j = 1),
integrated by :func:`~dynamics.models.eigenmodes.mode_rhs_on_invariant`. A point's outputs are
reduced over its modes: it diverged when one of its modes did, and its rate max|dy/dt| over
(p_j, s_j, tau_j) of all its modes stays below ``conv_tol`` after the latest of its modes'
convergence times.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dynamics.array_backend import NumpyBackend
from dynamics.batch_integrate import integrate_batch
from dynamics.integrate import SaveAt, SolverSettings
from dynamics.models.eigenmodes import (
    EigenmodeParams,
    fixed_points,
    mode_fates,
    mode_rhs_on_invariant,
)

#: per-point parameters of the right-hand side (sigma2 enters as lam = 1 + sigma2, and the
#: initial state as q = alpha_p c_j), and those that set the initial state
RHS_PARAMS = ("eta", "sigma2", "beta", "alpha_p")
INITIAL_PARAMS = ("p0", "s0", "c0", "alpha_p", "tau0", "simsiam")


def initial_columns(base: EigenmodeParams, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per point and mode (n_points, dim): p_j(0), tau_j(0) and q_j = alpha_p c_j.

    ``values`` holds every parameter of INITIAL_PARAMS per point; c_j = s_j(0) - p_j(0)^2/alpha_p
    is c0 when s0 = 'parabola', else it follows from the listed s_j(0).
    """
    n = values["alpha_p"].size
    p0, q = np.empty((n, base.dim)), np.empty((n, base.dim))
    alpha_p = values["alpha_p"][:, None]
    for texts in set(zip(values["p0"].tolist(), values["s0"].tolist(), strict=True)):
        at = (values["p0"] == texts[0]) & (values["s0"] == texts[1])
        p, s, _ = dataclasses.replace(base, p0=texts[0], s0=texts[1]).initial_modes()
        p0[at] = p
        if texts[1] == "parabola":
            q[at] = alpha_p[at] * values["c0"][at, None]
        else:
            q[at] = alpha_p[at] * s - p**2
    tau0 = np.where(values["simsiam"], 1.0, values["tau0"])
    return {"p": p0, "tau": np.broadcast_to(tau0[:, None], p0.shape), "q": q}


def mode_system(xp, simsiam: bool, decaying: bool):
    """(rhs, rate) of columns with state (p, tau), or p alone for SimSiam; their parameters
    ``a`` name per column eta, lam = 1 + sigma^2, beta, alpha_p and q = alpha_p c_j.

    rhs: mode_rhs_on_invariant with decay = q e^{-2 eta t}; rate: max(|dp/dt|, |ds/dt|,
    |dtau/dt|) with ds/dt = 2 (p dp/dt - eta decay) / alpha_p (the invariant differentiated).
    """

    def decay(t, a):
        return a["q"] * xp.exp(-2.0 * a["eta"] * t) if decaying else None

    def rhs(t, y, a):
        tau = 1.0 if simsiam else y[1]
        dp, dtau = mode_rhs_on_invariant(
            y[0], tau, decay(t, a), a["eta"], a["lam"], a["beta"], simsiam
        )
        return (dp,) if simsiam else (dp, dtau)

    def rate(t, y, f, a):
        ds = y[0] * f[0]
        if decaying:
            ds -= a["eta"] * decay(t, a)
        ds *= 2.0 / a["alpha_p"]
        return xp.maximum(xp.amax(abs(f)), abs(ds))

    return rhs, rate


def run_mode_points(
    base: EigenmodeParams,
    columns: dict[str, np.ndarray],
    n_points: int,
    saveat: SaveAt,
    solver: SolverSettings,
    conv_tol: float,
    xp: NumpyBackend | None = None,
) -> dict[str, np.ndarray]:
    """Integrate ``n_points`` points, the swept values in ``columns`` (name -> (n_points,)), the
    other parameters those of ``base``, to the end of ``saveat`` (:meth:`SaveAt.final`).

    Returns per point: the final p_j (``wp_eig_real``), s_j, tau_j (n_points, dim) (each mode
    at the time it reached: t_end, or its last state before it diverged); which modes collapsed
    or converged to p*_+ (closed forms at tau = 1, as the scenario's summary);
    ``time_to_converge`` (the time reached where it never converged), ``converged``,
    ``diverged`` and the time reached ``t_reached`` (its modes' earliest).
    """
    xp = xp or NumpyBackend()
    d = base.dim
    values = {
        name: np.broadcast_to(np.asarray(columns.get(name, getattr(base, name))), n_points)
        for name in {*RHS_PARAMS, *INITIAL_PARAMS}
    }
    start = initial_columns(base, values)
    per_mode = {n: np.repeat(values[n].astype(float), d) for n in RHS_PARAMS}
    per_mode["lam"] = 1.0 + per_mode.pop("sigma2")
    per_mode["q"] = start["q"].ravel()
    simsiam = np.repeat(values["simsiam"].astype(bool), d)
    shape = (n_points * d,)
    p, tau, t_reached, t_conv = (np.empty(shape) for _ in range(4))
    diverged = np.empty(shape, dtype=bool)
    for group in (False, True):
        at = np.flatnonzero(simsiam == group)
        if at.size == 0:
            continue
        y0 = [start["p"].ravel()[at]] + ([] if group else [start["tau"].ravel()[at]])
        args = {name: column[at] for name, column in per_mode.items()}
        rhs, rate = mode_system(xp, group, bool(np.any(args["q"] != 0)))
        result = integrate_batch(
            rhs, np.stack(y0), saveat, solver, args, conv_tol=conv_tol, rate=rate, xp=xp
        )
        p[at] = result.y[0]
        tau[at] = 1.0 if group else result.y[1]
        t_reached[at], t_conv[at], diverged[at] = result.t, result.t_converge, result.diverged
    eta, alpha_p = per_mode["eta"], per_mode["alpha_p"]
    s = (p**2 + per_mode["q"] * np.exp(-2.0 * eta * t_reached)) / alpha_p
    p, s, tau = (v.reshape(n_points, d) for v in (p, s, tau))
    diverged = diverged.reshape(n_points, d).any(axis=1)
    t_reached = t_reached.reshape(n_points, d).min(axis=1)
    t_conv = t_conv.reshape(n_points, d).max(axis=1)  # NaN when a mode never converged
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
