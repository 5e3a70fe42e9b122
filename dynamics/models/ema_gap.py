"""The lag of an EMA target behind a prescribed online trajectory (docs/theory.md (D12)).

The target follows d xi/dt = beta (theta(t) - xi) (beta = 1 - tau_ema per unit of flow time, as
in Tian et al. Lemma 1). The gap delta = xi - theta obeys d delta/dt = -beta delta - theta'(t),
whose solution from delta(0) = 0 is delta(t) = -int_0^t e^{-beta (t-s)} theta'(s) ds:

- linear theta(t) = theta(0) + v t:  delta(t) = -(v / beta)(1 - e^{-beta t}) -> -v / beta,
  the steady state -theta'/(1 - tau) of the note;
- sinusoidal theta(t) = theta(0) + a sin(omega t):
  delta(t) = -a omega [beta cos(omega t) + omega sin(omega t) - beta e^{-beta t}]
             / (beta^2 + omega^2).

In discrete time the order of the updates matters: updating the target with the new online
weights (BYOL's order) gives the steady gap -tau v/(1 - tau) per step, with the old ones
-v/(1 - tau).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from dynamics.models.base import Model, StateLayout
from symbolic.common.options import param, validate
from symbolic.common.schema import TIME

COMPONENT = "component"


@dataclasses.dataclass(frozen=True)
class EmaGapParams:
    """Parameters of the EMA-gap model."""

    dim: int = param(4, "dimension of theta", at_least=1, at_most=10_000_000)
    beta: float = param(
        0.5, "EMA rate beta = 1 - tau per unit flow time", above=0, why="beta = 0 never follows"
    )
    trajectory: str = param(
        "linear", "online trajectory theta(t): 'linear' or 'sine'", choices=("linear", "sine")
    )
    speed: float = param(1.0, "||theta'|| for 'linear'; amplitude a for 'sine'")
    omega: float = param(1.0, "angular frequency of the 'sine' trajectory", above=0)
    seed: int = param(0, "random seed of theta(0) and of the direction of motion", at_least=0)

    def __post_init__(self):
        validate(self)


class EmaGapModel(Model):
    """The EMA target xi chasing a prescribed theta(t)."""

    name = "ema_gap"
    state_per_mode = True
    description = "EMA target following a prescribed online trajectory, against the closed-form gap"

    def __init__(self, params: EmaGapParams):
        rng = np.random.default_rng(params.seed)
        self.theta0 = rng.standard_normal(params.dim)
        direction = rng.standard_normal(params.dim)
        self.direction = direction / np.linalg.norm(direction)
        super().__init__(params)

    def make_layout(self) -> StateLayout:
        return StateLayout([("xi", (self.params.dim,))])

    def theta(self, t):
        """The prescribed online trajectory theta(t), shape (..., dim)."""
        q = self.params
        t = np.asarray(t, float)[..., None]
        if q.trajectory == "linear":
            return self.theta0 + q.speed * t * self.direction
        return self.theta0 + q.speed * np.sin(q.omega * t) * self.direction

    def predicted_gap(self, t):
        """The closed-form delta(t) = xi(t) - theta(t) from delta(0) = 0 (module docstring)."""
        q = self.params
        t = np.asarray(t, float)[..., None]
        b = q.beta
        if q.trajectory == "linear":
            return -(q.speed / b) * (1 - np.exp(-b * t)) * self.direction
        w = q.omega
        shape = (b * np.cos(w * t) + w * np.sin(w * t) - b * np.exp(-b * t)) / (b**2 + w**2)
        return -q.speed * w * shape * self.direction

    def initial_state(self) -> np.ndarray:
        return self.layout.pack(xi=self.theta(0.0))

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        return self.params.beta * (self.theta(t) - y)

    def observables(self, t: np.ndarray, y: np.ndarray) -> xr.Dataset:
        gap = y - self.theta(t)
        predicted = self.predicted_gap(t)
        dims = (TIME, COMPONENT)
        return xr.Dataset(
            {
                "ema_gap": ((TIME,), np.linalg.norm(gap, axis=-1)),
                "ema_gap_predicted": ((TIME,), np.linalg.norm(predicted, axis=-1)),
                "delta": (dims, gap),
                "delta_predicted": (dims, predicted),
            },
            coords={TIME: t, COMPONENT: np.arange(self.params.dim)},
        )

    def summary(self, ds: xr.Dataset) -> list[str]:
        final = ds.isel(time=-1)
        err = float(np.max(np.abs(ds["delta"] - ds["delta_predicted"])))
        lines = [
            f"  final gap ||xi - theta|| = {float(final['ema_gap']):.6g}, closed form "
            f"{float(final['ema_gap_predicted']):.6g}; max |error| over the run {err:.2e}"
        ]
        if self.params.trajectory == "linear":
            lines.append(
                f"  steady state ||theta'||/beta = {ds.attrs['steady_state_gap']:.6g} "
                "(the note's -theta'/(1 - tau))"
            )
        return lines

    def closed_forms(self) -> dict[str, float]:
        q = self.params
        if q.trajectory == "linear":
            return {"steady_state_gap": q.speed / q.beta}
        return {"steady_state_gap_amplitude": q.speed * q.omega / np.hypot(q.beta, q.omega)}
