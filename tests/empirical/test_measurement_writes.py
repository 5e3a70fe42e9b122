"""measurements.nc is rewritten after each epoch that measured and after the last epoch a
process trains (the end, or --stop-after), not after every epoch: a run stopped between two
measurements still records every step it took, and its resumed run equals the straight one."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

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
        # the loss means over the steps since the last measurement: a resume restarts their sums
        # (the checkpoint does not hold them; so on main before this change too)
        for var in a.data_vars:
            if var != "throughput" and not var.startswith("loss"):
                assert np.array_equal(a[var].values, b[var].values, equal_nan=True), var
