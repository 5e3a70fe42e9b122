"""A run whose encoder decays to exactly W = 0 finishes and says it collapsed.

SimSiam on a linear encoder with Tian's loss and a weight decay that removes 99% of W per step
(peak lr 0.25 x weight decay 3.96 = 0.99): W underflows to 0 within 20 steps. Its ratio
observables (conservation_residual = ||W_p^T W_p - F|| / ||F||, ...) are then 0/0: the run used to
stop writing its measurements ("conservation_residual holds NaN"); now it records them as
undefined (NaN, listed in ``undefined_values``) and reports the collapse.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from tests.empirical.conftest import train

DECAY_TO_ZERO = [
    "--backbone", "linear", "--input-dim", "8", "--projector", "none", "--predictor", "linear",
    "--loss", "linear_byol", "--optimizer", "sgd", "--momentum", "0", "--lr", "1",
    "--lr-schedule", "constant", "--weight-decay", "3.96", "--moments-images", "200",
    "--moments-views", "4", "--no-probes", "--threads", "1",
]  # fmt: skip


def test_a_run_decayed_to_zero_finishes_and_says_it_collapsed(fashion_dir, tmp_path):
    assert train("simsiam", tmp_path, fashion_dir, *DECAY_TO_ZERO, epochs=5) == 0
    with xr.open_dataset(tmp_path / "measurements.nc") as ds:
        w = np.abs(ds["w"].values).max(axis=(1, 2))
        assert w[0] > 0.1 and w[-1] == 0  # the scenario: from order 1 to exactly zero
        assert ds["collapsed"].values[-1] == 1 and ds.attrs["partial"] == 0
        undefined = ds.attrs["undefined_values"].split(", ")
        for name in ("conservation_residual", "commutator_norm", "alignment_cos"):
            values = ds[name].values.reshape(len(w), -1)
            assert name in undefined
            assert np.isfinite(values[w > 1e-6 * w[0]]).all(), name  # W of order 1: defined
            assert np.isnan(values[w == 0]).all(), name  # 0/0 at W = 0: undefined
        last_ratios = {n: ds[n].values[-1] for n in ("wp_asymmetry", "commutator_norm")}
    log = (tmp_path / "log.txt").read_text()
    assert "COLLAPSED: z_std = 0.0000" in log
    # the summary table's final column: what the file holds (NaN, undefined), not the 0 of 0/0
    rows = {" ".join(line.split()[:2]): line.split() for line in log.splitlines()}
    assert rows["mean rho^2"][-1] == "undefined", rows["mean rho^2"]  # no spread to correlate
    for label, name in (("W_p asymmetry", "wp_asymmetry"), ("W_p-F commutator", "commutator_norm")):
        assert np.isnan(last_ratios[name]), name
        random_encoder, final = rows[label][2], " ".join(rows[label][3:])
        assert float(random_encoder) > 0 and final == "undefined (W = 0)", rows[label]
