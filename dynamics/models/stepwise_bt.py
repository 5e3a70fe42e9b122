"""Simon et al. 2023's linear Barlow Twins: stepwise learning of the eigenmodes, in closed form.

"On the stepwise nature of self-supervised learning" (Simon, Knutins, Ziyin, Geisz, Fetterman,
Albrecht, ICML 2023) study the unnormalised Barlow Twins loss of a linear encoder W (d x n),

    L(W) = ||W Gamma W^T - I||_F^2,

Gamma the (symmetric, positive) cross-correlation of the two views' inputs. Under gradient flow

    dW/dt = -dL/dW = -4 (W Gamma W^T - I) W Gamma,

from an ALIGNED start W(0) = diag(s(0)) Q^T (Q the eigenvectors of Gamma = Q diag(gamma) Q^T),
W Gamma W^T stays diagonal and each mode's eigenvalue lambda_j = gamma_j s_j^2 follows its own
logistic equation d(s_j^2)/dt = 8 gamma_j s_j^2 (1 - gamma_j s_j^2), i.e. (derived here
for this loss's normalisation; not checked against the paper's numbered equations)

    s_j(t)^2 = e^{8 gamma_j t} / (s_j(0)^{-2} + (e^{8 gamma_j t} - 1) gamma_j).

Mode j reaches lambda_j = 1/2 at the half-time t_j = ln(1 / (gamma_j s_j(0)^2) - 1) / (8 gamma_j);
for a small start this is the critical time tau_j = -ln(s_j(0)^2 gamma_j) / (8 gamma_j) of the
follow-up analysis, so the modes are learned one after another, strongest first (the "steps").

The model integrates the MATRIX flow above in a random eigenbasis Q (seeded), not the scalar
logistic equations: the closed form stored beside it (``lambda_mode_closed_form``) is an
independent check, exact here (docs/theory.md (D13)).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from dynamics.models.base import Model, StateLayout, positive_numbers
from symbolic.common.options import param, validate
from symbolic.common.schema import MODE, TIME


def parse_gamma(text: str) -> tuple[float, ...]:
    """The eigenvalues gamma_j of Gamma from 'g1,g2,...' (each finite and > 0), largest first."""
    return tuple(sorted(positive_numbers(text, "gamma", "1,0.5,0.25").tolist(), reverse=True))


def squared_scale(t: np.ndarray, gamma: np.ndarray, s0_sq: np.ndarray) -> np.ndarray:
    """s_j(t)^2 = e^{8 g t} / (s_j(0)^{-2} + (e^{8 g t} - 1) g), on a (time, mode) grid.

    Written as 1 / (e^{-8 g t} / s0^2 + (1 - e^{-8 g t}) g) so that it never overflows.
    """
    decay = np.exp(-8.0 * np.outer(t, gamma))
    return 1.0 / (decay / s0_sq + (1.0 - decay) * gamma)


def half_times(gamma: np.ndarray, s0_sq: np.ndarray) -> np.ndarray:
    """Flow time at which lambda_j = gamma_j s_j^2 reaches 1/2 (NaN if it starts at or above)."""
    ratio = 1.0 / (gamma * s0_sq) - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ratio > 1.0, np.log(ratio) / (8.0 * gamma), np.nan)


def critical_times(gamma: np.ndarray, s0_sq: np.ndarray) -> np.ndarray:
    """The small-start critical times tau_j = -ln(s_j(0)^2 gamma_j) / (8 gamma_j)."""
    return -np.log(s0_sq * gamma) / (8.0 * gamma)


@dataclasses.dataclass(frozen=True)
class StepwiseBTParams:
    """Parameters of Simon et al.'s linear Barlow Twins."""

    gamma: str = param(
        "1,0.5,0.25",
        "eigenvalues of the cross-correlation Gamma, comma-separated (one mode each)",
        metavar="G1,G2,...",
    )
    init_scale: float = param(
        1e-3, "aligned start: s_j(0) for every mode (W(0) = s(0) Q^T)", above=0, at_most=1e3
    )
    seed: int = param(0, "random seed of the eigenbasis Q of Gamma", at_least=0)

    def __post_init__(self):
        validate(self)
        parse_gamma(self.gamma)


class StepwiseBTModel(Model):
    """dW/dt = -4 (W Gamma W^T - I) W Gamma from an aligned start (module docstring)."""

    name = "stepwise_bt"
    description = "Simon et al. 2023 linear Barlow Twins ||W Gamma W^T - I||^2: stepwise modes"

    def __init__(self, params: StepwiseBTParams):
        self.gamma = np.array(parse_gamma(params.gamma))
        d = self.gamma.size
        q, _ = np.linalg.qr(np.random.default_rng(params.seed).standard_normal((d, d)))
        self.basis = q
        self.cross_corr = (q * self.gamma) @ q.T
        self.s0_sq = np.full(d, params.init_scale**2)
        super().__init__(params)

    def make_layout(self) -> StateLayout:
        d = self.gamma.size
        return StateLayout([("W", (d, d))])

    def initial_state(self) -> np.ndarray:
        return self.layout.pack(W=np.sqrt(self.s0_sq)[:, None] * self.basis.T)

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        w = self.layout.unpack(y)["W"]
        g = self.cross_corr
        return self.layout.pack(W=-4.0 * (w @ g @ w.T - np.eye(w.shape[0])) @ w @ g)

    def observables(self, t: np.ndarray, y: np.ndarray) -> xr.Dataset:
        w = self.layout.unpack(y)["W"]
        c = w @ self.cross_corr @ np.swapaxes(w, -1, -2)
        lam = np.diagonal(c, axis1=-2, axis2=-1)
        off = c - lam[..., :, None] * np.eye(c.shape[-1])
        closed = self.gamma * squared_scale(t, self.gamma, self.s0_sq)
        loss = np.sum((c - np.eye(c.shape[-1])) ** 2, axis=(-2, -1))
        return xr.Dataset(
            {
                "lambda_mode": ((TIME, MODE), lam),
                "lambda_mode_closed_form": ((TIME, MODE), closed),
                "offdiag_norm": ((TIME,), np.linalg.norm(off, axis=(-2, -1))),
                "loss": ((TIME,), loss),
            },
            coords={TIME: t, MODE: np.arange(self.gamma.size)},
        )

    def closed_forms(self) -> dict[str, list[float]]:
        """Per-mode times, largest gamma first (stored as JSON lists in the result's attributes)."""
        return {
            "half_time": half_times(self.gamma, self.s0_sq).tolist(),
            "critical_time": critical_times(self.gamma, self.s0_sq).tolist(),
        }

    def summary(self, ds: xr.Dataset) -> list[str]:
        err = float(np.max(np.abs(ds["lambda_mode"] - ds["lambda_mode_closed_form"])))
        half = np.array2string(half_times(self.gamma, self.s0_sq), precision=4)
        crit = np.array2string(critical_times(self.gamma, self.s0_sq), precision=4)
        final = np.array2string(ds["lambda_mode"].isel(time=-1).values, precision=4)
        return [
            f"  lambda_j = gamma_j s_j^2 at the end: {final} (each -> 1)",
            f"  max |lambda_j(t) - closed form| over the run: {err:.2e}",
            f"  half-times (lambda_j = 1/2): {half}; small-start critical times: {crit}",
        ]
