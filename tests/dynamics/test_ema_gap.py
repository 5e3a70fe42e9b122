"""The EMA target's lag behind the online weights against its closed forms."""

import numpy as np
import pytest

from dynamics.integrate import SaveAt, integrate
from dynamics.models.ema_gap import EmaGapModel, EmaGapParams


def _run(**kw):
    model = EmaGapModel(EmaGapParams(**kw))
    traj = integrate(model.rhs, model.initial_state(), SaveAt.uniform(40.0, 201))
    return model, traj.t, traj.y - model.theta(traj.t)


def test_gap_reaches_minus_theta_dot_over_beta_for_linear_theta():
    model, t, gap = _run(dim=3, beta=0.4, speed=1.5, seed=2)
    velocity = 1.5 * model.direction  # theta' of the prescribed linear trajectory
    np.testing.assert_allclose(gap[-1], -velocity / 0.4, rtol=1e-6)


def test_gap_follows_the_transient_closed_form():
    """delta(t) = -(v/beta)(1 - e^{-beta t}) for a linear theta with xi(0) = theta(0)."""
    model, t, gap = _run(dim=2, beta=0.7, speed=0.8)
    expected = -(0.8 / 0.7) * (1 - np.exp(-0.7 * t))[:, None] * model.direction
    np.testing.assert_allclose(gap, expected, atol=1e-9)


def test_sine_trajectory_gap_amplitude():
    """For theta = a sin(w t) the steady gap oscillates with amplitude a w / sqrt(beta^2 + w^2)."""
    model, t, gap = _run(dim=1, beta=0.5, trajectory="sine", speed=2.0, omega=1.3)
    late = t > 25
    amplitude = np.max(np.abs(gap[late, 0]))
    assert amplitude == pytest.approx(2.0 * 1.3 / np.hypot(0.5, 1.3), rel=2e-3)
