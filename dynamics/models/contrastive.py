"""Linear Barlow Twins, linear VICReg and the spectral contrastive loss on a linear encoder.

Gradient flows dW/dt = -dL/dW - eta W on the fixed synthetic data set of
:mod:`dynamics.models.encoder` (Z_v = X_v W^T, rows are samples); each L is the definition in
:mod:`symbolic.losses` (docs/theory.md (L6), (L7), (L11)) and each gradient below is derived by
hand (the tests compare it with autograd of the symbolic loss):

Barlow Twins: A, B = BN(Z_1), BN(Z_2) (biased variance + eps), C = A^T B / n,
    dL/dC = G, G_ii = -2 (1 - C_ii), G_ij = 2 lambda C_ij;
    dL/dA = B G^T / n, dL/dB = A G / n, then back through the standardisation.
VICReg: L = lambda/(n d) ||Z_1 - Z_2||^2 + mu sum_v v(Z_v)/2 + nu sum_v c(Z_v),
    dv/dZ_bj = -[std_j < 1] Zc_bj / (d (n-1) std_j),  dc/dZ = 4 Zc offdiag(Cov) / (d (n-1)).
Spectral: with G = Z_1 Z_2^T, L = -2 tr(G)/n + ||offdiag G||^2 / (n(n-1)),
    M = dL/dG = -2 I/n + 2 offdiag(G)/(n(n-1)), dL/dZ_1 = M Z_2, dL/dZ_2 = M^T Z_1.
The VICReg flow is not smooth: the variance hinge switches off where a std_j reaches 1, and when
the invariance term pushes std_j below 1 while the hinge pushes it back, the flow slides along
std_j = 1 (a Filippov sliding mode). Adaptive solvers (explicit or implicit) then take steps of
~1e-9 and crawl; it happens quickly for small n or d (n = 32, d = 4), not for the defaults.

Population optimum of the spectral loss (eta = 0, HaoChen et al. 2021): with S = X + X' and
T = S^{-1/2} X S^{-1/2}, the eigenvalues of W S W^T are the d largest (positive) eigenvalues of T.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from dynamics.models.encoder import (
    EncoderModel,
    EncoderParams,
    _sqrtm,
    standardize,
    standardize_backward,
)
from symbolic import losses


def _offdiag(a: np.ndarray) -> np.ndarray:
    return a - np.diag(np.diag(a))


@dataclasses.dataclass(frozen=True)
class BarlowTwinsParams(EncoderParams):
    """The hyperparameters of symbolic.losses 'barlow_twins', declared there."""

    lambd: float = losses.hyper_param("barlow_twins", "lambd")
    bn_eps: float = losses.hyper_param("barlow_twins", "eps")


class BarlowTwinsModel(EncoderModel):
    """Gradient flow of the Barlow Twins loss (symbolic.losses 'barlow_twins')."""

    name = "barlow_twins"
    description = "linear Barlow Twins: gradient flow of a linear encoder on a synthetic data set"

    def loss_value(self, blocks):
        return float(losses.get("barlow_twins")(*self.views(blocks), **self.hyper()))

    def gradients(self, blocks):
        q = self.params
        z1, z2 = self.views(blocks)
        n = z1.shape[0]
        a, std_a = standardize(z1, q.bn_eps, ddof=0)
        b, std_b = standardize(z2, q.bn_eps, ddof=0)
        c = a.T @ b / n
        g = 2 * q.lambd * _offdiag(c) - np.diag(2 * (1 - np.diag(c)))
        g1 = standardize_backward(a, std_a, b @ g.T / n, ddof=0)
        g2 = standardize_backward(b, std_b, a @ g / n, ddof=0)
        return self.to_weights(g1, g2)

    def summary(self, ds: xr.Dataset) -> list[str]:
        lines = super().summary(ds)
        lines.append(
            "  (the optimum: cross-correlation C of the standardised views = I, loss 0; the "
            "loss above is the distance to it)"
        )
        return lines


@dataclasses.dataclass(frozen=True)
class VICRegParams(EncoderParams):
    """The hyperparameters of symbolic.losses 'vicreg', declared there."""

    sim_coeff: float = losses.hyper_param("vicreg", "sim_coeff")
    std_coeff: float = losses.hyper_param("vicreg", "std_coeff")
    cov_coeff: float = losses.hyper_param("vicreg", "cov_coeff")
    var_eps: float = losses.hyper_param("vicreg", "eps")


class VICRegModel(EncoderModel):
    """Gradient flow of the VICReg loss (symbolic.losses 'vicreg')."""

    name = "vicreg"
    description = "linear VICReg: gradient flow of a linear encoder on a synthetic data set"

    def loss_value(self, blocks):
        return float(losses.get("vicreg")(*self.views(blocks), **self.hyper()))

    def gradients(self, blocks):
        q = self.params
        z1, z2 = self.views(blocks)
        n, d = z1.shape
        inv = 2 * q.sim_coeff * (z1 - z2) / (n * d)
        grads = []
        for z, sign in ((z1, 1.0), (z2, -1.0)):
            zc = z - z.mean(axis=0)
            std = np.sqrt(np.sum(zc**2, axis=0) / (n - 1) + q.var_eps)
            var_grad = -(std < 1).astype(float) * zc / (d * (n - 1) * std) * (q.std_coeff / 2)
            cov = zc.T @ zc / (n - 1)
            cov_grad = 4 * q.cov_coeff * zc @ _offdiag(cov) / (d * (n - 1))
            grads.append(sign * inv + var_grad + cov_grad)
        return self.to_weights(*grads)


@dataclasses.dataclass(frozen=True)
class SpectralParams(EncoderParams):
    pass


class SpectralModel(EncoderModel):
    """Gradient flow of the spectral contrastive loss (symbolic.losses 'spectral')."""

    name = "spectral"
    description = "linear spectral contrastive loss (SimCLR-like): gradient flow of an encoder"

    def loss_value(self, blocks):
        return float(losses.get("spectral")(*self.views(blocks)))

    def gradients(self, blocks):
        z1, z2 = self.views(blocks)
        n = z1.shape[0]
        m = 2 * _offdiag(z1 @ z2.T) / (n * (n - 1)) - 2 * np.eye(n) / n
        return self.to_weights(m @ z2, m.T @ z1)

    def population_optimum(self) -> np.ndarray:
        """The optimum's E[z z^T] eigenvalues: the d largest (>= 0) of T = S^{-1/2} X S^{-1/2}."""
        s_inv = np.linalg.inv(_sqrtm(self.x_corr + self.aug_cov))
        t = np.linalg.eigvalsh(s_inv @ self.x_corr @ s_inv)[::-1]
        return np.clip(t[: self.params.dim], 0.0, None)

    def summary(self, ds: xr.Dataset) -> list[str]:
        lines = super().summary(ds)
        lines.append(
            "  population optimum (eta = 0, n -> inf) of the eigenvalues of E[z z^T]: "
            f"{np.array2string(self.population_optimum(), precision=4)}"
        )
        return lines
