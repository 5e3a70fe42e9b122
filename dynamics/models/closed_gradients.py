"""Per-block gradients of the general model's losses in closed form, on a one-layer encoder.

The general model (:mod:`dynamics.models.general`) differentiates the expected minibatch loss
over a run's fixed pairs by torch autograd through ``torch.func.vmap``: 2.5-14 ms per gradient
on 32 blocks of 128 pairs in 8 dimensions, almost all of it the per-operation cost of autograd,
not arithmetic. A replay and its ablation nulls take 10 000 to 40 000 gradients per run. Here
the gradient of each block's loss is written out by the chain rule, all blocks at once, for the
losses of the bridge's method rungs (block of N pairs, views X_v (N x n1), Z_v = X_v W^T,
dL/dW = sum_v (dL/dZ_v)^T X_v):

- ``spectral`` (HaoChen et al. 2021; :func:`symbolic.losses.spectral`): with G = Z_1 Z_2^T and
  O its off-diagonal part, L = -2 tr(G)/N + ||O||^2/(N(N-1)), so
  dL/dZ_1 = (-2 Z_2 + 2 O Z_2/(N-1))/N and dL/dZ_2 = (-2 Z_1 + 2 O^T Z_1/(N-1))/N.
- ``barlow_twins`` (Zbontar et al. 2021; :func:`symbolic.losses.barlow_twins`): A, B the
  views standardised per feature (biased variance, eps), C = A^T B/N, L = s [sum_i (1 - C_ii)^2
  + lambda sum_{i != j} C_ij^2]: with G = dL/dC (2 s lambda C_ij off the diagonal,
  -2 s (1 - C_ii) on it), dL/dA = B G^T/N and dL/dB = A G/N, then through the standardisation
  as for Liu's loss below (with N in place of N - 1).
- ``vicreg`` (Bardes et al. 2022; :func:`symbolic.losses.vicreg`): the invariance
  s ||Z_1 - Z_2||^2/(Nd) gives +-2s (Z_1 - Z_2)/(Nd); per view, with C the centred Z,
  sigma_j = sqrt(C_j^T C_j/(N-1) + eps), the variance hinge v/(2d) sum_j relu(1 - sigma_j)
  gives -v/(2d) [sigma_j < 1] C_j/((N-1) sigma_j), the covariance c/d ||off(C^T C/(N-1))||^2
  gives 4c/(d(N-1)) C off(C^T C/(N-1)) (both already centred: their column sums vanish). Each
  view's term is C M_v with the d x d matrix M_v = diag(h) + 4c/(d(N-1)) off(Cov_v), and
  C^T X_v = W Xc_v^T Xc_v, so the gradient needs only each block's second moments
  (:class:`BlockViews`): Cov_v = W S_v W^T with S_v = Xc_v^T Xc_v/(N-1), and
  dL/dW = 2s/(Nd) W D + (N-1) sum_v M_v W S_v with D = (X_1 - X_2)^T (X_1 - X_2): its cost
  does not grow with the pairs (the moments are computed once per sample).
- ``liu`` (Liu et al. 2022, eqs. 17-19; :func:`symbolic.linear_losses.liu`), arguments
  (W_p, Z_1, Z_2): U_v the standardised Z_v (unbiased, eps), R = (W_p U_1^T - U_2^T)/sqrt(N),
  the invariance c_inv ||R||^2 gives dL/dW_p = 2 c_inv R U_1/sqrt(N),
  dL/dU_1 = 2 c_inv R^T W_p/sqrt(N), dL/dU_2 = -2 c_inv R^T/sqrt(N); part i (s = N/k rows)
  with S_i = U_{1,(i)}^T U_{1,(i)}/s and H_i = 2 (c_cov/d) (W_p^T W_p - W_p S_i W_p^T) gives
  dL/dW_p = 2 W_p H_i - 2 H_i W_p S_i and dL/dU_{1,(i)} = -(2/s) U_{1,(i)} W_p^T H_i W_p; the
  standardisation U = C/sigma passes G = dL/dU back as
  dL/dZ_j = (G_j - mean(G_j) - U_j (G_j^T U_j)/(N-1))/sigma_j per column j.
- ``byol`` with a predictor (Grill et al. 2020; :func:`symbolic.losses.byol`), P_v = Z_v W_p^T
  against the targets T_v = X_v W_a^T (W_a = W without an EMA target) under stop-gradient:
  L = c sum_v mean_b (2 - 2 cos(P_{v,b}, T_{v',b})), so dL/dP_{v,b} =
  -(2c/N) (t - (p.t) p)/||P_{v,b}|| (p, t the unit rows), dL/dW_p = sum_v (dL/dP_v)^T Z_v,
  dL/dZ_v = (dL/dP_v) W_p.

NT-Xent's is :mod:`dynamics.models.nt_xent_gradient`. Each returns None where its formula does
not hold (a norm or a standard deviation at zero: the loss's own floors take over) and autograd
answers there. tests/dynamics/test_closed_gradients.py checks each against torch autograd of the
registered loss block by block.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from dynamics.models import nt_xent_gradient
from symbolic.ops import NORM_EPS

Blocks = dict[str, np.ndarray]


@dataclass(frozen=True)
class BlockViews:
    """The two views of K minibatch blocks of N pairs, each (K, N, n1), and the moments a form
    may read, computed once per sample (a flow evaluates its gradient thousands of times)."""

    x1: torch.Tensor
    x2: torch.Tensor

    @cached_property
    def swapped(self) -> BlockViews:
        return BlockViews(self.x2, self.x1)

    @cached_property
    def centred_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """S_v = Xc_v^T Xc_v/(N-1) of each view (Xc_v: X_v minus its column means per block),
        (K, n1, n1) each."""
        return tuple(_centred_second_moment(x) for x in (self.x1, self.x2))

    @cached_property
    def difference_moment(self) -> torch.Tensor:
        """D = (X_1 - X_2)^T (X_1 - X_2) of each block, (K, n1, n1)."""
        diff = self.x1 - self.x2
        return diff.transpose(-1, -2) @ diff


def _centred_second_moment(x: torch.Tensor) -> torch.Tensor:
    centred = x - x.mean(-2, keepdim=True)
    return centred.transpose(-1, -2) @ centred / (x.shape[-2] - 1)


#: (state blocks, the views of the K blocks, the loss's hyperparameters) ->
#: {block: (K, *shape) gradient of each minibatch block's loss} or None
Form = Callable[[Blocks, BlockViews, dict], Blocks | None]


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _weight_gradient(grad_z1, grad_z2, x1, x2) -> np.ndarray:
    """sum_v (dL/dZ_v)^T X_v of each block: (K, d, n1)."""
    return (grad_z1.transpose(-1, -2) @ x1 + grad_z2.transpose(-1, -2) @ x2).numpy()


def nt_xent(blocks: Blocks, views: BlockViews, hyper: dict) -> Blocks | None:
    x1, x2 = views.x1, views.x2
    found = nt_xent_gradient.block_gradients(blocks["W"], x1, x2, **hyper)
    return None if found is None else {"W": found}


def spectral(blocks: Blocks, views: BlockViews, hyper: dict) -> Blocks | None:
    x1, x2 = views.x1, views.x2
    w = _tensor(blocks["W"])
    z1, z2 = x1 @ w.T, x2 @ w.T
    n = z1.shape[-2]
    off = z1 @ z2.transpose(-1, -2)
    off.diagonal(0, -2, -1).zero_()
    grad_z1 = (-2 * z2 + (2 / (n - 1)) * (off @ z2)) / n
    grad_z2 = (-2 * z1 + (2 / (n - 1)) * (off.transpose(-1, -2) @ z1)) / n
    return {"W": _weight_gradient(grad_z1, grad_z2, x1, x2)}


def _centred(z, eps: float, ddof: int = 1):
    """(C, sigma): z minus its column means over the rows, and sqrt(variance + eps) per column
    (the unbiased variance for ``ddof`` 1, the biased one for 0)."""
    centred = z - z.mean(-2, keepdim=True)
    variance = (centred * centred).sum(-2, keepdim=True) / (z.shape[-2] - ddof)
    return centred, torch.sqrt(variance + eps)


def vicreg(blocks: Blocks, views: BlockViews, hyper: dict) -> Blocks | None:
    w = _tensor(blocks["W"])
    n = views.x1.shape[-2]
    d = w.shape[0]
    grad = (2 * hyper["sim_coeff"] / (n * d)) * (w @ views.difference_moment)
    for moment in views.centred_moments:
        cov = w @ moment @ w.T  # Cov_v: (K, d, d)
        std = torch.sqrt(cov.diagonal(0, -2, -1) + hyper["eps"])
        if not bool((std > 0).all()):
            return None
        hinge = -(hyper["std_coeff"] / (2 * d)) * (std < 1).to(w.dtype) / ((n - 1) * std)
        m = (4 * hyper["cov_coeff"] / (d * (n - 1))) * cov
        m.diagonal(0, -2, -1).copy_(hinge)
        grad = grad + (n - 1) * (m @ w @ moment)
    return {"W": grad.numpy()}


def _through_standardisation(grad_u, u, sigma, ddof: int = 1):
    """dL/dZ from G = dL/dU through U = (Z - mean)/sigma (the variance of :func:`_centred`)."""
    along = (grad_u * u).sum(-2, keepdim=True) / (u.shape[-2] - ddof)
    return (grad_u - grad_u.mean(-2, keepdim=True) - u * along) / sigma


def barlow_twins(blocks: Blocks, views: BlockViews, hyper: dict) -> Blocks | None:
    x1, x2 = views.x1, views.x2
    w = _tensor(blocks["W"])
    (c1, s1), (c2, s2) = (_centred(x @ w.T, hyper["eps"], ddof=0) for x in (x1, x2))
    if not bool((s1 > 0).all() and (s2 > 0).all()):
        return None
    a, b = c1 / s1, c2 / s2
    n = a.shape[-2]
    corr = a.transpose(-1, -2) @ b / n
    grad_c = (2 * hyper["scale"] * hyper["lambd"]) * corr
    grad_c.diagonal(0, -2, -1).copy_(-2 * hyper["scale"] * (1 - corr.diagonal(0, -2, -1)))
    grad_a = b @ grad_c.transpose(-1, -2) / n
    grad_b = a @ grad_c / n
    return {
        "W": _weight_gradient(
            _through_standardisation(grad_a, a, s1, ddof=0),
            _through_standardisation(grad_b, b, s2, ddof=0),
            x1,
            x2,
        )
    }


def _liu_terms(wp, z1, z2, hyper: dict):
    """(dL/dW_p, dL/dZ_1, dL/dZ_2) of Liu et al.'s loss on each block; None at a zero standard
    deviation or where k does not divide the block (the loss's own error then)."""
    c_inv, c_cov, k = hyper["c_inv"], hyper["c_cov"], int(hyper["k"])
    *lead, n, d = z1.shape
    if n % k:
        return None
    if hyper["standardize"]:
        (c1, s1), (c2, s2) = _centred(z1, hyper["eps"]), _centred(z2, hyper["eps"])
        if not bool((s1 > 0).all() and (s2 > 0).all()):
            return None
        u1, u2 = c1 / s1, c2 / s2
    else:
        u1, u2 = z1, z2
    root = math.sqrt(n)
    residual = (u1 @ wp.T - u2) / root  # R^T: (K, N, d)
    grad_wp = (2 * c_inv / root) * (residual.transpose(-1, -2) @ u1)
    grad_u1 = (2 * c_inv / root) * (residual @ wp)
    grad_u2 = (-2 * c_inv / root) * residual
    size = n // k
    parts = u1.reshape(*lead, k, size, d)
    second = parts.transpose(-1, -2) @ parts / size  # S_i: (K, k, d, d)
    gaps = wp.T @ wp - wp @ second @ wp.T
    h = (2 * c_cov / d) * gaps
    grad_wp = grad_wp + (2 * wp @ h - 2 * h @ wp @ second).sum(-3)
    grad_u1 = grad_u1 - (2 / size) * (parts @ (wp.T @ h @ wp)).reshape(*lead, n, d)
    if hyper["standardize"]:
        grad_u1, grad_u2 = (
            _through_standardisation(grad_u1, u1, s1),
            _through_standardisation(grad_u2, u2, s2),
        )
    return grad_wp, grad_u1, grad_u2


def liu(blocks: Blocks, views: BlockViews, hyper: dict) -> Blocks | None:
    x1, x2 = views.x1, views.x2
    w, wp = _tensor(blocks["W"]), _tensor(blocks["W_p"])
    terms = _liu_terms(wp, x1 @ w.T, x2 @ w.T, hyper)
    if terms is None:
        return None
    grad_wp, grad_z1, grad_z2 = terms
    return {"W": _weight_gradient(grad_z1, grad_z2, x1, x2), "W_p": grad_wp.numpy()}


def _cosine_term(p, t):
    """d/dP of -2 mean_b cos(P_b, T_b) (T under stop-gradient); None at a norm at the floor."""
    p_norm = torch.linalg.vector_norm(p, dim=-1, keepdim=True)
    t_norm = torch.linalg.vector_norm(t, dim=-1, keepdim=True)
    if bool((p_norm <= NORM_EPS).any() or (t_norm <= NORM_EPS).any()):
        return None
    p_unit, t_unit = p / p_norm, t / t_norm
    along = (p_unit * t_unit).sum(-1, keepdim=True)
    return (-2 / p.shape[-2]) * (t_unit - along * p_unit) / p_norm


def byol_cosine(blocks: Blocks, views: BlockViews, hyper: dict) -> Blocks | None:
    x1, x2 = views.x1, views.x2
    w, wp = _tensor(blocks["W"]), _tensor(blocks["W_p"])
    wa = _tensor(blocks["W_a"]) if "W_a" in blocks else w
    z1, z2 = x1 @ w.T, x2 @ w.T
    p1, p2 = z1 @ wp.T, z2 @ wp.T
    g1, g2 = _cosine_term(p1, x2 @ wa.T), _cosine_term(p2, x1 @ wa.T)
    if g1 is None or g2 is None:
        return None
    g1, g2 = hyper["scale"] * g1, hyper["scale"] * g2
    grad_wp = g1.transpose(-1, -2) @ z1 + g2.transpose(-1, -2) @ z2
    return {"W": _weight_gradient(g1 @ wp, g2 @ wp, x1, x2), "W_p": grad_wp.numpy()}


#: (loss, argument role) -> its closed form; a loss equal under the two views swapped is marked
#: (``symmetrize`` doubles it instead of evaluating the swapped views)
FORMS: dict[tuple[str, str], tuple[Form, bool]] = {
    ("nt_xent", "pair"): (nt_xent, True),
    ("spectral", "pair"): (spectral, True),
    ("vicreg", "pair"): (vicreg, True),
    ("barlow_twins", "pair"): (barlow_twins, True),
    ("liu", "predictor_pair"): (liu, False),
    ("byol", "predict"): (byol_cosine, True),
}


def block_gradients(
    loss: str, role: str, symmetrize: bool, blocks: Blocks, views: BlockViews, hyper: dict
) -> Blocks | None:
    """{block: (K, *shape)}: each minibatch block's gradient of ``loss`` (plus the loss of the
    swapped views with ``symmetrize``) in closed form, for a one-layer encoder; None where no
    closed form is written or where it does not hold (autograd's case)."""
    if (loss, role) not in FORMS:
        return None
    form, symmetric = FORMS[loss, role]
    with torch.no_grad():
        found = form(blocks, views, hyper)
        if found is None or not symmetrize:
            return found
        if symmetric:
            return {k: 2 * g for k, g in found.items()}
        swapped = form(blocks, views.swapped, hyper)
        if swapped is None:
            return None
        return {k: g + swapped[k] for k, g in found.items()}
