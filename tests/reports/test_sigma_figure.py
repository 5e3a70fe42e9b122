"""reports.figures.sigma: runs trained at different batch sizes drawn against their optimiser
steps (not epochs), each labelled by its method and, where it differs, its loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from reports.compose import Pairing
from reports.figures.base import Inputs
from reports.figures.sigma import MEAN_SQ, STEP, TOTAL, sigma_prediction
from reports.inputs import Result

T_END = 2.4


def _result(kind: str, ds: xr.Dataset, name: str) -> Result:
    return Result(Path(f"{name}.nc"), kind, name, {}, dict(ds.attrs), "0" * 64, ds, ident=name)


def _pairing(method: str, loss: str, epochs_per_measurement: int) -> Pairing:
    """A run of 2400 steps measured every 200 (every ``epochs_per_measurement`` epochs) and
    its prediction; ||Sigma - I|| grows linearly in flow time in both."""
    t = np.linspace(0.0, T_END, 13)
    epoch = ("epoch", epochs_per_measurement * np.arange(13.0))
    run = xr.Dataset(
        {"time": ("epoch", t), STEP: ("epoch", 200.0 * np.arange(13)),
         TOTAL: ("epoch", 7 + 10 * t), MEAN_SQ: ("epoch", (7 + 10 * t) / 50)},
        coords={"epoch": epoch[1]}, attrs={"name": method, "loss_name": loss},
    )  # fmt: skip
    ts = np.linspace(0.0, T_END, 50)
    sim = xr.Dataset(
        {TOTAL: ("time", 7 + 10 * ts), MEAN_SQ: ("time", (7 + 10 * ts) / 50)},
        coords={"time": ts}, attrs={"name": "general"},
    )  # fmt: skip
    return Pairing(_result("training", run, method), [_result("simulation", sim, "general")])


def test_runs_at_other_batch_sizes_share_the_step_axis_and_their_losses_are_named():
    """Two runs of 2400 steps, one of 300 epochs of 8 steps and one of 2400 epochs of one step
    (the whole pool per step), end at the same x; SimCLR's two losses get two labels."""
    pairings = [
        _pairing("simclr", "nt_xent", 25),
        _pairing("simclr", "spectral", 25),
        _pairing("vicreg", "vicreg", 200),
    ]
    left = sigma_prediction(Inputs(pairings=pairings)).figure.axes[0]
    assert left.get_xlabel() == "optimiser step"
    for line in left.get_lines():
        assert line.get_xdata()[-1] == 2400.0, line.get_label()
    labels = {line.get_label() for line in left.get_lines()}
    assert {"simclr (nt_xent): run", "simclr (spectral): run", "vicreg: run"} <= labels
