"""Linear BYOL and SimSiam without a predictor or without the stop-gradient (Tian et al. 2021).

Both reuse the Lemma 1 flow of :class:`~dynamics.models.linear_byol.LinearBYOLModel`
(L = 1/2 E||W_p W x1 - sg(W_a x2)||^2, X = E[xbar xbar^T], X' = E_x Var(x'|x)):

``no_predictor`` (W_p = I, not trained):
    dW/dt   = -W (X + X') + W_a X - eta W,     dW_a/dt = beta (W - W_a)    (variant 'byol')
    dW/dt   = -W X' - eta W                                                (variant 'simsiam')
  SimSiam collapses exponentially (Tian Sec. 3 remark, written there as -(X' + eta I) W); BYOL
  keeps a non-collapsed solution only if X (X + X')^{-1} has an eigenvalue exactly 1 (Tian
  App. D), so with X' > 0 it collapses too.

``no_stopgrad``: the target branch is differentiated as well.
  variant 'simsiam': the target is the online network (Tian Theorem 2): ||W|| <= e^{-lambda0 t}.
  variant 'byol': the target W_a stays an EMA of W but also receives the loss gradient (the only
  gradient path an EMA target has, since in flow time W_a(t) does not depend on the current W):
      dW_a/dt = beta (W - W_a) + W_p W X - W_a (X + X') - eta W_a.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from dynamics import observables as obs
from dynamics.models.base import StateLayout, time_mode_vars
from dynamics.models.linear_byol import LinearBYOLModel, LinearBYOLParams
from symbolic.common.options import param
from symbolic.common.schema import MODE, TIME

VARIANTS = ("byol", "simsiam")


def collapse_summary(ds: xr.Dataset, label: str) -> list[str]:
    """Summary lines of an ablation run: ||W|| from start to end and how many eigenvalues of
    E[f f^T] stay above 2% of the initial largest (the others count as collapsed)."""
    first, final = ds.isel(time=0), ds.isel(time=-1)
    top = float(first["corr_eig"].max())
    dim = final["corr_eig"].size
    if "mode_collapsed" in ds:  # what the file stores and the report shows (dynamics.fates)
        alive = int(np.sum(ds["mode_collapsed"].values == 0))
    else:
        alive = int(np.sum(final["corr_eig"].values > 0.02 * top))
    return [
        f"  {label}: ||W|| {float(first['w_norm']):.4g} -> {float(final['w_norm']):.4g}",
        f"  eigenvalues of E[f f^T] above 2% of the initial largest: {alive} of {dim} "
        f"(collapsed modes: {dim - alive})",
    ]


@dataclasses.dataclass(frozen=True)
class AblationParams(LinearBYOLParams):
    """Linear BYOL parameters plus the method whose ablation is run."""

    variant: str = param(
        "simsiam", "'byol' (EMA target, rate beta) or 'simsiam' (W_a = W)", choices=VARIANTS
    )

    @property
    def has_ema_target(self) -> bool:
        return self.variant == "byol"


class NoPredictorModel(LinearBYOLModel):
    """Lemma 1 with W_p = I fixed (alpha_p and predictor_decay are not used)."""

    name = "no_predictor"
    description = "linear BYOL/SimSiam with W_p = I (no predictor): collapses (Tian Sec. 3)"
    collapse_spectrum = "corr"

    def make_layout(self) -> StateLayout:
        q = self.params
        blocks = [("W", (q.dim, q.input_dim))]
        if q.has_ema_target:
            blocks.append(("W_a", (q.dim, q.input_dim)))
        return StateLayout(blocks)

    def initial_state(self, w0=None, wa0=None) -> np.ndarray:
        w0 = self._w0 if w0 is None else w0
        blocks = {"W": w0}
        if self.params.has_ema_target:
            blocks["W_a"] = w0 if wa0 is None else wa0
        return self.layout.pack(**blocks)

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        b = self.layout.unpack(y)
        eye = np.eye(self.params.dim)
        d_w, _, d_wa = self.velocities(b["W"], eye, self._target(b))
        blocks = {"W": d_w}
        if self.params.has_ema_target:
            blocks["W_a"] = d_wa
        return self.layout.pack(**blocks)

    def observables(self, t: np.ndarray, y: np.ndarray) -> xr.Dataset:
        b = self.layout.unpack(y)
        w = b["W"]
        wa = self._target(b)
        eye = np.broadcast_to(np.eye(self.params.dim), (t.size, self.params.dim, self.params.dim))
        view_corr = w @ self.view_corr @ np.swapaxes(w, -1, -2)
        data = time_mode_vars({"corr_eig": obs.correlation_eigh(view_corr)[0]})
        data["loss"] = ((TIME,), self.loss(w, eye, wa))
        data["w_norm"] = ((TIME,), np.linalg.norm(w, axis=(-2, -1)))
        if self.params.has_ema_target:
            data["ema_gap"] = ((TIME,), np.linalg.norm(wa - w, axis=(-2, -1)))
        return xr.Dataset(data, coords={TIME: t, MODE: np.arange(self.params.dim)})

    def summary(self, ds: xr.Dataset) -> list[str]:
        return collapse_summary(ds, f"variant {self.params.variant}, W_p = I")

    def closed_forms(self) -> dict[str, float]:
        return {}


class NoStopGradModel(LinearBYOLModel):
    """Lemma 1 with the target branch differentiated (variant 'simsiam': Tian Theorem 2)."""

    name = "no_stopgrad"
    description = "linear BYOL/SimSiam without the stop-gradient: collapses (Tian Theorem 2)"
    collapse_spectrum = "corr"

    def __init__(self, params: AblationParams):
        # simsiam: Lemma 1's no-stop-gradient flow; byol: W's flow is the usual one (the EMA
        # target does not depend on the current W) and the gradient goes to W_a (velocities)
        super().__init__(dataclasses.replace(params, stop_gradient=params.variant == "byol"))

    def velocities(self, w, wp, wa, t=None):
        d_w, d_wp, d_wa = super().velocities(w, wp, wa, t)
        q = self.params
        if q.variant == "byol":
            d_wa = d_wa + wp @ w @ self.x_corr - wa @ self.view_corr - q.eta * wa
        return d_w, d_wp, d_wa

    def summary(self, ds: xr.Dataset) -> list[str]:
        return collapse_summary(ds, f"variant {self.params.variant}, no stop-gradient")

    def closed_forms(self) -> dict[str, float]:
        return {}
