"""Every method's linear run predicted (``dynamics.simulate --from-run RUN``): tiny real runs.

Barlow Twins, VICReg, SimCLR and BYOL with its cosine loss (linear predictor, EMA target), each
trained for 40 plain-SGD steps on a linear encoder over 8 principal components of Fashion-MNIST
(``--projector none``), are predicted by ``general``: the gradient flow of the run's own loss over
its fixed sample of augmented pairs (``pairs.nc``) at its batch size, from its W(0). The
prediction must follow the run's W far closer than the other-seed null and 3x closer than the
same flow on the pairs with the augmentation removed (views replaced by their mean: the ablation
null of :mod:`dynamics.replay_general`), and its predicted
||Sigma - I|| (mean squared correlation on the held-out images) the run's; the same run with its
loss convention recorded wrong (loss_scale x 2: the flow at half speed) is predicted worse. A deep
linear run (two layers) is predicted by the deep-linear flow better than by a one-layer flow
started from the same product.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import xarray as xr

from dynamics import replay, replay_general
from dynamics.from_run_methods import scenario_of
from dynamics.simulate import main as simulate_main
from dynamics.simulate import simulate
from reports import compare
from reports.sigma_stat import sigma_error
from symbolic.common.cli import run_main
from tests.empirical.conftest import train

pytestmark = pytest.mark.slow

LINEAR = [
    "--backbone", "linear", "--input-dim", "8", "--width", "8", "--projector", "none",
    "--optimizer", "sgd", "--momentum", "0", "--lr-schedule", "constant", "--measure-every", "10",
    "--no-probes", "--train-subset", "512", "--moments-images", "512", "--batch-size", "64",
    "--threads", "1",
]  # fmt: skip
#: each method's options: 40 steps of lr 0.02 (0.08 per 256 images)
METHODS = {
    "barlow_twins": ["--lr", "0.08", "--weight-decay", "0"],
    "vicreg": ["--lr", "0.03", "--weight-decay", "0.01"],  # its loss is 25 x larger: 0.03
    "simclr": ["--lr", "0.08", "--weight-decay", "0.01"],
    "byol": [
        "--predictor", "linear", "--ema-base", "0.99", "--ema-final", "0.99", "--lr", "0.08",
        "--weight-decay", "0.01",
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def runs(fashion_dir, tmp_path_factory):
    """The runs, trained on first use (one folder per method)."""
    root = tmp_path_factory.mktemp("methods")
    done = {}

    def get(name: str, *extra: str):
        if name not in done:
            method = name.split("-")[0]
            code = train(method, root / name, fashion_dir, *LINEAR, *METHODS[method], *extra,
                         epochs=5)  # fmt: skip
            assert code == 0
            done[name] = root / name
        return done[name]

    return get


def errors(run_dir, prediction: xr.Dataset) -> tuple[float, float]:
    """(W trajectory error, ||Sigma - I|| error) of a prediction against the run."""
    with xr.open_dataset(run_dir / "measurements.nc") as run:
        w, sigma = run["w"].values, run["sigma_corr_mean_sq"].values
    return (
        compare.relative_error(prediction["w"].values, w),
        sigma_error(prediction["sigma_corr_mean_sq"].values, sigma),
    )


@pytest.mark.parametrize("method", sorted(METHODS))
def test_the_run_is_predicted_far_better_than_the_other_seed_null(runs, method, tmp_path):
    run = runs(method)
    assert scenario_of(run) == "general"
    prediction = simulate("general", from_run=run)
    assert (
        "expected minibatch loss at the run's batch size 64" in prediction.attrs["prediction_kind"]
    )
    null = simulate("general", from_run=run, initial="seed", seed=7)
    w_err, sigma_err = errors(run, prediction)
    null_w, null_sigma = errors(run, null)
    assert w_err < 0.1 and 10 * w_err < null_w, (w_err, null_w)
    no_aug = replay.ablation(replay_general.load_problem(run, source="flow"), "augmentation")
    with xr.open_dataset(run / "measurements.nc") as ds:
        aug_w = compare.relative_error(no_aug.w, ds["w"].values)
    assert 3 * w_err < aug_w, (w_err, aug_w)
    assert sigma_err < 0.1 and 3 * sigma_err < null_sigma, (sigma_err, null_sigma)
    # the predicted Sigma at t = 0 is the run's first measurement (same W, same images)
    with xr.open_dataset(run / "measurements.nc") as ds:
        first = float(ds["sigma_corr_mean_sq"].values[0])
    assert prediction["sigma_corr_mean_sq"].values[0] == pytest.approx(first, rel=1e-5)
    # the same run with its loss convention recorded wrong: the flow at half speed
    edited = tmp_path / "edited"
    shutil.copytree(run, edited)
    with xr.open_dataset(edited / "measurements.nc") as ds:
        ds = ds.load()
    ds.attrs["loss_scale"] = 2 * float(ds.attrs["loss_scale"])
    ds.to_netcdf(edited / "measurements.nc")
    wrong_w, _ = errors(run, simulate("general", from_run=edited))
    assert wrong_w > 2 * w_err, (wrong_w, w_err)


def test_a_deep_linear_run_is_predicted_by_the_deep_linear_flow(runs, tmp_path):
    run = runs("barlow_twins-deep", "--depth", "2")
    prediction = simulate("general", from_run=run)
    assert prediction.attrs["param_depth"] == 2
    deep_w, _ = errors(run, prediction)
    null_w, _ = errors(run, simulate("general", from_run=run, initial="seed", seed=7))
    # the one-layer flow from the same product W(0): the run with its layers left out
    flat = tmp_path / "flat"
    shutil.copytree(run, flat)
    with xr.open_dataset(flat / "measurements.nc") as ds:
        ds = ds.drop_vars("w_up").load()
    ds.to_netcdf(flat / "measurements.nc")
    flat_w, _ = errors(run, simulate("general", from_run=flat))
    assert deep_w < 0.1 and 10 * deep_w < null_w, (deep_w, null_w)
    assert flat_w > 1.5 * deep_w, (flat_w, deep_w)


def test_a_deep_eq1_run_is_refused_by_the_one_layer_flow(runs, tmp_path, capsys):
    """linear_byol integrates one layer W: a two-layer eq. 1 run (whose trainer still names
    linear_byol its scenario) is refused in one line instead of predicted without its depth."""
    run = runs("byol-deep", "--loss", "linear_byol", "--depth", "2")
    out = tmp_path / "x.nc"
    code = run_main(simulate_main, ["--from-run", str(run), "--out", str(out)])
    assert code == 2
    assert "a deep linear encoder (2 layers)" in capsys.readouterr().err
    assert not out.exists()


def test_the_scenario_follows_from_the_run_on_the_command_line(runs, tmp_path, capsys):
    run = runs("barlow_twins")
    out = tmp_path / "pred.nc"
    assert run_main(simulate_main, ["--from-run", str(run), "--out", str(out), "--quiet"]) == 0
    with xr.open_dataset(out) as ds:
        assert ds.attrs["name"] == "general"
        assert np.all(np.isfinite(ds["sigma_dist_pearson"].values))
    code = run_main(simulate_main, ["linear_byol", "--from-run", str(run), "--out",
                                    str(tmp_path / "x.nc")])  # fmt: skip
    assert code == 2
    assert "cannot set up linear_byol" in capsys.readouterr().err
    assert not (tmp_path / "x.nc").exists()


def test_pairs_are_fresh_views_of_image_i_mod_m(fashion_dir, tmp_path):
    """--pairs N: pairs.nc holds N pairs, pair i two views of training image i mod M (M =
    --moments-images), each view drawn afresh: pairs i and i + M show one image through other
    augmentations, nearer each other than pairs of neighbouring images."""
    out = tmp_path / "run"
    argv = (*LINEAR, *METHODS["simclr"], "--pairs", "1536")
    assert train("simclr", out, fashion_dir, *argv) == 0
    with xr.open_dataset(out / "pairs.nc") as ds:
        x1, x2, n = ds["x1"].values, ds["x2"].values, int(ds.attrs["n_pairs"])
    assert n == x1.shape[0] == 1536
    m = 512  # --moments-images in LINEAR
    again = np.linalg.norm(x1[:m] - x1[m : 2 * m], axis=1)
    neighbour = np.linalg.norm(x1[:m] - np.roll(x1[:m], 1, axis=0), axis=1)
    assert np.all(again > 0) and not np.allclose(x1, x2)
    assert np.median(again) < 0.5 * np.median(neighbour)
