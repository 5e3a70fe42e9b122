"""End to end: every method trains on symbolic's loss and records the schema; resume; failures.

Each method runs once (one epoch, 4 steps, tiny model) with ``symbolic.losses.get`` replaced by a
spy that wraps the real loss: the test fails if a method takes its training loss from anywhere
else, if the spy's outputs are not what is backpropagated, or if the recorded loss is not the
mean of the per-step losses built from the spy's outputs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import xarray as xr

import symbolic.losses
from empirical.methods import METHODS
from symbolic.common.lock import exclusive
from symbolic.common.options import read_toml
from symbolic.common.schema import VARIABLES
from tests.empirical.conftest import REPO, cli, run_inprocess, train

PREDICTOR_VARS = ("wp_eig_real", "wp_eig_imag", "wp_singular", "wp_sym_eig", "alignment_cos")
CASES = [(name, ()) for name in METHODS] + [("byol", ("--predictor", "linear"))]
STEPS = 4  # 256 training images / batch 64
D = 32
#: loss calls per step (Liu et al.'s loss is applied in both directions and summed)
CALLS = {"liu": 2}


def label(name, extra):
    return name + "".join(extra[1:2])


class Spy:
    """Wraps a symbolic Loss; records every call, its output, and backward passes through it."""

    def __init__(self, loss):
        self.loss = loss
        self.graded: list[float] = []
        self.kwargs: list[dict] = []
        self.backwards = 0

    def __getattr__(self, name):
        return getattr(self.loss, name)

    def __call__(self, *args, **kwargs):
        out = self.loss(*args, **kwargs)
        if out.requires_grad:
            self.graded.append(float(out.detach()))
            self.kwargs.append(kwargs)
            out.register_hook(self._count)
        return out

    def _count(self, grad):
        self.backwards += 1
        return grad


@pytest.fixture(scope="module")
def runs(fashion_dir, tmp_path_factory):
    """method label -> (measurements Dataset, spy, names requested from the registry, folder)."""
    real_get = symbolic.losses.get
    results = {}
    for name, extra in CASES:
        spies, requested = {}, []

        def spy_get(loss_name, spies=spies, requested=requested):
            requested.append(loss_name)
            return spies.setdefault(loss_name, Spy(real_get(loss_name)))

        out = tmp_path_factory.mktemp(label(name, extra))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(symbolic.losses, "get", spy_get)
            assert train(name, out, fashion_dir, *extra) == 0
        spy = spies.get(METHODS[name].losses[0])
        results[label(name, extra)] = (
            xr.open_dataset(out / "measurements.nc"),
            spy,
            set(requested),
            out,
        )
    return results


@pytest.mark.parametrize("name, extra", CASES, ids=[label(n, e) for n, e in CASES])
def test_training_loss_is_the_symbolic_one(runs, name, extra):
    ds, spy, requested, _ = runs[label(name, extra)]
    calls = CALLS.get(name, 1)
    assert requested == {METHODS[name].losses[0]}
    assert spy is not None and len(spy.graded) == calls * STEPS
    assert spy.backwards == calls * STEPS
    per_step = np.array(spy.graded).reshape(STEPS, calls).sum(axis=1)
    assert ds["loss"].values[1] == pytest.approx(np.mean(per_step), rel=1e-6)
    assert ds["loss"].values[0] == pytest.approx(per_step[0], rel=1e-6)
    if name == "moco_v2":
        assert spy.kwargs[0]["temperature"] == 0.2  # MoCo v2's value, not the loss default


@pytest.mark.parametrize("name, extra", CASES, ids=[label(n, e) for n, e in CASES])
def test_measurements_have_the_schema_names_and_shapes(runs, name, extra):
    ds, _, _, folder = runs[label(name, extra)]
    assert ds.attrs["kind"] == "training" and ds.attrs["name"] == name
    assert ds.attrs["partial"] == 0 and ds.attrs["status"] == "complete"
    assert ds.sizes["epoch"] == 2 and list(ds["epoch"].values) == [0, 1]
    assert list(ds["step_at_measurement"].values) == [0, STEPS]
    for var in (
        "sigma_corr_mean_sq",
        "sigma_floor",
        "dead_dims",
        "sigma_dist_pearson",
        "sigma_dist_moment",
        "effective_rank",
        "z_std",
        "sigma_dist_pearson_backbone",
        "knn_acc",
        "linear_acc",
        "loss",
        "throughput",
    ):
        assert ds[var].dims == ("epoch",), var
    assert ds["corr_eig"].dims == ("epoch", "mode") and ds.sizes["mode"] == D
    assert ds["knn_acc_random"].dims == () and ds["knn_acc_random"] == ds["knn_acc"][0]
    assert ds.attrs["predictor_kind"] == METHODS[name].predictor
    linear = name in ("directpred", "directcopy", "liu") or "--predictor" in extra
    assert ds.attrs["predictor_linear"] == int(linear)
    for var in PREDICTOR_VARS:
        assert (var in ds) == linear, var
        if linear:
            assert ds[var].dims == ("epoch", "mode")
    if linear:
        assert ds["wp"].dims == ("epoch", "row", "col") and ds["wp"].shape == (2, D, D)
        assert ds["wp_asymmetry"].dims == ("epoch",)
    for var in ds.data_vars:
        assert var in VARIABLES, f"{var} is not in symbolic.common.schema.VARIABLES"
        assert ds[var].attrs.get("long_name"), var
    config = read_toml(folder / "config.toml")
    saved = {k: (None if v == "none" else v) for k, v in config.items()}
    assert saved == json.loads(ds.attrs["params_json"]) and config["method"] == name


@pytest.mark.parametrize(
    "name, total",
    [
        ("vicreg", lambda d: 25 * d.loss_invariance + 25 * d.loss_variance + d.loss_covariance),
        ("barlow_twins", lambda d: d.loss_on_diag + 0.0051 * d.loss_off_diag),
        ("liu", lambda d: 25 * d.loss_invariance + d.loss_covariance),
    ],
)
def test_recorded_loss_terms_add_up_to_the_loss(runs, name, total):
    ds = runs[name][0]
    assert np.allclose(total(ds).values, ds["loss"].values, rtol=1e-5)


def test_run_opens_next_to_a_simulation(runs, tmp_path):
    sim_path = tmp_path / "sim.nc"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "dynamics.simulate",
            "linear_byol",
            "--dim",
            str(D),
            "--t-end",
            "2",
            "--out",
            str(sim_path),
            "--quiet",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    sim = xr.open_dataset(sim_path)
    run = runs["byollinear"][0].swap_dims(epoch="time")
    shared = sorted(set(sim.data_vars) & set(run.data_vars))
    assert {"wp_eig_real", "wp_asymmetry", "alignment_cos", "corr_eig", "wp", "loss"} <= set(shared)
    for var in shared:
        assert sim[var].dims == run[var].dims, var
        assert sim[var].attrs.get("units") == run[var].attrs.get("units"), var


def test_list_names_every_method():
    res = cli("--list")
    assert res.returncode == 0
    for cls in METHODS.values():
        assert cls.name in res.stdout and f"['{cls.losses[0]}']" in res.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["nosuch"], "unknown method 'nosuch'"),
        (["barlow_twins", "--loss-param", "lambd=abc"], "lambd='abc'"),
        (["barlow_twins", "--loss-param", "nosuch=1"], "'nosuch'"),
        (["barlow_twins", "--loss-param", "lambd"], "NAME=VALUE"),
        (["simclr", "--loss-param", "temperature=-1"], "temperature"),
        (["liu", "--loss-param", "k=0"], "k=0"),
        (["byol", "--lr", "-1"], "lr=-1.0"),
        (["byol", "--ema-base", "1.5"], "ema_base=1.5"),
        (["barlow_twins", "--predictor", "linear"], "no option --predictor linear"),
        (["simclr", "--predictor", "linear"], "it is an option of byol, simsiam only"),
        (["vicreg", "--no-fix-pred-lr"], "it is an option of simsiam only"),
        (["simclr", "--ema-base", "0.9"], "byol, directcopy, directpred, moco_v2 only"),
        (["byol", "--queue-size", "8"], "it is an option of moco_v2 only"),
        (["byol", "--nosuch", "8"], "unrecognized arguments: --nosuch 8"),
        (["liu", "--batch-size", "60"], "k=8"),
        (["byol", "--epochs", "0"], "epochs=0"),
        (["byol", "--optimizer", "adam"], "optimizer='adam'"),
        (["byol", "--loss", "linear_byol"], "--predictor linear"),
        (["simsiam", "--loss", "vicreg"], "loss='vicreg'"),
        (["byol", "--seed", "-1"], "seed=-1"),
        (["byol", "--lars-eta", "inf"], "lars_eta=inf"),
        (["directpred", "--eps", "inf"], "eps=inf"),
        (["byol", "--warmup-epochs", "30"], "warmup_epochs=30.0"),
        ([], "name a method"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, message):
    code, err = run_inprocess(capsys, *args, "--out", str(tmp_path / "o"))
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_unknown_method_exits_2_from_the_shell(tmp_path):
    res = cli("nosuch", "--out", str(tmp_path))
    assert res.returncode == 2 and "known methods: byol" in res.stderr


def compare_runs(a, b):
    sa = torch.load(a / "checkpoint.pt", weights_only=True)
    sb = torch.load(b / "checkpoint.pt", weights_only=True)
    assert sa["epoch"] == sb["epoch"] == 2 and sa["step"] == sb["step"]
    for key, value in sa["model"].items():
        assert torch.equal(value, sb["model"][key]), key
    for pid, state in sa["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(value, sb["optimizer"]["state"][pid][key]), (pid, key)
    assert len(sa["generator"]) == len(sb["generator"]) == 1
    assert torch.equal(sa["generator"][0], sb["generator"][0])
    for key, value in sa["steps"].items():  # bit-identical, NaN (undefined) where NaN
        assert torch.allclose(value, sb["steps"][key], rtol=0, atol=0, equal_nan=True), key
    da, db = xr.open_dataset(a / "measurements.nc"), xr.open_dataset(b / "measurements.nc")
    for var in da.data_vars:
        if var != "throughput":
            assert np.array_equal(da[var].values, db[var].values, equal_nan=True), var


@pytest.mark.parametrize("name", ["directpred", "moco_v2"])
def test_resume_is_bit_identical_on_cpu(fashion_dir, tmp_path, name):
    """2 epochs straight == 1 epoch, stop, --resume, 1 epoch (model, optimiser, F_hat, queue);
    the stopped run's file is marked partial, the finished one complete."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train(name, straight, fashion_dir, epochs=2) == 0
    assert train(name, split, fashion_dir, "--stop-after", "1", epochs=2) == 0
    assert torch.load(split / "checkpoint.pt", weights_only=True)["epoch"] == 1
    with xr.open_dataset(split / "measurements.nc") as ds:
        assert ds.attrs["partial"] == 1 and "--resume" in ds.attrs["status"]
    assert train(name, split, fashion_dir, "--resume", epochs=2) == 0
    compare_runs(straight, split)
    with xr.open_dataset(split / "measurements.nc") as ds:
        assert ds.attrs["partial"] == 0


def test_config_file_reruns_the_run(fashion_dir, tmp_path):
    """--config OUT/config.toml (the resolved configuration) gives the same measurements."""
    first, again = tmp_path / "first", tmp_path / "again"
    assert train("simsiam", first, fashion_dir, "--optimizer", "sgd", "--lr", "0.07") == 0
    code = train("simsiam", again, fashion_dir, "--config", str(first / "config.toml"))
    assert code == 0
    da, db = xr.open_dataset(first / "measurements.nc"), xr.open_dataset(again / "measurements.nc")
    assert db.attrs["param_lr"] == 0.07
    for var in da.data_vars:
        if var != "throughput":
            assert np.array_equal(da[var].values, db[var].values, equal_nan=True), var


def test_flow_time_of_sgd_is_the_closed_form(fashion_dir, tmp_path):
    """Constant lr, heavy-ball momentum mu, BYOL's two summed directions:
    t(S) = 2 lr sum_{k<S} (1 - mu^{k+1})/(1 - mu) = 2 lr [S - mu (1 - mu^S)/(1 - mu)]/(1 - mu);
    eta = wd / 2 per unit flow time; beta = -ln(tau)/dt."""
    out = tmp_path / "run"
    lr, mu, wd = 0.02, 0.9, 1e-3
    options = ["--optimizer", "sgd", "--lr-schedule", "constant", "--momentum", str(mu)]
    options += ["--weight-decay", str(wd), "--ema-base", "0.99", "--ema-final", "0.99"]
    assert train("byol", out, fashion_dir, *options, "--lr", str(lr * 4)) == 0  # batch 64
    ds = xr.open_dataset(out / "measurements.nc")
    s = STEPS
    expected = 2 * lr * (s - mu * (1 - mu**s) / (1 - mu)) / (1 - mu)
    assert float(ds["time"][-1]) == pytest.approx(expected, rel=1e-12)
    assert np.allclose(ds["eta_step"].values, wd / 2)
    dt = np.diff(np.concatenate([[0.0], ds["flow_time_step"].values]))
    assert np.allclose(ds["beta_step"].values, -np.log(0.99) / dt)
    assert np.allclose(ds["alpha_p_step"].values, 1.0)


def test_lars_run_has_no_flow_time(runs):
    ds = runs["barlow_twins"][0]
    assert (
        np.all(np.isnan(ds["flow_time_step"].values)) and "LARS" in ds.attrs["flow_time_undefined"]
    )


def test_a_second_run_into_a_locked_folder_is_refused(fashion_dir, tmp_path, capsys):
    out = tmp_path / "busy"
    with exclusive(out, folder=True):
        capsys.readouterr()
        assert train("simsiam", out, fashion_dir) == 2
    assert "in use by another process" in capsys.readouterr().err
    assert not (out / "config.toml").exists()


def test_existing_run_needs_resume_and_the_same_options(fashion_dir, tmp_path, capsys):
    assert train("simsiam", tmp_path, fashion_dir) == 0
    capsys.readouterr()
    assert train("simsiam", tmp_path, fashion_dir) == 2
    assert "--resume" in capsys.readouterr().err
    assert train("simsiam", tmp_path, fashion_dir, "--resume", "--lr", "0.1") == 2
    assert "lr=0.05" in capsys.readouterr().err


class Poisoned:
    """A loss that turns NaN from the first step of epoch 2 on."""

    def __init__(self, loss, calls):
        self.loss, self.calls = loss, calls

    def __getattr__(self, name):
        return getattr(self.loss, name)

    def __call__(self, *args, **kwargs):
        out = self.loss(*args, **kwargs)
        if out.requires_grad:
            self.calls.append(1)
            if len(self.calls) > STEPS:
                return out * float("nan")
        return out


def test_nan_loss_exits_1_and_keeps_the_last_good_checkpoint(
    fashion_dir, tmp_path, capsys, monkeypatch
):
    real_get = symbolic.losses.get
    calls = []
    monkeypatch.setattr(symbolic.losses, "get", lambda name: Poisoned(real_get(name), calls))
    assert train("byol", tmp_path, fashion_dir, epochs=3) == 1
    err = capsys.readouterr().err
    assert "loss became nan at epoch 2" in err and "last good checkpoint" in err
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    ds = xr.open_dataset(tmp_path / "measurements.nc")
    assert list(ds["epoch"].values) == [0, 1] and ds.attrs["partial"] == 1


def test_tensorboard_without_the_package_is_a_clear_error(fashion_dir, tmp_path, capsys):
    """--tensorboard DIR logs the scalars when tensorboard is installed; without it, one line."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        capsys.readouterr()
        assert train("simsiam", tmp_path / "r", fashion_dir, "--tensorboard", str(tmp_path)) == 2
        err = capsys.readouterr().err
        assert "pip install tensorboard" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "r" / "config.toml").exists()
        return
    assert train("simsiam", tmp_path / "r", fashion_dir, "--tensorboard", str(tmp_path / "tb")) == 0
    assert any((tmp_path / "tb").iterdir())


def test_the_log_has_a_line_per_measurement_not_per_epoch(fashion_dir, tmp_path):
    """4 epochs of 4 steps measured every 8 steps: the random encoder and steps 8 and 16, each
    logged once (an epoch without a new measurement repeated the last one's line before)."""
    out = tmp_path / "run"
    assert train("byol", out, fashion_dir, "--measure-every", "8", epochs=4) == 0
    with xr.open_dataset(out / "measurements.nc") as ds:
        steps = ds["step_at_measurement"].values.tolist()
    assert steps == [0, 8, 16]
    log = (out / "log.txt").read_text().splitlines()
    lines = [line for line in log if line.startswith("epoch")]
    assert len(lines) == len(steps), lines
