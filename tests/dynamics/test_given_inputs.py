"""Inputs measured by any training loop (dynamics.inputs): X, X', initial weights, schedules, from
Python and from files; against Tian et al.'s Lemma 1 integrated here by scipy, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.integrate import solve_ivp

from dynamics.inputs import write_init
from dynamics.schedules import PiecewiseConstant
from dynamics.simulate import RunSettings, main, simulate
from symbolic.common.cli import run_main
from symbolic.common.options import ParameterError

D, N = 3, 5
ETA, ALPHA_P = 0.05, 1.0


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(N, N))
    b = rng.normal(size=(N, N))
    return {
        "x_corr": a @ a.T / N + 0.2 * np.eye(N),
        "aug_cov": 0.3 * b @ b.T / N,
        "w0": rng.normal(size=(D, N)) / np.sqrt(N),
        "wp0": rng.normal(size=(D, D)) / np.sqrt(D),
        "wa0": rng.normal(size=(D, N)) / np.sqrt(N),
    }


def lemma1(given, t_eval, beta):
    """W, W_p, W_a by solve_ivp of Tian et al. Lemma 1 (stop-gradient, eta_p = eta);
    ``beta(t)`` the EMA rate."""
    x, xp = given["x_corr"], given["aug_cov"]

    def rhs(t, y):
        w = y[: D * N].reshape(D, N)
        wp = y[D * N : D * N + D * D].reshape(D, D)
        wa = y[D * N + D * D :].reshape(D, N)
        r = -wp @ w @ (x + xp) + wa @ x
        d_wp = ALPHA_P * r @ w.T - ETA * wp
        d_w = wp.T @ r - ETA * w
        return np.concatenate([d_w.ravel(), d_wp.ravel(), (beta(t) * (w - wa)).ravel()])

    y0 = np.concatenate([given["w0"].ravel(), given["wp0"].ravel(), given["wa0"].ravel()])
    sol = solve_ivp(rhs, (0, t_eval[-1]), y0, t_eval=t_eval, rtol=1e-11, atol=1e-13, max_step=0.05)
    return sol.y[D * N : D * N + D * D].T.reshape(-1, D, D)


def test_given_inputs_follow_lemma_1():
    given = inputs()
    settings = RunSettings(t_end=3.0, n_out=7)
    ds = simulate("linear_byol", settings, eta=ETA, alpha_p=ALPHA_P, beta=0.7, **given)
    expected = lemma1(given, ds["time"].values, lambda t: 0.7)
    np.testing.assert_allclose(ds["wp"].values, expected, rtol=1e-6, atol=1e-8)
    assert ds.attrs["param_dim"] == D and ds.attrs["param_input_dim"] == N
    assert ds.attrs["param_x_spectrum"] == "measured"
    assert "x_corr: array sha256" in ds.attrs["given_inputs"]


def test_a_beta_schedule_is_followed():
    given = inputs(1)
    edges, values = np.array([0.0, 1.0, 2.5]), np.array([0.2, 2.0])
    settings = RunSettings(t_end=3.0, n_out=7)
    ds = simulate("linear_byol", settings, eta=ETA, schedules={"beta": (edges, values)}, **given)
    beta = PiecewiseConstant(edges, values)
    expected = lemma1(given, ds["time"].values, beta)
    np.testing.assert_allclose(ds["wp"].values, expected, rtol=1e-6, atol=1e-8)
    constant = lemma1(given, ds["time"].values, lambda t: 0.2)
    assert np.abs(constant[-1] - expected[-1]).max() > 1e-3  # the schedule mattered


def test_files_give_the_same_run_as_the_arrays(tmp_path, capsys):
    given = inputs(2)
    moments = tmp_path / "moments.nc"
    xr.Dataset({k: (("input", "input_col"), given[k]) for k in ("x_corr", "aug_cov")}).to_netcdf(
        moments
    )
    init = write_init(tmp_path / "init.nc", given["w0"], given["wp0"], given["wa0"])
    out = tmp_path / "out.nc"
    argv = ["linear_byol", "--moments", str(moments), "--init", str(init), "--eta", str(ETA)]
    assert (
        run_main(main, [*argv, "--t-end", "2", "--n-out", "5", "--out", str(out), "--quiet"]) == 0
    )
    direct = simulate("linear_byol", RunSettings(t_end=2.0, n_out=5), eta=ETA, **given)
    with xr.open_dataset(out) as ds:
        np.testing.assert_allclose(ds["wp"].values, direct["wp"].values, rtol=1e-9, atol=1e-12)
        assert str(moments) in ds.attrs["given_inputs"] and "sha256" in ds.attrs["given_inputs"]
        config = ds.attrs["config_toml"]
    rerun = tmp_path / "rerun.nc"
    (tmp_path / "c.toml").write_text(config)
    assert run_main(main, ["linear_byol", "--config", str(tmp_path / "c.toml"), "--out",
                           str(rerun), "--quiet"]) == 0  # fmt: skip
    with xr.open_dataset(rerun) as ds:
        np.testing.assert_allclose(ds["wp"].values, direct["wp"].values, rtol=1e-9, atol=1e-12)


def bad_files(tmp_path):
    given = inputs()
    good = {k: (("input", "input_col"), given[k]) for k in ("x_corr", "aug_cov")}
    cases = {
        "garbage": (b"not a netCDF file", "not a readable netCDF file"),
        "missing": ({"x_corr": good["x_corr"]}, "needs the variables 'x_corr'"),
        "nan": ({**good, "aug_cov": (("input", "input_col"), np.full((N, N), np.nan))}, "NaN"),
        "asymmetric": (
            {**good, "x_corr": (("input", "input_col"), np.triu(np.ones((N, N))))},
            "not symmetric",
        ),
        "shapes": (
            {**good, "aug_cov": (("input", "input_col"), np.eye(N + 1)[: N + 1, : N + 1])},
            "variable 'aug_cov' has shape",
        ),
    }
    paths = {}
    for name, (content, fragment) in cases.items():
        path = tmp_path / f"{name}.nc"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            ds = xr.Dataset({k: v for k, v in content.items() if k != "aug_cov"})
            if "aug_cov" in content:
                dims, values = content["aug_cov"]
                ds["aug_cov"] = (("a", "b"), values)
            ds.to_netcdf(path)
        paths[name] = (path, fragment)
    return paths


@pytest.mark.parametrize("case", ["garbage", "missing", "nan", "asymmetric", "shapes"])
def test_a_bad_moments_file_exits_2_with_one_line_and_no_file(tmp_path, capsys, case):
    path, fragment = bad_files(tmp_path)[case]
    out = tmp_path / "out.nc"
    assert run_main(main, ["linear_byol", "--moments", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err and "--moments" in err, err
    assert not out.exists()


def test_init_that_disagrees_with_the_moments_is_refused(tmp_path, capsys):
    given = inputs()
    moments = tmp_path / "m.nc"
    xr.Dataset({k: (("input", "input_col"), given[k]) for k in ("x_corr", "aug_cov")}).to_netcdf(
        moments
    )
    init = write_init(tmp_path / "i.nc", w0=np.ones((D, N + 2)))
    argv = ["linear_byol", "--moments", str(moments), "--init", str(init), "--out", "x.nc"]
    assert run_main(main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert f"--init {init}: variable 'w' (columns) gives input_dim 7" in err
    assert f"--moments {moments}: variable 'x_corr' gives 5" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"x_corr": np.eye(N)}, "x_corr and aug_cov go together"),
        ({"w0": np.ones(4)}, "w0 has shape (4,)"),
        ({"wp0": np.ones((D, D + 1))}, "wp0 has shape (3, 4): expected d x d"),
        ({"wp0": np.eye(D), "w0": np.ones((D + 1, N))}, "gives dim"),
        ({"w0": np.ones((D, N)), "input_dim": N + 1}, "input_dim"),
        ({"schedules": {"beta": ([0.0, 1.0], [0.0])}}, "values be > 0"),
        ({"schedules": {"gamma": ([0.0, 1.0], [1.0])}}, "gamma is not allowed"),
        ({"schedules": {"beta": ([0.0, 1.0], [1.0])}, "beta": 0.5}, "beta is given twice"),
    ],
)
def test_bad_arrays_are_named(kwargs, fragment):
    with pytest.raises(ParameterError) as info:
        simulate("linear_byol", RunSettings(t_end=1.0, n_out=3), **kwargs)
    assert fragment in str(info.value)


def test_scenarios_without_measured_inputs_refuse_them():
    with pytest.raises(ParameterError, match="only the scenarios linear_byol, linear_simsiam"):
        simulate("eigenmodes", wp0=np.eye(2))
    with pytest.raises(ParameterError, match="wa0 is not allowed for linear_simsiam"):
        simulate("linear_simsiam", wa0=np.eye(2))


def test_from_run_with_measured_inputs_is_refused(tmp_path, capsys):
    argv = ["linear_byol", "--from-run", str(tmp_path), "--init", "i.nc", "--out", "x.nc"]
    assert run_main(main, argv) == 2
    assert "leave out --moments and --init" in capsys.readouterr().err
    with pytest.raises(ParameterError, match="either from_run or the measured inputs"):
        simulate("linear_byol", from_run=tmp_path, wp0=np.eye(2))
