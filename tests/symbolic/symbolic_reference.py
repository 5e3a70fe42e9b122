"""Second, straightforward torch implementations of the official loss definitions.

Written independently of symbolic.losses, in the style of the official code of each method (the
repository named beside each), so that a wrong convention in the namespace version (a missing
1/2, a sum instead of a mean, a biased instead of an unbiased variance) shows up as a mismatch.
Also used by benchmarks/bench_symbolic.py as the hand-written baseline.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def invariance(z1, z2):
    return (z1 - z2).pow(2).sum(dim=1).mean()


def nt_xent(z1, z2, temperature=0.1):
    """google-research/simclr add_contrastive_loss, divided by 2 (mean over the 2N anchors)."""
    n = z1.shape[0]
    h1, h2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    large = 1e9
    masks = torch.eye(n, dtype=z1.dtype, device=z1.device)
    labels = torch.arange(n, device=z1.device)
    logits_aa = h1 @ h1.T / temperature - masks * large
    logits_bb = h2 @ h2.T / temperature - masks * large
    logits_ab = h1 @ h2.T / temperature
    logits_ba = h2 @ h1.T / temperature
    loss_a = F.cross_entropy(torch.cat([logits_ab, logits_aa], dim=1), labels)
    loss_b = F.cross_entropy(torch.cat([logits_ba, logits_bb], dim=1), labels)
    return (loss_a + loss_b) / 2


def infonce(q, k, queue, temperature=0.07):
    """facebookresearch/moco builder.py (queue stored as rows here)."""
    q = F.normalize(q, dim=1)
    k = F.normalize(k, dim=1).detach()
    queue = F.normalize(queue, dim=1).detach()
    l_pos = torch.einsum("nc,nc->n", q, k).unsqueeze(-1)
    l_neg = torch.einsum("nc,kc->nk", q, queue)
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature
    labels = torch.zeros(logits.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, labels)


def _regression_loss(x, y):
    """DeepMind BYOL: squared distance of the l2-normalised vectors, per sample."""
    x = F.normalize(x, dim=-1)
    y = F.normalize(y, dim=-1)
    return (x - y).pow(2).sum(dim=-1)


def byol(p1, p2, z1, z2):
    return _regression_loss(p1, z2.detach()).mean() + _regression_loss(p2, z1.detach()).mean()


def simsiam(p1, p2, z1, z2, stop_gradient=True):
    """facebookresearch/simsiam: -(criterion(p1, z2).mean() + criterion(p2, z1).mean()) * 0.5."""
    criterion = torch.nn.CosineSimilarity(dim=1)
    if stop_gradient:
        z1, z2 = z1.detach(), z2.detach()
    return -(criterion(p1, z2).mean() + criterion(p2, z1).mean()) * 0.5


def _off_diagonal(x):
    n, m = x.shape
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def barlow_twins(z1, z2, lambd=0.0051):
    """facebookresearch/barlowtwins main.py, single process."""
    bn = torch.nn.BatchNorm1d(z1.shape[1], affine=False).to(device=z1.device, dtype=z1.dtype)
    c = bn(z1).T @ bn(z2)
    c = c / z1.shape[0]
    on_diag = (torch.diagonal(c) - 1).pow(2).sum()
    off_diag = _off_diagonal(c).pow(2).sum()
    return on_diag + lambd * off_diag


def vicreg(x, y, sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0):
    """facebookresearch/vicreg main_vicreg.py, single process."""
    batch_size, num_features = x.shape
    repr_loss = F.mse_loss(x, y)
    x = x - x.mean(dim=0)
    y = y - y.mean(dim=0)
    std_x = torch.sqrt(x.var(dim=0) + 0.0001)
    std_y = torch.sqrt(y.var(dim=0) + 0.0001)
    std_loss = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(F.relu(1 - std_y)) / 2
    cov_x = (x.T @ x) / (batch_size - 1)
    cov_y = (y.T @ y) / (batch_size - 1)
    cov_loss = _off_diagonal(cov_x).pow(2).sum().div(num_features) + _off_diagonal(cov_y).pow(
        2
    ).sum().div(num_features)
    return sim_coeff * repr_loss + std_coeff * std_loss + cov_coeff * cov_loss


def linear_byol(wp, f1, f2, eta=0.0, stop_gradient=True):
    """Tian eq. 1 / Liu eq. 5 in the d x N feature-matrix form, written sample by sample."""
    n = f1.shape[0]
    target = f2.detach() if stop_gradient else f2
    loss = sum(0.5 * (wp @ f1[b] - target[b]).pow(2).sum() for b in range(n)) / n
    return loss + eta / 2 * (wp.pow(2).sum() + f1.pow(2).sum() / n)


def liu(wp, z1, z2, c_inv=25.0, c_cov=1.0, k=8, standardize=True):
    """Liu et al. eqs. 17-19 with an explicit loop over the k parts."""
    n, d = z1.shape
    if standardize:
        z1 = (z1 - z1.mean(dim=0)) / z1.std(dim=0, unbiased=True)
        z2 = (z2 - z2.mean(dim=0)) / z2.std(dim=0, unbiased=True)
    big_f1 = z1.T / math.sqrt(n)
    big_f2 = z2.T / math.sqrt(n)
    loss = c_inv * torch.linalg.matrix_norm(wp @ big_f1 - big_f2) ** 2
    size = n // k
    for i in range(k):
        part = z1[i * size : (i + 1) * size].T / math.sqrt(size)
        gap = wp.T @ wp - wp @ part @ part.T @ wp.T
        loss = loss + c_cov / d * torch.linalg.matrix_norm(gap) ** 2
    return loss


def spectral(z1, z2):
    """docs/theory.md (L11) with explicit pairs."""
    n = z1.shape[0]
    positive = -2.0 / n * sum(z1[i] @ z2[i] for i in range(n))
    negative = sum((z1[i] @ z2[j]) ** 2 for i in range(n) for j in range(n) if i != j)
    return positive + negative / (n * (n - 1))


def garrido_lc(k):
    gram = k.T @ k
    return (gram - torch.diag(torch.diagonal(gram))).pow(2).sum()


def garrido_lnc(k):
    cov = k @ k.T
    return (cov - torch.diag(torch.diagonal(cov))).pow(2).sum()


def batchnorm(z, g, eps=1e-5):
    return (g * F.batch_norm(z, None, None, training=True, eps=eps)).sum()


REFERENCES = {
    "invariance": invariance,
    "nt_xent": nt_xent,
    "infonce": infonce,
    "byol": byol,
    "simsiam": simsiam,
    "barlow_twins": barlow_twins,
    "vicreg": vicreg,
    "linear_byol": linear_byol,
    "liu": liu,
    "spectral": spectral,
    "garrido_lc": garrido_lc,
    "garrido_lnc": garrido_lnc,
    "batchnorm": batchnorm,
}
