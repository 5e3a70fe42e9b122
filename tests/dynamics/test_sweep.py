"""Sweeps: the vectorised per-mode sweep against point-by-point runs and the collapse threshold;
parallel and dask execution against serial; resuming an interrupted sweep; the command line."""

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from dynamics.grid import Grid, parse_axis
from dynamics.integrate import SaveAt, SolverSettings, integrate
from dynamics.models.eigenmodes import EigenmodeModel, EigenmodeParams, collapse_threshold
from dynamics.simulate import RunSettings
from dynamics.sweep import run_sweep
from symbolic.common.cli import UsageError
from symbolic.common.options import ParameterError

TIGHT = RunSettings(t_end=60.0, rtol=1e-11, atol=1e-13)
MODES = {"dim": 6, "p0": "-0.05:0.9", "tau0": 0.4}


def test_vectorised_sweep_equals_point_by_point_integration():
    """Every sampled grid point: final p_j, s_j, tau_j of the sweep == EigenmodeModel run alone."""
    grid = ["eta=0:0.3:7", "alpha_p=0.5,1,2,4", "beta=0.2,1", "simsiam=false,true", "c0=0,0.05"]
    ds = run_sweep("eigenmodes", grid, {**MODES, "s0": "parabola"}, TIGHT)
    flat = ds.stack(point=("eta", "alpha_p", "beta", "simsiam", "c0"))
    rng = np.random.default_rng(0)
    for i in rng.choice(flat.sizes["point"], 12, replace=False):
        at = flat.isel(point=i)
        point = {k: at[k].item() for k in ("eta", "alpha_p", "beta", "simsiam", "c0")}
        model = EigenmodeModel(EigenmodeParams(**MODES, **point))
        ref = integrate(
            model.rhs,
            model.initial_state(),
            SaveAt.uniform(TIGHT.t_end, 2),
            SolverSettings(rtol=1e-12, atol=1e-14),
        )
        final = model.layout.unpack(ref.y[-1])
        for name, var in (("p", "wp_eig_real"), ("s", "s"), ("tau", "tau")):
            np.testing.assert_allclose(at[var].values, final[name], atol=1e-8, err_msg=str(point))


@pytest.mark.parametrize("simsiam", [True, False])
def test_collapse_fraction_jumps_to_one_at_the_analytic_threshold(simsiam):
    """Tian: every mode collapses iff eta > 1/(4(1+sigma^2)); modes start on the parabola with
    p_j(0) up to 1.5 > p*_+, so below the threshold some survive."""
    sigma2 = 0.5
    step = 0.005
    ds = run_sweep(
        "eigenmodes",
        ["eta=0:0.3:61", "alpha_p=0.5,1,2,4"],
        {"dim": 8, "p0": "0.02:1.5", "simsiam": simsiam, "sigma2": sigma2},
        RunSettings(t_end=400.0, rtol=1e-8, atol=1e-10),
    )
    threshold = float(collapse_threshold(1.0, sigma2))
    frac = ds["collapse_fraction"]
    eta = ds["eta"].values
    full = (frac == 1).all("alpha_p").values
    first_full = eta[np.argmax(full)]
    assert np.all(full[eta >= first_full])  # collapse stays total beyond the jump
    assert abs(first_full - threshold) <= step
    assert np.all(frac.sel(eta=eta[eta < threshold - step]).values < 1)
    assert int(ds["diverged"].sum()) == 0


MATRIX = {"dim": 4, "input_dim": 5}
MATRIX_GRID = ["eta=0.02,0.3", "seed=0:1"]
MATRIX_SETTINGS = RunSettings(t_end=60.0, n_out=61)


@pytest.fixture(scope="module")
def serial_matrix_sweep():
    return run_sweep("linear_simsiam", MATRIX_GRID, MATRIX, MATRIX_SETTINGS)


def _same_results(a: xr.Dataset, b: xr.Dataset) -> None:
    for name in ("wp_eig_real", "wp_eig_imag", "mode_collapsed", "time_to_converge", "diverged"):
        np.testing.assert_allclose(a[name].values, b[name].values, rtol=1e-12, err_msg=name)


def test_matrix_sweep_has_one_dimension_per_parameter(serial_matrix_sweep):
    ds = serial_matrix_sweep
    assert ds["wp_eig_real"].dims == ("eta", "seed", "mode")
    assert ds["collapse_fraction"].dims == ("eta", "seed")
    assert list(ds["seed"].values) == [0, 1]
    # eta = 0.3 is above the threshold 1/6: every mode collapses; 0.02 keeps some
    assert np.all(ds["collapse_fraction"].sel(eta=0.3).values == 1)
    assert np.all(ds["collapse_fraction"].sel(eta=0.02).values < 1)


@pytest.mark.slow
def test_process_pool_equals_serial(serial_matrix_sweep):
    ds = run_sweep("linear_simsiam", MATRIX_GRID, MATRIX, MATRIX_SETTINGS, workers=2)
    _same_results(ds, serial_matrix_sweep)


@pytest.mark.slow
def test_dask_cluster_equals_serial(serial_matrix_sweep):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        ds = run_sweep(
            "linear_simsiam",
            MATRIX_GRID,
            MATRIX,
            MATRIX_SETTINGS,
            scheduler=cluster.scheduler_address,
        )
    _same_results(ds, serial_matrix_sweep)
    assert ds.attrs["scheduler"] == cluster.scheduler_address


def test_an_interrupted_sweep_resumes_from_its_parts(tmp_path, serial_matrix_sweep):
    out = tmp_path / "s.nc"
    computed = []

    def stop_after_two(unit):
        computed.append(unit.start)
        if len(computed) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep("linear_simsiam", MATRIX_GRID, MATRIX, MATRIX_SETTINGS, out=out,
                  on_unit=stop_after_two)  # fmt: skip
    assert not out.exists() and len(list((tmp_path / "s.nc.parts").glob("unit_*.npz"))) == 2
    with pytest.raises(UsageError, match="--resume"):
        run_sweep("linear_simsiam", MATRIX_GRID, MATRIX, MATRIX_SETTINGS, out=out)
    with pytest.raises(UsageError, match="different sweep"):
        run_sweep("linear_simsiam", ["eta=0.02,0.3", "seed=0:2"], MATRIX, MATRIX_SETTINGS,
                  out=out, resume=True)  # fmt: skip
    later = []
    ds = run_sweep("linear_simsiam", MATRIX_GRID, MATRIX, MATRIX_SETTINGS, out=out, resume=True,
                   on_unit=lambda u: later.append(u.start))  # fmt: skip
    assert sorted(later) == sorted(set(range(4)) - set(computed))  # only the missing units ran
    assert ds.attrs["resumed_points"] == 2
    _same_results(ds, serial_matrix_sweep)
    assert out.exists() and not (tmp_path / "s.nc.parts").exists()


def test_grid_specifications():
    name, values = parse_axis("eta=0:0.3:61", EigenmodeParams)
    assert name == "eta" and values.size == 61
    np.testing.assert_allclose(np.diff(values), 0.005)
    assert list(parse_axis("seed=0:4", EigenmodeParams)[1]) == [0, 1, 2, 3, 4]
    assert list(parse_axis("simsiam=true,false", EigenmodeParams)[1]) == [True, False]
    grid = Grid.parse(["eta=0,1", "alpha_p=1,2,3"], EigenmodeParams)
    assert grid.shape == (2, 3) and grid.point(4) == {"eta": 1.0, "alpha_p": 2.0}
    for bad, fragment in [
        ("eta", "NAME=a:b:n"),
        ("foo=1", "no such parameter"),
        ("dim=2,3", "cannot be swept"),
        ("eta=0:1", "a:b:n"),
        ("eta=1,1", "repeated"),
        ("seed=x", "type int"),
    ]:
        with pytest.raises(ParameterError, match=fragment):
            parse_axis(bad, EigenmodeParams)


def test_command_line_writes_the_dataset_and_rejects_bad_input(tmp_path):
    out = tmp_path / "s.nc"
    cmd = [sys.executable, "-m", "dynamics.sweep", "eigenmodes", "--grid", "eta=0:0.3:4",
           "--grid", "alpha_p=1,2", "--t-end", "50", "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "collapse fraction" in proc.stdout
    with xr.open_dataset(out) as ds:
        assert ds["collapse_fraction"].dims == ("eta", "alpha_p")
        assert ds.attrs["kind"] == "sweep" and ds.attrs["git_revision"]
        assert ds["time_to_converge"].attrs["long_name"]
    bad = subprocess.run(
        [*cmd[:4], "--grid", "eta=-1,0", "--out", str(tmp_path / "b.nc")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "eta=-1" in bad.stderr and len(bad.stderr.splitlines()) == 1
    assert not (tmp_path / "b.nc").exists()
