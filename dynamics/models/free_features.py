"""Liu, Suganuma & Okatani 2022: the predictor W_p and the features F1 as free variables.

Linear BYOL/SimSiam in feature space (Liu et al. eqs. 4-5, Lemmas 3.2-3.3): the loss
L = 1/2 ||W_p F1 - sg(F2)||_F^2 with F1 = [f_1 ... f_n]/sqrt(n) (d x n) trained by gradient flow,
F1 free, with weight decay eta on both:

    dW_p/dt = -alpha_p (W_p F1 - F2) F1^T - eta W_p
    dF1/dt  = -W_p^T (W_p F1 - F2) - eta F1

The target F2 = F1 + E is the other view: the online features displaced by a fixed augmentation
offset E (entries N(0, sigma^2/n)), held under stop-gradient. Theorem 3.1 (with alpha_p; Liu et al.
take alpha_p = 1) holds for any target F2(t):

    W_p^T W_p / alpha_p = F1 F1^T + e^{-2 eta t} C,   C = W_p(0)^T W_p(0)/alpha_p - F1(0) F1(0)^T.

Liu et al.'s eq. 6 prints F^T F; the d x d form F F^T of their eqs. 13-14 is the right one.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from dynamics import observables as obs
from dynamics.models.base import Model, StateLayout, conservation_vars, time_mode_vars
from symbolic.common.options import param, validate
from symbolic.common.schema import COL, MODE, ROW, TIME


@dataclasses.dataclass(frozen=True)
class FreeFeatureParams:
    """Parameters of the free-feature model."""

    dim: int = param(8, "feature dimension d (size of W_p)", at_least=1)
    n_samples: int = param(32, "number of samples n (columns of F1)", at_least=1)
    eta: float = param(0.05, "weight decay eta on W_p and F1", at_least=0)
    alpha_p: float = param(1.0, "relative learning rate of the predictor alpha_p (Liu: 1)", above=0)
    sigma2: float = param(
        0.1, "variance of the augmentation offset E = F2 - F1, times n", at_least=0
    )
    init_scale: float = param(1.0, "initial W_p ~ N(0, s^2/d), F1 ~ N(0, s^2/n) entrywise", above=0)
    seed: int = param(0, "random seed of the initial state and of the offset E", at_least=0)

    def __post_init__(self):
        validate(self)


class FreeFeatureModel(Model):
    """Liu et al. Theorem 3.1 setting: (W_p, F1) under gradient flow, F2 = F1 + E."""

    name = "free_features"
    description = "Liu et al.'s model: W_p and the features F1 as free variables (Theorem 3.1)"

    def __init__(self, params: FreeFeatureParams):
        q = params
        wp_rng, f_rng, e_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(q.seed).spawn(3)
        )
        n = q.n_samples
        self._wp0 = q.init_scale * wp_rng.standard_normal((q.dim, q.dim)) / np.sqrt(q.dim)
        self._f0 = q.init_scale * f_rng.standard_normal((q.dim, n)) / np.sqrt(n)
        #: the fixed augmentation offset E = F2 - F1
        self.offset = np.sqrt(q.sigma2 / n) * e_rng.standard_normal((q.dim, n))
        super().__init__(params)

    def make_layout(self) -> StateLayout:
        q = self.params
        return StateLayout([("W_p", (q.dim, q.dim)), ("F1", (q.dim, q.n_samples))])

    def initial_state(self) -> np.ndarray:
        return self.layout.pack(W_p=self._wp0, F1=self._f0)

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        q = self.params
        b = self.layout.unpack(y)
        wp, f1 = b["W_p"], b["F1"]
        residual = wp @ f1 - (f1 + self.offset)
        return self.layout.pack(
            W_p=-q.alpha_p * residual @ f1.T - q.eta * wp,
            F1=-wp.T @ residual - q.eta * f1,
        )

    def conserved_matrix(self, wp: np.ndarray, f1: np.ndarray) -> np.ndarray:
        """W_p^T W_p / alpha_p - F1 F1^T (Liu Theorem 3.1: equals e^{-2 eta t} C)."""
        wpt = np.swapaxes(wp, -1, -2)
        return wpt @ wp / self.params.alpha_p - f1 @ np.swapaxes(f1, -1, -2)

    def observables(self, t: np.ndarray, y: np.ndarray) -> xr.Dataset:
        q = self.params
        b = self.layout.unpack(y)
        wp, f1 = b["W_p"], b["F1"]
        corr = f1 @ np.swapaxes(f1, -1, -2)  # F1 F1^T, the uncentred feature correlation
        data = time_mode_vars(obs.predictor_observables(wp, corr))
        data.update(conservation_vars(self.conserved_matrix(wp, f1), t, q.eta))
        residual = wp @ f1 - (f1 + self.offset)
        data["loss"] = ((TIME,), 0.5 * np.sum(residual**2, axis=(-2, -1)))
        ds = xr.Dataset(data, coords={TIME: t, MODE: np.arange(q.dim)})
        ds["wp"] = ((TIME, ROW, COL), wp)
        ds["conservation_residual_weight"].attrs["long_name"] = (
            "||W_p^T W_p / alpha_p - F1 F1^T||_F / ||C||_F (Liu Theorem 3.1: equals exp(-2 eta t))"
        )
        ds["conservation_error"].attrs["long_name"] = (
            "||W_p^T W_p / alpha_p - F1 F1^T - exp(-2 eta t) C||_F / ||C||_F"
        )
        return ds

    def summary(self, ds: xr.Dataset) -> list[str]:
        final = ds.isel(time=-1)
        err = float(ds["conservation_error"].max())
        eig = np.array2string(final["wp_eig_real"].values, precision=4)
        return [
            f"  final eigenvalues of W_p (real parts): {eig}",
            "  Liu Theorem 3.1, W_p^T W_p/alpha_p - F1 F1^T = e^(-2 eta t) C: "
            f"max error {err:.2e} relative to ||C||",
            f"  feature-space residual ||W_p^T W_p - F1 F1^T||/||F1 F1^T||: "
            f"{float(ds['conservation_residual'][0]):.3g} at t=0 -> "
            f"{float(final['conservation_residual']):.3g}",
            f"  loss {float(ds['loss'][0]):.4g} -> {float(final['loss']):.4g}",
        ]
