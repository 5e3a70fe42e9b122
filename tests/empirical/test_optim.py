"""LARS, parameter groups and the schedules, against hand computations and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from empirical.optim import (
    LARS,
    ema_momentum,
    param_groups,
    scaled_lr,
    scheduled_lr,
    set_learning_rate,
    split_parameters,
)


def small_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, bias=False),
        nn.BatchNorm2d(4),
        nn.Flatten(),
        nn.Linear(4 * 36, 3),
        nn.LayerNorm(3),
    )


def test_biases_and_norm_parameters_are_excluded():
    net = small_net()
    adapted, excluded = split_parameters(net)
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(adapted) == {id(net[0].weight), id(net[3].weight)}
    assert ids(excluded) == {
        id(net[1].weight),
        id(net[1].bias),
        id(net[3].bias),
        id(net[4].weight),
        id(net[4].bias),
    }


def test_lars_step_matches_the_update_rule_by_hand():
    """Two steps; weights: g + wd w scaled by eta ||w||/||g + wd w||; excluded: plain momentum."""
    net = small_net()
    lr, wd, mom, eta = 0.3, 0.01, 0.9, 0.02
    opt = LARS(param_groups(net, wd), lr=lr, momentum=mom, eta=eta)
    params = list(net.parameters())
    adapted = {id(p) for p in split_parameters(net)[0]}
    w = [p.detach().double().numpy().copy() for p in params]
    v = [np.zeros_like(x) for x in w]
    x = torch.randn(8, 1, 8, 8)
    for _ in range(2):
        opt.zero_grad()
        net(x).pow(2).sum().backward()
        for i, p in enumerate(params):
            g = p.grad.double().numpy()
            if id(p) in adapted:
                g = g + wd * w[i]
                g = eta * np.linalg.norm(w[i]) / np.linalg.norm(g) * g
            v[i] = mom * v[i] + g
            w[i] = w[i] - lr * v[i]
        opt.step()
        for i, p in enumerate(params):
            assert np.allclose(p.detach().double().numpy(), w[i], rtol=1e-5, atol=1e-7), i


def test_lars_keeps_a_zero_weight_update_finite():
    w = nn.Parameter(torch.zeros(3, 3))
    opt = LARS([{"params": [w], "weight_decay": 0.0, "lars_adapt": True}], lr=0.1, momentum=0.0)
    w.grad = torch.ones(3, 3)
    opt.step()
    assert torch.allclose(w, torch.full((3, 3), -0.1))  # trust ratio 1 when ||w|| = 0


def test_scheduled_lr_closed_forms():
    peak, total, warm = 2.0, 100, 10
    lrs = np.array([scheduled_lr(s, total, warm, peak) for s in range(total)])
    assert lrs[0] == pytest.approx(peak / warm)
    assert lrs[warm - 1] == pytest.approx(peak) and lrs[warm] == pytest.approx(peak)
    assert lrs[warm + 45] == pytest.approx(peak / 2)  # half-way through the cosine
    assert np.all(np.diff(lrs[warm:]) < 0) and np.all(np.diff(lrs[:warm]) > 0)
    # flow time: sum_{s<W} (s+1)/W + sum_{j<M} (1 + cos(pi j/M))/2 = (W+1)/2 + M/2 + 1/2
    assert lrs.sum() == pytest.approx(peak * (total + 2) / 2, rel=1e-12)


def test_ema_cosine_schedule_closed_forms():
    assert ema_momentum(0, 1000, 0.99) == pytest.approx(0.99)
    assert ema_momentum(500, 1000, 0.99) == pytest.approx(0.995)
    assert ema_momentum(1000, 1000, 0.99) == pytest.approx(1.0)
    assert ema_momentum(250, 1000, 0.996) == pytest.approx(
        1 - 0.004 * (1 + math.cos(math.pi / 4)) / 2
    )
    assert ema_momentum(123, 1000, 0.999, 0.999) == pytest.approx(0.999)  # MoCo: constant


def test_linear_scaling_and_fixed_lr_groups():
    assert scaled_lr(0.3, 4096) == pytest.approx(4.8)
    net = small_net()
    groups = param_groups(net, 1e-4, fixed_lr=net[3])
    opt = torch.optim.SGD(groups, lr=1.0)
    set_learning_rate(opt, 0.25, 1.0)
    fixed = [g for g in opt.param_groups if g["fixed_lr"]]
    assert {id(p) for g in fixed for p in g["params"]} == {id(net[3].weight), id(net[3].bias)}
    assert all(g["lr"] == (1.0 if g["fixed_lr"] else 0.25) for g in opt.param_groups)
    assert all(g["weight_decay"] == 0.0 for g in opt.param_groups if not g["lars_adapt"])
