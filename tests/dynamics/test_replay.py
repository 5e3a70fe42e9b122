"""The replay of a run's optimiser and the flows that predict it (dynamics.replay).

The limits are checked against the discrete optimiser itself (``replay``: torch's heavy-ball
update written out in numpy) on a small random population problem:

- heavy-ball SGD as lr -> 0 at a fixed inertia time T_m = D lr / (1 - mu)^2 and a fixed flow
  time: the inertial flow's distance from the replay falls in proportion to the step (halves
  when 1 - mu halves), the first-order flow's stays put (the inertia it leaves out);
- plain SGD (mu = 0) as lr -> 0: the first-order flow's distance halves with lr.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dynamics import replay as rp
from reports.compare import relative_error

D = 2.0


def problem(lr: float, momentum: float, steps: int) -> rp.Problem:
    """A 4 x 5 linear BYOL problem with random X, X', EMA rate beta = 0.5 per unit flow time,
    eta = 0.1, seven measurements."""
    rng = np.random.default_rng(0)
    n, d = 5, 4
    a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    w0 = rng.uniform(-1, 1, (d, n)) / np.sqrt(n)
    dt = D * lr / (1 - momentum)
    meas = np.linspace(0, steps, 7).round().astype(int)
    return rp.Problem(
        x=a @ a.T / n + 0.5 * np.eye(n),
        xp=0.3 * b @ b.T / n,
        w0=w0,
        wp0=rng.uniform(-1, 1, (d, d)) / np.sqrt(d),
        wa0=w0,
        lr=np.full(steps, lr),
        lr_p=np.full(steps, lr),
        tau=np.full(steps, np.exp(-0.5 * dt)),
        momentum=momentum,
        weight_decay=0.1 * D,
        directions=D,
        stop_gradient=True,
        steps=meas,
        times=meas * dt,
    )


def test_the_inertial_flow_is_the_limit_of_heavy_ball_at_fixed_inertia_time():
    """T_m = D lr/(1 - mu)^2 = 0.3 and flow time 6 fixed, 1 - mu = 0.2, 0.1, 0.05, 0.025."""
    inertial, first = [], []
    for j in range(4):
        one_minus_mu = 0.2 / 2**j
        lr = 0.3 * one_minus_mu**2 / D
        p = problem(lr, 1 - one_minus_mu, round(6.0 * one_minus_mu / (D * lr)))
        exact = rp.replay(p)
        inertial.append(relative_error(rp.flow(p, inertial=True).wp, exact.wp))
        first.append(relative_error(rp.flow(p, inertial=False).wp, exact.wp))
    ratios = np.array(inertial[:-1]) / np.array(inertial[1:])
    assert np.all((ratios > 1.8) & (ratios < 2.2)), inertial  # first order in the step
    assert inertial[-1] < 1e-3
    assert min(first) > 0.03 and max(first) / min(first) < 1.1, first  # does not converge


def test_the_first_order_flow_is_the_limit_of_plain_sgd():
    errors = []
    for lr in (0.02, 0.01, 0.005):
        p = problem(lr, 0.0, round(6.0 / (D * lr)))
        errors.append(relative_error(rp.flow(p).wp, rp.replay(p).wp))
    assert errors[0] / errors[1] == pytest.approx(2, rel=0.1)
    assert errors[1] / errors[2] == pytest.approx(2, rel=0.1)


def test_an_ablation_changes_only_its_ingredient():
    p = problem(0.01, 0.0, 300)
    assert not np.any(p.without("augmentation").xp)
    assert np.array_equal(p.without("X' x2").xp, 2 * p.xp)
    assert p.without("weight decay").weight_decay == 0
    assert p.without("EMA lag").tau is None
    assert p.without("clock D").directions == 1
    assert np.array_equal(p.without("weight decay").x, p.x)
    with pytest.raises(ValueError, match="unknown ingredient"):
        p.without("gravity")


@pytest.mark.parametrize("momentum, stop_gradient", [(0.9, True), (0.0, False)])
def test_the_stacked_nulls_equal_each_null_integrated_alone(momentum, stop_gradient):
    """``ablations`` integrates the prediction and its nulls (each with its own X', wd, D, EMA)
    as one batched system; each must equal its own flow integrated alone (to the adaptive
    integration's tolerance: its step sizes follow the whole stacked state)."""
    p = dataclasses.replace(problem(0.01, momentum, 60), stop_gradient=stop_gradient)
    ingredients = list(p.applicable())  # all but the norm growth (scale-invariant losses')
    stacked = rp.ablations(p, ingredients, prediction=True)
    alone = {i: rp.flow(p.without(i)) for i in ingredients if i != "momentum"}
    alone["momentum"] = rp.flow(p, inertial=False)
    alone["prediction"] = rp.flow(p)
    assert set(stacked) == set(alone)
    for name, path in alone.items():
        np.testing.assert_allclose(stacked[name].w, path.w, rtol=0, atol=1e-8, err_msg=name)
        np.testing.assert_allclose(stacked[name].wp, path.wp, rtol=0, atol=1e-8, err_msg=name)
    # the nulls differ from the prediction (no member reads another's physics); without
    # momentum the momentum null is the prediction itself
    assert all(
        np.abs(stacked[i].w - alone["prediction"].w).max() > 1e-6
        for i in alone
        if i != "prediction" and (momentum > 0 or i != "momentum")
    )
