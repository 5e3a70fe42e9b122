"""The eigenmode-reduced dynamics of linear BYOL/SimSiam (Tian et al. 2021, eqs. 11-14).

Under the isotropic assumptions (X = I, X' = sigma^2 I, W_a = tau W, symmetric W_p sharing its
eigenbasis with F = W X W^T) each eigenmode j evolves on its own:

    dp_j/dt   = alpha_p s_j [tau_j - (1+sigma^2) p_j] - eta p_j
    ds_j/dt   = 2 p_j s_j [tau_j - (1+sigma^2) p_j] - 2 eta s_j
    dtau_j/dt = beta (1 - tau_j) - tau_j (ds_j/dt)/(2 s_j)
              = beta (1 - tau_j) - tau_j (p_j [tau_j - (1+sigma^2) p_j] - eta)

with one tau_j per mode (the paper's Assumption 1 has a single tau; its per-mode analysis needs
one per mode). SimSiam is tau_j = 1 with no tau equation. The closed forms of the module (fixed
points, threshold, invariant) are those of docs/theory.md (D7)-(D9); the sign of c_j follows the
appendix of Tian et al., not the misprinted eq. 14 of the main text.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from dynamics import observables as obs
from dynamics.models.base import Model, StateLayout
from symbolic.common.options import ParameterError, param, require, validate
from symbolic.common.schema import MODE, RANK, TIME


def fixed_points(eta, tau, sigma2):
    """Non-collapsed fixed points on the invariant parabola at fixed tau (Tian et al. 2021, B.2).

    p*_{+-} = [tau +- sqrt(tau^2 - 4 eta (1+sigma^2))] / (2 (1+sigma^2)). Returns NaN for both
    where eta > tau^2/(4(1+sigma^2)) (no non-collapsed fixed point: every mode collapses).
    Broadcasts over array arguments.
    """
    eta, tau, sigma2 = np.broadcast_arrays(*(np.asarray(v, float) for v in (eta, tau, sigma2)))
    lam = 1.0 + sigma2
    disc = tau**2 - 4.0 * eta * lam
    root = np.sqrt(np.where(disc >= 0, disc, np.nan))
    return (tau + root) / (2 * lam), (tau - root) / (2 * lam)


def collapse_threshold(tau, sigma2):
    """The weight decay above which every mode collapses: eta* = tau^2 / (4 (1+sigma^2))."""
    return np.asarray(tau, float) ** 2 / (4.0 * (1.0 + np.asarray(sigma2, float)))


def invariant_constant(p0, s0, alpha_p):
    """c_j = s_j(0) - p_j(0)^2 / alpha_p, the constant of s_j - p_j^2/alpha_p = e^{-2 eta t} c_j."""
    return np.asarray(s0, float) - np.asarray(p0, float) ** 2 / alpha_p


def mode_rhs(p, s, tau, eta, alpha_p, beta, sigma2, simsiam=False, out=None):
    """(dp/dt, ds/dt, dtau/dt) of eqs. 11-13, vectorised over any broadcastable arrays.

    ``out``: optional (dp, ds, dtau) arrays of the broadcast shape to fill (fewer temporaries;
    used by the vectorised sweep).
    """
    gain = tau - (1.0 + sigma2) * p
    growth = p * gain
    growth -= eta  # = (ds/dt) / (2 s)
    if out is None:
        out = (np.empty_like(gain), np.empty_like(gain), np.empty_like(gain))
    dp, ds, dtau = out
    np.multiply(s, gain, out=dp)
    dp *= alpha_p
    dp -= eta * p
    np.multiply(s, growth, out=ds)
    ds *= 2.0
    if simsiam:
        dtau[...] = 0.0
    else:
        np.subtract(1.0, tau, out=dtau)
        dtau *= beta
        dtau -= tau * growth
    return dp, ds, dtau


def mode_rhs_on_invariant(p, tau, decay, eta, lam, beta, simsiam=False):
    """(dp/dt, dtau/dt) of eqs. 11 and 13 with s_j eliminated by the exact invariant.

    alpha_p s_j = p_j^2 + decay, decay = alpha_p c_j e^{-2 eta t} (docs/theory.md (D8)), so that,
    with lam = 1 + sigma^2 and g = p_j [tau_j - lam p_j] (= (ds_j/dt)/(2 s_j) + eta),

        dp_j/dt   = (p_j^2 + decay) [tau_j - lam p_j] - eta p_j
                  = p_j (g - eta) + decay [tau_j - lam p_j]
        dtau_j/dt = beta (1 - tau_j) - tau_j (g - eta) = beta - tau_j (g + beta - eta)

    (dtau/dt = 0 for SimSiam: the number 0). Arithmetic on any broadcastable arrays (numpy or
    torch), written for few passes over them; ``decay`` None stands for 0 (c_j = 0: modes that
    start on the parabola s = p^2/alpha_p).
    """
    gain = lam * p
    gain = tau - gain
    g = p * gain
    dp = g - eta
    dp *= p
    if decay is not None:
        gain *= decay
        dp += gain
    if simsiam:
        return dp, 0.0
    g += beta - eta
    g *= tau
    return dp, beta - g


#: a mode counts as converged when within this fraction of p*_+
CONVERGED_FRACTION = 0.02


def mode_fates(p, p_plus, p_minus, sigma2, tau=1.0) -> tuple[np.ndarray, np.ndarray]:
    """(collapsed, converged) boolean arrays for final eigenvalues p; broadcasts all arguments.

    Converged: |p - p*_+| <= 2% of p*_+ (only where p*_+ > 0); collapsed: inside the collapse
    basin |p| < p*_-, where p -> 0 (docs/theory.md (D9), Tian B.2), or collapsed by the toolkit's
    criterion (:func:`dynamics.observables.collapsed`) relative to tau/(1+sigma^2), the eta = 0
    fixed point (the basin is empty at eta = 0).
    """
    p, p_plus, p_minus = (np.asarray(v) for v in (p, p_plus, p_minus))
    scale = np.asarray(tau) / (1.0 + np.asarray(sigma2))
    collapsed = (np.abs(p) < p_minus) | obs.collapsed(p, scale)
    with np.errstate(invalid="ignore"):
        converged = (p_plus > 0) & (np.abs(p - p_plus) <= CONVERGED_FRACTION * p_plus)
    return collapsed, converged & ~collapsed


def classify_modes(p, p_plus, p_minus, sigma2, tau=1.0) -> np.ndarray:
    """Each mode's fate from its final eigenvalue p (complex allowed; docs/theory.md (D9)).

    'converged' if |p - p*_+| <= 2% of p*_+; 'collapsed' if |p| < max(p*_-, 2% of
    tau/(1+sigma^2)), i.e. inside the collapse basin, where p -> 0; else 'in transit'.
    """
    collapsed, converged = mode_fates(p, p_plus, p_minus, sigma2, tau)
    status = np.full(np.shape(p), "in transit", dtype=object)
    status[converged] = "converged"
    status[collapsed] = "collapsed"
    return status


def mode_table(p_final, p_imag, p_plus, p_minus, sigma2, eta) -> list[str]:
    """Summary lines: each mode's final eigenvalue next to p*_+, and the collapse count."""
    status = classify_modes(np.asarray(p_final) + 1j * np.asarray(p_imag), p_plus, p_minus, sigma2)
    threshold = float(collapse_threshold(1.0, sigma2))
    lines = [
        f"  closed form (tau = 1): p*_+ = {p_plus:.6g}, p*_- = {p_minus:.6g}; every mode collapses "
        f"for eta > 1/(4(1+sigma^2)) = {threshold:.6g} (eta = {eta:g}: "
        + ("all modes must collapse)" if eta > threshold else "modes above p*_- reach p*_+)"),
        "  mode  final eigenvalue of W_p      p*_+       status",
    ]
    for j, (re, im, st) in enumerate(zip(p_final, p_imag, status, strict=True)):
        lines.append(f"  {j:>4}  {re:>+12.6f} {im:>+10.2e}i   {p_plus:>9.6f}  {st}")
    n_col = int(np.sum(status == "collapsed"))
    n_conv = int(np.sum(status == "converged"))
    lines.append(f"  collapsed modes: {n_col} of {len(status)}; converged to p*_+: {n_conv}")
    return lines


def _spread(text: str, n: int, name: str) -> np.ndarray:
    """Parse 'a:b' (n values evenly spaced from a to b) or n comma-separated numbers."""
    try:
        if ":" in text:
            lo, hi = (float(v) for v in text.split(":"))
            values = np.linspace(lo, hi, n)
        else:
            values = np.array([float(v) for v in text.split(",")])
    except ValueError:
        raise ParameterError(
            f"{name}={text!r} is not allowed: 'a:b' or {n} comma-separated numbers"
        ) from None
    require(values.size == n, name, text, f"{n} values (one per mode)")
    require(bool(np.all(np.isfinite(values))), name, text, "finite numbers")
    return values


@dataclasses.dataclass(frozen=True)
class EigenmodeParams:
    """Parameters of the per-mode system; ``dim`` is the number of modes."""

    dim: int = param(
        12, "number of eigenmodes", at_least=1, at_most=10_000_000, why="the initial state is built"
    )
    eta: float = param(0.04, "weight decay eta", at_least=0)
    alpha_p: float = param(1.0, "relative learning rate of the predictor alpha_p", above=0)
    beta: float = param(0.5, "EMA rate beta (dW_a/dt = beta (W - W_a))", at_least=0)
    sigma2: float = param(0.5, "augmentation variance sigma^2 (X' = sigma^2 I)", at_least=0)
    p0: str = param("-0.05:0.25", "initial p_j: 'a:b' evenly spaced or comma-separated values")
    s0: str = param(
        "parabola",
        "initial s_j: 'parabola' (s = p^2/alpha_p + c0), 'a:b' or comma-separated values (> 0)",
    )
    c0: float = param(0.0, "offset c_j = s_j(0) - p_j(0)^2/alpha_p when s0 = 'parabola'")
    tau0: float = param(1.0, "initial EMA ratio tau_j(0) = W_a/W (BYOL starts the target at W)")
    simsiam: bool = param(False, "SimSiam: tau_j = 1 at all times, no EMA equation")
    seed: int = param(0, "random seed (unused: the initial state is deterministic)", at_least=0)

    def __post_init__(self):
        validate(self)
        self.initial_modes()  # validates p0, s0

    def initial_modes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p(0), s(0), tau(0)) per mode."""
        p0 = _spread(self.p0, self.dim, "p0")
        if self.s0 == "parabola":
            require(self.c0 >= 0, "c0", self.c0, "c0 >= 0 (s_j(0) must be >= 0)")
            s0 = p0**2 / self.alpha_p + self.c0
        else:
            s0 = _spread(self.s0, self.dim, "s0")
            require(bool(np.all(s0 >= 0)), "s0", self.s0, "s_j(0) >= 0 (an eigenvalue of W X W^T)")
        tau0 = np.full(self.dim, 1.0 if self.simsiam else self.tau0)
        return p0, s0, tau0


class EigenmodeModel(Model):
    """Tian et al. eqs. 11-13: one (p_j, s_j, tau_j) per mode."""

    name = "eigenmodes"
    state_per_mode = True
    description = "per-mode (p_j, s_j, tau_j) system of Tian et al. eqs. 11-13 (SimSiam: tau = 1)"

    def make_layout(self) -> StateLayout:
        d = self.params.dim
        return StateLayout([("p", (d,)), ("s", (d,)), ("tau", (d,))])

    def initial_state(self) -> np.ndarray:
        p0, s0, tau0 = self.params.initial_modes()
        return self.layout.pack(p=p0, s=s0, tau=tau0)

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        q = self.params
        b = self.layout.unpack(y)
        dp, ds, dtau = mode_rhs(
            b["p"], b["s"], b["tau"], q.eta, q.alpha_p, q.beta, q.sigma2, q.simsiam
        )
        return np.concatenate([dp, ds, dtau])

    def observables(self, t: np.ndarray, y: np.ndarray) -> xr.Dataset:
        q = self.params
        b = self.layout.unpack(y)
        p, s, tau = b["p"], b["s"], b["tau"]
        p0, s0, _ = q.initial_modes()
        c = invariant_constant(p0, s0, q.alpha_p)
        residual = s - p**2 / q.alpha_p - np.exp(-2 * q.eta * t)[:, None] * c
        p_plus, p_minus = fixed_points(q.eta, tau, q.sigma2)
        dims, ranked = (TIME, MODE), (TIME, RANK)
        ds = xr.Dataset(
            {
                "p": (dims, p),
                "s": (dims, s),
                "tau": (dims, tau),
                "invariant_residual": (dims, residual),
                # the spectra sorted, over their own dimension rank (symbolic.common.schema);
                # p, s, tau stay indexed by the mode itself
                "wp_eig_real": (ranked, obs.sort_spectrum(p)),
                "wp_eig_imag": (ranked, np.zeros_like(p)),
                "corr_eig": (ranked, obs.sort_spectrum((1 + q.sigma2) * s)),
                "p_star_plus": (dims, np.nan_to_num(p_plus, nan=0.0)),
                "p_star_minus": (dims, np.nan_to_num(p_minus, nan=0.0)),
            },
            coords={TIME: t, MODE: np.arange(q.dim), RANK: np.arange(q.dim)},
        )
        ds["p_star_plus"].attrs["note"] = "0 where eta > tau^2/(4(1+sigma^2)) (no such point)"
        ds["p_star_minus"].attrs["note"] = "0 where eta > tau^2/(4(1+sigma^2)) (no such point)"
        ds["invariant_constant"] = (MODE, c)
        return ds

    def summary(self, ds: xr.Dataset) -> list[str]:
        q = self.params
        final = ds.isel(time=-1)
        lines = mode_table(
            final["p"].values,
            np.zeros(q.dim),
            ds.attrs["p_star_plus"],
            ds.attrs["p_star_minus"],
            q.sigma2,
            q.eta,
        )
        worst = float(np.max(np.abs(ds["invariant_residual"].values)))
        lines.append(f"  invariant s_j - p_j^2/alpha_p - e^(-2 eta t) c_j: max |error| {worst:.2e}")
        if not q.simsiam:
            lines.append(f"  final tau_j: {np.array2string(final['tau'].values, precision=4)}")
        return lines

    def closed_forms(self) -> dict[str, float]:
        q = self.params
        tau = 1.0  # BYOL's tau -> 1 as the target catches up; SimSiam's is 1
        p_plus, p_minus = fixed_points(q.eta, tau, q.sigma2)
        return {
            "p_star_plus": float(np.nan_to_num(p_plus, nan=0.0)),
            "p_star_minus": float(np.nan_to_num(p_minus, nan=0.0)),
            "collapse_threshold_eta": float(collapse_threshold(tau, q.sigma2)),
            "closed_form_tau": tau,
        }
