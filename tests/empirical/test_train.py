"""End to end: every method trains on symbolic's loss and records the schema; resume; failures.

Each method runs once (one epoch, 4 steps, tiny model) with ``symbolic.losses.get`` replaced by a
spy that wraps the real loss: the test fails if a method takes its training loss from anywhere
else, if the spy's output is not the tensor that is backpropagated, or if the recorded loss is not
the mean of the spy's outputs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

import symbolic.losses
from empirical.methods import METHODS
from symbolic.common.schema import VARIABLES
from tests.empirical.conftest import REPO, cli, run_inprocess, train

PREDICTOR_VARS = ("wp_eig_real", "wp_eig_imag", "wp_singular", "wp_sym_eig", "alignment_cos")
CASES = [(name, ()) for name in METHODS] + [("byol", ("--predictor", "linear"))]
STEPS = 4  # 256 training images / batch 64
D = 32


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
    """method label -> (measurements Dataset, spy, names requested from the registry)."""
    real_get = symbolic.losses.get
    results = {}
    for name, extra in CASES:
        label = name + "".join(extra[1:2])
        spies, requested = {}, []

        def spy_get(loss_name, spies=spies, requested=requested):
            requested.append(loss_name)
            return spies.setdefault(loss_name, Spy(real_get(loss_name)))

        out = tmp_path_factory.mktemp(label)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(symbolic.losses, "get", spy_get)
            assert train(name, out, fashion_dir, *extra) == 0
        spy = spies.get(METHODS[name].loss)
        results[label] = (xr.open_dataset(out / "measurements.nc"), spy, set(requested))
    return results


@pytest.mark.parametrize("name, extra", CASES, ids=[n + "".join(e[1:2]) for n, e in CASES])
def test_training_loss_is_the_symbolic_one(runs, name, extra):
    ds, spy, requested = runs[name + "".join(extra[1:2])]
    assert requested == {METHODS[name].loss}
    assert spy is not None and len(spy.graded) == STEPS and spy.backwards == STEPS
    assert ds["loss"].values[1] == pytest.approx(np.mean(spy.graded), rel=1e-6)
    assert ds["loss"].values[0] == pytest.approx(spy.graded[0], rel=1e-6)
    if name == "moco_v2":
        assert spy.kwargs[0]["temperature"] == 0.2  # MoCo v2's value, not the loss default


@pytest.mark.parametrize("name, extra", CASES, ids=[n + "".join(e[1:2]) for n, e in CASES])
def test_measurements_have_the_schema_names_and_shapes(runs, name, extra):
    ds, _, _ = runs[name + "".join(extra[1:2])]
    assert ds.attrs["kind"] == "training" and ds.attrs["name"] == name
    assert ds.sizes["epoch"] == 2 and list(ds["epoch"].values) == [0, 1]
    assert list(ds["step_at_epoch_end"].values) == [0, STEPS]
    t = ds["time"].values
    assert t[0] == 0 and t[1] == pytest.approx(ds["flow_time_step"].values[-1])
    assert t[1] == pytest.approx(
        ds.attrs["param_peak_lr"]
        * np.sum([0.5 * (1 + np.cos(np.pi * s / STEPS)) for s in range(STEPS)])
    )  # no warm-up at 1 epoch
    for var in (
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
    linear = name in ("directpred", "directcopy", "liu") or "--predictor" in extra
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
    assert all(np.all(np.isfinite(ds[v].values)) for v in ds.data_vars)
    config = json.loads((Path(ds.encoding["source"]).parent / "config.json").read_text())
    assert config == json.loads(ds.attrs["params_json"]) and config["method"] == name


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
        both = xr.merge([sim[var].rename("sim"), run[var].rename("run")], join="outer")
        times = np.union1d(sim["time"].values, run["time"].values)
        assert np.array_equal(both["time"].values, times), var
        assert both["run"].dims == both["sim"].dims == sim[var].dims


def test_list_names_every_method():
    res = cli("--list")
    assert res.returncode == 0
    for spec in METHODS.values():
        assert spec.name in res.stdout and f"['{spec.loss}']" in res.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["nosuch"], "unknown method 'nosuch'"),
        (["barlow_twins", "--loss-param", "lambd=abc"], "lambd='abc'"),
        (["barlow_twins", "--loss-param", "nosuch=1"], "'nosuch'"),
        (["simclr", "--loss-param", "temperature=-1"], "temperature"),
        (["liu", "--loss-param", "k=0"], "k=0"),
        (["byol", "--lr", "-1"], "--lr -1"),
        (["byol", "--ema-base", "1.5"], "--ema-base 1.5"),
        (["barlow_twins", "--predictor", "linear"], "--predictor linear"),
        (["liu", "--batch-size", "60"], "k=8"),
        (["byol", "--epochs", "0"], "--epochs 0"),
        (["byol", "--optimizer", "adam"], "invalid choice: 'adam'"),
        ([], "name a method"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, message):
    code, err = run_inprocess(capsys, *args, "--out", str(tmp_path / "o"))
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1


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
    assert torch.equal(sa["generator"], sb["generator"])
    assert torch.equal(sa["flow_time"], sb["flow_time"])
    da, db = xr.open_dataset(a / "measurements.nc"), xr.open_dataset(b / "measurements.nc")
    for var in da.data_vars:
        if var != "throughput":
            assert np.array_equal(da[var].values, db[var].values), var


@pytest.mark.parametrize("name", ["directpred", "moco_v2"])
def test_resume_is_bit_identical_on_cpu(fashion_dir, tmp_path, name):
    """2 epochs straight == 1 epoch, stop, --resume, 1 epoch (model, optimiser, F_hat, queue)."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train(name, straight, fashion_dir, epochs=2) == 0
    assert train(name, split, fashion_dir, "--stop-after", "1", epochs=2) == 0
    assert torch.load(split / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert train(name, split, fashion_dir, "--resume", epochs=2) == 0
    compare_runs(straight, split)


def test_existing_run_needs_resume_and_the_same_options(fashion_dir, tmp_path, capsys):
    assert train("simsiam", tmp_path, fashion_dir) == 0
    capsys.readouterr()
    assert train("simsiam", tmp_path, fashion_dir) == 2
    assert "--resume" in capsys.readouterr().err
    assert train("simsiam", tmp_path, fashion_dir, "--resume", "--lr", "0.1") == 2
    assert "lr=0.05" in capsys.readouterr().err


def test_nan_loss_exits_1_and_keeps_the_last_good_checkpoint(
    fashion_dir, tmp_path, capsys, monkeypatch
):
    real_get = symbolic.losses.get
    calls = []

    def poisoned(name):
        loss = real_get(name)

        def fn(*args, **kwargs):
            out = loss(*args, **kwargs)
            if out.requires_grad:
                calls.append(1)
                if len(calls) > STEPS:  # from the first step of epoch 2 on
                    return out * float("nan")
            return out

        fn.defaults, fn.hypers, fn.resolve = loss.defaults, loss.hypers, loss.resolve
        return fn

    monkeypatch.setattr(symbolic.losses, "get", poisoned)
    assert train("byol", tmp_path, fashion_dir, epochs=3) == 1
    err = capsys.readouterr().err
    assert "loss became nan at epoch 2" in err and "last good checkpoint" in err
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    ds = xr.open_dataset(tmp_path / "measurements.nc")
    assert list(ds["epoch"].values) == [0, 1]
