"""A scaled loss (--loss-param scale=s) moves each SGD step by s: the run's flow time and eta."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from tests.empirical.conftest import train

STEPS = 4  # 256 training images / batch 64


def test_scale_multiplies_the_flow_time_and_divides_eta(fashion_dir, tmp_path):
    """Constant lr, no momentum, BYOL's two summed directions, loss s L:
    t(S) = 2 s lr S, eta = wd / (2 s) (closed form of empirical.flow)."""
    lr, wd, s = 0.02, 1e-3, 0.25
    options = ["--optimizer", "sgd", "--lr-schedule", "constant", "--momentum", "0"]
    options += ["--weight-decay", str(wd), "--loss-param", f"scale={s}", "--no-probes"]
    assert train("byol", tmp_path / "run", fashion_dir, *options, "--lr", str(lr * 4)) == 0
    ds = xr.open_dataset(tmp_path / "run" / "measurements.nc")
    assert float(ds["time"][-1]) == pytest.approx(2 * s * lr * STEPS, rel=1e-12)
    assert np.allclose(ds["eta_step"].values, wd / (2 * s))
    assert ds.attrs["loss_scale"] == s and ds.attrs["loss_directions"] == 2
