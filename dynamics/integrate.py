"""One wrapper around ``scipy.integrate.solve_ivp`` for every model of the package.

It evaluates the solution on a uniform grid of output times, stops at a blow-up (a state entry
beyond ``blowup`` in absolute value, or a non-finite right-hand side) and reports where it
happened, so that a diverging run is never mistaken for a finished one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp
from tqdm import tqdm

METHODS = ("RK45", "DOP853", "RK23", "Radau", "BDF", "LSODA")


@dataclass(frozen=True)
class Trajectory:
    """The integrated states ``y`` (T, n) at output times ``t`` (T,).

    ``complete`` is False when the run stopped early; ``failure`` then says why and ``t_fail``
    when, ``failed_index`` which state entry (or -1 when unknown).
    """

    t: np.ndarray
    y: np.ndarray
    complete: bool
    failure: str = ""
    t_fail: float = float("nan")
    failed_index: int = -1
    n_rhs: int = 0


def output_times(t_end: float, n_out: int) -> np.ndarray:
    """``n_out`` uniformly spaced output times from 0 to ``t_end``."""
    return np.linspace(0.0, t_end, n_out)


def integrate(
    rhs: Callable[[float, np.ndarray], np.ndarray],
    y0: np.ndarray,
    t_end: float,
    n_out: int = 401,
    method: str = "DOP853",
    rtol: float = 1e-10,
    atol: float = 1e-12,
    blowup: float = 1e6,
    progress: bool = False,
) -> Trajectory:
    """Integrate dy/dt = rhs(t, y) from y0 on [0, t_end] and sample it at ``n_out`` times.

    The run stops, with ``complete=False``, when max|y| reaches ``blowup`` (a terminal event) or
    when the right-hand side returns NaN or infinity. ``progress`` shows a bar over flow time
    (on a terminal only).
    """
    if method not in METHODS:
        raise ValueError(f"unknown solver method {method!r}; allowed: {', '.join(METHODS)}")
    t_eval = output_times(t_end, n_out)
    nonfinite: dict[str, float] = {}

    bar = tqdm(total=t_end, unit="t", disable=None if progress else True, leave=False)

    def guarded_rhs(t: float, y: np.ndarray) -> np.ndarray:
        if t > bar.n:
            bar.update(t - bar.n)
        dy = rhs(t, y)
        if not np.all(np.isfinite(dy)):
            nonfinite.setdefault("t", t)
            # Returning zeros ends the step cleanly; the run is reported as failed below.
            return np.zeros_like(dy)
        return dy

    def blow_up(t: float, y: np.ndarray) -> float:
        if nonfinite:
            return -1.0
        return blowup - np.max(np.abs(y))

    blow_up.terminal = True
    with bar:
        sol = solve_ivp(
            guarded_rhs,
            (0.0, t_end),
            np.asarray(y0, dtype=float),
            method=method,
            t_eval=t_eval,
            rtol=rtol,
            atol=atol,
            events=blow_up,
        )
    t, y = sol.t, sol.y.T
    if nonfinite:
        t_bad = nonfinite["t"]
        keep = t < t_bad
        dy = rhs(t_bad, y[keep][-1]) if np.any(keep) else rhs(0.0, np.asarray(y0, dtype=float))
        bad = np.flatnonzero(~np.isfinite(dy))
        return Trajectory(
            t[keep],
            y[keep],
            False,
            "the right-hand side became NaN or infinite",
            t_bad,
            int(bad[0]) if bad.size else -1,
            sol.nfev,
        )
    if sol.status == 1 and sol.t_events[0].size:
        y_fail = sol.y_events[0][0]
        return Trajectory(
            t,
            y,
            False,
            f"a state entry reached |y| = {blowup:g}",
            float(sol.t_events[0][0]),
            int(np.argmax(np.abs(y_fail))),
            sol.nfev,
        )
    if sol.status < 0:
        t_last = float(t[-1]) if t.size else 0.0
        return Trajectory(t, y, False, f"the solver failed: {sol.message}", t_last, -1, sol.nfev)
    return Trajectory(t, y, True, n_rhs=sol.nfev)
