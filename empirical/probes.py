"""Frozen-feature probes: weighted kNN and a linear (softmax) classifier, selected on validation.

kNN (Wu et al. 2018, InstDisc; the protocol of solo-learn and lightly): cosine similarity between
l2-normalised features, the k nearest training samples vote with weight exp(s / T); predicted class
= largest summed weight. Linear probe: features standardised with the probe-train mean and std,
multinomial logistic regression with an L2 penalty lam ||W||^2 / 2, fitted by full-batch L-BFGS
in float32, the largest penalty from zero and each smaller one from the previous solution (a
regularisation path; deterministic). For both, the hyperparameters (k, T) and lam are chosen by
accuracy on the validation split; the reported accuracy is on the test split with the chosen
values. The test split never takes part in the choice. Both run where the features are (the
training device): 1000 classes at D = 2048 take seconds on a GPU.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

KNN_KS = (10, 20, 50, 200)
KNN_TEMPERATURES = (0.07, 0.1, 0.5)
LINEAR_PENALTIES = (1e-5, 1e-3, 1e-1)


@dataclass(frozen=True)
class ProbeResult:
    """Test accuracy at the hyperparameters with the best validation accuracy."""

    test_acc: float
    val_acc: float
    choice: dict


def knn_predict(
    train_f: torch.Tensor,
    train_y: torch.Tensor,
    query_f: torch.Tensor,
    ks: tuple[int, ...],
    temperatures: tuple[float, ...],
    num_classes: int,
    chunk: int = 1024,
) -> torch.Tensor:
    """Predicted labels, shape (len(ks), len(temperatures), n_query)."""
    train_n = F.normalize(train_f.float(), dim=1)
    kmax = min(max(ks), len(train_n))
    preds = []
    for start in range(0, len(query_f), chunk):
        q = F.normalize(query_f[start : start + chunk].float(), dim=1)
        sims, idx = (q @ train_n.T).topk(kmax, dim=1)  # (n, kmax), decreasing
        labels = train_y[idx]
        per_t = []
        for t in temperatures:
            weights = torch.exp(sims / t)
            votes = [
                sims.new_zeros(len(q), num_classes).scatter_add_(
                    1, labels[:, : min(k, kmax)], weights[:, : min(k, kmax)]
                )
                for k in ks
            ]  # (n, C) each: no (n, k, C) one-hot
            per_t.append(torch.stack([v.argmax(dim=1) for v in votes]))
        preds.append(torch.stack(per_t, dim=1))  # (len(ks), len(T), n)
    return torch.cat(preds, dim=2)


def knn_probe(train, val, test, num_classes, ks=KNN_KS, temperatures=KNN_TEMPERATURES):
    """kNN accuracy on test with (k, T) chosen on val; each argument is (features, labels)."""
    val_pred = knn_predict(train[0], train[1], val[0], ks, temperatures, num_classes)
    val_acc = (val_pred == val[1]).float().mean(dim=2)
    best = int(torch.argmax(val_acc))  # first maximum: smallest k, then smallest T
    ki, ti = divmod(best, len(temperatures))
    k, t = ks[ki], temperatures[ti]
    test_pred = knn_predict(train[0], train[1], test[0], (k,), (t,), num_classes)[0, 0]
    return ProbeResult(
        float((test_pred == test[1]).float().mean()),
        float(val_acc[ki, ti]),
        {"k": k, "temperature": t},
    )


def fit_softmax(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    penalty: float,
    max_iter: int = 100,
    start: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and bias minimising mean cross-entropy + penalty ||W||^2 / 2 (L-BFGS from 0 or
    from ``start``), in the dtype and on the device of ``x``."""
    if start is None:
        start = (x.new_zeros(x.shape[1], num_classes), x.new_zeros(num_classes))
    w, b = (s.detach().clone().requires_grad_(True) for s in start)
    opt = torch.optim.LBFGS(
        [w, b],
        lr=1,
        max_iter=max_iter,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
    )

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + 0.5 * penalty * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


@contextlib.contextmanager
def one_thread():
    """Run the probe's small full-batch CPU work on one thread.

    Measured on the project's shared 2-core machine: a 200 x 128 fit took 6.6 s with two OpenMP
    threads while other jobs ran, 0.07 s with one; unloaded, two threads are faster on
    10000 x 128 (0.06 s against 0.11 s, benchmarks/bench_empirical.py). One thread bounds the
    worst case at a small cost.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def linear_probe(train, val, test, num_classes, penalties=LINEAR_PENALTIES):
    """Linear-probe accuracy on test with the L2 penalty chosen on val, fitted where the
    features are (one thread on the CPU)."""
    with one_thread() if train[0].device.type == "cpu" else contextlib.nullcontext():
        return _linear_probe(train, val, test, num_classes, penalties)


def _linear_probe(train, val, test, num_classes, penalties):
    xtr, ytr = train[0].float(), train[1]
    mean, std = xtr.mean(dim=0), xtr.std(dim=0).clamp(min=1e-8)

    def prep(f):
        return (f.float().to(mean.device) - mean) / std

    xtr, xva, xte = prep(xtr), prep(val[0]), prep(test[0])
    yva, yte = val[1].to(mean.device), test[1].to(mean.device)
    best, fit = None, None
    for lam in sorted(penalties, reverse=True):  # the path from the strongest penalty
        fit = fit_softmax(xtr, ytr, num_classes, lam, start=fit)
        w, b = fit
        acc = float(((xva @ w + b).argmax(dim=1) == yva).double().mean())
        if best is None or acc > best[0] or (acc == best[0] and lam < best[1]):
            best = (acc, lam, w, b)
    acc, lam, w, b = best
    test_acc = float(((xte @ w + b).argmax(dim=1) == yte).double().mean())
    return ProbeResult(test_acc, acc, {"penalty": lam})
