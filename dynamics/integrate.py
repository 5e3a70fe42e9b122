"""One integrator for every model of the package, built on scipy's ODE solvers.

It steps a ``scipy.integrate`` solver (the same classes ``solve_ivp`` uses), samples the solution
on a uniform grid of output times from each step's dense output, and stops at a blow-up (a state
entry reaching ``blowup`` in absolute value) or at a non-finite right-hand side, saying when and
which entry, so that a diverging run is never mistaken for a finished one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import integrate as _scipy
from tqdm import tqdm

METHODS = ("RK45", "DOP853", "RK23", "Radau", "BDF", "LSODA")


@dataclass(frozen=True)
class Trajectory:
    """The integrated states ``y`` (T, n) at output times ``t`` (T,).

    ``complete`` is False when the run stopped early; ``failure`` then says why, ``t_fail`` when,
    and ``failed_index`` which state entry (-1 when unknown). Only times before the failure are
    kept.
    """

    t: np.ndarray
    y: np.ndarray
    complete: bool
    failure: str = ""
    t_fail: float = float("nan")
    failed_index: int = -1
    n_rhs: int = 0


class _NonFinite(Exception):
    def __init__(self, t: float, index: int):
        super().__init__(t, index)
        self.t, self.index = t, index


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
    t_eval: np.ndarray | None = None,
    breakpoints: np.ndarray | None = None,
) -> Trajectory:
    """Integrate dy/dt = rhs(t, y) from y0 on [0, t_end] and sample it at the output times.

    The output times are ``t_eval`` (increasing, from 0 to ``t_end``) or ``n_out`` uniform
    times. ``breakpoints`` are times where the right-hand side jumps (a piecewise-constant
    schedule): the solver is restarted at each, so that no step straddles a discontinuity. The
    run stops, with ``complete=False``, at the first step that ends with max|y| >= ``blowup`` or
    when the right-hand side returns NaN or infinity. ``progress`` shows a bar over flow time
    (on a terminal only).
    """
    if method not in METHODS:
        raise ValueError(f"unknown solver method {method!r}; allowed: {', '.join(METHODS)}")
    t_eval = output_times(t_end, n_out) if t_eval is None else np.asarray(t_eval, dtype=float)
    n_out = t_eval.size
    y0 = np.asarray(y0, dtype=float)
    too_big = ~(np.abs(y0) < blowup)
    if np.any(too_big):
        return Trajectory(
            t_eval[:0],
            np.empty((0, y0.size)),
            False,
            f"the initial state is not below |y| = {blowup:g}",
            0.0,
            int(np.argmax(too_big)),
        )
    n_rhs = 0

    def checked_rhs(t: float, y: np.ndarray) -> np.ndarray:
        nonlocal n_rhs
        n_rhs += 1
        dy = rhs(t, y)
        bad = ~np.isfinite(dy)
        if np.any(bad):
            raise _NonFinite(t, int(np.argmax(bad)))
        return dy

    inner = np.unique(np.asarray([] if breakpoints is None else breakpoints, dtype=float))
    edges = [0.0, *inner[(inner > 0) & (inner < t_end)], t_end]
    ys = [y0]
    y = y0
    failure, t_fail, index = "", float("nan"), -1
    with tqdm(total=t_end, unit="t", disable=None if progress else True, leave=False) as bar:
        for start, stop in zip(edges[:-1], edges[1:], strict=True):
            solver = getattr(_scipy, method)(checked_rhs, start, y, stop, rtol=rtol, atol=atol)
            while solver.status == "running":
                try:
                    message = solver.step()
                except _NonFinite as err:
                    failure = "the right-hand side became NaN or infinite"
                    t_fail, index = err.t, err.index
                    break
                if solver.status == "failed":
                    failure, t_fail = f"the solver failed: {message}", solver.t
                    break
                done = len(ys)
                if done < n_out and t_eval[done] <= solver.t:
                    dense = solver.dense_output()
                    while done < n_out and t_eval[done] <= solver.t:
                        ys.append(dense(t_eval[done]))
                        done += 1
                bar.update(solver.t - bar.n)
                size = np.abs(solver.y)
                if not np.all(size < blowup):
                    failure = f"a state entry reached |y| >= {blowup:g}"
                    t_fail, index = solver.t, int(np.argmax(~(size < blowup)))
                    break
            if failure:
                break
            y = solver.y
    y = np.array(ys)
    if failure:
        keep = t_eval[: len(ys)] < t_fail
        return Trajectory(t_eval[: len(ys)][keep], y[keep], False, failure, t_fail, index, n_rhs)
    return Trajectory(t_eval, y, True, n_rhs=n_rhs)
