"""measurements.nc is rewritten after each epoch that measured and after the last epoch a
process trains (the end, or --stop-after), not after every epoch: a run stopped between two
measurements still records every step it took, and its resumed run equals the straight one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from empirical.checkpoint import loss_sums
from symbolic.common.cli import UsageError
from tests.empirical.conftest import train

FAR = ("--measure-every", "1000000")  # measured at step 0 and at the last step only


def test_a_run_stopped_between_measurements_records_every_step_and_resumes(fashion_dir, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train("byol", straight, fashion_dir, *FAR, epochs=3) == 0
    assert train("byol", split, fashion_dir, *FAR, "--stop-after", "2", epochs=3) == 0
    state = torch.load(split / "checkpoint.pt", weights_only=True)
    with xr.open_dataset(split / "measurements.nc") as ds:
        per_epoch = int(ds.attrs["steps_per_epoch"])
        assert ds.attrs["partial"] == 1 and ds.attrs["epochs_completed"] == 2
        assert list(ds["step_at_measurement"].values) == [0]
        assert ds.sizes["step"] == 2 * per_epoch == state["step"]
    assert train("byol", split, fashion_dir, *FAR, "--resume", epochs=3) == 0
    with (
        xr.open_dataset(straight / "measurements.nc") as a,
        xr.open_dataset(split / "measurements.nc") as b,
    ):
        assert list(a["step_at_measurement"].values) == [0, 3 * per_epoch]
        assert a.attrs["partial"] == b.attrs["partial"] == 0
        # the loss* means over the steps since the last measurement too: the checkpoint holds
        # their sums
        assert any(var.startswith("loss") for var in a.data_vars)
        for var in a.data_vars:
            if var != "throughput":
                assert np.array_equal(a[var].values, b[var].values, equal_nan=True), var


def test_a_checkpoint_without_loss_sums_resumes_only_at_a_measurement():
    """A checkpoint of a version that did not store the loss sums: at a measurement they were
    empty (resumed as such), between two its next loss would be another mean (refused)."""
    at_measurement = {"step": 40, "history": [{"step": 0}, {"step": 40}]}
    assert loss_sums(at_measurement, Path("c.pt"), torch.device("cpu")) == ({}, 0)
    between = {"step": 40, "history": [{"step": 0}, {"step": 20}]}
    with pytest.raises(UsageError, match="step 40, between measurements .*at step 20"):
        loss_sums(between, Path("c.pt"), torch.device("cpu"))
    stored = {"loss_sums": {"loss": torch.tensor(3.5)}, "loss_count": 7, **between}
    sums, count = loss_sums(stored, Path("c.pt"), torch.device("cpu"))
    assert count == 7 and sums["loss"].item() == 3.5


def test_checkpoints_every_k_epochs_and_a_run_killed_between_them_resumes_from_the_last(
    fashion_dir, tmp_path, monkeypatch
):
    """--checkpoint-every 2 over 5 epochs saves after epochs 2, 4 and 5; a run interrupted in
    epoch 4 resumes from epoch 2's checkpoint and ends equal to the straight run saved every
    epoch."""
    from empirical import trainer

    straight, sparse = tmp_path / "straight", tmp_path / "sparse"
    assert train("byol", straight, fashion_dir, "--measure-every", "3", epochs=5) == 0
    saved, real_save, real_epoch = [], trainer.save_checkpoint, trainer.Run.train_epoch

    def save(state, path):
        saved.append(state["epoch"])
        return real_save(state, path)

    def interrupted_in_epoch_4(run):
        if run.epoch == 4:
            raise KeyboardInterrupt("test")
        return real_epoch(run)

    monkeypatch.setattr(trainer, "save_checkpoint", save)
    monkeypatch.setattr(trainer.Run, "train_epoch", interrupted_in_epoch_4)
    args = ("--measure-every", "3", "--checkpoint-every", "2")
    assert train("byol", sparse, fashion_dir, *args, epochs=5) != 0
    assert saved == [2]
    monkeypatch.setattr(trainer.Run, "train_epoch", real_epoch)
    assert train("byol", sparse, fashion_dir, *args, "--resume", epochs=5) == 0
    assert saved == [2, 4, 5]
    with (
        xr.open_dataset(straight / "measurements.nc") as a,
        xr.open_dataset(sparse / "measurements.nc") as b,
    ):
        assert a.sizes["epoch"] > 2 and a.attrs["partial"] == b.attrs["partial"] == 0
        for var in a.data_vars:
            if var != "throughput":
                assert np.array_equal(a[var].values, b[var].values, equal_nan=True), var
