"""Piecewise-constant schedules of the flow's rates, as a training run records them.

A run takes optimiser steps k = 0..S-1; step k covers the flow-time interval [t_k, t_{k+1})
(``empirical.flow``: t_0 = 0, t_{k+1} = t_k + dt_k) and has its own predictor rate alpha_p and
EMA rate beta. :class:`PiecewiseConstant` holds such a schedule and evaluates it at any t (the
value of the step whose interval holds t; the last value after the last step), and names its
breakpoints, where the integrator restarts (:func:`dynamics.integrate.integrate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PiecewiseConstant:
    """values[k] on [edges[k], edges[k+1]); ``edges`` (S+1,) increasing, ``values`` (S,)."""

    edges: np.ndarray
    values: np.ndarray

    def __post_init__(self):
        if self.edges.ndim != 1 or self.values.shape != (self.edges.size - 1,):
            raise ValueError("a schedule needs S + 1 edges for S values")
        if np.any(np.diff(self.edges) < 0) or not np.all(np.isfinite(self.values)):
            raise ValueError("a schedule needs increasing edges and finite values")

    @classmethod
    def constant(cls, value: float, t_end: float) -> PiecewiseConstant:
        return cls(np.array([0.0, t_end]), np.array([float(value)]))

    def __call__(self, t: float | np.ndarray) -> float | np.ndarray:
        k = np.clip(np.searchsorted(self.edges, t, side="right") - 1, 0, self.values.size - 1)
        return self.values[k]

    @property
    def is_constant(self) -> bool:
        return bool(np.all(self.values == self.values[0]))

    def breakpoints(self) -> np.ndarray:
        """The times where the value changes."""
        changes = np.flatnonzero(np.diff(self.values) != 0) + 1
        return self.edges[changes]

    def integral(self, t: np.ndarray) -> np.ndarray:
        """int_0^t value(s) ds at the times ``t`` (for e^{-2 int eta})."""
        t = np.asarray(t, dtype=float)
        cumulative = np.concatenate([[0.0], np.cumsum(self.values * np.diff(self.edges))])
        k = np.clip(np.searchsorted(self.edges, t, side="right") - 1, 0, self.values.size - 1)
        return cumulative[k] + self.values[k] * (t - self.edges[k])
