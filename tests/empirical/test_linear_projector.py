"""A linear encoder W behind a projector: its record and what the theory's tools make of it.

With a projector the encoder's output h (width rows) is not the embedding (d rows of W_p): the
record names W's rows ``feature`` (a run with width 8 and d = 4 used to fail writing its
measurements, "conflicting sizes for dimension 'row'"), and ``dynamics.simulate --from-run``,
whose theory has the embedding W x, refuses the run in one line (and the replay of its
optimiser on the population loss, :mod:`dynamics.replay`, declines it).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from dynamics import replay
from dynamics.simulate import main as simulate_main
from symbolic.common.cli import run_main
from tests.empirical.conftest import train

LINEAR_WITH_PROJECTOR = [
    "--backbone", "linear", "--input-dim", "8", "--width", "8", "--depth", "2",
    "--proj-hidden", "16", "--proj-dim", "4", "--predictor", "linear", "--optimizer", "sgd",
    "--moments-images", "200", "--moments-views", "4", "--no-probes", "--threads", "1",
]  # fmt: skip


@pytest.fixture(scope="module")
def run(fashion_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("projector") / "run"
    assert train("byol", out, fashion_dir, *LINEAR_WITH_PROJECTOR) == 0
    return out


def test_encoder_rows_are_named_apart_from_the_embedding(run):
    """W (8 x 8), its target copy and the layer above W_1 (8 x 8) over ``feature``, W_p (4 x 4)
    over ``row``/``col``; the stored weights are the checkpoint's (W = W_2 W_1)."""
    model = torch.load(run / "checkpoint.pt", weights_only=True)["model"]
    with xr.open_dataset(run / "measurements.nc") as ds:
        assert ds["w"].dims == ("epoch", "feature", "input") and ds["w"].shape[1:] == (8, 8)
        assert ds["w_target"].dims == ("epoch", "feature", "input")
        assert ds["w_up"].dims == ("epoch", "layer", "feature", "feature_col")
        assert ds["w_up"].shape[1:] == (1, 8, 8)
        assert ds["wp"].dims == ("epoch", "row", "col") and ds["wp"].shape[1:] == (4, 4)
        w, w_up, wp = (ds[k].values[-1] for k in ("w", "w_up", "wp"))
    w1, w2 = model["online.backbone.linear.weight"], model["online.backbone.above.0.weight"]
    np.testing.assert_allclose(w_up[0], w2.double().numpy(), rtol=0, atol=0)
    product = (w2.double() @ w1.double()).numpy()  # the encoder multiplies in float32
    np.testing.assert_allclose(w, product, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(wp, model["online.predictor.linear.weight"].double().numpy(), atol=0)


def test_from_run_refuses_a_projector_run_in_one_line(run, tmp_path, capsys):
    capsys.readouterr()
    argv = ["linear_byol", "--from-run", str(run), "--out", str(tmp_path / "sim.nc")]
    code = run_main(simulate_main, argv)
    err = capsys.readouterr().err
    assert code == 2 and "train with --projector none" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "sim.nc").exists()


def test_replay_declines_a_projector_run(run):
    with pytest.raises(replay.NotReplayable, match="projector"):
        replay.load_problem(run)
