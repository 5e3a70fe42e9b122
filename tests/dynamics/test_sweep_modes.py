"""The per-mode sweep: its reduced right-hand side against the model's, its initial states and
time to converge against point-by-point runs, resuming with any chunking, the torch back end
against numpy, and the one-line errors of its options."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from dynamics.integrate import SaveAt, SolverSettings, integrate
from dynamics.models.eigenmodes import (
    EigenmodeModel,
    EigenmodeParams,
    mode_rhs,
    mode_rhs_on_invariant,
)
from dynamics.simulate import RunSettings
from dynamics.sweep import main, run_sweep
from dynamics.sweep.matrix import convergence_time
from symbolic.common.cli import UsageError, run_main

SETTINGS = RunSettings(t_end=60.0, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("simsiam", [False, True])
def test_reduced_rhs_equals_the_model_rhs_on_the_invariant(simsiam):
    """alpha_p s = p^2 + alpha_p c e^{-2 eta t} put into eqs. 11 and 13 (mode_rhs, 3 states)."""
    rng = np.random.default_rng(1)
    p, tau, c = rng.normal(size=50), rng.uniform(0.5, 1.5, 50), rng.uniform(0, 0.2, 50)
    eta, alpha_p, beta, sigma2, t = 0.07, 1.7, 0.4, 0.3, 2.5
    decay = alpha_p * c * np.exp(-2 * eta * t)
    s = (p**2 + decay) / alpha_p
    dp, _, dtau = mode_rhs(p, s, 1.0 if simsiam else tau, eta, alpha_p, beta, sigma2, simsiam)
    got_dp, got_dtau = mode_rhs_on_invariant(p, 1.0 if simsiam else tau, decay, eta, 1 + sigma2,
                                             beta, simsiam)  # fmt: skip
    np.testing.assert_allclose(got_dp, dp, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(got_dtau, dtau, rtol=1e-13, atol=1e-15)


def test_listed_initial_states_equal_point_runs():
    """s0 given per mode (c_j != 0, different per mode) and swept tau0, against EigenmodeModel
    integrated alone at tighter tolerances."""
    base = {"dim": 4, "p0": "0.1:0.8", "s0": "0.3,0.05,0.2,0.5"}
    ds = run_sweep("eigenmodes", ["tau0=0.6,1.2", "eta=0.02,0.2", "alpha_p=0.5,3"], base, SETTINGS)
    flat = ds.stack(point=("tau0", "eta", "alpha_p"))
    for i in range(flat.sizes["point"]):
        at = flat.isel(point=i)
        point = {k: float(at[k]) for k in ("tau0", "eta", "alpha_p")}
        model = EigenmodeModel(EigenmodeParams(**base, **point))
        ref = integrate(
            model.rhs,
            model.initial_state(),
            SaveAt.uniform(SETTINGS.t_end, 2),
            SolverSettings(rtol=1e-12, atol=1e-14),
        )
        final = model.layout.unpack(ref.y[-1])
        for name, var in (("p", "wp_eig_real"), ("s", "s"), ("tau", "tau")):
            np.testing.assert_allclose(at[var].values, final[name], atol=1e-8,
                                       err_msg=f"{name} at {point}")  # fmt: skip


def test_time_to_converge_equals_a_dense_reference():
    """The last time max|dy/dt| over (p_j, s_j, tau_j) of all modes crosses conv_tol, from a
    solve_ivp run of the point alone sampled every 0.01."""
    ds = run_sweep("eigenmodes", ["eta=0.1,0.3", "alpha_p=0.5,2"], {"beta": 1.0},
                   RunSettings(t_end=150.0, rtol=1e-8, atol=1e-10))  # fmt: skip
    assert ds["converged"].all()
    for eta, alpha_p in ((0.1, 0.5), (0.3, 2.0)):
        model = EigenmodeModel(EigenmodeParams(eta=eta, alpha_p=alpha_p, beta=1.0))
        t = np.linspace(0.0, 150.0, 15001)
        sol = solve_ivp(model.rhs, (0.0, 150.0), model.initial_state(), method="DOP853",
                        rtol=1e-11, atol=1e-13, t_eval=t)  # fmt: skip
        rate = [np.max(np.abs(model.rhs(ti, y))) for ti, y in zip(sol.t, sol.y.T, strict=True)]
        expected = convergence_time(sol.t, np.array(rate), 1e-6)
        got = float(ds["time_to_converge"].sel(eta=eta, alpha_p=alpha_p))
        assert abs(got - expected) < 0.01, (eta, alpha_p, got, expected)


def test_an_interrupted_sweep_resumed_with_another_chunking_gives_the_same_dataset(tmp_path):
    grid = ["eta=0:0.3:9", "alpha_p=0.5,1,4", "simsiam=false,true"]  # 54 points
    params = {"dim": 5, "c0": 0.02}
    whole = run_sweep("eigenmodes", grid, params, SETTINGS, chunk=11)
    out = tmp_path / "s.nc"
    seen = []

    def stop_after_two(unit):
        seen.append(unit)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep("eigenmodes", grid, params, SETTINGS, out=out, chunk=7, on_unit=stop_after_two)
    later = []
    resumed = run_sweep("eigenmodes", grid, params, SETTINGS, out=out, resume=True, chunk=4,
                        on_unit=later.append)  # fmt: skip
    assert resumed.attrs["resumed_points"] == 14 and all(u.size <= 4 for u in later)
    assert sum(u.size for u in later) == 54 - 14
    assert set(resumed.data_vars) == set(whole.data_vars)
    for name in whole.data_vars:
        np.testing.assert_array_equal(resumed[name].values, whole[name].values, err_msg=name)


def test_torch_backend_equals_numpy():
    pytest.importorskip("torch")
    grid, params = ["eta=0:0.3:5", "alpha_p=0.5,2", "c0=0,0.05"], {"dim": 4}
    ref = run_sweep("eigenmodes", grid, params, SETTINGS)
    got = run_sweep("eigenmodes", grid, params, SETTINGS, backend="torch:cpu")
    assert got.attrs["backend"] == "torch:cpu"
    for name in ("wp_eig_real", "s", "tau"):
        np.testing.assert_allclose(got[name].values, ref[name].values, rtol=1e-9, atol=1e-11)
    # a last crossing of conv_tol interpolated between steps that differ in the last bits
    np.testing.assert_allclose(got["time_to_converge"], ref["time_to_converge"], rtol=1e-5)
    for name in ("mode_collapsed", "converged", "diverged"):
        np.testing.assert_array_equal(got[name].values, ref[name].values)


@pytest.mark.parametrize(
    "options,fragment",
    [
        (["eigenmodes", "--backend", "cuda"], "backend='cuda' is not allowed"),
        (["eigenmodes", "--method", "Radau"], "method='Radau' is not allowed"),
        (["eigenmodes", "--chunk", "0"], "chunk=0 is not allowed"),
    ],
)
def test_bad_options_are_one_line_errors(options, fragment, tmp_path, capsys):
    argv = [*options, "--grid", "eta=0,0.1", "--out", str(tmp_path / "s.nc"), "--quiet"]
    assert run_main(main, argv, prog="sweep") == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.splitlines()) == 1
    assert not (tmp_path / "s.nc").exists()


def test_torch_backend_of_a_point_by_point_scenario_is_refused():
    with pytest.raises(UsageError, match="backend='torch' is not allowed for linear_byol"):
        run_sweep("linear_byol", ["eta=0,0.1"], {"dim": 2}, backend="torch")


def test_cuda_backend_without_cuda_is_a_one_line_error(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is present: the back end is usable")
    argv = ["eigenmodes", "--backend", "torch:cuda", "--grid", "eta=0,0.1", "--out",
            str(tmp_path / "s.nc")]  # fmt: skip
    assert run_main(main, argv, prog="sweep") == 2
    err = capsys.readouterr().err
    assert "backend='torch:cuda' is not available" in err and len(err.splitlines()) == 1
