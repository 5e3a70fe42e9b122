"""Liu, Suganuma & Okatani 2022: no stop-gradient, a covariance-maintaining term, a linear W_p.

The loss is ``symbolic.losses.get("liu")`` (their eqs. 17-19, docs/theory.md (L9)):

    L = c_inv ||W_p A - B||_F^2 + (c_cov/d) sum_{i=1..k} ||W_p^T W_p - W_p C_i W_p^T||_F^2,
    A = Zs_1^T/sqrt(n), B = Zs_2^T/sqrt(n), C_i = A_i A_i^T, A_i = (part i of Zs_1)^T/sqrt(n/k)

with Zs_v the views standardised per feature (eq. 18, unbiased std, + eps) or Z_v itself, trained
by gradient flow with NO stop-gradient (both views carry gradient) unless ``sg_view2``
(Table 3's last column), a learned W_p (rate alpha_p) or W_p = I (``identity_predictor``, Table
3's I-PRED). Gradients (derived by hand; tests compare them with autograd of the symbolic loss),
G_i = W_p^T W_p - W_p C_i W_p^T, R = W_p A - B:

    dL/dW_p = 2 c_inv R A^T + (4 c_cov/d) sum_i (W_p G_i - G_i W_p C_i)
    dL/dA   = 2 c_inv W_p^T R,  dL/dA_i += -(4 c_cov/d) W_p^T G_i W_p A_i,   dL/dB = -2 c_inv R

then back through the standardisation and the encoder. Two encoders: 'linear' (Z_v = X_v W^T on
the synthetic data set of :mod:`dynamics.models.encoder`) and 'free' (Liu's free-feature model,
as in :mod:`dynamics.models.free_features`: the d x n matrix F_1 = Z_1^T/sqrt(n) is the free
variable, dF_1/dt = -dL/dF_1 - eta F_1, and Z_2 = Z_1 + E with a fixed augmentation offset E,
entries N(0, sigma^2)). Without standardisation (and with a learned W_p) the loss has the collapsed
zero W_p = 0, Z = 0; Liu et al. Table 3 reports collapse there and none with it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from dynamics.models.encoder import EncoderModel, EncoderParams, standardize, standardize_backward
from symbolic import losses
from symbolic.common.options import param, require

ENCODERS = ("linear", "free")


@dataclasses.dataclass(frozen=True)
class LiuParams(EncoderParams):
    """Liu et al.'s loss on a linear encoder or on free features (Table 3's setting by default)."""

    encoder: str = param(
        "linear", "'linear' (Z = X W^T) or 'free' (Z_1 free, Z_2 = Z_1 + E)", choices=ENCODERS
    )
    c_inv: float = losses.hyper_param("liu", "c_inv", 1.0, "Table 3: 1")
    c_cov: float = losses.hyper_param("liu", "c_cov", 1.0, "Table 3: 0, 1")
    k: int = losses.hyper_param("liu", "k", 1, "N = n_samples here")
    standardize: bool = losses.hyper_param("liu", "standardize", note="STD of Table 3")
    std_eps: float = losses.hyper_param("liu", "eps")
    identity_predictor: bool = param(False, "W_p = I, not trained (Table 3's I-PRED)")
    sg_view2: bool = param(False, "stop the gradient through view 2 (Table 3's StopGrad)")
    alpha_p: float = param(1.0, "relative learning rate of W_p", above=0)

    def __post_init__(self):
        super().__post_init__()
        require(self.n_samples % self.k == 0, "k", self.k, "a divisor of n_samples")


class LiuModel(EncoderModel):
    """Gradient flow of Liu et al.'s loss (symbolic.losses 'liu')."""

    name = "liu"
    description = "Liu et al.: no stop-gradient, covariance-maintaining term (linear or free)"

    def __init__(self, params: LiuParams):
        super().__init__(params)
        rng = np.random.default_rng(np.random.SeedSequence(params.seed).spawn(6)[5])
        q = params
        #: the free-feature model's initial Z_1 and its fixed augmentation offset E = Z_2 - Z_1
        self._z0 = q.init_scale * rng.standard_normal((q.n_samples, q.dim))
        self.offset = np.sqrt(q.sigma2) * rng.standard_normal((q.n_samples, q.dim))

    @property
    def predictor_trained(self) -> bool:
        return not self.params.identity_predictor

    def make_layout(self):
        layout = super().make_layout()
        if self.params.encoder == "free":
            blocks = [(n, s) for n, s in layout.blocks if n != "W"]
            layout = type(layout)([("F1", (self.params.dim, self.params.n_samples)), *blocks])
        return layout

    def initial_state(self, w0=None, wp0=None, z0=None) -> np.ndarray:
        if self.params.encoder == "linear":
            return super().initial_state(w0, wp0)
        z0 = self._z0 if z0 is None else z0
        blocks = {"F1": z0.T / np.sqrt(self.params.n_samples)}
        if self.predictor_trained:
            blocks["W_p"] = self._wp0 if wp0 is None else wp0
        return self.layout.pack(**blocks)

    def views(self, blocks):
        if self.params.encoder == "free":
            z1 = np.swapaxes(blocks["F1"], -1, -2) * np.sqrt(self.params.n_samples)
            return z1, z1 + self.offset
        return super().views(blocks)

    def eval_embeddings(self, blocks):
        if self.params.encoder == "free":
            return self.views(blocks)[0]
        return super().eval_embeddings(blocks)

    def predictor_matrix(self, blocks):
        if self.params.identity_predictor:
            lead = next(iter(blocks.values())).shape[:-2]
            return np.broadcast_to(
                np.eye(self.params.dim), (*lead, self.params.dim, self.params.dim)
            )
        return blocks["W_p"]

    def loss_value(self, blocks) -> float:
        z1, z2 = self.views(blocks)
        return float(losses.get("liu")(self.predictor_matrix(blocks), z1, z2, **self.hyper()))

    def gradients(self, blocks):
        q = self.params
        z1, z2 = self.views(blocks)
        wp = self.predictor_matrix(blocks)
        n, d = z1.shape
        if q.standardize:
            (s1, std1), (s2, std2) = standardize(z1, q.std_eps, 1), standardize(z2, q.std_eps, 1)
        else:
            s1, s2 = z1, z2
        a, b = s1.T / np.sqrt(n), s2.T / np.sqrt(n)
        r = wp @ a - b
        g_wp = 2 * q.c_inv * r @ a.T
        g_a = 2 * q.c_inv * wp.T @ r
        m = n // q.k
        parts = np.swapaxes(s1.reshape(q.k, m, d), 1, 2) / np.sqrt(m)  # A_i, (k, d, m)
        g_s1_cov = np.zeros_like(s1)
        for i in range(q.k):
            c_i = parts[i] @ parts[i].T
            gap = wp.T @ wp - wp @ c_i @ wp.T
            g_wp += 4 * q.c_cov / d * (wp @ gap - gap @ wp @ c_i)
            g_s1_cov[i * m : (i + 1) * m] = (-4 * q.c_cov / d * wp.T @ gap @ wp @ parts[i]).T
        g_s1 = g_a.T / np.sqrt(n) + g_s1_cov / np.sqrt(m)
        g_s2 = np.zeros_like(s2) if q.sg_view2 else -2 * q.c_inv * r.T / np.sqrt(n)
        if q.standardize:
            g_s1 = standardize_backward(s1, std1, g_s1, ddof=1)
            g_s2 = standardize_backward(s2, std2, g_s2, ddof=1)
        if q.encoder == "free":
            grads = {"F1": np.sqrt(n) * (g_s1 + g_s2).T}
        else:
            grads = self.to_weights(g_s1, g_s2)
        if self.predictor_trained:
            grads["W_p"] = g_wp
        return grads

    def summary(self, ds: xr.Dataset) -> list[str]:
        q = self.params
        setting = (
            f"  encoder {q.encoder}, c_inv {q.c_inv:g}, c_cov {q.c_cov:g}, k {q.k}, "
            f"STD {'on' if q.standardize else 'off'}, "
            f"predictor {'I' if q.identity_predictor else 'learned'}, "
            f"stop-gradient {'on' if q.sg_view2 else 'off'}"
        )
        return [setting, *super().summary(ds)]
