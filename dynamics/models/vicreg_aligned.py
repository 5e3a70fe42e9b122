"""Linear VICReg on the population loss, integrated through the variance hinge (Filippov sliding).

A linear encoder z = W x (W: d x d) trained by gradient flow on VICReg's loss (Bardes, Ponce,
LeCun 2022, eqs. 1-6, with the official code's conventions) in second moments: clean inputs with
correlation X = diag(c) (zero mean), isotropic augmentation noise X' = sigma^2 I, the views'
covariance C = W (X + X') W^T, std_j = sqrt(C_jj):

    L = (lambda/d) 2 tr(W X' W^T) + (mu/d) sum_j relu(1 - std_j) + (nu/d) 2 sum_{i != j} C_ij^2

(invariance: the mean squared difference of the views; variance: both views' hinges, halved as in
the official code; covariance: both views). From an ALIGNED start (W diagonal) every std_j moves
on its own, d std_j/dt = -A_j std_j + B_j [std_j < 1] with A = 4 lambda sigma^2 / d and
B_j = mu (c_j + sigma^2)/d, so std_j relaxes exponentially to

    std_j* = min(1, mu (c_j + sigma^2) / (4 lambda sigma^2)),

reaching the hinge std_j = 1 in finite time where the unconstrained optimum lies above it, and
then SLIDING along it: below 1 the hinge pushes std_j up, above 1 only the invariance acts and
pulls it down (a Filippov sliding mode; adaptive solvers on the raw right-hand side crawl there,
see dynamics/models/contrastive.py). This model integrates the MATRIX flow with the Filippov
velocity: inside a band |std_j - 1| <= ``band`` where the two one-sided fields point at the
surface, row j moves with the convex combination f_free + theta_j g_j (g_j the hinge's push,
theta_j in (0, 1)) that keeps C_jj constant; rows are coupled only through the covariance term,
which leaves each hinge's theta to its own row. The error this makes is at most ``band`` in std.

``std_closed_form`` is the piecewise-exponential solution above, an independent check of the
aligned flow (docs/theory.md (D15)).

The aligned point is a fixed point, not always the minimiser. Measured (tests/dynamics/
test_closed_forms.py): at the official coefficients, X = diag(4, 2, 1, 0.5), sigma^2 = 0.5, the
aligned point has std* = (1, 1, 0.75, 0.5) and loss 12.48, while the flow from a random start
(``--init random --init-scale 1 --method Radau``; explicit solvers overflow in trial stages there)
ends with every std_j = 1 on a rank-2 covariance at loss 9.47: a dimensional collapse that the
covariance weight nu = 1 does not prevent.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from dynamics.models.base import Model, StateLayout, positive_numbers
from symbolic import losses
from symbolic.common.options import param, require, validate
from symbolic.common.schema import MODE, TIME


def std_closed_form(t, std0, std_star, rate):
    """std_j(t) of the aligned flow d std/dt = -A std + A std* [std < 1], on a (time, mode) grid.

    Below 1: std* + (std0 - std*) e^{-A t}, held at 1 from the crossing time when std* > 1 (the
    sliding mode). Above 1: std0 e^{-A t} down to 1 (time ln(std0)/A), then held at 1 if
    std* >= 1, else std* + (1 - std*) e^{-A (t - t1)}.
    """
    t = np.asarray(t, float)[:, None]
    std0, std_star, rate = (np.broadcast_to(np.asarray(v, float), np.shape(std0)) for v in
                            (std0, std_star, rate))  # fmt: skip
    capped = np.minimum(std_star, 1.0)
    out = np.empty((t.shape[0], std0.size))
    for j, (s0, s_star, a, cap) in enumerate(zip(std0, std_star, rate, capped, strict=True)):
        if s0 >= 1.0:
            t1 = np.log(s0) / a
            after = cap + (1.0 - cap) * np.exp(-a * np.clip(t[:, 0] - t1, 0, None))
            out[:, j] = np.where(t[:, 0] < t1, s0 * np.exp(-a * t[:, 0]), after)
        else:
            free = s_star + (s0 - s_star) * np.exp(-a * t[:, 0])
            out[:, j] = np.minimum(free, 1.0) if s_star > 1.0 else free
    return out


@dataclasses.dataclass(frozen=True)
class VICRegAlignedParams:
    """Parameters of the population linear VICReg flow."""

    x_spectrum: str = param(
        "4,2,1,0.5",
        "eigenvalues c_j of the clean-input correlation X (one per dimension; mode j is the j-th "
        "largest)",
    )
    sigma2: float = param(0.5, "augmentation noise: X' = sigma^2 I", above=0)
    sim_coeff: float = losses.hyper_param("vicreg", "sim_coeff")  # > 0: __post_init__
    std_coeff: float = losses.hyper_param("vicreg", "std_coeff")
    cov_coeff: float = losses.hyper_param("vicreg", "cov_coeff")
    init: str = param(
        "aligned", "W(0): 'aligned' (diagonal, the closed form holds) or 'random'",
        choices=("aligned", "random"),
    )  # fmt: skip
    init_scale: float = param(0.3, "aligned: std_j(0); random: W(0) ~ N(0, s^2/d)", above=0)
    band: float = param(
        1e-9, "half-width of the sliding band around std_j = 1", above=0, at_most=1e-2
    )
    seed: int = param(0, "random seed of a random W(0)", at_least=0)

    def __post_init__(self):
        validate(self)
        require(
            self.sim_coeff > 0, "sim_coeff", self.sim_coeff, "sim_coeff > 0 (std* divides by it)"
        )
        positive_numbers(self.x_spectrum, "x_spectrum")


class VICRegAlignedModel(Model):
    """The population VICReg flow of a linear encoder with Filippov sliding at std_j = 1."""

    name = "vicreg_aligned"
    description = "linear VICReg on the population loss, through the hinge: std* = min(1, ...)"

    def __init__(self, params: VICRegAlignedParams):
        q = params
        self.c = np.sort(positive_numbers(q.x_spectrum, "x_spectrum"))[::-1]  # mode order
        d = self.c.size
        self.view_corr = np.diag(self.c + q.sigma2)  # X + X'
        if q.init == "aligned":
            self.w0 = np.diag(q.init_scale / np.sqrt(self.c + q.sigma2))
        else:
            rng = np.random.default_rng(q.seed)
            self.w0 = q.init_scale * rng.standard_normal((d, d)) / np.sqrt(d)
        super().__init__(params)

    @property
    def dim(self) -> int:
        return self.c.size

    def make_layout(self) -> StateLayout:
        return StateLayout([("W", (self.dim, self.dim))])

    def initial_state(self) -> np.ndarray:
        return self.layout.pack(W=self.w0)

    def velocity(self, w: np.ndarray) -> np.ndarray:
        """dW/dt: the hinge-free field plus each row's hinge push (full, none or Filippov)."""
        q, d, s = self.params, self.dim, self.view_corr
        ws = w @ s
        cov = ws @ w.T
        off = cov - np.diag(np.diag(cov))
        free = -(4 * q.sim_coeff * q.sigma2 / d) * w - (8 * q.cov_coeff / d) * off @ ws
        std = np.sqrt(np.diag(cov))
        push = (q.std_coeff / d) * ws / np.maximum(std, 1e-300)[:, None]  # g_j, row j
        # dC_jj/dt along row j of a field v is 2 v_j . (W S)_j
        rate_free = 2 * np.sum(free * ws, axis=1)
        rate_push = 2 * np.sum(push * ws, axis=1)
        theta = (std < 1.0).astype(float)
        sliding = (np.abs(std - 1.0) <= q.band) & (rate_free < 0) & (rate_free + rate_push > 0)
        theta = np.where(sliding, -rate_free / np.where(sliding, rate_push, 1.0), theta)
        return free + theta[:, None] * push

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        return self.layout.pack(W=self.velocity(self.layout.unpack(y)["W"]))

    def loss(self, w: np.ndarray) -> np.ndarray:
        """L(W) of the module docstring, over leading (time) dimensions."""
        q, d = self.params, self.dim
        cov = w @ self.view_corr @ np.swapaxes(w, -1, -2)
        std = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
        off = cov - std[..., :, None] ** 2 * np.eye(d)
        invariance = 2 * q.sigma2 * np.sum(w**2, axis=(-2, -1))
        hinge = np.sum(np.maximum(1.0 - std, 0.0), axis=-1)
        return (q.sim_coeff * invariance + q.std_coeff * hinge
                + 2 * q.cov_coeff * np.sum(off**2, axis=(-2, -1))) / d  # fmt: skip

    def closed_forms(self) -> dict[str, list[float]]:
        """std_j* = min(1, mu (c_j + sigma^2) / (4 lambda sigma^2)), per input eigenvalue c_j."""
        q = self.params
        star = q.std_coeff * (self.c + q.sigma2) / (4 * q.sim_coeff * q.sigma2)
        return {"std_star": np.minimum(star, 1.0).tolist()}

    def observables(self, t: np.ndarray, y: np.ndarray) -> xr.Dataset:
        q = self.params
        w = self.layout.unpack(y)["W"]
        cov = w @ self.view_corr @ np.swapaxes(w, -1, -2)
        std = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
        off = cov - std[..., :, None] ** 2 * np.eye(self.dim)
        data = {
            "feature_std": ((TIME, MODE), std),
            "offdiag_norm": ((TIME,), np.linalg.norm(off, axis=(-2, -1))),
            "loss": ((TIME,), self.loss(w)),
        }
        if q.init == "aligned":
            star = q.std_coeff * (self.c + q.sigma2) / (4 * q.sim_coeff * q.sigma2)
            rate = np.full(self.dim, 4 * q.sim_coeff * q.sigma2 / self.dim)
            data["feature_std_closed_form"] = (
                (TIME, MODE),
                std_closed_form(t, std[0], star, rate),
            )
        return xr.Dataset(data, coords={TIME: t, MODE: np.arange(self.dim)})

    def summary(self, ds: xr.Dataset) -> list[str]:
        final = np.array2string(ds["feature_std"].isel(time=-1).values, precision=6)
        star = np.array2string(np.array(self.closed_forms()["std_star"]), precision=6)
        lines = [f"  std_j at the end: {final}; closed form std*: {star}"]
        if "feature_std_closed_form" in ds:
            err = float(np.max(np.abs(ds["feature_std"] - ds["feature_std_closed_form"])))
            lines.append(f"  max |std_j(t) - closed form| over the run: {err:.2e}")
        return lines
