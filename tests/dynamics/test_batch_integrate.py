"""The vectorised Runge-Kutta stepper against scipy's solve_ivp run column by column, closed-form
blow-up and convergence times, its torch back end against its numpy one, and the settings it
shares with the single-run integrator."""

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from dynamics.array_backend import backend
from dynamics.batch_integrate import integrate_batch
from dynamics.integrate import SaveAt, SolverSettings, integrate

#: damped, driven-free oscillators x'' = -w^2 x - c x' with one (w, c) per column
W = np.array([0.5, 1.0, 2.0, 3.0])
C = np.array([0.0, 0.1, 0.5, 1.0])
Y0 = np.array([[1.0, 0.3, -0.5, 2.0], [0.0, 1.0, 0.2, -1.0]])


ARGS = {"w": W, "c": C}
END = SaveAt.final(10.0)
SOLVER = SolverSettings("DOP853", 1e-8, 1e-10)


def oscillator(t, y, a):
    return (y[1], -(a["w"] ** 2) * y[0] - a["c"] * y[1])


@pytest.mark.parametrize("method", ["RK45", "DOP853"])
def test_each_column_takes_the_steps_of_its_own_solve_ivp_run(method):
    result = integrate_batch(oscillator, Y0, END, SolverSettings(method, 1e-8, 1e-10), ARGS)
    for j in range(W.size):
        one = {"w": W[j], "c": C[j]}
        sol = solve_ivp(lambda t, y, a=one: oscillator(t, y, a), (0, 10.0), Y0[:, j],
                        method=method, rtol=1e-8, atol=1e-10)  # fmt: skip
        assert result.n_steps[j] == sol.t.size - 1
        np.testing.assert_allclose(result.y[:, j], sol.y[:, -1], rtol=1e-12, atol=1e-14)
    assert np.all(result.t == 10.0) and not result.diverged.any()


def test_blowup_and_convergence_times_against_closed_forms():
    """y' = y^2 blows up at t = 1/y0; y' = -k y has rate k|y| below tol after ln(k y0/tol)/k
    (exact under log-linear interpolation)."""
    y0 = np.array([[0.5, 0.25, 1.0, 2.0]])
    k = np.array([0.0, 0.0, 0.3, 1.5])
    grows = k == 0

    def rhs(t, y, a):
        return (np.where(a["k"] == 0, y[0] ** 2, -a["k"] * y[0]),)

    tol = 1e-4
    solver = SolverSettings("DOP853", 1e-10, 1e-12, blowup=1e6)
    result = integrate_batch(rhs, y0, SaveAt.final(40.0), solver, {"k": k}, conv_tol=tol)
    assert list(result.diverged) == list(grows)
    blowup_time = 1 / y0[0, grows]
    assert np.all(result.t[grows] < blowup_time) and np.all(result.t[grows] > blowup_time - 1e-5)
    expected = np.log(k[~grows] * y0[0, ~grows] / tol) / k[~grows]
    np.testing.assert_allclose(result.t_converge[~grows], expected, rtol=1e-6)
    np.testing.assert_allclose(result.y[0, ~grows], y0[0, ~grows] * np.exp(-k[~grows] * 40.0),
                               rtol=1e-8, atol=1e-11)  # fmt: skip


def test_a_column_does_not_depend_on_its_batch():
    full = integrate_batch(oscillator, Y0, END, SOLVER, ARGS)
    parts = integrate_batch(oscillator, Y0, END, SOLVER, ARGS, batch=3)
    for name in ("y", "t", "t_converge", "n_steps"):
        np.testing.assert_array_equal(getattr(parts, name), getattr(full, name))


def test_torch_cpu_equals_numpy():
    pytest.importorskip("torch")
    ref = integrate_batch(oscillator, Y0, END, SOLVER, ARGS)
    got = integrate_batch(oscillator, Y0, END, SOLVER, ARGS, xp=backend("torch:cpu"))
    np.testing.assert_allclose(got.y, ref.y, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(got.n_steps, ref.n_steps)


def test_backend_names():
    with pytest.raises(ValueError, match="backend='cuda' is not allowed"):
        backend("cuda")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'torch:cuda' is not available"):
            backend("torch:cuda")
        assert backend("torch").name == "torch:cpu"
        return
    ref = integrate_batch(oscillator, Y0, END, SOLVER, ARGS)
    got = integrate_batch(oscillator, Y0, END, SOLVER, ARGS, xp=backend("torch:cuda"))
    np.testing.assert_allclose(got.y, ref.y, rtol=1e-10, atol=1e-12)
    assert math.isfinite(float(got.t.max()))


def test_the_single_and_the_batched_integrator_take_the_same_settings_and_agree():
    """One SolverSettings and one SaveAt drive both integrators: each column of the batch ends
    where the single-run integrator (scipy's DOP853 stepped alone) ends."""
    batch = integrate_batch(oscillator, Y0, END, SOLVER, ARGS)
    for j in range(W.size):
        one = {"w": W[j], "c": C[j]}
        alone = integrate(lambda t, y, a=one: np.array(oscillator(t, y, a)), Y0[:, j], END, SOLVER)
        assert alone.complete and alone.t[-1] == 10.0
        np.testing.assert_allclose(batch.y[:, j], alone.y[-1], rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="keeps the final state only"):
        integrate_batch(oscillator, Y0, SaveAt.uniform(10.0, 5), SOLVER, ARGS)
    with pytest.raises(ValueError, match="method='Radau' is not allowed"):
        integrate_batch(oscillator, Y0, END, SolverSettings("Radau"), ARGS)


def test_output_times_start_at_the_initial_state_and_increase():
    np.testing.assert_array_equal(SaveAt.uniform(2.0, 5).times, [0.0, 0.5, 1.0, 1.5, 2.0])
    with pytest.raises(ValueError, match="the first time is 0"):
        SaveAt(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="increasing times"):
        SaveAt(np.array([0.0, 2.0, 1.0]))
