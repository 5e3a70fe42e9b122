"""The bridge rung ``collapse_mlp`` (reports.collapse_mlp): its measured count on hand-made
spectra whose answer is known, and a tiny rung end to end on synthetic images.

- commuting X_h = diag(x), X'_h = diag(x'): the modes are the axes, and a final feature
  eigenvalue is alive when at least 1/4 of x^3 / (4 (x + x')^2), computed here by hand;
- the rung on the bridge's runner: the pilot MLP run writes its feature moments (X'_h >= 0 and
  X_h + X'_h the second moment of its features, both symmetric), every bracketing run is
  reported, and the prediction is the count of the pilot's thresholds above the weight decay.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from dynamics.collapse_modes import pencil_modes
from reports.collapse_mlp import measured_count


def test_a_final_feature_eigenvalue_is_alive_above_a_quarter_of_its_modes_smallest_fixed_point(
    tmp_path,
):
    x, x_aug = np.array([4.0, 2.0, 1.0]), np.array([1.0, 2.0, 3.0])
    floor = 0.25 * x**3 / (4 * (x + x_aug) ** 2)  # 0.16, 0.03125, 0.00390625
    modes = pencil_modes(np.diag(x), np.diag(x_aug))
    np.testing.assert_allclose(modes.x, x)  # strongest threshold first: the same order here
    for eig, alive in [((0.7, 0.2, 0.02), 3), ((0.7, 0.03, 0.02), 2), ((0.15, 0.1, 0.002), 1)]:
        run = tmp_path / f"run{alive}_{eig[0]}_{eig[1]}"
        run.mkdir()
        corr = np.array([[9.0, 9.0, 9.0], list(eig)[::-1]])  # the last one counts, any order
        xr.Dataset({"corr_eig": (("t", "mode"), corr)}).to_netcdf(run / "measurements.nc")
        count, _ = measured_count(run, modes)
        assert count == alive, (eig, floor)


@pytest.fixture
def tiny_mlp_check(tmp_path, monkeypatch):
    """The MLP rung at a few seconds a run: synthetic Fashion-MNIST files, one bracketed mode."""
    import dataclasses

    from reports import collapse_mlp
    from tests.empirical.conftest import _fashion_arrays, write_idx

    data = tmp_path / "fashion"
    data.mkdir()
    for name, array in _fashion_arrays(1000, 300).items():
        write_idx(data / f"{name}.gz", array)
    size = dataclasses.replace(
        collapse_mlp.MLP_SIZE, width=4, batch=64, lr=0.1, epochs=2, pool=256, measure_every=4,
        val_size=100, eval_size=200, data=f"fashion-mnist:{data}",
    )  # fmt: skip
    monkeypatch.setattr(collapse_mlp, "MLP_SIZE", size)
    monkeypatch.setattr(collapse_mlp, "BRACKETED", 1)
    monkeypatch.setattr(collapse_mlp, "PILOT_EPOCHS", 1)
    return tmp_path


def test_the_mlp_rung_predicts_from_its_pilot_s_feature_moments(tiny_mlp_check):
    from reports import bridge

    out = tiny_mlp_check / "report"
    argv = ["--rungs", "collapse_mlp", "--seeds", "2", "--jobs", "1", "--quiet", "--out", str(out)]
    assert bridge.main(argv) == 0
    with xr.open_dataset(out / "work" / "collapse_mlp" / "pilot" / "feature_moments.nc") as m:
        x, a = m["x_corr"].values, m["aug_cov"].values
        assert x.shape == (4, 4) and m.attrs["n_images"] == 256
    assert np.linalg.eigvalsh(a).min() > -1e-9 and np.linalg.eigvalsh(x + a).min() > -1e-9
    record = json.loads((out / "collapse_mlp" / "provenance.json").read_text())
    thresholds = np.array(record["thresholds"])
    assert len(record["outcomes"]) == 4  # two decays bracketing one mode, two seeds
    for o in record["outcomes"]:
        assert o["predicted"] == int(np.sum(thresholds > o["weight_decay"]))
        assert 0 <= o["measured"] <= 4 and 0 <= o["predicted_horizon"] <= 4
    assert (out / "collapse_mlp" / "collapse_mlp.md").is_file()
