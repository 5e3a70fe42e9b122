"""The command line: results, provenance, errors (exit 2), divergence (exit 1), partial files."""

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from dynamics.integrate import SaveAt, integrate
from dynamics.models.eigenmodes import fixed_points
from dynamics.simulate import main, simulate
from reports.figures import registered
from symbolic.common.cli import RunFailure, run_main


def run(argv):
    return run_main(main, argv)


def test_default_linear_byol_run_end_to_end(tmp_path):
    """The README's main job, as a user runs it."""
    out = tmp_path / "byol.nc"
    proc = subprocess.run(
        [sys.executable, "-m", "dynamics.simulate", "linear_byol", "--out", str(out), "--plot"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "collapsed modes:" in proc.stdout and "p*_+" in proc.stdout
    assert (tmp_path / "byol.png").stat().st_size > 10_000
    assert (tmp_path / "byol.pdf").read_bytes().startswith(b"%PDF")
    with xr.open_dataset(out) as ds:
        for name in ("wp_eig_real", "wp_eig_imag", "alignment_cos", "corr_eig"):
            assert ds[name].dims == ("time", "mode")
        for name in ("wp_asymmetry", "conservation_residual", "loss", "ema_gap"):
            assert ds[name].dims == ("time",)
        assert ds.attrs["param_eta"] == 0.04 and ds.attrs["seed"] == 0
        assert ds.attrs["solver"] == "DOP853" and ds.attrs["git_revision"]
        assert ds.attrs["package_version"] and ds.attrs["partial"] == 0
        plus, minus = fixed_points(0.04, 1.0, 0.5)
        assert ds.attrs["p_star_plus"] == pytest.approx(plus)
        assert ds["wp_eig_real"].attrs["long_name"]


def test_list_names_every_scenario(capsys):
    assert run(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("linear_byol", "linear_simsiam", "free_features", "eigenmodes", "ema_gap"):
        assert name in out


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["linear_byol", "--dim", "0"], "dim=0"),
        (["linear_byol", "--dim", "-3"], "dim=-3"),
        (["linear_byol", "--eta", "-0.1"], "eta=-0.1"),
        (["linear_byol", "--beta", "-1"], "beta=-1"),
        (["linear_byol", "--eta", "nan"], "eta=nan"),
        (["linear_byol", "--t-end", "inf"], "t_end=inf"),
        (["linear_byol", "--method", "Euler"], "method='Euler'"),
        (["linear_byol", "--x-spectrum", "1,2"], "x_spectrum='1,2'"),
        (["no_such_model"], "no_such_model"),
        (["linear_byol", "--no-such-option", "1"], "--no-such-option"),
        (["linear_simsiam", "--beta", "0.5"], "--beta"),
        (["linear_byol", "--dim", "two"], "two"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_file(tmp_path, capsys, argv, fragment):
    out = tmp_path / "x.nc"
    with pytest.raises(SystemExit) as exc:  # argparse errors exit directly
        code = run([*argv, "--out", str(out)])
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err
    assert list(tmp_path.iterdir()) == []


def test_divergence_exits_1_names_time_and_variable_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "x.nc"
    # theta(t) = theta0 + v t with |v| = 1e6: the target xi passes |xi| = 1e6 near t = 1
    assert run(["ema_gap", "--speed", "1e6", "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "diverged at t=" in err and "xi[" in err and "no file written" in err
    t_fail = float(err.split("diverged at t=")[1].split(":")[0])
    assert 0.5 < t_fail < 5
    assert list(tmp_path.iterdir()) == []


def test_keep_partial_writes_a_file_marked_partial(tmp_path, capsys):
    out = tmp_path / "x.nc"
    argv = ["ema_gap", "--speed", "1e6", "--out", str(out), "--quiet", "--keep-partial"]
    assert run(argv) == 1
    with xr.open_dataset(out) as ds:
        assert ds.attrs["partial"] == 1 and "diverged" in ds.attrs["status"]
        assert 0 < float(ds["time"][-1]) < 5
        assert np.all(np.isfinite(ds["delta"].values))
    assert [p.name for p in tmp_path.iterdir()] == ["x.nc"]  # no temporary file left


def test_python_api_raises_on_divergence():
    from dynamics.simulate import RunSettings

    with pytest.raises(RunFailure, match="diverged"):
        simulate("ema_gap", RunSettings(t_end=20.0, blowup=100.0), speed=1e3)


def test_a_state_already_beyond_the_blowup_bound_fails_at_t0(tmp_path, capsys):
    assert run(["eigenmodes", "--blowup", "0.5", "--out", str(tmp_path / "x.nc")]) == 1
    assert "tau[0]" in capsys.readouterr().err


def test_nonfinite_right_hand_side_stops_the_run_and_names_the_entry():
    def rhs(t, y):
        dy = -y.copy()
        if t > 1.0:
            dy[2] = np.nan
        return dy

    traj = integrate(rhs, np.ones(4), SaveAt.uniform(5.0, 51))
    assert not traj.complete and traj.failed_index == 2
    assert 1.0 < traj.t_fail < 1.5 and np.all(traj.t < traj.t_fail)


@pytest.mark.parametrize("name", ["linear_simsiam", "free_features", "eigenmodes", "ema_gap"])
def test_every_scenario_runs_and_writes_finite_results(tmp_path, name):
    out = tmp_path / f"{name}.nc"
    assert run([name, "--out", str(out), "--quiet", "--t-end", "10", "--plot"]) == 0
    with xr.open_dataset(out) as ds:
        assert ds.attrs["name"] == name and ds.sizes["time"] == 401
        for var in ds.data_vars.values():
            assert np.all(np.isfinite(var.values))
    with Image.open(tmp_path / f"{name}.png") as image:  # the report's quick look drew it
        assert image.info["Title"] in {r.title for r in registered("simulation")}


def test_the_closed_form_scenarios_do_not_import_torch():
    """Only the ``general`` model needs torch (its closed-form gradients import it when it is
    built): importing ``dynamics.simulate`` (every scenario's module) does not, so the bridge's
    simulations of eq. 1 do not pay torch's import (about 2 s each)."""
    code = (
        "import sys\n"
        "from dynamics.simulate import main\n"
        "print('torch' in sys.modules)\n"
        "from dynamics.models.general import GeneralModel, GeneralParams\n"
        "GeneralModel(GeneralParams(dim=2, input_dim=2, n_samples=4, loss='vicreg'))\n"
        "print('torch' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "True"]
