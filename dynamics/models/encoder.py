"""A linear encoder trained by full-batch gradient flow on a fixed synthetic data set.

The data set (shared by the models of :mod:`dynamics.models.contrastive`,
:mod:`dynamics.models.liu` and :mod:`dynamics.models.general`): n clean points
xbar_i ~ N(0, X) and two views x_i^(v) = xbar_i + xi_i^(v), xi ~ N(0, X'), with X and X' built
as in :mod:`dynamics.models.linear_byol` (same options, same seed: the same X, X', W(0) and
W_p(0) as ``linear_byol``), so E[x1 x1^T] -> X + X' and E[x1 x2^T] -> X as n grows. The encoder
is z = W x (rows of Z_v = X_v W^T are samples) and every model runs the gradient flow

    dW/dt = -dL/dW - eta W      (and dW_p/dt = -alpha_p dL/dW_p - eta W_p with a predictor)

of a loss of :mod:`symbolic.losses` evaluated on (Z_1, Z_2). The observables are measured on the
fixed, un-augmented evaluation set Z_eval = Xbar W^T (docs/theory.md (O5)): the two Sigma
conventions, RankMe, the SimSiam std monitor, and the single-view correlation Z_1^T Z_1 / n.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from dynamics import observables as obs
from dynamics.models.base import Model, StateLayout, parse_spectrum, time_mode_vars
from dynamics.models.linear_byol import LinearBYOLModel, LinearBYOLParams
from symbolic import losses
from symbolic.common.options import param, validate
from symbolic.common.schema import MODE, TIME
from symbolic.ops import NUMPY


@dataclasses.dataclass(frozen=True)
class EncoderParams:
    """Sizes, data and optimisation parameters of a linear encoder on a synthetic data set."""

    dim: int = param(8, "embedding dimension d (rows of W)", at_least=1)
    input_dim: int = param(12, "input dimension n1 (columns of W)", at_least=1)
    n_samples: int = param(256, "number n of data points (each with two views)", at_least=2)
    eta: float = param(0.0, "weight decay eta", at_least=0)
    sigma2: float = param(0.5, "augmentation variance sigma^2 (scale of X')", at_least=0)
    x_spectrum: str = param("random", "data correlation X (as for linear_byol)")
    aug_spectrum: str = param("isotropic", "augmentation covariance X' (as for linear_byol)")
    init_scale: float = param(1.0, "initial W ~ N(0, s^2/n1), W_p ~ N(0, s^2/d) entrywise", above=0)
    seed: int = param(0, "random seed of the data set and the initial weights", at_least=0)

    def __post_init__(self):
        validate(self)
        parse_spectrum(self.x_spectrum, self.input_dim, "x_spectrum")
        parse_spectrum(self.aug_spectrum, self.input_dim, "aug_spectrum")


def _sqrtm(a: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(a)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


@dataclasses.dataclass(frozen=True)
class SyntheticViews:
    """The fixed data set: clean points ``xbar`` and the two views ``x1``, ``x2`` (n, n1)."""

    xbar: np.ndarray
    x1: np.ndarray
    x2: np.ndarray

    @classmethod
    def sample(cls, x_corr, aug_cov, n: int, rng: np.random.Generator) -> SyntheticViews:
        n1 = x_corr.shape[0]
        xbar = rng.standard_normal((n, n1)) @ _sqrtm(x_corr)
        noise = rng.standard_normal((2, n, n1)) @ _sqrtm(aug_cov)
        return cls(xbar, xbar + noise[0], xbar + noise[1])


def standardize_backward(xhat: np.ndarray, std: np.ndarray, g: np.ndarray, ddof: int):
    """dL/dz for zhat = (z - mean) / std per column, std = sqrt(Var + eps) with Var over n - ddof.

    dL/dz = [g - mean(g) - zhat sum(g zhat) / (n - ddof)] / std (columns independent).
    """
    n = g.shape[0]
    return (g - g.mean(axis=0) - xhat * np.sum(g * xhat, axis=0) / (n - ddof)) / std


def standardize(z: np.ndarray, eps: float, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    """(zhat, std): the losses' batch standardisation (``symbolic.losses.batch_standardize``,
    variance over n - ddof, plus eps) and the std it divides by, for the analytic backward."""
    zhat = losses.batch_standardize(NUMPY, z, eps, unbiased=ddof == 1)
    return zhat, np.sqrt(np.var(z, axis=0, ddof=ddof) + eps)


class EncoderModel(Model):
    """Base class: a linear encoder W (and, where ``has_predictor``, a linear predictor W_p).

    Subclasses give ``gradients(blocks)`` (dL/d block for each state block) and ``loss_value``.
    """

    has_predictor = False
    collapse_spectrum = "corr"

    def __init__(self, params):
        q = params
        byol = LinearBYOLModel(
            LinearBYOLParams(
                dim=q.dim,
                input_dim=q.input_dim,
                sigma2=q.sigma2,
                x_spectrum=q.x_spectrum,
                aug_spectrum=q.aug_spectrum,
                init_scale=q.init_scale,
                seed=q.seed,
            )
        )
        #: X and X' (the population moments the data set is drawn from)
        self.x_corr, self.aug_cov = byol.x_corr, byol.aug_cov
        init = byol.layout.unpack(byol.initial_state())
        self._w0, self._wp0 = init["W"], init["W_p"]
        data_rng = np.random.default_rng(np.random.SeedSequence(q.seed).spawn(5)[4])
        #: the fixed data set
        self.data = SyntheticViews.sample(self.x_corr, self.aug_cov, q.n_samples, data_rng)
        super().__init__(params)

    @property
    def predictor_trained(self) -> bool:
        return self.has_predictor

    def make_layout(self) -> StateLayout:
        q = self.params
        blocks = [("W", (q.dim, q.input_dim))]
        if self.predictor_trained:
            blocks.append(("W_p", (q.dim, q.dim)))
        return StateLayout(blocks)

    def initial_state(self, w0=None, wp0=None) -> np.ndarray:
        blocks = {"W": self._w0 if w0 is None else w0}
        if self.predictor_trained:
            blocks["W_p"] = self._wp0 if wp0 is None else wp0
        return self.layout.pack(**blocks)

    def embeddings(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Z_1, Z_2) = (X_1 W^T, X_2 W^T), rows are samples."""
        wt = np.swapaxes(w, -1, -2)
        return self.data.x1 @ wt, self.data.x2 @ wt

    def views(self, blocks: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The two views' embeddings (Z_1, Z_2) in the state ``blocks``."""
        return self.embeddings(blocks["W"])

    def eval_embeddings(self, blocks: dict[str, np.ndarray]) -> np.ndarray:
        """Embeddings of the un-augmented evaluation set, Xbar W^T."""
        return self.data.xbar @ np.swapaxes(blocks["W"], -1, -2)

    def to_weights(self, g1: np.ndarray, g2: np.ndarray) -> dict[str, np.ndarray]:
        """{"W": dL/dW} from dL/dZ_1 and dL/dZ_2 (Z_v = X_v W^T)."""
        return {"W": g1.T @ self.data.x1 + g2.T @ self.data.x2}

    def predictor_matrix(self, blocks: dict[str, np.ndarray]) -> np.ndarray | None:
        return blocks.get("W_p")

    def gradients(self, blocks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """dL/d(block) for every trained block at one state."""
        raise NotImplementedError

    def loss_value(self, blocks: dict[str, np.ndarray]) -> float:
        """L at one state, evaluated by the symbolic.losses definition (numpy back end)."""
        raise NotImplementedError

    def hyper(self) -> dict:
        """The loss's hyperparameters, under its names, from the parameter fields declared by
        :func:`symbolic.losses.hyper_param`."""
        return losses.hyperparameters_of(self.params)

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        b = self.layout.unpack(y)
        grads = self.gradients(b)
        eta = self.params.eta
        rate = {"W_p": getattr(self.params, "alpha_p", 1.0)}
        return self.layout.pack(
            **{k: -rate.get(k, 1.0) * grads[k] - eta * b[k] for k in self.layout.shapes}
        )

    def observables(self, t: np.ndarray, y: np.ndarray) -> xr.Dataset:
        b = self.layout.unpack(y)
        z1, _ = self.views(b)
        z_eval = self.eval_embeddings(b)
        corr = obs.feature_correlation(z1)
        values = {"corr_eig": obs.correlation_eigh(corr)[0]}
        values.update(obs.sigma_observables(z_eval))
        values["effective_rank"] = obs.effective_rank(z_eval)
        values["z_std"] = obs.z_std(z_eval)
        wp_all = self.predictor_matrix(b)
        if wp_all is not None:
            values.update(obs.predictor_observables(wp_all, corr))
        data = time_mode_vars(values)
        losses = [self.loss_value({k: v[i] for k, v in b.items()}) for i in range(t.size)]
        data["loss"] = ((TIME,), np.array(losses, dtype=float))
        data["z_norm"] = (
            (TIME,),
            np.linalg.norm(z_eval, axis=(-2, -1)) / np.sqrt(z_eval.shape[-2]),
        )
        if "W" in b:
            data["w_norm"] = ((TIME,), np.linalg.norm(b["W"], axis=(-2, -1)))
        return xr.Dataset(data, coords={TIME: t, MODE: np.arange(self.params.dim)})

    def summary(self, ds: xr.Dataset) -> list[str]:
        first, final = ds.isel(time=0), ds.isel(time=-1)
        corr = final["corr_eig"].values
        alive = int(np.sum(corr > 0.02 * float(first["corr_eig"].max())))
        lines = [
            f"  loss {float(first['loss']):.5g} -> {float(final['loss']):.5g}; feature scale "
            f"||Z_eval||/sqrt(n) {float(first['z_norm']):.4g} -> {float(final['z_norm']):.4g}",
            f"  eigenvalues of Z_1^T Z_1/n: {np.array2string(corr, precision=4)}",
            f"  modes above 2% of the initial largest: {alive} of {corr.size}; effective rank "
            f"(RankMe, eval set) {float(first['effective_rank']):.3g} -> "
            f"{float(final['effective_rank']):.3g}",
            f"  ||Sigma - I||_F^2 on the eval set: Pearson {float(final['sigma_dist_pearson']):.4g}"
            f", second moment {float(final['sigma_dist_moment']):.4g}",
        ]
        return lines
