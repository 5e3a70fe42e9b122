"""The bridge's first rung at small size: a real training run that the ODE must predict.

A linear encoder on 8 principal components, the unnormalised loss of Tian's eq. 1, plain SGD at a
constant learning rate, 200 steps over 512 images. The simulation derived from the run
(``dynamics.simulate linear_byol --from-run``) must follow it within the comparison's tolerance
and beat its nulls; a simulation derived from a run with another weight decay, or started from
another seed, must be flagged. Also: X and X' of ``moments.nc`` against a known answer, and the
PCA fitted on the training split only.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from dynamics.simulate import simulate
from reports import compare
from reports.inputs import load_result
from reports.references import references
from tests.empirical.conftest import train, write_idx

POOL = 512
RUNG1 = [
    "--backbone", "linear", "--input-dim", "8", "--projector", "none", "--predictor", "linear",
    "--loss", "linear_byol", "--optimizer", "sgd", "--momentum", "0", "--lr-schedule", "constant",
    "--ema-base", "0.99", "--ema-final", "0.99", "--measure-every", "20", "--no-probes",
    "--train-subset", str(POOL), "--moments-images", str(POOL), "--batch-size", "256",
    "--lr", "0.02",  # 0.02 at batch 256: t = 2 x 0.02 x 200 steps = 8
]  # fmt: skip
# batch 256, not 64 at 4x the step: the same flow time with a quarter of the minibatch noise
# variance, so that W resolves X' to a factor 2 (at batch 64 its X' x0.5 null was 2.4x the error)


def rung1(fashion_dir, out, weight_decay="0.2", seed="0"):
    code = train("byol", out, fashion_dir, *RUNG1, "--weight-decay", weight_decay, "--seed", seed,
                 epochs=100)  # fmt: skip
    assert code == 0
    return out


@pytest.fixture(scope="module")
def runs(fashion_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("bridge")
    return {
        "run": rung1(fashion_dir, root / "run"),
        "other_eta": rung1(fashion_dir, root / "other_eta", weight_decay="0.02"),
    }


def trajectories(run_dir, initial="run", seed=0):
    sim = simulate("linear_byol", from_run=run_dir, initial=initial, seed=seed)
    run = load_result(run_dir / "measurements.nc", "training")
    return compare.Trajectory(sim["time"].values, sim["wp"].values, sim["w"].values), run


def test_rung_one_follows_its_simulation_and_beats_the_nulls(runs):
    """Within 3x the noise floor of the run's replay and 3x below every null: the other seed,
    the frozen network and the ablation nulls (reports.references) for W and the spectrum.
    W_p is as close, but this run does not resolve X' to a factor 2 in W_p (its X' x0.5 null is
    within 3x: 2.5x): that ingredient is 'not tested' there, the others are tested."""
    sim, run = trajectories(runs["run"])
    null, _ = trajectories(runs["run"], initial="seed", seed=7)
    refs = references(run)
    rows = {
        r.key: r for r in compare.compare(sim, run.trajectory(), null, refs.ablations, refs.replay)
    }
    for key in ("wp_error", "w_error", "spectrum_error"):
        assert rows[key].value < 0.05, (key, rows[key])
        assert rows[key].value <= rows[key].tolerance, (key, rows[key].detail)
        assert {"augmentation", "weight decay", "EMA lag", "clock D"} <= set(rows[key].tested)
    for key in ("w_error", "spectrum_error"):
        assert rows[key].verdict == "agrees", (key, rows[key].detail)
    assert set(rows["wp_error"].untested) <= {"X' x2", "X' x0.5"}
    assert rows["conservation_error"].verdict == "agrees"  # 2 eta t = 1.6


def test_a_prediction_from_a_mismatched_run_is_flagged(runs):
    """The simulation of the run with weight decay 0.02 set against the run with 0.2, and an
    other-seed start set against the run: neither is taken for agreement."""
    wrong_eta, _ = trajectories(runs["other_eta"])
    other_seed, run = trajectories(runs["run"], initial="seed", seed=3)
    for prediction in (wrong_eta, other_seed):
        row = {r.key: r for r in compare.compare(prediction, run.trajectory())}["wp_error"]
        assert row.verdict in ("disagrees", "not distinguishable from the null"), row


def test_a_derived_simulation_reruns_from_its_stored_config(runs, tmp_path):
    """The attribute config_toml of a --from-run simulation (whose t_end comes from the run's
    record as a numpy float) is valid TOML and ``--config`` reruns it to the same trajectory."""
    from dynamics.simulate import main
    from symbolic.common.cli import run_main

    first, again = tmp_path / "first.nc", tmp_path / "again.nc"
    argv = ["linear_byol", "--from-run", str(runs["run"]), "--out", str(first)]
    assert run_main(main, argv) == 0
    with xr.open_dataset(first) as ds:
        config, wp = tmp_path / "config.toml", ds["wp"].values
        config.write_text(ds.attrs["config_toml"])
    assert run_main(main, ["linear_byol", "--config", str(config), "--out", str(again)]) == 0
    with xr.open_dataset(again) as ds:
        np.testing.assert_array_equal(ds["wp"].values, wp)
        assert ds.attrs["from_run"] == str(runs["run"])


def test_moments_of_a_noise_augmentation_have_the_known_answer(fashion_dir, tmp_path):
    """Pixel noise of std s alone (no shift, no flip): X' = s^2 I in pixel units, i.e. s^2 c^2 I
    in the encoder's PCA coordinates (orthonormal components scaled by c), within its standard
    error; and X is the second moment of the images' PCA coordinates."""
    out = tmp_path / "noise"
    s = 0.3
    noise_only = ["--aug-shift", "0", "--no-aug-flip", "--aug-noise", str(s)]
    assert train("byol", out, fashion_dir, *RUNG1, *noise_only, epochs=1) == 0
    m = xr.open_dataset(out / "moments.nc")
    k = m.sizes["input"]
    state = torch.load(out / "checkpoint.pt", weights_only=True)["model"]
    c = float(state["online.backbone.pca_scale"])
    z = (m["aug_cov"].values - (s * c) ** 2 * np.eye(k)) / m["aug_cov_se"].values
    assert np.mean(z**2) < 4.0 and np.max(np.abs(z)) < 6.0
    mean = state["online.backbone.pca_mean"].double()
    components = state["online.backbone.pca_components"].double()
    images = _normalised_training_images(fashion_dir, int(m.attrs["n_images"]))
    x = (images - mean) @ components.T
    expected = (x.T @ x / len(x)).numpy()
    z = (m["x_corr"].values - expected) / m["x_corr_se"].values
    assert np.mean(z**2) < 4.0 and np.max(np.abs(z)) < 6.0


def _normalised_training_images(fashion_dir, n: int) -> torch.Tensor:
    """The first n images of the run's training pool, normalised and flattened (as the run)."""
    from empirical.augment import Normalize, to_unit
    from empirical.data import open_dataset

    data = open_dataset(f"fashion-mnist:{fashion_dir}", 200, None, 0, torch.device("cpu"))
    images = to_unit(data.train.images[:n])
    return Normalize(data.mean, data.std, "cpu")(images).flatten(1).double()


def test_the_pca_is_fitted_on_the_training_split_only(fashion_dir, tmp_path):
    """Replacing every test image leaves the fitted principal components unchanged."""
    import shutil

    other = tmp_path / "other_test_split"
    shutil.copytree(fashion_dir, other)
    rng = np.random.default_rng(0)
    write_idx(other / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (300, 28, 28)))
    components = []
    for folder, name in ((fashion_dir, "a"), (other, "b")):
        assert train("byol", tmp_path / name, folder, *RUNG1, epochs=1) == 0
        state = torch.load(tmp_path / name / "checkpoint.pt", weights_only=True)["model"]
        components.append(state["online.backbone.pca_components"])
    assert torch.equal(components[0], components[1])
