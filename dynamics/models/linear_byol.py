"""Linear BYOL and SimSiam with a linear predictor: Tian, Chen & Ganguli 2021, Lemma 1.

Online weights W (n2 x n1), predictor W_p (n2 x n2), target W_a (n2 x n1); X = E[xbar xbar^T]
(augmentation-averaged data correlation) and X' = E_x[Var(x'|x)] (augmentation covariance). The
gradient flow of J = 1/2 E||W_p W x1 - sg(W_a x2)||^2 with weight decay eta is

    dW_p/dt = alpha_p [-W_p W (X + X') + W_a X] W^T - eta_p W_p
    dW/dt   = W_p^T [-W_p W (X + X') + W_a X] - eta W
    dW_a/dt = beta (W - W_a)

with eta_p = eta (the paper's flow) or alpha_p eta (one SGD weight decay shared by a predictor
trained at alpha_p times the learning rate; then Theorem 1 fails unless alpha_p = 1). SimSiam sets
W_a = W. Without the stop-gradient (Tian Theorem 2) the target is the online network itself and
the target branch is differentiated too:

    dW/dt = W_p^T R + W_p W X - W (X + X') - eta W,     R = -W_p W (X + X') + W X.

Theorem 1 (exact for any X, X', any W_a, when eta_p = eta):
    W W^T - W_p^T W_p / alpha_p = e^{-2 eta t} C,   C = W(0) W(0)^T - W_p(0)^T W_p(0) / alpha_p.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from dynamics import observables as obs
from dynamics.models.base import (
    Model,
    StateLayout,
    conservation_vars,
    parse_spectrum,
    time_mode_vars,
)
from dynamics.models.eigenmodes import collapse_threshold, fixed_points, mode_table
from dynamics.schedules import PiecewiseConstant
from symbolic.common.options import ParameterError, param, validate
from symbolic.common.schema import COL, INPUT, MODE, ROW, TIME

#: store full matrices on the time axis only up to this embedding dimension
MATRIX_STORE_MAX_DIM = 32


@dataclasses.dataclass(frozen=True)
class LinearSimSiamParams:
    """Parameters of the linear SimSiam flow (target = online network)."""

    dim: int = param(12, "embedding dimension n2 (rows of W, size of W_p)", at_least=1)
    input_dim: int = param(16, "input dimension n1 (columns of W)", at_least=1)
    eta: float = param(0.04, "weight decay eta", at_least=0)
    alpha_p: float = param(1.0, "relative learning rate of the predictor alpha_p", above=0)
    sigma2: float = param(0.5, "augmentation variance sigma^2 (scale of X')", at_least=0)
    x_spectrum: str = param(
        "isotropic",
        "data correlation X: 'isotropic' (I), 'random' (random basis, eigenvalues U[0.5,1.5]) "
        "or input_dim comma-separated eigenvalues (diagonal X)",
    )
    aug_spectrum: str = param(
        "isotropic",
        "augmentation covariance X': 'isotropic' (sigma^2 I), 'random' (sigma^2 times a random "
        "basis with eigenvalues U[0.5,1.5]) or input_dim comma-separated eigenvalues (diagonal)",
    )
    init_scale: float = param(
        1.0, "initial weights: W ~ N(0, s^2/n1), W_p ~ N(0, s^2/n2) entrywise", above=0
    )
    predictor_decay: str = param(
        "eta",
        "predictor weight decay: 'eta' (Tian's flow; Theorem 1 exact) or 'alpha_p_eta' "
        "(SGD with one weight decay and predictor lr alpha_p times larger)",
        choices=("eta", "alpha_p_eta"),
    )
    stop_gradient: bool = param(
        True,
        "keep the stop-gradient; without it the target is the online network (W_a = W) and "
        "the target branch is differentiated (Tian Theorem 2)",
        flag="--no-stopgrad",
    )
    seed: int = param(0, "random seed of the initial weights and random spectra", at_least=0)

    def __post_init__(self):
        validate(self)
        parse_spectrum(self.x_spectrum, self.input_dim, "x_spectrum")
        parse_spectrum(self.aug_spectrum, self.input_dim, "aug_spectrum")

    @property
    def has_ema_target(self) -> bool:
        return False


@dataclasses.dataclass(frozen=True)
class LinearBYOLParams(LinearSimSiamParams):
    """Parameters of the linear BYOL flow (EMA target W_a)."""

    beta: float = param(
        0.4,
        "EMA rate beta of the target: dW_a/dt = beta (W - W_a)",
        above=0,
        why="beta = 0: the target never moves",
    )

    @property
    def has_ema_target(self) -> bool:
        # Without the stop-gradient the target is the online network (Tian Theorem 2).
        return self.stop_gradient


@dataclasses.dataclass(frozen=True)
class MeasuredInputs:
    """What a simulation derived from a training run takes from the run (``--from-run``).

    ``x_corr``/``aug_cov``: X and X' measured through the run's augmentation (its moments.nc);
    ``w0``, ``wp0``, ``wa0``: its initial weights; ``alpha_p``, ``beta``: its schedules in flow
    time (:mod:`dynamics.schedules`). Each given one replaces the parameter it stands for.
    """

    x_corr: np.ndarray | None = None
    aug_cov: np.ndarray | None = None
    w0: np.ndarray | None = None
    wp0: np.ndarray | None = None
    wa0: np.ndarray | None = None
    alpha_p: PiecewiseConstant | None = None
    beta: PiecewiseConstant | None = None

    def breakpoints(self) -> np.ndarray:
        """Where a schedule jumps (the integrator restarts there)."""
        parts = [s.breakpoints() for s in (self.alpha_p, self.beta) if s is not None]
        return np.unique(np.concatenate(parts)) if parts else np.empty(0)


def _correlation(spec: str, n: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """A symmetric PSD n x n matrix from a spectrum option (see LinearSimSiamParams);
    'measured' (given by MeasuredInputs) gives the isotropic placeholder."""
    if spec in ("isotropic", "measured"):
        return scale * np.eye(n)
    if spec == "random":
        q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        return scale * (q * rng.uniform(0.5, 1.5, n)) @ q.T
    return np.diag([float(v) for v in spec.split(",")])


def _scalar_of(m: np.ndarray) -> float | None:
    """c when ``m`` equals c I exactly, else None."""
    c = float(m[0, 0])
    return c if np.array_equal(m, c * np.eye(m.shape[0])) else None


class LinearBYOLModel(Model):
    """Tian et al. Lemma 1: the full matrix flow of (W, W_p[, W_a])."""

    name = "linear_byol"
    description = "linear BYOL (Tian Lemma 1): W, predictor W_p, EMA target W_a; full matrices"

    def __init__(self, params: LinearSimSiamParams, inputs: MeasuredInputs | None = None):
        q = params
        self.inputs = inputs or MeasuredInputs()
        x_rng, aug_rng, w_rng, wp_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(q.seed).spawn(4)
        )
        #: X, the augmentation-averaged data correlation (two-view correlation)
        self.x_corr = _correlation(q.x_spectrum, q.input_dim, 1.0, x_rng)
        #: X', the augmentation covariance
        self.aug_cov = _correlation(q.aug_spectrum, q.input_dim, q.sigma2, aug_rng)
        measured = "measured" in (q.x_spectrum, q.aug_spectrum)
        if measured != (self.inputs.x_corr is not None):
            raise ParameterError(
                "x_spectrum='measured' is not allowed: X and X' are measured by a training run "
                "(python -m dynamics.simulate ... --from-run RUN)"
            )
        if measured:
            self.x_corr, self.aug_cov = self.inputs.x_corr, self.inputs.aug_cov
        #: X + X', the single-view correlation
        self.view_corr = self.x_corr + self.aug_cov
        #: the scalar c of a correlation that is c I (isotropic), so that products with it are
        #: scalings, not matrix products (twice as fast at large dimensions)
        self._scalar = {
            key: _scalar_of(m) for key, m in (("x", self.x_corr), ("view", self.view_corr))
        }
        self._w0 = q.init_scale * w_rng.standard_normal((q.dim, q.input_dim)) / np.sqrt(q.input_dim)
        self._wp0 = q.init_scale * wp_rng.standard_normal((q.dim, q.dim)) / np.sqrt(q.dim)
        if self.inputs.w0 is not None:
            self._w0 = self.inputs.w0
        if self.inputs.wp0 is not None:
            self._wp0 = self.inputs.wp0
        super().__init__(params)

    def rates(self, t: float | np.ndarray | None = None) -> tuple:
        """(alpha_p, beta) at flow time t: the run's schedules where given, else the parameters.

        For an array of times the rates come shaped (T, 1, 1), to broadcast over matrices.
        """
        q = self.params
        out = []
        for name in ("alpha_p", "beta"):
            schedule = getattr(self.inputs, name)
            value = getattr(q, name, 0.0)
            if schedule is not None and t is not None:
                value = schedule(t)
                if np.ndim(value):
                    value = np.asarray(value)[:, None, None]
            out.append(value)
        return tuple(out)

    def make_layout(self) -> StateLayout:
        q = self.params
        blocks = [("W", (q.dim, q.input_dim)), ("W_p", (q.dim, q.dim))]
        if q.has_ema_target:
            blocks.append(("W_a", (q.dim, q.input_dim)))
        return StateLayout(blocks)

    def initial_state(self, w0=None, wp0=None, wa0=None) -> np.ndarray:
        """y(0); by default random W, W_p (``init_scale``) and the target starting at W(0)."""
        w0 = self._w0 if w0 is None else w0
        wp0 = self._wp0 if wp0 is None else wp0
        wa0 = self.inputs.wa0 if wa0 is None else wa0
        blocks = {"W": w0, "W_p": wp0}
        if self.params.has_ema_target:
            blocks["W_a"] = w0 if wa0 is None else wa0
        return self.layout.pack(**blocks)

    def _target(self, b: dict[str, np.ndarray]) -> np.ndarray:
        return b["W_a"] if self.params.has_ema_target else b["W"]

    def velocities(self, w, wp, wa, t=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(dW/dt, dW_p/dt, dW_a/dt) of Lemma 1 at flow time t; accepts leading batch
        dimensions (then t holds one time per leading entry)."""
        q = self.params
        alpha_p, beta = self.rates(t)
        wt = np.swapaxes(w, -1, -2)
        residual = -self.times(wp @ w, "view") + self.times(wa, "x")
        eta_p = q.eta * (alpha_p if q.predictor_decay == "alpha_p_eta" else 1.0)
        d_wp = alpha_p * residual @ wt - eta_p * wp
        d_w = np.swapaxes(wp, -1, -2) @ residual - q.eta * w
        if not q.stop_gradient:
            d_w = d_w + self.times(wp @ w, "x") - self.times(w, "view")
        return d_w, d_wp, beta * (w - wa) if q.has_ema_target else np.zeros_like(w)

    def times(self, a: np.ndarray, which: str) -> np.ndarray:
        """a X (``which='x'``) or a (X + X') (``'view'``), a scaling when the matrix is c I."""
        c = self._scalar[which]
        if c is not None:
            return c * a
        return a @ (self.x_corr if which == "x" else self.view_corr)

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        b = self.layout.unpack(y)
        d_w, d_wp, d_wa = self.velocities(b["W"], b["W_p"], self._target(b), t)
        blocks = {"W": d_w, "W_p": d_wp}
        if self.params.has_ema_target:
            blocks["W_a"] = d_wa
        return self.layout.pack(**blocks)

    def conserved_matrix(self, w: np.ndarray, wp: np.ndarray) -> np.ndarray:
        """W W^T - W_p^T W_p / alpha_p (Tian Theorem 1: equals e^{-2 eta t} C when alpha_p is
        constant; with a time-varying alpha_p schedule it is not conserved)."""
        return w @ np.swapaxes(w, -1, -2) - np.swapaxes(wp, -1, -2) @ wp / self.params.alpha_p

    def loss(self, w: np.ndarray, wp: np.ndarray, wa: np.ndarray) -> np.ndarray:
        """Population loss 1/2 E||W_p W x1 - W_a x2||^2 with E[x1 x1^T] = X + X', E[x1 x2^T] = X.

        = 1/2 tr(W_p W S W^T W_p^T) - tr(W_p W X W_a^T) + 1/2 tr(W_a S W_a^T), S = X + X'
        (traces as sums of entrywise products: O(d^2 n) per time, not einsum's O(d^2 n^2)).
        """
        online = wp @ w
        return (
            0.5 * np.sum((online @ self.view_corr) * online, axis=(-2, -1))
            - np.sum((online @ self.x_corr) * wa, axis=(-2, -1))
            + 0.5 * np.sum((wa @ self.view_corr) * wa, axis=(-2, -1))
        )

    def observables(self, t: np.ndarray, y: np.ndarray) -> xr.Dataset:
        q = self.params
        b = self.layout.unpack(y)
        w, wp = b["W"], b["W_p"]
        wa = self._target(b)
        wt = np.swapaxes(w, -1, -2)
        view_corr = w @ self.view_corr @ wt
        two_view_corr = w @ self.x_corr @ wt
        data = time_mode_vars(obs.predictor_observables(wp, view_corr))
        data.update(conservation_vars(self.conserved_matrix(w, wp), t, q.eta))
        data["s"] = ((TIME, MODE), obs.correlation_eigh(two_view_corr)[0])
        data["loss"] = ((TIME,), self.loss(w, wp, wa))
        data["w_norm"] = ((TIME,), np.linalg.norm(w, axis=(-2, -1)))
        if q.has_ema_target:
            data["ema_gap"] = ((TIME,), np.linalg.norm(wa - w, axis=(-2, -1)))
            d_w = self.velocities(w, wp, wa, t)[0]
            beta = np.broadcast_to(np.ravel(self.rates(t)[1]), t.shape)
            data["ema_gap_predicted"] = ((TIME,), np.linalg.norm(d_w, axis=(-2, -1)) / beta)
            data["tau"] = ((TIME,), np.einsum("tij,tij->t", wa, w) / np.einsum("tij,tij->t", w, w))
        ds = xr.Dataset(data, coords={TIME: t, MODE: np.arange(q.dim)})
        if q.dim <= MATRIX_STORE_MAX_DIM:
            ds["wp"] = ((TIME, ROW, COL), wp)
            if q.input_dim <= 2 * MATRIX_STORE_MAX_DIM:
                ds["w"] = ((TIME, ROW, INPUT), w)
                if q.has_ema_target:
                    ds["w_target"] = ((TIME, ROW, INPUT), wa)
        return ds

    def summary(self, ds: xr.Dataset) -> list[str]:
        q = self.params
        final = ds.isel(time=-1)
        lines = mode_table(
            final["wp_eig_real"].values,
            final["wp_eig_imag"].values,
            ds.attrs["p_star_plus"],
            ds.attrs["p_star_minus"],
            q.sigma2,
            q.eta,
        )
        if not ds.attrs["closed_form_valid"]:
            lines.append("  (X or X' is not isotropic: p*_+- are the isotropic theory's values)")
        law = "Tian Theorem 1, W W^T - W_p^T W_p/alpha_p = e^(-2 eta t) C"
        err = float(ds["conservation_error"].max())
        lines.append(f"  conservation law ({law}): max error {err:.2e} relative to ||C||")
        if q.predictor_decay != "eta":
            lines.append("    (predictor decay alpha_p*eta: the law holds only for alpha_p = 1)")
        lines.append(
            "  asymmetry ||W_p - W_p^T||/||W_p + W_p^T||: "
            f"{float(ds['wp_asymmetry'][0]):.3g} at t=0 -> {float(final['wp_asymmetry']):.3g}"
        )
        if "ema_gap" in ds:
            lines.append(
                f"  EMA gap ||W_a - W||: {float(final['ema_gap']):.3g} (quasi-steady "
                f"||dW/dt||/beta = {float(final['ema_gap_predicted']):.3g}), "
                f"tau = {float(final['tau']):.6f}"
            )
        return lines

    def closed_forms(self) -> dict[str, float]:
        q = self.params
        p_plus, p_minus = fixed_points(q.eta, 1.0, q.sigma2)
        isotropic = q.x_spectrum == "isotropic" and q.aug_spectrum == "isotropic"
        return {
            "p_star_plus": float(np.nan_to_num(p_plus, nan=0.0)),
            "p_star_minus": float(np.nan_to_num(p_minus, nan=0.0)),
            "collapse_threshold_eta": float(collapse_threshold(1.0, q.sigma2)),
            "closed_form_tau": 1.0,
            "closed_form_valid": int(isotropic),
        }


class LinearSimSiamModel(LinearBYOLModel):
    """Linear SimSiam: Lemma 1 with W_a = W (no EMA equation)."""

    name = "linear_simsiam"
    description = "linear SimSiam: Lemma 1 with W_a = W (stop-gradient on the online target)"
