"""Probes: kNN against a brute-force loop; selection on validation, never on test; the linear
probe against the float64 L-BFGS probe it replaced."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from empirical.data import load_fashion_mnist
from empirical.probes import fit_softmax, knn_predict, knn_probe, linear_probe
from tests.empirical.conftest import DEBIAN_FASHION


def clusters(n, classes=4, dim=6, spread=1.0, seed=0):
    """Samples around 4 fixed centres (the same for every seed)."""
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(99)) * 3
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    return centres[y] + spread * torch.randn(n, dim, generator=g), y


def brute_force_knn(train_f, train_y, query, k, t, classes):
    tn = train_f / np.linalg.norm(train_f, axis=1, keepdims=True)
    out = []
    for q in query:
        s = tn @ (q / np.linalg.norm(q))
        nearest = np.argsort(-s, kind="stable")[:k]
        votes = np.zeros(classes)
        for i in nearest:
            votes[train_y[i]] += math.exp(s[i] / t)
        out.append(int(np.argmax(votes)))
    return np.array(out)


def test_weighted_knn_matches_a_brute_force_vote():
    train_f, train_y = clusters(120, spread=2.5)
    query, _ = clusters(40, spread=2.5, seed=1)
    ks, ts = (1, 5, 20), (0.07, 0.5)
    preds = knn_predict(train_f, train_y, query, ks, ts, 4, chunk=16)
    for a, k in enumerate(ks):
        for b, t in enumerate(ts):
            ref = brute_force_knn(
                train_f.double().numpy(), train_y.numpy(), query.double().numpy(), k, t, 4
            )
            assert np.array_equal(preds[a, b].numpy(), ref), (k, t)


def test_probe_choices_ignore_the_test_labels():
    train, val, test = (
        clusters(200, spread=3.0),
        clusters(100, spread=3.0, seed=1),
        clusters(100, spread=3.0, seed=2),
    )
    shuffled = (test[0], test[1][torch.randperm(100, generator=torch.Generator().manual_seed(3))])
    for probe in (knn_probe, linear_probe):
        a, b = probe(train, val, test, 4), probe(train, val, shuffled, 4)
        assert a.choice == b.choice and a.val_acc == b.val_acc
        assert a.test_acc != b.test_acc  # the test labels only enter the reported accuracy


def test_linear_probe_separates_separable_classes():
    train, val, test = (
        clusters(300, spread=0.3),
        clusters(100, spread=0.3, seed=1),
        clusters(100, spread=0.3, seed=2),
    )
    result = linear_probe(train, val, test, 4)
    assert result.test_acc == 1.0 and result.val_acc == 1.0


def test_softmax_fit_reaches_the_stationary_point():
    """Gradient of mean cross-entropy + lam ||W||^2/2 vanishes at the returned weights."""
    x, y = clusters(150, spread=2.0)
    x = x.double()
    lam = 1e-2
    w, b = fit_softmax(x, y, 4, lam, max_iter=500)
    w.requires_grad_(True)
    b.requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(x @ w + b, y) + 0.5 * lam * (w**2).sum()
    gw, gb = torch.autograd.grad(loss, (w, b))
    assert float(gw.abs().max()) < 1e-5 and float(gb.abs().max()) < 1e-5


def lbfgs_float64_probe(train, val, test, num_classes, penalties=(1e-5, 1e-3, 1e-1)):
    """The probe this package had before its device version (the reference): float64, each
    penalty fitted from zero by L-BFGS (history 100), the smallest penalty wins ties."""
    xtr = train[0].double()
    mean, std = xtr.mean(0), xtr.std(0).clamp(min=1e-8)
    xtr, xva, xte = ((f.double() - mean) / std for f in (train[0], val[0], test[0]))
    best = None
    for lam in penalties:
        w = torch.zeros(xtr.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
        b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS(
            [w, b], lr=1, max_iter=100, line_search_fn="strong_wolfe",
            tolerance_grad=1e-6, tolerance_change=1e-9,
        )  # fmt: skip

        def closure(w=w, b=b, opt=opt, lam=lam):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(xtr @ w + b, train[1])
            loss = loss + 0.5 * lam * (w**2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        acc = float(((xva @ w + b).argmax(1) == val[1]).double().mean())
        if best is None or acc > best[0]:
            best = (acc, w.detach(), b.detach())
    _, w, b = best
    return float(((xte @ w + b).argmax(1) == test[1]).double().mean())


@pytest.mark.skipif(
    not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").exists(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_linear_probe_agrees_with_the_float64_lbfgs_probe_on_fashion_mnist():
    """Pixels of Fashion-MNIST as features (784-d, 10 classes): the float32 regularisation-path
    probe's test accuracy within 0.5% of the float64 probe fitted from zero."""
    data = load_fashion_mnist(DEBIAN_FASHION)
    x = torch.from_numpy(data["train_images"][:6000].reshape(6000, -1).astype(np.float32)) / 255
    y = torch.from_numpy(data["train_labels"][:6000].astype(np.int64))
    train, val, test = (x[:3000], y[:3000]), (x[3000:4000], y[3000:4000]), (x[4000:], y[4000:])
    got = linear_probe(train, val, test, 10).test_acc
    reference = lbfgs_float64_probe(train, val, test, 10)
    assert 0.7 < reference < 0.9  # a linear classifier on pixels
    assert abs(got - reference) <= 0.005, (got, reference)
