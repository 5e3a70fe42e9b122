"""DirectPred and DirectCopy: set the linear predictor from the correlation of its inputs.

Tian, Chen, Ganguli 2021, eq. 18-19 (SPEC 1.10). The running correlation of the detached online
projector outputs f of both views (not centred; the first batch initialises it):
    F_hat <- rho F_hat + (1 - rho) mean_batch(f f^T),      F_hat = U diag(s) U^T,
and every ``freq`` steps W_p = U diag(p) U^T with, in the two named eps conventions,
    'paper': p_j = sqrt(s_j) + eps * max_j s_j                       (eq. 18 as printed)
    'code' : p_j = max(sqrt(s_j / s_max) + eps, 1e-4)                 (luckmatters, boost_scale)
(negative s_j from round-off are clipped to 0 before the square root). The reported tables
(rho = 0.3, eps = 0.1, freq = 1) come from the code convention; eps_code = eps_paper sqrt(s_max).
DirectCopy (Wang, Chen, Du, Tian 2021; SPEC 1.10): W_p = F_hat + eps I, no eigendecomposition.
"""

from __future__ import annotations

import torch

EPS_CONVENTIONS = ("paper", "code")


def directpred_eigenvalues(s: torch.Tensor, eps: float, convention: str) -> torch.Tensor:
    """The predictor eigenvalues p_j from the correlation eigenvalues s_j (either convention)."""
    s = s.clamp(min=0)
    if convention == "paper":
        return torch.sqrt(s) + eps * s.max()
    if convention == "code":
        s_max = s.max()
        ratio = s / s_max if s_max > 0 else torch.zeros_like(s)
        return torch.clamp(torch.sqrt(ratio) + eps, min=1e-4)
    raise ValueError(
        f"unknown eps convention {convention!r}; choose {' or '.join(EPS_CONVENTIONS)}"
    )


def directpred_matrix(f_hat: torch.Tensor, eps: float, convention: str) -> torch.Tensor:
    """W_p = U diag(p(s)) U^T from the eigendecomposition of the symmetrised F_hat (float64)."""
    sym = (f_hat.double() + f_hat.double().T) / 2
    s, u = torch.linalg.eigh(sym)
    p = directpred_eigenvalues(s, eps, convention)
    return ((u * p) @ u.T).to(f_hat.dtype)


def directcopy_matrix(f_hat: torch.Tensor, eps: float) -> torch.Tensor:
    """W_p = F_hat + eps I."""
    return f_hat + eps * torch.eye(f_hat.shape[0], dtype=f_hat.dtype, device=f_hat.device)


def update_correlation(
    f_hat: torch.Tensor, ready: torch.Tensor, batch_corr: torch.Tensor, rho: float
) -> None:
    """In place: F_hat <- rho F_hat + (1 - rho) batch_corr, or F_hat <- batch_corr at first call.

    ``ready`` is a 0-d bool buffer marking that F_hat holds an estimate (both live in the model's
    state dict, so checkpoints carry them).
    """
    batch_corr = batch_corr.detach().to(f_hat.dtype)
    if bool(ready):
        f_hat.mul_(rho).add_(batch_corr, alpha=1 - rho)
    else:
        f_hat.copy_(batch_corr)
        ready.fill_(True)
