"""examples/own_loop_linear_byol.py: a plain PyTorch loop recorded through the API is predicted
as well as the same setting trained by ``python -m empirical.train``, within the seed spread.

The prediction error is the comparison's ``wp_error`` (reports.compare: the relative Frobenius
error of the W_p trajectory) of ``dynamics.simulate linear_byol --from-run RUN`` against the run.
The spread is measured here on three seeds of the toolkit's run; the other-seed null
(``--initial seed``) must be far above both.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import xarray as xr

from dynamics.simulate import RunSettings, simulate
from reports.compare import STATISTICS
from tests.empirical.conftest import REPO, train

K, D, IMAGES, BATCH, EPOCHS, EVERY = 12, 6, 800, 100, 12, 24
LR, WD, TAU, NOISE = 0.02, 0.01, 0.99, 0.5
SEEDS = (0, 1, 2)


def example():
    spec = importlib.util.spec_from_file_location(
        "own_loop_linear_byol", REPO / "examples" / "own_loop_linear_byol.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wp_error(run, initial="run"):
    """wp_error of the --from-run simulation (or of the other-seed null) against the run."""
    with xr.open_dataset(run / "measurements.nc") as ds:
        measured = ds["wp"].values
    predicted = simulate(
        "linear_byol", RunSettings(rtol=1e-8, atol=1e-10), from_run=run, initial=initial, seed=7
    )
    return STATISTICS["wp_error"].compute(predicted["wp"].values, measured)


@pytest.fixture(scope="module")
def errors(fashion_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("own_loop")
    sizes = ["--epochs", str(EPOCHS), "--every", str(EVERY), "--eval-size", "300"]
    own = []
    for seed in SEEDS[:2]:
        out = root / f"own{seed}"
        example().main([
            "--data", f"fashion-mnist:{fashion_dir}", "--out", str(out), "--k", str(K),
            "--d", str(D), "--images", str(IMAGES), "--batch", str(BATCH), "--lr", str(LR),
            "--wd", str(WD), "--tau", str(TAU), "--noise", str(NOISE), "--seed", str(seed), *sizes,
        ])  # fmt: skip
        own.append(wp_error(out))
    toolkit, null = [], None
    for seed in SEEDS:
        out = root / f"train{seed}"
        code = train(
            "byol", out, fashion_dir,
            "--backbone", "linear", "--input-dim", str(K), "--width", str(D),
            "--projector", "none", "--predictor", "linear", "--loss", "linear_byol",
            "--optimizer", "sgd", "--momentum", "0", "--lr-schedule", "constant",
            "--lr", str(LR * 256 / BATCH), "--weight-decay", str(WD), "--ema-base", str(TAU),
            "--ema-final", str(TAU), "--augment", "shift", "--aug-shift", "0", "--no-aug-flip",
            "--aug-noise", str(NOISE), "--train-subset", str(IMAGES), "--batch-size", str(BATCH),
            "--measure-every", str(EVERY), "--no-probes", "--eval-size", "300",
            "--moments-images", str(IMAGES), "--moments-views", "16", "--seed", str(seed),
            epochs=EPOCHS,
        )  # fmt: skip
        assert code == 0
        toolkit.append(wp_error(out))
        null = wp_error(out, initial="seed") if seed == 0 else null
    return np.array(own), np.array(toolkit), null


@pytest.mark.slow
def test_own_loop_is_predicted_as_well_as_the_toolkit_run(errors):
    own, toolkit, null = errors
    print(f"wp_error: own loop {own}, empirical.train {toolkit}, other-seed null {null:.3g}")
    spread = toolkit.max() - toolkit.min()
    low, high = toolkit.min() - spread, toolkit.max() + spread
    assert np.all((own >= low) & (own <= high)), (own, toolkit)
    assert max(own.max(), toolkit.max()) < null / 5, (own, toolkit, null)
