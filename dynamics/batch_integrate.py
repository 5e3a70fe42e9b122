"""Many independent ODE systems integrated at once: one vectorised Dormand-Prince 5(4) stepper.

Row b of the state array y (B, n) is one system dy_b/dt = f(t, y_b; args_b) (one grid point of a
sweep). Every row has its own adaptive step size, chosen by the rule of ``scipy.integrate.RK45``
(Hairer, Norsett & Wanner, "Solving ODEs I", II.4: error norm = RMS of the embedded error over
``atol + rtol max(|y|, |y_new|)``, new step = h min(10, max(0.2, 0.9 err^(-1/5))), no growth right
after a rejection) and the same Butcher tableau (read from ``scipy.integrate.RK45``), so that each
row follows the step sequence a single ``RK45`` run of that row would take. All rows advance
together in one loop of array operations; rows that reach ``t_end``, blow up or turn non-finite
leave the active set. This is what makes a sweep over 10^5 grid points a few hundred vectorised
steps instead of 10^5 calls of ``solve_ivp``.

Along the way each row records the time its rate max_i |dy_i/dt| last fell below ``conv_tol`` and
stayed there (the "time to converge"), interpolated in log(rate) between the two step ends that
bracket the crossing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.integrate import RK45

SAFETY = 0.9
MIN_FACTOR = 0.2
MAX_FACTOR = 10.0
_ERROR_EXPONENT = -1.0 / (RK45.error_estimator_order + 1)
_A, _B, _C, _E = RK45.A, RK45.B, RK45.C, RK45.E
_N_STAGES = RK45.n_stages


@dataclass(frozen=True)
class BatchResult:
    """Final states of every row and how each run ended.

    ``y`` (B, n): the state at ``t_end``, or the last finite state before a failure;
    ``t`` (B,): the time of that state; ``diverged`` (B,) bool: the row blew up (|y| reached
    ``blowup``), turned non-finite or needed a step below the floating-point resolution;
    ``t_converge`` (B,): the time after which max|dy/dt| stayed below ``conv_tol`` (NaN when it
    never did); ``n_steps`` (B,): accepted steps; ``n_iterations``: loop passes of the batch.
    """

    y: np.ndarray
    t: np.ndarray
    diverged: np.ndarray
    t_converge: np.ndarray
    n_steps: np.ndarray
    n_iterations: int


def _rms(x: np.ndarray) -> np.ndarray:
    """RMS over the components (axis 0) of a (n, b) array."""
    return np.sqrt(np.einsum("ib,ib->b", x, x) / x.shape[0])


def _initial_step(rhs, t0, y0, f0, args, rtol, atol, t_end) -> np.ndarray:
    """Hairer's starting step (as ``scipy.integrate._ivp.common.select_initial_step``), per row."""
    scale = atol + np.abs(y0) * rtol
    d0 = _rms(y0 / scale)
    d1 = _rms(f0 / scale)
    small = (d0 < 1e-5) | (d1 < 1e-5)
    h0 = np.where(small, 1e-6, 0.01 * d0 / np.where(small, 1.0, d1))
    h0 = np.minimum(h0, t_end - t0)
    f1 = rhs(t0 + h0, y0 + h0 * f0, *args)
    d2 = _rms((f1 - f0) / scale) / h0
    tiny = (d1 <= 1e-15) & (d2 <= 1e-15)
    big = np.maximum(d1, d2)
    h1 = np.where(
        tiny,
        np.maximum(1e-6, h0 * 1e-3),
        (0.01 / np.where(tiny, 1.0, big)) ** (1.0 / (RK45.order + 1)),
    )
    return np.minimum(np.minimum(100 * h0, h1), t_end - t0)


def integrate_batch(
    rhs: Callable[..., np.ndarray],
    y0: np.ndarray,
    t_end: float,
    args: tuple[np.ndarray, ...] = (),
    rtol: float = 1e-10,
    atol: float = 1e-12,
    blowup: float = 1e6,
    conv_tol: float = 1e-6,
    chunk: int = 1024,
    progress: Callable[[int], None] | None = None,
    fills_out: bool = False,
) -> BatchResult:
    """Integrate B independent systems dy/dt = rhs(t, y, *args) from y0 (B, n) to ``t_end``.

    ``rhs`` works on the components-first layout: it receives times t (b,), states y (n, b) and
    each of ``args`` (arrays of shape (B,) or (B, m)) restricted to the same b rows and
    transposed the same way ((b,) or (m, b)), and returns (n, b).
    Rows are processed ``chunk`` at a time (arrays that stay in the CPU cache);
    ``progress(k)`` is called with the number of rows finished since its last call. With
    ``fills_out`` the call is ``rhs(t, y, *args, out=buffer)`` and rhs writes into ``buffer``.
    """
    y0 = np.array(y0, dtype=float)
    if y0.ndim != 2:
        raise ValueError(f"y0 must have shape (rows, n), got {y0.shape}")
    args = tuple(np.asarray(a, dtype=float) for a in args)
    n_rows = y0.shape[0]
    out = BatchResult(
        y=y0.copy(),
        t=np.zeros(n_rows),
        diverged=np.zeros(n_rows, dtype=bool),
        t_converge=np.full(n_rows, np.nan),
        n_steps=np.zeros(n_rows, dtype=int),
        n_iterations=0,
    )
    iterations = 0
    for start in range(0, n_rows, chunk):
        rows = np.arange(start, min(start + chunk, n_rows))
        iterations += _integrate_chunk(
            rhs, rows, y0[rows].T.copy(), tuple(a[rows].T.copy() for a in args), t_end, rtol, atol,
            blowup, conv_tol, out, progress, fills_out,
        )  # fmt: skip
    return dataclasses.replace(out, n_iterations=iterations)


def _integrate_chunk(
    rhs, rows, y, args, t_end, rtol, atol, blowup, conv_tol, out, progress, fills_out
):
    """Step the rows ``rows`` (state y (n, b)) to t_end; write their results into ``out``."""
    if fills_out:
        plain = rhs

        def rhs(t, y, *args):
            return plain(t, y, *args, out=np.empty_like(y))

    n, b = y.shape
    t = np.zeros(b)
    f = rhs(t, y, *args)
    bad = ~(np.all(np.abs(y) < blowup, axis=0) & np.all(np.isfinite(f), axis=0))
    rate = np.max(np.abs(f), axis=0)
    out.t_converge[rows] = np.where(rate < conv_tol, 0.0, np.nan)
    h = _initial_step(rhs, t, y, np.where(bad, 0.0, f), args, rtol, atol, t_end)
    rejected = np.zeros(b, dtype=bool)
    k = np.empty((_N_STAGES + 1, n, b))
    work = np.empty((n, b))
    finished = bad.copy()
    iterations = 0
    while True:
        if np.any(finished):
            done = rows[finished]
            out.diverged[done] = bad[finished]
            out.y[done], out.t[done] = y[:, finished].T, t[finished]
            if progress is not None:
                progress(int(done.size))
            keep = ~finished
            rows, t, h, rate, rejected = (v[keep] for v in (rows, t, h, rate, rejected))
            y, f = np.ascontiguousarray(y[:, keep]), np.ascontiguousarray(f[:, keep])
            k, work = np.empty((_N_STAGES + 1, n, y.shape[1])), np.empty_like(y)
            args = tuple(a[..., keep] for a in args)
        if rows.size == 0:
            return iterations
        iterations += 1
        t_new = np.minimum(t + h, t_end)
        step = t_new - t
        too_small = step < 10 * np.abs(np.nextafter(t, np.inf) - t)
        k[0] = f
        for s in range(1, _N_STAGES):
            _combine(_A[s, :s], k, work)
            work *= step
            work += y
            if fills_out:
                plain(t + _C[s] * step, work, *args, out=k[s])
            else:
                k[s] = rhs(t + _C[s] * step, work, *args)
        _combine(_B, k, work)
        work *= step
        y_new = work + y
        f_new = rhs(t_new, y_new, *args)
        k[_N_STAGES] = f_new
        _combine(_E, k, work)
        work *= step
        size_new = np.abs(y_new)
        scale = np.maximum(np.abs(y), size_new)
        scale *= rtol
        scale += atol
        work /= scale
        err = _rms(work)
        # a NaN or infinity in y_new or f_new (E[-1] != 0) makes err non-finite
        nonfinite = ~np.isfinite(err)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            grow = np.where(err == 0, MAX_FACTOR, SAFETY * err**_ERROR_EXPONENT)
        accept = err < 1
        # accepted: grow, but not right after a rejection; rejected: shrink and retry
        up = np.minimum(MAX_FACTOR, grow)
        factor = np.where(
            accept, np.where(rejected, np.minimum(1.0, up), up), np.maximum(MIN_FACTOR, grow)
        )
        h = step * factor
        rejected = ~accept
        new_rate = np.max(np.abs(f_new), axis=0)
        # time to converge: the last crossing of conv_tol from above, interpolated in log(rate)
        crossed = accept & (rate >= conv_tol) & (new_rate < conv_tol)
        if np.any(crossed):
            with np.errstate(divide="ignore", invalid="ignore"):
                frac = np.log(rate / conv_tol) / np.log(rate / new_rate)
            t_cross = t + step * np.clip(np.nan_to_num(frac, nan=1.0), 0.0, 1.0)
            out.t_converge[rows[crossed]] = t_cross[crossed]
        out.t_converge[rows[accept & (new_rate >= conv_tol)]] = np.nan
        np.copyto(y, y_new, where=accept)
        np.copyto(f, f_new, where=accept)
        t = np.where(accept, t_new, t)
        rate = np.where(accept, new_rate, rate)
        out.n_steps[rows] += accept
        blown = accept & ~(np.max(size_new, axis=0) < blowup)
        bad = blown | nonfinite | (too_small & ~accept)
        finished = bad | (accept & (t >= t_end))


def _combine(coefficients: np.ndarray, k: np.ndarray, out: np.ndarray) -> None:
    """out = sum_i coefficients[i] k[i] in one pass (einsum: no BLAS threads, which oversubscribe
    the cores when sweeps run in parallel processes)."""
    np.einsum("i,i...->...", coefficients, k[: coefficients.size], out=out)
