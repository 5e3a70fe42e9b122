"""Halvagal et al. 2023's eigenvalue dynamics of the Euclidean BYOL/SimSiam loss and of IsoLoss.

"Implicit variance regularization in non-contrastive SSL" (Halvagal, Laborieux, Zenke, NeurIPS
2023) study a linear encoder z = W x (d x d) with a closed-form linear predictor
W_p = F^alpha, F the correlation of the representations, a stop-gradient on the target branch and
no EMA lag, in the isotropic setting: clean inputs with X = E[x x^T] = I and augmentation noise
X' = sigma^2 I. Here F = W X W^T = W W^T and k = 1 + sigma^2. Two losses:

- Euclidean: L = 1/2 E ||W_p z1 - sg(z2)||^2 with W_p held fixed (DirectPred-style), so
      dW/dt = -dL/dW = W_p W X - W_p^T W_p W (X + X') = F^alpha W - k F^{2 alpha} W.
- IsoLoss: the prediction error is back-propagated without the factor W_p^T, i.e. the loss
  L = 1/2 E ||z1 - sg(z1 - W_p z1 + z2)||^2, whose gradient in W is (W_p W (X + X') - W X):
      dW/dt = W - k F^alpha W.

Both right-hand sides are matrix functions of F times W, so dF/dt = W dW/dt^T + dW/dt W^T keeps
the eigenvectors of F and moves each eigenvalue lambda_j on its own (exactly, from any W(0)):

    Euclidean: d lambda/dt = 2 lambda^{1 + alpha} (1 - k lambda^alpha),
    IsoLoss:   d lambda/dt = 2 lambda (1 - k lambda^alpha),

with the stable fixed point lambda* = k^{-1/alpha} = (1 + sigma^2)^{-1/alpha} for every mode. In
u = lambda^alpha, IsoLoss is logistic, u(t) = u0 e^{2 alpha t} / (1 + k u0 (e^{2 alpha t} - 1)),
and every mode relaxes at the same rate 2 alpha near u* (the "isotropic" convergence the loss is
named for); the Euclidean flow, du/dt = 2 alpha u^2 (1 - k u), is slowed by the extra factor u
("eigenvalues act as learning-rate multipliers") and has the implicit solution

    2 alpha t = G(u(t)) - G(u0),   G(u) = -1/u + k ln(u / |1 - k u|).

The model integrates the MATRIX flow of W; ``corr_eig_closed_form`` evaluates the per-mode
solutions above from the eigenvalues of F(0) (the Euclidean one by inverting G by bisection), an
independent check (docs/theory.md (D14)).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from dynamics.models.base import Model, StateLayout
from symbolic.common.options import param, validate
from symbolic.common.schema import MODE, TIME

LOSSES = ("euclidean", "iso")


def _implicit_g(u: np.ndarray, k: float) -> np.ndarray:
    """G(u) = -1/u + k ln(u / |1 - k u|), the Euclidean flow's time integral (times 2 alpha);
    +inf at the fixed point u = 1/k, which the flow reaches only as t -> infinity."""
    with np.errstate(divide="ignore"):
        return -1.0 / u + k * np.log(u / np.abs(1.0 - k * u))


def predictor_power(t: np.ndarray, u0: np.ndarray, k: float, alpha: float, loss: str):
    """u_j(t) = lambda_j(t)^alpha on a (time, mode) grid, from u_j(0) = ``u0`` (module docstring).

    IsoLoss: the logistic solution. Euclidean: G(u) = G(u0) + 2 alpha t solved by bisection
    between u0 and the fixed point 1/k (G is monotone there), to machine precision.
    """
    t = np.asarray(t, float)[:, None]
    u0 = np.asarray(u0, float)[None, :]
    if loss == "iso":
        decay = np.exp(-2.0 * alpha * t)
        return 1.0 / (decay / u0 + (1.0 - decay) * k)
    target = _implicit_g(u0, k) + 2.0 * alpha * t
    lo = np.broadcast_to(u0, target.shape).copy()
    hi = np.full(target.shape, 1.0 / k)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        short = _implicit_g(mid, k) < target  # G grows along the path from u0 to 1/k
        lo = np.where(short, mid, lo)
        hi = np.where(short, hi, mid)
    return 0.5 * (lo + hi)


@dataclasses.dataclass(frozen=True)
class IsoLossParams:
    """Parameters of Halvagal et al.'s isotropic linear setting."""

    dim: int = param(6, "dimension d of inputs and representations", at_least=1, at_most=2000)
    loss: str = param(
        "euclidean", "'euclidean' (BYOL/SimSiam, W_p fixed) or 'iso' (IsoLoss)", choices=LOSSES
    )
    alpha: float = param(0.5, "exponent of the closed-form predictor W_p = F^alpha", above=0)
    sigma2: float = param(0.2, "augmentation noise: X' = sigma^2 I", at_least=0)
    init_scale: float = param(0.5, "W(0) entries ~ N(0, s^2 / d)", above=0, at_most=1e3)
    seed: int = param(0, "random seed of W(0)", at_least=0)

    def __post_init__(self):
        validate(self)


class IsoLossModel(Model):
    """dW/dt = F^alpha W - k F^{2 alpha} W (Euclidean) or W - k F^alpha W (IsoLoss)."""

    name = "isoloss"
    description = "Halvagal et al. 2023: Euclidean BYOL vs IsoLoss with W_p = F^alpha (X = I)"

    def __init__(self, params: IsoLossParams):
        q = params
        rng = np.random.default_rng(q.seed)
        self.w0 = q.init_scale * rng.standard_normal((q.dim, q.dim)) / np.sqrt(q.dim)
        self.k = 1.0 + q.sigma2
        super().__init__(params)

    def make_layout(self) -> StateLayout:
        return StateLayout([("W", (self.params.dim, self.params.dim))])

    def initial_state(self) -> np.ndarray:
        return self.layout.pack(W=self.w0)

    def feature_power(self, w: np.ndarray, power: float) -> np.ndarray:
        """F^power for F = W W^T (eigenvalues clipped at 0 against round-off)."""
        vals, vecs = np.linalg.eigh(w @ w.T)
        return (vecs * np.clip(vals, 0.0, None) ** power) @ vecs.T

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        q = self.params
        w = self.layout.unpack(y)["W"]
        wp = self.feature_power(w, q.alpha)
        if q.loss == "iso":
            return self.layout.pack(W=w - self.k * wp @ w)
        return self.layout.pack(W=wp @ w - self.k * wp @ wp @ w)

    def observables(self, t: np.ndarray, y: np.ndarray) -> xr.Dataset:
        q = self.params
        w = self.layout.unpack(y)["W"]
        lam = np.linalg.eigvalsh(w @ np.swapaxes(w, -1, -2))[:, ::-1]
        u0 = lam[0] ** q.alpha
        closed = predictor_power(t, u0, self.k, q.alpha, q.loss) ** (1.0 / q.alpha)
        return xr.Dataset(
            {
                "corr_eig": ((TIME, MODE), lam),
                "corr_eig_closed_form": ((TIME, MODE), closed),
            },
            coords={TIME: t, MODE: np.arange(q.dim)},
        )

    def closed_forms(self) -> dict[str, float]:
        q = self.params
        return {"fixed_point": self.k ** (-1.0 / q.alpha), "relaxation_rate_iso": 2.0 * q.alpha}

    def summary(self, ds: xr.Dataset) -> list[str]:
        err = float(np.max(np.abs(ds["corr_eig"] - ds["corr_eig_closed_form"])))
        final = np.array2string(ds["corr_eig"].isel(time=-1).values, precision=5)
        return [
            f"  eigenvalues of F = W W^T at the end: {final}",
            f"  fixed point (1 + sigma^2)^(-1/alpha) = {ds.attrs['fixed_point']:.6g}",
            f"  max |lambda_j(t) - closed form| over the run: {err:.2e}",
        ]
