"""The collapse map (dynamics.collapse_map) against independent integrations.

- the closed-form threshold x^2 / (4 (x + x')) against a bisection in eta of the per-mode ODE,
  written here in the run's own variables (p_j, u_j = |W v_j|^2, tau_j), not Tian's rescaled ones;
- the map's per-mode integration (Tian's system in the time x_j t, through dynamics.sweep)
  against the same ODE integrated by scipy;
- commuting X, X': the map equals the full matrix flow of Lemma 1 (dynamics.models.linear_byol)
  started in the aligned form;
- non-commuting X, X' and one output row (a single mode): the pencil threshold equals a
  bisection of the full matrix flow, where the diagonal (first-order) estimate does not;
- DirectPred (W_p from the running feature correlation): the same closed-form threshold against
  a bisection of its own per-mode ODE (u_j, s_j), and the map's integration against the full
  matrix flow of dynamics.models.directpred for commuting X, X';
- the command line: provenance and the commutator ratio of the run's moments; bad grids; the
  cosine loss refused with its reason.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

from dynamics.collapse_directpred import DirectPredRule
from dynamics.collapse_map import (
    MapAxes,
    Problem,
    RunSetting,
    collapse_map,
    integrate_modes,
    main,
    parse_grid,
)
from dynamics.collapse_modes import Modes, at_most, closed_form_threshold, pencil_modes
from dynamics.models.linear_byol import (
    LinearBYOLParams,
    LinearSimSiamModel,
    LinearSimSiamParams,
    MeasuredInputs,
)
from symbolic.common.cli import run_main


def mode_ode(x, x_aug, eta, beta, alpha_p, fixed_tau=False):
    """Lemma 1 projected on a common eigenvector v of X, X': (p, u, tau)."""
    lam = x + x_aug

    def rhs(t, y):
        p, u, tau = y
        gain = tau * x - p * lam
        dtau = 0.0 if fixed_tau else beta * (1 - tau) - tau * (p * gain - eta)
        return [alpha_p * u * gain - eta * p, 2 * u * p * gain - 2 * eta * u, dtau]

    return rhs


def bisect(alive, lo, hi, steps=14):
    """The eta where ``alive(eta)`` turns False, for alive(lo) True and alive(hi) False."""
    assert alive(lo) and not alive(hi)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if alive(mid) else (lo, mid)
    return 0.5 * (lo + hi)


@pytest.mark.parametrize(("x", "x_aug"), [(1.0, 0.5), (0.3, 0.6), (2.0, 0.1)])
def test_closed_form_threshold_is_where_the_mode_ode_stops_surviving(x, x_aug):
    lam = x + x_aug
    vertex = x / (2 * lam)  # p between p*_- and p*_+ for every eta below the threshold

    def alive(eta):
        sol = solve_ivp(
            mode_ode(x, x_aug, eta, 0.0, 1.0, fixed_tau=True),
            (0, 4000 / x),
            [vertex, vertex**2, 1.0],
            method="LSODA",
            rtol=1e-10,
            atol=1e-14,
        )
        return sol.y[1, -1] > 0.5 * vertex**2

    expected = float(closed_form_threshold(x, x_aug))
    found = bisect(alive, 0.5 * expected, 1.5 * expected)
    assert found == pytest.approx(expected, rel=5e-3)


def test_the_maps_integration_is_the_mode_ode():
    x, x_aug = 0.7, 0.4
    modes = Modes(
        np.eye(1),
        np.array([x]),
        np.array([x_aug]),
        np.array([x / (2 * (x + x_aug))]),
        closed_form_threshold([x], [x_aug]),
        closed_form_threshold([x], [x_aug]),
    )
    start = {"u": np.array([0.05]), "p": np.array([0.1]), "tau": np.array([0.9])}
    rates = {
        "eta": np.array([0.02, 0.1, 0.3, 0.05]),
        "beta": np.array([0.5, 2.0, 0.5, 0.1]),
        "alpha_p": np.array([1.0, 2.0, 0.5, 1.0]),
        "horizon": np.array([30.0, 30.0, 30.0, 12.0]),
    }
    got = integrate_modes(modes, start, rates)[:, 0]
    for i in range(4):
        rhs = mode_ode(x, x_aug, rates["eta"][i], rates["beta"][i], rates["alpha_p"][i])
        sol = solve_ivp(
            rhs, (0, rates["horizon"][i]), [0.1, 0.05, 0.9], method="DOP853", rtol=1e-11, atol=1e-14
        )
        assert got[i] == pytest.approx(sol.y[1, -1], rel=1e-4)


def test_commuting_moments_give_the_full_matrix_flow():
    x, x_aug = np.array([2.0, 1.0, 0.5, 0.25]), np.array([0.2, 0.6, 0.1, 0.5])
    w0, wp0 = np.diag([0.6, 0.5, 0.4, 0.3]), np.diag([0.3, 0.2, 0.35, 0.1])
    wd, ema, lr, steps = 0.3, 0.95, 0.05, 300  # D = 2: eta 0.15, dt 0.1, horizon 30
    setting = RunSetting(MapAxes(wd, ema, lr, 1.0), 2 * lr, steps, 2)
    problem = Problem(np.diag(x), np.diag(x_aug), w0, wp0, w0, setting, {"from_run": "test"})
    ds = collapse_map(problem, parse_grid([f"weight_decay={wd}"])).isel(weight_decay=0)
    inputs = MeasuredInputs(x_corr=np.diag(x), aug_cov=np.diag(x_aug), w0=w0, wp0=wp0, wa0=w0)
    params = LinearBYOLParams(
        dim=4,
        input_dim=4,
        eta=wd / 2,
        beta=-np.log(ema) / (2 * lr),
        x_spectrum="measured",
        aug_spectrum="measured",
    )
    from dynamics.models.linear_byol import LinearBYOLModel

    model = LinearBYOLModel(params, inputs)
    sol = solve_ivp(
        model.rhs,
        (0, 2 * lr * steps),
        model.initial_state(),
        method="DOP853",
        rtol=1e-11,
        atol=1e-14,
    )
    w_end = model.layout.unpack(sol.y[:, -1])["W"]
    directions = ds["mode_direction"].values
    measured = np.sum((w_end @ directions.T) ** 2, axis=0)
    np.testing.assert_allclose(ds["mode_weight"].values, measured, rtol=1e-4, atol=1e-12)
    np.testing.assert_allclose(
        ds["threshold_eta"].values, np.sort(x**2 / (4 * (x + x_aug)))[::-1], rtol=1e-9
    )
    assert np.allclose(np.abs(directions), np.abs(np.round(directions)))  # the axes e_i
    assert 0 < int(ds["surviving_modes"]) < 4  # the grid point separates the modes


def test_one_mode_of_non_commuting_moments_has_the_pencil_threshold():
    rotation = np.linalg.qr(np.array([[1.0, 0.4, 0.2], [0.3, 1.0, -0.5], [0.1, 0.6, 1.0]]))[0]
    x_corr = np.diag([1.0, 0.6, 0.2])
    aug_cov = rotation @ np.diag([1.2, 0.05, 0.3]) @ rotation.T
    modes = pencil_modes(x_corr, aug_cov)
    top, diagonal = modes.threshold[0], modes.diagonal_threshold[0]
    assert abs(diagonal / top - 1) > 0.05  # the first-order estimate is off: the test can fail
    p, v = modes.p_critical[0], modes.directions[0]

    def alive(eta):
        params = LinearSimSiamParams(
            dim=1, input_dim=3, eta=eta, x_spectrum="measured", aug_spectrum="measured"
        )
        inputs = MeasuredInputs(
            x_corr=x_corr, aug_cov=aug_cov, w0=p * v[None, :], wp0=np.array([[p]])
        )
        model = LinearSimSiamModel(params, inputs)
        sol = solve_ivp(
            model.rhs, (0, 3000), model.initial_state(), method="LSODA", rtol=1e-10, atol=1e-14
        )
        w_end = model.layout.unpack(sol.y[:, -1])["W"]
        return float(np.sum(w_end**2)) > 0.5 * p**2

    assert bisect(alive, 0.5 * top, 1.5 * top) == pytest.approx(top, rel=5e-3)


def directpred_mode_ode(x, x_aug, eta, exponent, eps, rho):
    """DirectPred on a common eigenvector (tau = 1): u = |W v|^2 and the F_hat eigenvalue s,
    p = s^exponent + eps s (one mode: it is its own max)."""
    lam = x + x_aug

    def rhs(t, y):
        u, s = y
        p = max(s, 0.0) ** exponent + eps * s
        return [2 * u * (p * (x - p * lam) - eta), rho * (lam * u - s)]

    return rhs


@pytest.mark.parametrize(
    ("x", "x_aug", "exponent", "eps"),
    [(1.0, 0.5, 0.5, 0.0), (0.3, 0.6, 0.5, 0.1), (2.0, 0.1, 1.0, 0.0)],
)
def test_directpred_threshold_is_where_its_mode_ode_stops_surviving(x, x_aug, exponent, eps):
    """The closed form x^2 / (4 (x + x')) (independent of the rule) against a bisection in eta
    of DirectPred's own per-mode ODE, started at the vertex p = x / (2 lam) on F_hat = E[f f^T]."""
    lam = x + x_aug
    vertex = x / (2 * lam)
    s0 = brentq(lambda s: s**exponent + eps * s - vertex, 0.0, 1e3)
    u0 = s0 / lam

    def alive(eta):
        sol = solve_ivp(
            directpred_mode_ode(x, x_aug, eta, exponent, eps, 50.0), (0, 4000 / x), [u0, s0],
            method="LSODA", rtol=1e-10, atol=1e-14,
        )  # fmt: skip
        return sol.y[0, -1] > 0.5 * u0

    top = float(closed_form_threshold([x], [x_aug])[0])
    assert bisect(alive, 0.5 * top, 1.5 * top) == pytest.approx(top, rel=5e-3)


def test_directpred_map_is_the_full_matrix_flow_for_commuting_moments():
    """The map under --loss directpred against dynamics.models.directpred's matrix flow (W, W_a,
    F_hat) from diagonal W(0): the same u_j = |W v_j|^2 at the horizon, mode by mode."""
    from dynamics.models.directpred import DirectPredModel, DirectPredParams

    x, x_aug = np.array([2.0, 1.0, 0.5, 0.25]), np.array([0.2, 0.6, 0.1, 0.5])
    w0 = np.diag([0.6, 0.5, 0.4, 0.3])
    wd, ema, lr, steps = 0.3, 0.95, 0.05, 300  # D = 2: eta 0.15, dt 0.1, horizon 30
    rule = DirectPredRule(exponent=0.5, eps=0.1, rho=4.0)
    setting = RunSetting(MapAxes(wd, ema, lr, 1.0), 2 * lr, steps, 2)
    problem = Problem(np.diag(x), np.diag(x_aug), w0, np.eye(4), w0, setting, {"from_run": "t"})
    ds = collapse_map(problem, parse_grid([f"weight_decay={wd}"]), rule).isel(weight_decay=0)
    params = DirectPredParams(
        dim=4, input_dim=4, eta=wd / 2, beta=-np.log(ema) / (2 * lr), sigma2=1.0,
        x_spectrum=",".join(map(str, x)), aug_spectrum=",".join(map(str, x_aug)),
        rho_rate=rule.rho, eps=rule.eps, exponent=rule.exponent,
    )  # fmt: skip
    model = DirectPredModel(params)
    sol = solve_ivp(
        model.rhs, (0, 2 * lr * steps), model.initial_state(w0), method="DOP853",
        rtol=1e-11, atol=1e-14,
    )  # fmt: skip
    w_end = model.layout.unpack(sol.y[:, -1])["W"]
    measured = np.sum((w_end @ ds["mode_direction"].values.T) ** 2, axis=0)
    np.testing.assert_allclose(ds["mode_weight"].values, measured, rtol=1e-4, atol=1e-10)
    assert measured.max() > 1e-2 and measured.min() < 1e-4  # some modes live, some collapse
    np.testing.assert_allclose(
        ds["threshold_eta"].values, np.sort(x**2 / (4 * (x + x_aug)))[::-1], rtol=1e-9
    )


def test_under_the_cosine_loss_weight_decay_collapses_no_mode_the_eq1_map_loses():
    """Bao 2025 (docs/theory.md (D16)): the cosine loss is scale-free, so weight decay shrinks the
    weights without collapsing a normalised mode, and every mode with p_j(0) > 0 ends at the same
    normalised p. At 3x the largest eq. 1 threshold the eq. 1 map keeps no mode; the cosine map,
    over a long horizon, keeps all four (no threshold variables: there are none)."""
    x, x_aug = np.array([2.0, 1.0, 0.5, 0.25]), np.array([0.2, 0.6, 0.1, 0.5])
    w0, wp0 = np.diag([0.6, 0.5, 0.4, 0.3]), np.diag([0.3, 0.2, 0.35, 0.1])
    wd = 3 * 2 * float(np.max(x**2 / (4 * (x + x_aug))))  # D = 2
    setting = RunSetting(MapAxes(wd, 0.95, 0.05, 1.0), 0.1, 3000, 2)
    problem = Problem(np.diag(x), np.diag(x_aug), w0, wp0, w0, setting, {"from_run": "t"})
    grid = parse_grid([f"weight_decay={wd}"])
    assert int(collapse_map(problem, grid)["surviving_modes"].values[0]) == 0
    cos = collapse_map(problem, grid, cosine=True)
    assert int(cos["surviving_modes"].values[0]) == 4
    assert "threshold_eta" not in cos and cos.attrs["map_loss"] == "cosine"


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
    """A tiny linear-encoder BYOL run on synthetic Fashion-MNIST files (a few seconds)."""
    from tests.empirical.conftest import _fashion_arrays, train, write_idx

    root = tmp_path_factory.mktemp("collapse")
    (root / "fashion").mkdir()
    for name, array in _fashion_arrays(1000, 300).items():
        write_idx(root / "fashion" / f"{name}.gz", array)
    out = root / "run"
    options = [
        "--backbone",
        "linear",
        "--input-dim",
        "4",
        "--width",
        "4",
        "--projector",
        "none",
        "--predictor",
        "linear",
        "--loss",
        "linear_byol",
        "--optimizer",
        "sgd",
        "--momentum",
        "0",
        "--lr-schedule",
        "constant",
        "--ema-base",
        "0.99",
        "--ema-final",
        "0.99",
        "--no-probes",
        "--train-subset",
        "256",
        "--moments-images",
        "256",
        "--batch-size",
        "64",
        "--lr",
        "0.2",
        "--weight-decay",
        "0.1",
        "--measure-every",
        "4",
    ]
    assert train("byol", out, root / "fashion", *options, epochs=1) == 0
    return out


def test_the_command_writes_the_map_with_its_provenance(linear_run, tmp_path):
    out = tmp_path / "map.nc"
    argv = [
        "--from-run",
        str(linear_run),
        "--grid",
        "weight_decay=0:2:3",
        "--grid",
        "ema=0.9,0.99",
        "--out",
        str(out),
        "--plot",
        "--quiet",
    ]
    assert run_main(main, argv) == 0
    with xr.open_dataset(out) as ds, xr.open_dataset(linear_run / "moments.nc") as m:
        assert ds["surviving_modes"].shape == (3, 2)
        assert ds.attrs["from_run"] == str(linear_run) and ds.attrs["git_revision"]
        x, a = m["x_corr"].values, m["aug_cov"].values
        expected = np.linalg.norm(x @ a - a @ x) / (2 * np.linalg.norm(x @ a))
        assert ds.attrs["commutator_ratio"] == pytest.approx(expected, rel=1e-9)
        assert float(ds.attrs["run_weight_decay"]) == 0.1
        assert ds["threshold_weight_decay"].dims == ("mode",)
        assert ds.attrs["exact"] and ds.attrs["approximate"]
    assert out.with_suffix(".png").is_file()


@pytest.mark.parametrize(
    ("grid", "named"),
    [
        ("weight_decay=-1:1:3", "-1.0"),
        ("ema=0.5:1.5:3", "1.5"),
        ("lr=0,0.1", "0.0"),
        ("temperature=1,2", "temperature"),
        ("weight_decay=1:0", "weight_decay"),
        ("weight_decay=0.1,0.1", "repeated"),
        ("loss=eq1,cosine", "cosine"),
    ],
)
def test_a_bad_grid_exits_2_with_one_line_and_writes_nothing(grid, named, tmp_path, capsys):
    out = tmp_path / "map.nc"
    argv = ["--from-run", str(tmp_path / "no_run"), "--grid", grid, "--out", str(out)]
    assert run_main(main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0]
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--loss", "directpred", "--grid", "alpha_p=1,2"], "alpha_p"),
        (["--loss", "directpred", "--eps", "-1"], "--eps -1.0"),
    ],
)
def test_a_loss_the_map_cannot_draw_exits_2_with_its_reason(extra, named, tmp_path, capsys):
    out = tmp_path / "map.nc"
    argv = ["--from-run", str(tmp_path), "--grid", "weight_decay=0,1", "--out", str(out), *extra]
    assert run_main(main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0]
    assert not out.exists()


def test_a_missing_run_exits_2(tmp_path, capsys):
    argv = [
        "--from-run",
        str(tmp_path / "none"),
        "--grid",
        "weight_decay=0,1",
        "--out",
        str(tmp_path / "m.nc"),
    ]
    assert run_main(main, argv) == 2
    assert "measurements.nc" in capsys.readouterr().err


def test_no_more_modes_alive_than_rows_of_w():
    alive = np.array([[True, True, True, False], [False, True, False, False]])
    strength = np.array([[3.0, 1.0, 2.0, 5.0], [0.0, 1.0, 0.0, 0.0]])
    kept = at_most(alive, strength, 2)
    assert kept.tolist() == [[True, False, True, False], [False, True, False, False]]
