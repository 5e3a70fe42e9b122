"""Eigenmode dynamics of the cosine BYOL/SimSiam loss beside Tian et al.'s L2 ones.

Tian et al.'s setting (docs/theory.md (D7)): X = I, X' = sigma^2 I, lam = 1 + sigma^2,
W_a = tau W, symmetric W_p sharing its eigenbasis with F = W W^T (eigenvalues p_j, s_j). Bao
(2025, "Feature normalization prevents collapse of non-contrastive learning dynamics",
arXiv:2309.16109) replaces the L2 loss by the cosine loss -E[<u, v> / (|u| |v|)], u = W_p W x1,
v = sg(W_a x2), in the high-dimensional limit where |u| and |v| concentrate on
N_psi = sqrt(E|u|^2) and N_phi = sqrt(E|v|^2). The loss is then the ratio of moments
J = -m / (N_psi N_phi) (docs/theory.md (D16): derived here from that assumption; the paper's
numbered equations were not read), with

    m = sum_j p_j tau_j s_j,  N_psi^2 = lam sum_j p_j^2 s_j,  N_phi^2 = lam sum_j tau_j^2 s_j,

and its gradient flow (stop-gradient on W_a, weight decay eta) is Tian's per-mode field with two
factors shared by all modes, G = 1 / (N_psi N_phi) and kappa = m / N_psi^2:

    dp_j/dt   = alpha_p G s_j [tau_j - kappa lam p_j] - eta p_j
    ds_j/dt   = 2 G p_j s_j [tau_j - kappa lam p_j] - 2 eta s_j
    dtau_j/dt = beta (1 - tau_j) - tau_j (ds_j/dt) / (2 s_j),

i.e. :func:`dynamics.models.eigenmodes.mode_rhs` at tau -> G tau, 1 + sigma^2 -> G kappa lam.

Exact consequences (tested). J is scale-free in W_p and in W, so weight decay acts on the scale
alone: with a = e^{-eta t}, p_j = a p^_j, s_j = a^2 s^_j, G = a^-3 G^, kappa = a^-1 kappa^, and
(p^, s^) follow the eta = 0 flow in the time T = (e^{2 eta t} - 1) / (2 eta). Weight decay cannot
collapse the normalised features for any eta (the weight scale decays as e^{-eta t} for every eta
> 0). At eta = 0, sum_j p_j^2 and sum_j s_j are conserved and the flow ends where every mode has
the same p (tau = 1): p_j -> p_inf = sqrt(mean_j p_j(0)^2) for every mode with p_j(0) > 0, so
p_j(t) e^{eta t} -> p_inf at any eta. Tian's L2 modes instead all collapse above
eta_c = 1/(4 (1+sigma^2)) (D9). With G and kappa frozen (the norms held fixed) each cosine mode is
a Tian mode with threshold G tau^2 / (4 kappa lam), which grows as the norms decay
(G / kappa ~ a^-2): our reading of the paper's "stable equilibrium dynamically emerges".
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr
from scipy.integrate import solve_ivp

from dynamics.models.base import Model, StateLayout
from dynamics.models.eigenmodes import EigenmodeParams, collapse_threshold, fixed_points, mode_rhs
from symbolic.common.options import param, require, validate
from symbolic.common.schema import MODE, TIME

#: a mode is alive under the cosine loss when p_j / max_k p_k is at least this (the normalised
#: features, not the weight scale, are what the loss sees); under L2 when p_j is at least this
#: fraction of the eta = 0 fixed point 1/(1+sigma^2)
ALIVE_SHARE = 0.25
#: 2 eta t is capped here in the time change (T <= e^10 / (2 eta), a speed-up <= e^10 ~ 2e4):
#: beyond, the rescaled flow runs at the capped speed; the eta = 0 flow from p_j(0) in
#: [0.05, 0.3] has ended (to 1e-8) by T ~ 1e2, so the cap only bounds the stiffness
MAX_EXPONENT = 10.0


def norm_factors(p, s, tau, sigma2):
    """(G, kappa) = (1/(N_psi N_phi), m/N_psi^2) over the last (mode) axis, kept with size 1."""
    lam = 1.0 + sigma2
    m = np.sum(p * tau * s, axis=-1, keepdims=True)
    n_psi2 = lam * np.sum(p * p * s, axis=-1, keepdims=True)
    n_phi2 = lam * np.sum(tau * tau * s, axis=-1, keepdims=True)
    return 1.0 / np.sqrt(n_psi2 * n_phi2), m / n_psi2


def cosine_mode_rhs(p, s, tau, eta, alpha_p, beta, sigma2, simsiam=False):
    """(dp/dt, ds/dt, dtau/dt) of the concentrated cosine loss (module docstring, (D16)).

    Modes on the last axis (coupled through G and kappa); leading axes are batches.
    """
    p, s, tau = np.broadcast_arrays(*(np.asarray(v, float) for v in (p, s, tau)))
    g, kappa = norm_factors(p, s, tau, sigma2)
    lam_eff = g * kappa * (1.0 + sigma2)
    dp, ds, _ = mode_rhs(p, s, g * tau, eta, alpha_p, beta, lam_eff - 1.0, simsiam=True)
    if simsiam:
        return dp, ds, np.zeros_like(p)
    growth = p * (g * tau - lam_eff * p) - eta  # (ds_j/dt) / (2 s_j)
    return dp, ds, beta * (1.0 - tau) - tau * growth


def rescaled_time(t, eta):
    """T = (e^{2 eta t} - 1) / (2 eta) (T = t at eta = 0), 2 eta t capped at MAX_EXPONENT."""
    t = np.asarray(t, float)
    if eta == 0:
        return t
    return np.expm1(np.minimum(2.0 * eta * t, MAX_EXPONENT)) / (2.0 * eta)


def whitened_limit(p0):
    """p_inf = sqrt(mean_j p_j(0)^2): where every mode of the eta = 0 cosine flow ends (tau = 1)."""
    return float(np.sqrt(np.mean(np.asarray(p0, float) ** 2)))


def frozen_threshold(p, s, tau, sigma2):
    """G tau^2 / (4 kappa lam): Tian's threshold (D9) with the norms frozen at the state."""
    g, kappa = norm_factors(p, s, tau, sigma2)
    return collapse_threshold(g * tau, g * kappa * (1.0 + sigma2) - 1.0)


def _simsiam_flow(p0, s0, eta, sigma2, alpha_p, t_end, cosine):
    """(p, s) at ``t_end`` of the SimSiam (tau = 1) mode flow: cosine through the time change
    (the eta = 0 flow to T, capped by MAX_EXPONENT, then the scale e^{-eta t}), L2 directly."""
    d = p0.size
    tau = np.ones(d)
    rhs, eta_used = (cosine_mode_rhs, 0.0) if cosine else (mode_rhs, eta)
    horizon = float(rescaled_time(t_end, eta)) if cosine else t_end

    def f(_t, y):
        dp, ds, _ = rhs(y[:d], y[d:], tau, eta_used, alpha_p, 0.0, sigma2, simsiam=True)
        return np.concatenate([dp, ds])

    y0 = np.concatenate([p0, s0])
    y = solve_ivp(f, (0.0, horizon), y0, method="LSODA", rtol=1e-10, atol=1e-13).y[:, -1]
    scale = np.exp(-eta * t_end) if cosine else 1.0
    return scale * y[:d], scale**2 * y[d:]


def mode_survival(p0, eta, sigma2, loss, alpha_p=1.0, t_end=200.0, s0=None):
    """Which modes survive to ``t_end`` under the cosine or the L2 loss (SimSiam, tau = 1).

    The per-mode survival rule for a collapse map: ``loss`` 'cosine' (D16) or 'l2' (Tian (D7)),
    p_j(0) = ``p0`` > 0, s_j(0) = ``s0`` (default the parabola s = p^2/alpha_p). Cosine: alive when
    p_j / max_k p_k >= ALIVE_SHARE (the loss is scale-free; the scale decays as e^{-eta t} for
    every eta); every mode with p_j(0) > 0 survives at any eta once T(t_end) is long enough.
    L2: alive when p_j >= ALIVE_SHARE / (1+sigma^2); none above eta_c = 1/(4(1+sigma^2)).
    Returns a boolean array, one entry per mode.
    """
    require(loss in ("cosine", "l2"), "loss", loss, "'cosine' or 'l2'")
    p0 = np.asarray(p0, float)
    require(bool(np.all(p0 > 0)), "p0", p0.tolist(), "every p_j(0) > 0")
    s0 = p0**2 / alpha_p if s0 is None else np.asarray(s0, float)
    p, _ = _simsiam_flow(p0, s0, eta, sigma2, alpha_p, t_end, loss == "cosine")
    if loss == "cosine":
        return p / np.max(p) >= ALIVE_SHARE
    return p >= ALIVE_SHARE / (1.0 + sigma2)


@dataclasses.dataclass(frozen=True)
class CosineModeParams(EigenmodeParams):
    """The parameters of ``eigenmodes`` (same meaning), shared by the L2 and the cosine flow."""

    dim: int = param(6, "number of eigenmodes", at_least=2, at_most=10_000)
    eta: float = param(0.3, "weight decay eta", at_least=0)
    p0: str = param("0.05:0.3", "initial p_j (> 0): 'a:b' evenly spaced or comma-separated")
    simsiam: bool = param(True, "SimSiam: tau_j = 1 at all times, no EMA equation")

    def __post_init__(self):
        validate(self)
        p0, s0, _ = self.initial_modes()
        require(bool(np.all(p0 > 0)), "p0", self.p0, "every p_j(0) > 0")
        require(bool(np.all(s0 > 0)), "s0", self.s0, "every s_j(0) > 0")


class CosineModeModel(Model):
    """Tian's L2 modes (D7) and the concentrated cosine modes (D16) from one initial state.

    The cosine block is integrated in the rescaled variables p^ = e^{eta t} p, s^ = e^{2 eta t} s
    (module docstring), whose field is the eta = 0 field times e^{2 eta t}; observables return
    p and s themselves.
    """

    name = "cosine_modes"
    state_per_mode = True
    description = "Bao 2025: per-mode cosine-loss flow beside Tian's L2 flow (same parameters)"

    def make_layout(self) -> StateLayout:
        d = self.params.dim
        return StateLayout([(f"{v}_{k}", (d,)) for k in ("l2", "cos") for v in ("p", "s", "tau")])

    def initial_state(self) -> np.ndarray:
        p0, s0, tau0 = self.params.initial_modes()
        return self.layout.pack(p_l2=p0, s_l2=s0, tau_l2=tau0, p_cos=p0, s_cos=s0, tau_cos=tau0)

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        q = self.params
        b = self.layout.unpack(y)
        l2 = mode_rhs(b["p_l2"], b["s_l2"], b["tau_l2"], q.eta, q.alpha_p, q.beta, q.sigma2,
                      q.simsiam)  # fmt: skip
        speed = np.exp(min(2.0 * q.eta * t, MAX_EXPONENT))
        p, s, tau = b["p_cos"], b["s_cos"], b["tau_cos"]
        dp, ds, _ = cosine_mode_rhs(p, s, tau, 0.0, q.alpha_p, 0.0, q.sigma2, simsiam=True)
        dtau = np.zeros_like(tau)
        if not q.simsiam:  # the EMA sees the true growth (ds/dt)/(2s) = speed ds^/(2 s^) - eta
            dtau = q.beta * (1.0 - tau) - tau * (speed * ds / (2.0 * s) - q.eta)
        return np.concatenate([*l2, speed * dp, speed * ds, dtau])

    def observables(self, t: np.ndarray, y: np.ndarray) -> xr.Dataset:
        q = self.params
        b = self.layout.unpack(y)
        p0, s0, _ = q.initial_modes()
        scale = np.exp(-q.eta * t)[:, None]
        p_cos, s_cos = scale * b["p_cos"], scale**2 * b["s_cos"]
        dims = (TIME, MODE)
        ds = xr.Dataset(
            {
                "p_l2": (dims, b["p_l2"]),
                "s_l2": (dims, b["s_l2"]),
                "p_cos": (dims, p_cos),
                "s_cos": (dims, s_cos),
                "tau_cos": (dims, b["tau_cos"]),
                "share_cos": (dims, p_cos / np.max(p_cos, axis=1, keepdims=True)),
                # conserved by the eta = 0 flow of the rescaled variables (module docstring)
                "scale_residual": (TIME, np.sum(b["p_cos"] ** 2, axis=1) - np.sum(p0**2)),
                "frozen_threshold": (
                    TIME, frozen_threshold(p_cos, s_cos, b["tau_cos"], q.sigma2)[:, 0]
                ),
            },
            coords={TIME: t, MODE: np.arange(q.dim)},
        )  # fmt: skip
        ds["frozen_threshold"].attrs["note"] = "G tau^2/(4 kappa lam) at the state (norms frozen)"
        return ds

    def closed_forms(self) -> dict[str, float]:
        q = self.params
        p_plus, p_minus = fixed_points(q.eta, 1.0, q.sigma2)
        return {
            "collapse_threshold_eta": float(collapse_threshold(1.0, q.sigma2)),
            "p_star_plus": float(np.nan_to_num(p_plus, nan=0.0)),
            "p_star_minus": float(np.nan_to_num(p_minus, nan=0.0)),
            "whitened_limit": whitened_limit(q.initial_modes()[0]),
        }

    def summary(self, ds: xr.Dataset) -> list[str]:
        q = self.params
        final = ds.isel(time=-1)
        eta_c = ds.attrs["collapse_threshold_eta"]
        l2 = final["p_l2"].values
        share = final["share_cos"].values
        rescaled = final["p_cos"].values * np.exp(q.eta * float(final[TIME]))
        n_l2 = int(np.sum(l2 >= ALIVE_SHARE / (1.0 + q.sigma2)))
        fmt = {"precision": 4}
        return [
            f"  Tian's threshold eta_c = 1/(4(1+sigma^2)) = {eta_c:.6g}; eta = {q.eta:g} "
            + ("(above: every L2 mode collapses)" if q.eta > eta_c else "(below)"),
            f"  L2 flow:     final p_j {np.array2string(l2, **fmt)}; alive {n_l2} of {q.dim}",
            f"  cosine flow: final p_j/max p {np.array2string(share, **fmt)}; alive "
            f"{int(np.sum(share >= ALIVE_SHARE))} of {q.dim}; p_j e^(eta t) "
            f"{np.array2string(rescaled, **fmt)} (limit {ds.attrs['whitened_limit']:.6g})",
            f"  cosine scale sum p_j^2 e^(2 eta t) conserved: max |error| "
            f"{float(np.max(np.abs(ds['scale_residual'].values))):.1e}",
        ]
