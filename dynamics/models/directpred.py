"""DirectPred and DirectCopy: linear BYOL whose predictor is set from the feature correlation.

Tian, Chen & Ganguli 2021, eqs. 18-19 (docs/theory.md (L10)). The online W and the EMA target W_a
follow Tian's Lemma 1 flow (see :mod:`dynamics.models.linear_byol`), but W_p is not trained: it is a
function of a running average F_hat of the (uncentred) correlation of the online outputs of both
views, E[f f^T] = W (X + X') W^T. In flow time the running average has a rate rho:

    dF_hat/dt = rho (W (X + X') W^T - F_hat),   F_hat(0) = W(0) (X + X') W(0)^T

(a discrete average F_hat <- r F_hat + (1 - r) E_B[f f^T] at learning rate lr is rho = (1-r)/lr;
its first batch initialises it). With F_hat = U diag(s) U^T (s clipped at 0), W_p = U diag(p) U^T:

- DirectPred, convention 'paper' (Tian eq. 18):   p_j = sqrt(s_j) + eps max_k s_k
- DirectPred, convention 'code' (luckmatters byol_trainer.py, ``boost_scale``):
                                                  p_j = max(sqrt(s_j / max_k s_k) + eps, 1e-4)
- DirectCopy (Wang et al. 2021):                  W_p = F_hat + eps I
- DirectSet(alpha) (Tian et al. 2021): ``--exponent alpha`` replaces the square roots above by
  the power alpha (1/2 is DirectPred).

Fixed points (isotropic X = I, X' = sigma^2 I, tau = 1): a surviving mode of W needs its predictor
eigenvalue at p*_+ (Tian's fixed point, dynamics.models.eigenmodes.fixed_points) and F_hat at
E[f f^T], so its F_hat eigenvalue s* solves rule(s*) = p*_+: 'paper' (all survivors equal, so
max s = s*) sqrt(s*) + eps s* = p*_+; DirectCopy s* = p*_+ - eps. The 'code' rule is scale-free
(its largest p is always 1 + eps), so in this unnormalised linear model W has a non-zero fixed
point only if 1 + eps equals p*_+ or p*_-; otherwise ||W|| grows or decays forever while the
normalised spectrum settles (the real method normalises the loss; the linear one does not).

``directpred_discrete`` runs the same rule in discrete time: SGD steps of size lr on W and (at lr
alpha_p) on W_p, the discrete running average with coefficient r, W_p overwritten every ``freq``
steps, target updated after the online step (BYOL's order); flow time t = lr * step.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr
from scipy.optimize import brentq
from tqdm import tqdm

from dynamics import observables as obs
from dynamics.integrate import SaveAt, Solution, SolverSettings
from dynamics.models.base import Model, StateLayout, parse_spectrum, time_mode_vars
from dynamics.models.eigenmodes import collapse_threshold, fixed_points
from dynamics.models.linear_byol import LinearBYOLModel, LinearBYOLParams
from symbolic.common.options import param, require, validate
from symbolic.common.schema import MODE, TIME
from symbolic.predictors import CONVENTIONS, directcopy_matrix, directpred_matrix


def paper_fixed_point(p_plus: float, eps: float, exponent: float = 0.5) -> float:
    """s* with s*^alpha + eps s* = p*_+ (all surviving modes equal, so max s = s*).

    alpha = 1/2 (DirectPred) and eps = 0 have closed forms; otherwise the left side increases
    in s* and the root is bracketed in [0, p*_+^(1/alpha)] (brentq).
    """
    if p_plus <= 0:
        return 0.0
    if eps == 0:
        return p_plus ** (1.0 / exponent)
    if exponent == 0.5:
        root = (-1.0 + np.sqrt(1.0 + 4.0 * eps * p_plus)) / (2.0 * eps)
        return float(root**2)
    return float(brentq(lambda s: s**exponent + eps * s - p_plus, 0.0, p_plus ** (1 / exponent)))


@dataclasses.dataclass(frozen=True)
class DirectCopyParams:
    """Parameters of the DirectCopy flow (and the base of DirectPred's)."""

    dim: int = param(12, "embedding dimension n2 (rows of W, size of W_p)", at_least=1)
    input_dim: int = param(16, "input dimension n1 (columns of W)", at_least=1)
    eta: float = param(0.04, "weight decay eta on W", at_least=0)
    beta: float = param(0.4, "EMA rate beta of the target: dW_a/dt = beta (W - W_a)", above=0)
    sigma2: float = param(0.5, "augmentation variance sigma^2 (scale of X')", at_least=0)
    x_spectrum: str = param("isotropic", "data correlation X (as for linear_byol)")
    aug_spectrum: str = param("isotropic", "augmentation covariance X' (as for linear_byol)")
    init_scale: float = param(1.0, "initial W ~ N(0, s^2/n1) entrywise", above=0)
    rho_rate: float = param(
        5.0,
        "rate of the running average, dF_hat/dt = rho (E[f f^T] - F_hat); a discrete average "
        "with coefficient r at learning rate lr is rho = (1 - r)/lr",
        above=0,
    )
    eps: float = param(0.1, "eps of the rule (added to the eigenvalues of W_p)", at_least=0)
    seed: int = param(0, "random seed of the initial weights and random spectra", at_least=0)

    def __post_init__(self):
        validate(self)
        parse_spectrum(self.x_spectrum, self.input_dim, "x_spectrum")
        parse_spectrum(self.aug_spectrum, self.input_dim, "aug_spectrum")


@dataclasses.dataclass(frozen=True)
class DirectPredParams(DirectCopyParams):
    """DirectPred: DirectCopy's parameters plus the convention of eps."""

    convention: str = param(
        "paper",
        "'paper': p = sqrt(s) + eps s_max (Tian eq. 18; the modes reach p*_+ and survive); "
        "'code': p = max(sqrt(s/s_max) + eps, 1e-4) (luckmatters, behind the paper's tables): "
        "scale-free, its largest eigenvalue 1 + eps lies above p*_+ in this unnormalised model, "
        "so every mode collapses (the real method normalises its loss)",
        choices=CONVENTIONS,
    )
    exponent: float = param(
        0.5,
        "DirectSet(alpha): p = s^alpha in place of sqrt(s) (Tian et al. 2021; 0.5 is "
        "DirectPred). The collapse threshold eta < tau^2 c^2 / (4 (c + sigma^2)) does not depend "
        "on alpha; the fixed point s* does",
        above=0,
        at_most=4,
    )


class DirectCopyModel(Model):
    """Linear BYOL with W_p = F_hat + eps I, F_hat the running feature correlation."""

    name = "directcopy"
    description = "linear BYOL with W_p = F_hat + eps I, F_hat a running E[f f^T] (DirectCopy)"
    collapse_spectrum = "corr"

    def __init__(self, params: DirectCopyParams):
        names = {f.name for f in dataclasses.fields(LinearBYOLParams)}
        shared = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
        shared = {k: v for k, v in shared.items() if k in names}
        #: the Lemma 1 flow that moves W and W_a (its predictor is ours)
        self.byol = LinearBYOLModel(LinearBYOLParams(**shared))
        super().__init__(params)

    def make_layout(self) -> StateLayout:
        q = self.params
        return StateLayout(
            [("W", (q.dim, q.input_dim)), ("W_a", (q.dim, q.input_dim)), ("F_hat", (q.dim,) * 2)]
        )

    def feature_correlation(self, w: np.ndarray) -> np.ndarray:
        """E[f f^T] = W (X + X') W^T, the same for both views."""
        return w @ self.byol.view_corr @ np.swapaxes(w, -1, -2)

    def default_w0(self) -> np.ndarray:
        """W(0): the initial W of linear_byol with the same seed and sizes."""
        return self.byol.layout.unpack(self.byol.initial_state())["W"]

    def initial_state(self, w0=None) -> np.ndarray:
        w0 = self.default_w0() if w0 is None else w0
        return self.layout.pack(W=w0, W_a=w0, F_hat=self.feature_correlation(w0))

    def current_predictor(self, blocks: dict[str, np.ndarray]) -> np.ndarray:
        """W_p in the state ``blocks``: the rule applied to F_hat."""
        return self.predictor(blocks["F_hat"])

    def predictor(self, f_hat: np.ndarray) -> np.ndarray:
        """W_p = F_hat + eps I (:func:`symbolic.predictors.directcopy_matrix`)."""
        return directcopy_matrix(f_hat, self.params.eps)

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        b = self.layout.unpack(y)
        d_w, _, d_wa = self.byol.velocities(b["W"], self.predictor(b["F_hat"]), b["W_a"])
        d_f = self.params.rho_rate * (self.feature_correlation(b["W"]) - b["F_hat"])
        return self.layout.pack(W=d_w, W_a=d_wa, F_hat=d_f)

    def observables(self, t: np.ndarray, y: np.ndarray) -> xr.Dataset:
        b = self.layout.unpack(y)
        w, wa, f_hat = b["W"], b["W_a"], b["F_hat"]
        wp = self.current_predictor(b)
        corr = self.feature_correlation(w)
        data = time_mode_vars(obs.predictor_observables(wp, corr))
        data["fhat_eig"] = ((TIME, MODE), obs.correlation_eigh(f_hat)[0])
        gap = np.linalg.norm(f_hat - corr, axis=(-2, -1)) / np.linalg.norm(corr, axis=(-2, -1))
        data["fhat_gap"] = ((TIME,), gap)
        data["loss"] = ((TIME,), self.byol.loss(w, wp, wa))
        data["w_norm"] = ((TIME,), np.linalg.norm(w, axis=(-2, -1)))
        data["ema_gap"] = ((TIME,), np.linalg.norm(wa - w, axis=(-2, -1)))
        return xr.Dataset(data, coords={TIME: t, MODE: np.arange(self.params.dim)})

    def predicted_fhat(self) -> float:
        """s*, the F_hat eigenvalue of a surviving mode at the fixed point (0 if none)."""
        p_plus = self.closed_forms()["p_star_plus"]
        return max(p_plus - self.params.eps, 0.0)

    def closed_forms(self) -> dict[str, float]:
        q = self.params
        p_plus, p_minus = fixed_points(q.eta, 1.0, q.sigma2)
        return {
            "p_star_plus": float(np.nan_to_num(p_plus, nan=0.0)),
            "p_star_minus": float(np.nan_to_num(p_minus, nan=0.0)),
            "collapse_threshold_eta": float(collapse_threshold(1.0, q.sigma2)),
        }

    def summary(self, ds: xr.Dataset) -> list[str]:
        first, final = ds.isel(time=0), ds.isel(time=-1)
        if "mode_collapsed" in ds:  # what the file stores and the report shows (dynamics.fates)
            alive = ds["mode_collapsed"].values == 0
        else:
            alive = final["corr_eig"].values > 0.02 * float(first["corr_eig"].max())
        p = np.sort(final["wp_eig_real"].values)[::-1]
        lines = [
            f"  closed form (tau = 1): surviving modes of W need a predictor eigenvalue "
            f"p*_+ = {ds.attrs['p_star_plus']:.6g}; F_hat eigenvalue s* = "
            f"{self.predicted_fhat():.6g}",
            f"  final W_p eigenvalues: {np.array2string(p, precision=4)}",
            f"  final F_hat eigenvalues: {np.array2string(final['fhat_eig'].values, precision=4)}",
            f"  surviving modes (E[f f^T] above 2% of its initial largest): {int(alive.sum())} of "
            f"{alive.size}; ||F_hat - E[f f^T]||/||E[f f^T]|| = {float(final['fhat_gap']):.2e}",
            f"  ||W||: {float(first['w_norm']):.4g} -> {float(final['w_norm']):.4g}",
        ]
        return lines


class DirectPredModel(DirectCopyModel):
    """Linear BYOL with W_p from the eigendecomposition of F_hat (Tian eq. 18-19)."""

    name = "directpred"
    description = "linear BYOL with W_p = U diag(p(s)) U^T from a running E[f f^T] (DirectPred)"

    def predictor(self, f_hat: np.ndarray) -> np.ndarray:
        """W_p = U diag(p(s)) U^T (:func:`symbolic.predictors.directpred_matrix`)."""
        q = self.params
        return directpred_matrix(f_hat, q.eps, q.convention, q.exponent)

    def predicted_fhat(self) -> float:
        q = self.params
        p_plus = self.closed_forms()["p_star_plus"]
        if q.convention == "paper":
            return paper_fixed_point(p_plus, q.eps, q.exponent)
        return float("nan")

    def summary(self, ds: xr.Dataset) -> list[str]:
        lines = super().summary(ds)
        if self.params.convention == "code":
            lines[0] = (
                f"  convention 'code' is scale-free: the largest W_p eigenvalue is 1 + eps = "
                f"{1 + self.params.eps:g}; a non-zero fixed point of W needs it at p*_+ = "
                f"{ds.attrs['p_star_plus']:.6g} (or p*_-), else ||W|| drifts"
            )
        return lines


@dataclasses.dataclass(frozen=True)
class DirectPredDiscreteParams(DirectPredParams):
    """DirectPred/DirectCopy in discrete time (SGD steps)."""

    rule: str = param(
        "directpred", "'directpred' or 'directcopy'", choices=("directpred", "directcopy")
    )
    lr: float = param(0.01, "learning rate (flow time per step)", above=0)
    rho: float = param(0.3, "coefficient r of the running average F <- r F + (1 - r) E[f f^T]")
    freq: int = param(
        1, "W_p is overwritten by the rule every freq steps (SGD in between)", at_least=1
    )
    alpha_p: float = param(1.0, "relative learning rate of W_p's SGD steps between resets", above=0)

    def __post_init__(self):
        super().__post_init__()
        require(0 <= self.rho < 1, "rho", self.rho, "0 <= rho < 1")


class DirectPredDiscreteModel(DirectPredModel):
    """DirectPred/DirectCopy with discrete SGD steps and the rule applied every ``freq`` steps."""

    name = "directpred_discrete"
    description = "DirectPred/DirectCopy in discrete time: SGD steps, W_p set every freq steps"

    def __init__(self, params: DirectPredDiscreteParams):
        super().__init__(params)
        self.byol = LinearBYOLModel(dataclasses.replace(self.byol.params, alpha_p=params.alpha_p))

    def make_layout(self) -> StateLayout:
        q = self.params
        return StateLayout(
            [
                ("W", (q.dim, q.input_dim)),
                ("W_a", (q.dim, q.input_dim)),
                ("F_hat", (q.dim,) * 2),
                ("W_p", (q.dim,) * 2),
            ]
        )

    def initial_state(self, w0=None) -> np.ndarray:
        w0 = self.default_w0() if w0 is None else w0
        f0 = self.feature_correlation(w0)
        return self.layout.pack(W=w0, W_a=w0, F_hat=f0, W_p=self.predictor(f0))

    def predictor(self, f_hat: np.ndarray) -> np.ndarray:
        if self.params.rule == "directcopy":
            return DirectCopyModel.predictor(self, f_hat)
        return super().predictor(f_hat)

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError("directpred_discrete is stepped by run_discrete, not an ODE")

    def step(self, k: int, w, wa, f_hat, wp):
        """One SGD step k -> k+1 (order: set W_p, average F_hat, gradient step, EMA)."""
        q = self.params
        if k % q.freq == 0:
            wp = self.predictor(f_hat)
        f_hat = q.rho * f_hat + (1 - q.rho) * self.feature_correlation(w)
        d_w, d_wp, _ = self.byol.velocities(w, wp, wa)
        w, wp = w + q.lr * d_w, wp + q.lr * d_wp
        wa = wa + q.lr * q.beta * (w - wa)
        return w, wa, f_hat, wp

    def run_discrete(self, saveat: SaveAt, solver: SolverSettings, progress=False) -> Solution:
        """Take round(t_end / lr) steps; record the state at the steps nearest the output times
        of ``saveat``; stop when a state entry reaches ``solver.blowup`` (the solver's method
        and tolerances do not apply: the steps are the model)."""
        q, blowup = self.params, solver.blowup
        n_out = saveat.times.size
        n_steps = int(round(saveat.t_end / q.lr))
        record_at = np.round(saveat.times / q.lr).astype(int)
        b = self.layout.unpack(self.initial_state())
        state = (b["W"], b["W_a"], b["F_hat"], b["W_p"])
        ys = []
        for k in tqdm(range(n_steps + 1), disable=None if progress else True, leave=False):
            y = self.layout.pack(W=state[0], W_a=state[1], F_hat=state[2], W_p=state[3])
            bad = ~(np.abs(y) < blowup)
            if np.any(bad):
                t = record_at[: len(ys)] * q.lr
                return Solution(
                    t, np.array(ys).reshape(len(ys), -1), False,
                    f"a state entry reached |y| >= {blowup:g} or became NaN", k * q.lr,
                    int(np.argmax(bad)),
                )  # fmt: skip
            while len(ys) < n_out and record_at[len(ys)] == k:
                ys.append(y)
            if k < n_steps:
                state = self.step(k, *state)
        return Solution(record_at * q.lr, np.array(ys), True, n_rhs=n_steps)

    def current_predictor(self, blocks: dict[str, np.ndarray]) -> np.ndarray:
        """W_p as stepped (the rule's value at the last reset, then SGD)."""
        return blocks["W_p"]
