"""The comparison cannot be made to lie: predictions with the physics wrong are never 'agrees'.

Two small real runs (``python -m empirical.train``: a linear encoder on 8 principal components,
Tian's eq. 1, 200 SGD steps at batch 256 over 512 images, EMA target; one plain at a constant
lr, one with heavy-ball momentum 0.9 and warm-up + cosine). Each lie is built as a referee
would: edit a copy of the run (X' in its ``moments.nc``, or its ``eta_step``), derive the
prediction from the copy (``python -m dynamics.simulate linear_byol --from-run COPY``, its
other-seed null with ``--initial seed``), pair and compare (``reports.compose``, as
``python -m reports.build`` does). The copy's measurements are the original run's, so the
prediction is wrong by construction. Expected (the independent source is the edit itself):

- X' = 0, X' x2, X' x0.5: no trajectory statistic agrees (the ablation nulls catch them);
- the weight decay removed (eta_step = 0) on a run cut at 2 eta t = 0.4: none agrees;
- the matched prediction agrees on W and the spectrum, for the plain and the momentum run;
- an edited moments.nc does not pair silently; --sigma2 with a linear --from-run is refused.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from dynamics import replay
from dynamics.simulate import main as simulate_main
from reports.compose import findings, pair_runs
from reports.inputs import load_inputs
from symbolic.common.cli import run_main
from tests.empirical.conftest import _fashion_arrays, write_idx

OPTIONS = [
    "--backbone", "linear", "--input-dim", "8", "--width", "8", "--projector", "none",
    "--predictor", "linear", "--loss", "linear_byol", "--optimizer", "sgd",
    "--ema-base", "0.99", "--ema-final", "0.99", "--no-probes", "--train-subset", "512",
    "--moments-images", "512", "--batch-size", "256", "--val-size", "200", "--eval-size", "200",
    "--workers", "0", "--threads", "1", "--quiet", "--weight-decay", "0.2", "--seed", "0",
    "--measure-every", "20", "--epochs", "100",
]  # fmt: skip
PLAIN = ["--momentum", "0", "--lr-schedule", "constant", "--lr", "0.02"]
HEAVY = ["--momentum", "0.9", "--lr-schedule", "cosine", "--warmup-epochs", "10", "--lr", "0.002"]
TRAJECTORY = ("wp_error", "w_error", "spectrum_error", "asymmetry_error", "collapse_error")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    from empirical.train import main as train_main

    root = tmp_path_factory.mktemp("lies")
    data = root / "fashion"
    data.mkdir()
    for name, array in _fashion_arrays(1000, 300).items():
        write_idx(data / f"{name}.gz", array)
    out = {}
    for name, extra in (("plain", PLAIN), ("heavy", HEAVY)):
        argv = ["byol", "--data", f"fashion-mnist:{data}", *OPTIONS, *extra]
        assert run_main(train_main, [*argv, "--out", str(root / name)]) == 0
        out[name] = root / name
    return out


def _rewrite(path: Path, edit) -> None:
    with xr.open_dataset(path, engine="netcdf4") as ds:
        ds = edit(ds.load())
    path.unlink()
    ds.to_netcdf(path, engine="netcdf4")


def edited_copy(run: Path, dest: Path, moments=None, measurements=None) -> Path:
    shutil.copytree(run, dest)
    if moments is not None:
        _rewrite(dest / "moments.nc", moments)
    if measurements is not None:
        _rewrite(dest / "measurements.nc", measurements)
    return dest


def scale_aug(factor: float):
    def edit(ds):
        ds["aug_cov"] = ds["aug_cov"] * factor
        return ds

    return edit


def cut_at(decay: float):
    """Keep the measurements (and steps) up to 2 eta t = ``decay``."""

    def edit(ds):
        eta = float(ds["eta_step"][0])
        keep = int(np.sum(2 * eta * ds["time"].values <= decay + 1e-9))
        last = round(float(ds["epoch"][keep - 1]) * int(ds.attrs["steps_per_epoch"]))
        return ds.isel(epoch=slice(0, keep), step=slice(0, last))

    return edit


def no_weight_decay(ds):
    ds["eta_step"] = ds["eta_step"] * 0
    return ds


def derive(run: Path) -> tuple[Path, Path]:
    pred, null = run / "prediction.nc", run / "null.nc"
    for initial, out in (("run", pred), ("seed", null)):
        argv = ["linear_byol", "--from-run", str(run), "--initial", initial, "--seed", "7"]
        assert run_main(simulate_main, [*argv, "--quiet", "--out", str(out)]) == 0
    return pred, null


def verdicts(run: Path, pred: Path, null: Path) -> dict:
    sims, runs = load_inputs([str(pred), str(null)], [str(run)])
    rows = findings(pair_runs(runs, sims))
    return {row.key: row for _, _, row in rows}


def compare_copy(run: Path, dest: Path, **edits) -> dict:
    copy = edited_copy(run, dest, **edits)
    return verdicts(copy, *derive(copy))


@pytest.mark.parametrize("factor", [0.0, 2.0, 0.5])
def test_a_prediction_with_the_augmentation_wrong_never_agrees(runs, tmp_path, factor):
    rows = compare_copy(runs["plain"], tmp_path / "copy", moments=scale_aug(factor))
    found = [k for k in TRAJECTORY if k in rows]
    assert {"wp_error", "w_error", "spectrum_error"} <= set(found)
    for key in found:
        assert rows[key].verdict != "agrees", (key, rows[key].detail)
    if factor == 0:  # X' = 0 is its own ablation null: the augmentation was not tested
        assert "not tested: augmentation" in rows["wp_error"].detail


def test_no_weight_decay_on_a_run_cut_early_never_agrees(runs, tmp_path):
    """2 eta t = 0.4 at the end: the weight decay has barely acted, and the prediction without
    it must still not agree."""
    rows = compare_copy(
        runs["plain"], tmp_path / "cut", measurements=lambda ds: no_weight_decay(cut_at(0.4)(ds))
    )
    assert "conservation_error" not in rows  # 2 eta t < 1: Theorem 1's decay not due
    for key in (k for k in TRAJECTORY if k in rows):
        assert rows[key].verdict != "agrees", (key, rows[key].detail)
    matched = compare_copy(runs["plain"], tmp_path / "cut_matched", measurements=cut_at(0.4))
    assert matched["wp_error"].value < rows["wp_error"].value / 3


@pytest.mark.parametrize("name", ["plain", "heavy"])
def test_the_matched_prediction_agrees_and_names_what_it_tested(runs, tmp_path, name):
    """Plain SGD against its simulation; heavy-ball momentum against the inertial flow. W and
    the spectrum agree with every ingredient tested; the tolerance comes from the noise floor
    (the run against its replay), and the W_p error is at most 3x that floor."""
    rows = compare_copy(runs[name], tmp_path / "copy")
    expected = (
        set(replay.INGREDIENTS) - {"norm growth"} - ({"momentum"} if name == "plain" else set())
    )
    for key in ("w_error", "spectrum_error"):
        assert rows[key].verdict == "agrees", rows[key].detail
        assert set(rows[key].tested) == expected
    assert "noise floor" in rows["wp_error"].tolerance_rule
    assert rows["wp_error"].value <= rows["wp_error"].tolerance
    if name == "plain":  # 2 eta t = 1.6 (the cosine run's 0.77 is too short for Theorem 1)
        assert rows["conservation_error"].kind == "property"
        assert rows["conservation_error"].nulls["no weight decay"] > 0.5  # it can fail
    else:  # the momentum-free (first-order) flow is a null 3x further off
        assert rows["wp_error"].ablations["momentum"] > 3 * rows["wp_error"].value


def test_an_edited_moments_file_does_not_pair(runs, tmp_path):
    copy = edited_copy(runs["plain"], tmp_path / "copy")
    pred, null = derive(copy)
    _rewrite(copy / "moments.nc", scale_aug(0.5))
    sims, loaded = load_inputs([str(pred), str(null)], [str(copy)])
    (pairing,) = pair_runs(loaded, sims)
    assert not pairing.predictions and len(pairing.changed) == 2


def test_sigma2_with_a_linear_run_is_refused(runs, tmp_path, capsys):
    out = tmp_path / "sim.nc"
    argv = ["linear_byol", "--from-run", str(runs["plain"]), "--sigma2", "0.3", "--out", str(out)]
    assert run_main(simulate_main, argv) == 2
    assert "--sigma2 0.3: not allowed" in capsys.readouterr().err
    assert not out.exists()
