"""DirectPred and DirectCopy: the linear predictor set from the correlation of its inputs.

Written once against the array namespace of :mod:`symbolic.ops`, so that the linear flow
(:mod:`dynamics.models.directpred`, numpy) and training (:mod:`empirical.methods.directpred`,
torch) use the same rule. Tian, Chen, Ganguli 2021, eq. 18-19 (docs/theory.md (L10)): with
F_hat = U diag(s) U^T (the symmetric part of the running correlation of the predictor's inputs,
eigenvalues clipped at 0), W_p = U diag(p) U^T and, in the two named eps conventions,

    'paper': p_j = sqrt(s_j) + eps * max_k s_k                      (eq. 18 as printed)
    'code' : p_j = max(sqrt(s_j / max_k s_k) + eps, 1e-4)           (luckmatters, boost_scale)

DirectSet(alpha) (Tian et al. 2021) replaces the square root by the power s^alpha
(``exponent``; 1/2 is DirectPred): p_j = s_j^alpha + eps max_k s_k, or (s_j / max_k s_k)^alpha +
eps in the code convention.

The reported tables (rho = 0.3, eps = 0.1, freq = 1) come from the code convention;
eps_code = eps_paper sqrt(s_max). DirectCopy (Wang, Chen, Du, Tian 2021; docs/theory.md (L10)):
W_p = F_hat + eps I, no eigendecomposition. Leading batch dimensions are allowed.
"""

from __future__ import annotations

from typing import Any

from symbolic.ops import ops_for

CONVENTIONS = ("code", "paper")
#: the code convention's floor on p_j
CODE_FLOOR = 1e-4
#: below this largest eigenvalue F_hat counts as 0 (the code convention's ratio is then 0)
_TINY = 1e-30


def directpred_eigenvalues(s: Any, eps: float, convention: str, exponent: float = 0.5) -> Any:
    """The predictor eigenvalues p_j from the eigenvalues s (..., d) of F_hat."""
    ops = ops_for({"s": s})
    s = ops.maximum(s, 0.0)
    s_max = ops.max(s, axis=-1, keepdims=True)

    def power(x):
        return ops.sqrt(x) if exponent == 0.5 else x**exponent

    if convention == "paper":
        return power(s) + eps * s_max
    if convention == "code":
        return ops.maximum(power(s / ops.maximum(s_max, _TINY)) + eps, CODE_FLOOR)
    raise ValueError(f"unknown eps convention {convention!r}; choose {' or '.join(CONVENTIONS)}")


def directpred_matrix(f_hat: Any, eps: float, convention: str, exponent: float = 0.5) -> Any:
    """W_p = U diag(p(s)) U^T from the eigendecomposition of the symmetrised F_hat."""
    ops = ops_for({"f_hat": f_hat})
    s, u = ops.eigh(f_hat)
    p = directpred_eigenvalues(s, eps, convention, exponent)
    return ops.matmul(u * p[..., None, :], ops.T(u))


def directcopy_matrix(f_hat: Any, eps: float) -> Any:
    """W_p = F_hat + eps I."""
    ops = ops_for({"f_hat": f_hat})
    return f_hat + eps * ops.identity(f_hat.shape[-1], f_hat)
