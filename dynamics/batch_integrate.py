"""Many independent ODE systems integrated at once: a vectorised explicit Runge-Kutta stepper.

Column b of the state array y (n, B) is one system dy_b/dt = f(t_b, y_b; args_b) (for a sweep:
one eigenmode of one grid point), args_b its parameters, each named. It takes the settings of the
single-run integrator (:class:`dynamics.integrate.SolverSettings`, :class:`dynamics.integrate.
SaveAt`). Every column has its own time and its own adaptive step, chosen
by the rules of ``scipy.integrate.RK45`` / ``DOP853`` (Hairer, Norsett & Wanner, "Solving ODEs
I", II.4 and II.10) with the same Butcher tableaus (read from scipy):

    y_new = y + h sum_i b_i k_i,   k_i = f(t + c_i h, y + h sum_{j<i} a_ij k_j),
    sc    = atol + rtol max(|y|, |y_new|),
    RK45:   err = ||h sum_i e_i k_i / sc||_rms
    DOP853: err = |h| E5^2 / sqrt(n (E5^2 + 0.01 E3^2)),
            E_m^2 = sum over components of (sum_i e^(m)_i k_i / sc)^2,
    accept when err < 1; h_next = h min(10, max(0.2, 0.9 err^(-1/(q+1)))) (q: the embedded
    order), no growth right after a rejection; first step as ``select_initial_step``.

so each column follows the step sequence a single ``solve_ivp`` run of that system alone would
take. All columns advance together in one loop of array operations; columns that reach
``t_end``, blow up or turn non-finite leave the active set. Along the way each column records
the time its rate r(t) (default max_i |dy_i/dt|) last fell below ``conv_tol`` and stayed there,
interpolated in log r between the two step ends that bracket the crossing.

The array operations run on numpy (default) or on torch tensors (CPU or CUDA), see
:mod:`dynamics.array_backend`; a column's result does not depend on which other columns share
its batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.integrate import DOP853, RK45

from dynamics.array_backend import NumpyBackend
from dynamics.integrate import SaveAt, SolverSettings

SAFETY, MIN_FACTOR, MAX_FACTOR = 0.9, 0.2, 10.0
#: explicit pairs the stepper knows; DOP853 needs fewer steps at tight tolerances
METHODS = ("RK45", "DOP853")


@dataclass(frozen=True)
class Tableau:
    """The coefficients of an embedded explicit Runge-Kutta pair (scipy's)."""

    name: str
    a: np.ndarray  # (stages, stages)
    b: np.ndarray  # (stages,)
    c: np.ndarray  # (stages,)
    errors: tuple[np.ndarray, ...]  # RK45: (E,); DOP853: (E5, E3); each (stages + 1,)
    error_order: int  # q, the order of the embedded error estimate

    @classmethod
    def of(cls, method: str) -> Tableau:
        solver = {"RK45": RK45, "DOP853": DOP853}[method]
        errors = (solver.E5, solver.E3) if solver is DOP853 else (solver.E,)
        return cls(
            method,
            solver.A,
            solver.B,
            solver.C,
            errors,
            solver.error_estimator_order,
        )

    @property
    def stages(self) -> int:
        return self.b.size

    @property
    def error_exponent(self) -> float:
        return -1.0 / (self.error_order + 1)


@dataclass(frozen=True)
class BatchSolution:
    """Final states of every column and how each run ended (numpy arrays).

    ``y`` (n, B): the state at ``t_end``, or the last state before a failure; ``t`` (B,): the
    time of that state; ``diverged`` (B,) bool: the column blew up (|y| reached ``blowup``),
    turned non-finite or needed a step below the floating-point resolution; ``t_converge`` (B,):
    the time after which the rate stayed below ``conv_tol`` (NaN when it never did);
    ``n_steps`` (B,): accepted steps; ``n_iterations``: loop passes over all inner batches.
    """

    y: np.ndarray
    t: np.ndarray
    diverged: np.ndarray
    t_converge: np.ndarray
    n_steps: np.ndarray
    n_iterations: int


def integrate_batch(
    rhs: Callable[..., Any],
    y0,
    saveat: SaveAt,
    solver: SolverSettings | None = None,
    args: Mapping[str, Any] | None = None,
    *,
    conv_tol: float = 1e-6,
    rate: Callable[..., Any] | None = None,
    xp: NumpyBackend | None = None,
    batch: int | None = None,
) -> BatchSolution:
    """Integrate B independent systems dy/dt = rhs(t, y, args) from y0 (n, B) at t = 0 to the
    end of ``saveat`` (which must be :meth:`SaveAt.final`: the stepper keeps the final states).

    ``args`` maps each parameter name to its (B,) array, one value per column (the columns'
    parameters: named, as a model's parameter dataclass names them). ``rhs`` receives times t
    (b,), states y (n, b) and ``args`` with every array restricted to the same b columns, and
    returns dy/dt as an (n, b) array or as its n rows; ``rate(t, y, f, args)`` returns the
    convergence rate (b,) from the same and f = dy/dt (default max_i |f_i|). Both see arrays of
    the back end ``xp`` (default numpy). ``solver`` (default ``SolverSettings()``) names the
    method (one of :data:`METHODS`), tolerances and blow-up size. Columns run ``batch`` at a
    time (default: the back end's).
    """
    solver = solver or SolverSettings()
    if solver.method not in METHODS:
        raise ValueError(f"method={solver.method!r} is not allowed: one of {', '.join(METHODS)}")
    if saveat.times.size != 2:
        raise ValueError(
            f"saveat has {saveat.times.size} times; the batched stepper keeps the final state "
            "only: SaveAt.final(t_end)"
        )
    xp = xp or NumpyBackend()
    y0 = xp.asarray(y0)
    if y0.ndim != 2:
        raise ValueError(f"y0 must have shape (n, columns), got {tuple(y0.shape)}")
    args = {name: xp.asarray(a) for name, a in (args or {}).items()}
    n, columns = y0.shape
    out = {
        "y": y0 + 0.0,
        "t": xp.full(columns, 0.0),
        "diverged": xp.full(columns, False, bool),
        "t_converge": xp.full(columns, math.nan),
        "n_steps": xp.full(columns, 0, int),
    }
    rate = rate or (lambda t, y, f, args: xp.amax(abs(f)))
    stepper = _Stepper(rhs, rate, xp, saveat.t_end, solver, conv_tol)
    iterations = 0
    size = batch or xp.batch
    with xp.session():
        for start in range(0, columns, size):
            stop = min(start + size, columns)
            part = {name: a[start:stop] for name, a in args.items()}
            iterations += stepper.run(start, stop, y0[:, start:stop], part, out)
    result = {k: xp.to_numpy(v) for k, v in out.items()}
    return BatchSolution(**result, n_iterations=iterations)


class _Stepper:
    """The loop of :func:`integrate_batch` over one batch of columns.

    Storage: ``kk[0]`` is the state y, ``kk[1 + i]`` the scaled stage K_i = h k_i, so that a
    stage's argument y + sum_j a_ij K_j, the new state and the error estimates are each one
    pass of ``combine`` over ``kk``.
    """

    def __init__(self, rhs, rate, xp, t_end: float, solver: SolverSettings, conv_tol: float):
        self.rhs, self.rate, self.xp = rhs, rate, xp
        self.tab = tab = Tableau.of(solver.method)
        self.t_end, self.rtol, self.atol = t_end, solver.rtol, solver.atol
        self.blowup, self.conv_tol = solver.blowup, conv_tol
        one = np.ones(1)
        stages = tab.stages
        self.stage_coefficients = [np.concatenate([one, tab.a[s, :s]]) for s in range(stages)]
        self.new_coefficients = np.concatenate([one, tab.b])

    def _eval(self, t, y, args, out=None, step=None):
        """rhs(t, y, args) written row by row into ``out`` (n, b) (new when None), times
        ``step`` when given."""
        out = self.xp.empty(*y.shape) if out is None else out
        for i, row in enumerate(self.rhs(t, y, args)):
            if step is None:
                out[i] = row
            else:
                self.xp.multiply(row, step, out[i])
        return out

    def _norm2(self, x, scale):
        """sum over the components of (x / scale)^2."""
        x = x / scale
        return (x * x).sum(0)

    def _initial_step(self, t, y, f, args):
        """Hairer's starting step per column (as scipy's ``select_initial_step``)."""
        xp, n = self.xp, y.shape[0]
        scale = abs(y) * self.rtol + self.atol
        d0 = (self._norm2(y, scale) / n) ** 0.5
        d1 = (self._norm2(f, scale) / n) ** 0.5
        small = (d0 < 1e-5) | (d1 < 1e-5)
        h0 = xp.clip(xp.where(small, 1e-6, 0.01 * d0 / xp.where(small, 1.0, d1)), hi=self.t_end)
        f1 = self._eval(t + h0, y + h0 * f, args)
        d2 = (self._norm2(f1 - f, scale) / n) ** 0.5 / h0
        tiny = (d1 <= 1e-15) & (d2 <= 1e-15)
        h1 = xp.where(
            tiny,
            xp.clip(h0 * 1e-3, lo=1e-6),
            xp.power(0.01 / xp.where(tiny, 1.0, xp.maximum(d1, d2)), -self.tab.error_exponent),
        )
        return xp.clip(xp.where(100 * h0 < h1, 100 * h0, h1), hi=self.t_end)

    def _error(self, kk, scale, work):
        """The error norm of the embedded pair (module docstring; K already holds the h)."""
        xp, n, errors = self.xp, kk.shape[1], self.tab.errors
        xp.combine(errors[0], kk[1:], work)
        e5 = self._norm2(work, scale)
        if len(errors) == 1:
            return (e5 / n) ** 0.5
        xp.combine(errors[1], kk[1:], work)
        denominator = ((e5 + 0.01 * self._norm2(work, scale)) * n) ** 0.5
        return xp.where(denominator > 0, e5 / xp.where(denominator > 0, denominator, 1.0), 0.0)

    def run(self, start, stop, y0, args, out) -> int:
        """Step columns start..stop-1 (initial state y0 (n, b)) to t_end; write their results
        into ``out``; return the number of loop passes."""
        xp, conv_tol, stages = self.xp, self.conv_tol, self.tab.stages
        n, b = y0.shape
        kk_all, work_all, new_all = xp.empty(stages + 2, n, b), xp.empty(n, b), xp.empty(n, b)
        kk_all[0] = y0
        y = kk_all[0]
        t = xp.full(b, 0.0)
        f = self._eval(t, y, args)
        bad = ~((abs(y) < self.blowup).all(0) & xp.isfinite(f).all(0))
        rate = self.rate(t, y, f, args)
        # per column: index, time, next step, rate, last step rejected, time to converge, steps
        cols = {
            "cols": xp.arange(start, stop),
            "t": t,
            "h": self._initial_step(t, y, xp.where(bad, 0.0, f), args),
            "rate": rate,
            "rejected": xp.full(b, False, bool),
            "t_conv": xp.where(rate < conv_tol, 0.0, math.nan),
            "steps": xp.full(b, 0, int),
        }
        finished = bad
        iterations = 0
        while True:
            if bool(finished.any()):
                done = cols["cols"][finished]
                out["diverged"][done] = bad[finished]
                out["y"][:, done] = y[:, finished]
                for name, key in (("t", "t"), ("t_converge", "t_conv"), ("n_steps", "steps")):
                    out[name][done] = cols[key][finished]
                keep = ~finished
                cols = {name: v[keep] for name, v in cols.items()}
                kept = y[:, keep]
                f, args = f[:, keep], {name: a[keep] for name, a in args.items()}
                b = kept.shape[1]
                y = kk_all[0, :, :b]
                y[...] = kept
            if b == 0:
                return iterations
            iterations += 1
            kk, work, y_new = kk_all[:, :, :b], work_all[:, :b], new_all[:, :b]
            t, rate = cols["t"], cols["rate"]
            t_new = xp.clip(t + cols["h"], hi=self.t_end)
            step = t_new - t
            too_small = step < 10 * xp.spacing(t)
            xp.multiply(f, step, kk[1])
            for s in range(1, stages):
                xp.combine(self.stage_coefficients[s], kk, work)
                self._eval(t + self.tab.c[s] * step, work, args, kk[1 + s], step)
            xp.combine(self.new_coefficients, kk, y_new)
            f_new = self._eval(t_new, y_new, args)
            xp.multiply(f_new, step, kk[1 + stages])
            scale = xp.maximum(abs(y), abs(y_new))
            scale *= self.rtol
            scale += self.atol
            err = self._error(kk, scale, work)
            # a NaN or infinity in y_new or f_new makes err non-finite
            nonfinite = ~xp.isfinite(err)
            grow = xp.where(err == 0, MAX_FACTOR, SAFETY * xp.power(err, self.tab.error_exponent))
            accept = err < 1
            # accepted: grow, but not right after a rejection; rejected: shrink and retry
            up = xp.clip(grow, hi=MAX_FACTOR)
            up = xp.where(cols["rejected"], xp.clip(up, hi=1.0), up)
            cols["h"] = step * xp.where(accept, up, xp.clip(grow, lo=MIN_FACTOR))
            cols["rejected"] = ~accept
            new_rate = self.rate(t_new, y_new, f_new, args)
            # time to converge: the last crossing of conv_tol from above, interpolated in log r
            below = new_rate < conv_tol
            crossed = accept & (rate >= conv_tol) & below
            t_conv = xp.where(accept & ~below, math.nan, cols["t_conv"])
            if bool(crossed.any()):
                with np.errstate(divide="ignore", invalid="ignore"):  # new_rate 0: frac 0
                    frac = xp.log(rate / conv_tol) / xp.log(rate / new_rate)
                frac = xp.clip(xp.where(frac == frac, frac, 1.0), 0.0, 1.0)
                t_conv = xp.where(crossed, t + step * frac, t_conv)
            cols["t_conv"] = t_conv
            xp.put_where(y, accept, y_new)
            f = xp.where(accept, f_new, f)
            cols["t"] = t = xp.where(accept, t_new, t)
            cols["rate"] = xp.where(accept, new_rate, rate)
            cols["steps"] = cols["steps"] + accept
            blown = accept & ~(xp.amax(abs(y_new)) < self.blowup)
            bad = blown | nonfinite | (too_small & ~accept)
            finished = bad | (accept & (t >= self.t_end))
