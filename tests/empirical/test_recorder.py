"""The public recorder from a plain PyTorch loop that is not ``empirical.train``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from empirical.data import open_dataset
from empirical.recorder import Recorder
from symbolic.common.options import read_toml

LR, MU, WD, STEPS, EVERY = 1e-4, 0.9, 1e-3, 6, 3


@pytest.fixture(scope="module")
def own_loop(fashion_dir, tmp_path_factory):
    """A linear encoder z = W x on flattened images, trained by SGD on a toy loss in an own
    loop that calls only ``recorder.measure`` (every 3 steps) and ``recorder.write``."""
    out = tmp_path_factory.mktemp("own")
    torch.manual_seed(0)
    data = open_dataset(f"fashion-mnist:{fashion_dir}", 200, None, 0, torch.device("cpu"))
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 8, bias=False))
    opt = torch.optim.SGD(encoder.parameters(), lr=LR, momentum=MU, weight_decay=WD)
    config = {"method": "own_toy", "optimizer": "sgd", "momentum": MU, "probes": False}
    config["eval_size"] = 100
    recorder = Recorder(out, data, config, steps_per_epoch=STEPS, loss_directions=2)
    recorder.start()
    recorder.measure(0, lr=0.0, wd=WD, encoder=encoder)
    images = data.train.images[:64].float() / 255
    for step in range(STEPS):
        z = encoder(images)
        loss = ((z.T @ z / len(z) - torch.eye(8)) ** 2).sum()  # whitening: no collapse
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % EVERY == 0:
            recorder.measure(step + 1, lr=LR, wd=WD, encoder=encoder)
    recorder.write(epochs_completed=1, epochs=1)
    z = encoder(data.test.images[:100].float() / 255).detach().double().numpy()
    return out, z


def test_own_loop_gets_the_run_folder_with_flow_time_and_observables(own_loop):
    out, z = own_loop
    ds = xr.open_dataset(out / "measurements.nc")
    assert list(ds["step_at_measurement"].values) == [0, 3, 6]
    # schedule held at the measured values: t = D lr sum_{k<S} (1 - mu^{k+1}) / (1 - mu), D = 2
    k = np.arange(STEPS)
    expected = np.cumsum(2 * LR * (1 - MU ** (k + 1)) / (1 - MU))
    assert np.allclose(ds["flow_time_step"].values, expected, rtol=1e-12)
    assert float(ds["time"][-1]) == pytest.approx(expected[-1], rel=1e-12)
    assert np.allclose(ds["eta_step"].values, WD / 2)
    assert ds.attrs["partial"] == 0 and ds.attrs["name"] == "own_toy"
    # the last measurement is of the final encoder: SimSiam's z_std by hand (rows normalised)
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    assert float(ds["z_std"][-1]) == pytest.approx(np.mean(zn.std(axis=0)) * np.sqrt(8), rel=1e-6)
    assert read_toml(out / "config.toml")["method"] == "own_toy"
