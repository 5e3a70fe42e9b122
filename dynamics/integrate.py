"""The integrator of every model of the package, with its settings as named objects.

The entry point reads like diffrax's ``diffeqsolve(terms, solver, t0, t1, dt0, y0, args, saveat,
stepsize_controller)``: what is integrated (a right-hand side whose parameters are a model's
frozen parameter dataclass, closed over), the solver and its tolerances
(:class:`SolverSettings`) and the output times (:class:`SaveAt`) are each one object, and the
same two objects drive the vectorised sweep integrator (:func:`dynamics.batch_integrate.
integrate_batch`), whose per-column parameters are one mapping of named arrays.

:func:`integrate` steps a ``scipy.integrate`` solver (the same classes ``solve_ivp`` uses),
samples the solution at the output times from each step's dense output, and stops at a blow-up (a
state entry reaching ``blowup`` in absolute value) or at a non-finite right-hand side, saying when
and which entry, so that a diverging run is never mistaken for a finished one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import integrate as _scipy
from tqdm import tqdm

from symbolic.common.options import param, require, validate

METHODS = ("RK45", "DOP853", "RK23", "Radau", "BDF", "LSODA")


@dataclass(frozen=True)
class SolverSettings:
    """The solver and when it stops: a ``scipy.integrate`` method, its tolerances, and the state
    size at which a run counts as diverged."""

    method: str = param("DOP853", f"solve_ivp method: {', '.join(METHODS)}", choices=METHODS)
    rtol: float = param(1e-10, "relative tolerance", above=0, below=1)
    atol: float = param(1e-12, "absolute tolerance", above=0)
    blowup: float = param(1e6, "stop when a state entry reaches this size", above=0)

    def __post_init__(self):
        validate(self)


@dataclass(frozen=True, eq=False)
class SaveAt:
    """The output times of an integration: increasing, from 0 (the time of the initial state);
    the integration ends at the last one."""

    times: np.ndarray

    def __post_init__(self):
        times = np.asarray(self.times, dtype=float)
        shown = np.array2string(times, threshold=6)
        require(times.ndim == 1 and times.size >= 2, "times", shown, "at least two times")
        require(bool(np.all(np.isfinite(times))), "times", shown, "finite numbers")
        require(times[0] == 0, "times", shown, "the first time is 0")
        require(bool(np.all(np.diff(times) > 0)), "times", shown, "increasing times")
        object.__setattr__(self, "times", times)

    @classmethod
    def uniform(cls, t_end: float, n_out: int) -> SaveAt:
        """``n_out`` uniformly spaced times from 0 to ``t_end``."""
        return cls(np.linspace(0.0, t_end, n_out))

    @classmethod
    def final(cls, t_end: float) -> SaveAt:
        """The initial and the final time only."""
        return cls(np.array([0.0, t_end]))

    @property
    def t_end(self) -> float:
        return float(self.times[-1])


@dataclass(frozen=True)
class Solution:
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


def integrate(
    rhs: Callable[[float, np.ndarray], np.ndarray],
    y0: np.ndarray,
    saveat: SaveAt,
    solver: SolverSettings | None = None,
    *,
    breakpoints: np.ndarray | None = None,
    progress: bool = False,
) -> Solution:
    """Integrate dy/dt = rhs(t, y) from y0 at t = 0 to the last time of ``saveat``; the states
    at its times.

    ``rhs`` carries its parameters (a model's ``rhs``, bound to its parameter dataclass).
    ``breakpoints`` are times where the right-hand side jumps (a piecewise-constant schedule): the
    solver is restarted at each, so that no step straddles a discontinuity. The run stops, with
    ``complete=False``, at the first step that ends with max|y| >= ``solver.blowup`` or when the
    right-hand side returns NaN or infinity. ``progress`` shows a bar over flow time (on a
    terminal only). ``solver`` defaults to ``SolverSettings()``.
    """
    solver = solver or SolverSettings()
    method, rtol, atol, blowup = solver.method, solver.rtol, solver.atol, solver.blowup
    t_eval = saveat.times
    t_end, n_out = saveat.t_end, t_eval.size
    y0 = np.asarray(y0, dtype=float)
    too_big = ~(np.abs(y0) < blowup)
    if np.any(too_big):
        return Solution(
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
        return Solution(t_eval[: len(ys)][keep], y[keep], False, failure, t_fail, index, n_rhs)
    return Solution(t_eval, y, True, n_rhs=n_rhs)
