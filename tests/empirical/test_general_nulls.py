"""Runs of other losses than eq. 1 carry a replay and ablation nulls: no hole for "agrees".

Tiny real runs (``python -m empirical.train ... --backbone linear --projector none``: 40 plain
SGD steps at batch 64 over 512 images on 8 principal components) of Barlow Twins (no weight
decay) and of BYOL's cosine loss (linear predictor, EMA target, D = 2) are predicted by
``python -m dynamics.simulate --from-run RUN`` (``general``: the gradient flow of the run's own
loss over its fixed pairs, ``pairs.nc``), derived, paired and compared as ``python -m
reports.build`` does (``reports.compose``). Expected, from independent sources:

- the matched Barlow Twins prediction agrees on W, having tested the augmentation and X' to a
  factor 2 (the nulls are the same flow on pairs whose views are replaced by their mean or
  spread by sqrt(2)^{+-1}), its tolerance 3x the noise floor of the run's replay;
- the prediction derived from a copy whose ``pairs.nc`` has the augmentation removed (the edit
  is the source) is never reported as agreeing, and a pairs.nc edited after deriving does not
  pair;
- the replay (the run's SGD on the expected minibatch loss over its pairs) lands far closer
  to the run than another seed's start (the run is deterministic but for its minibatch noise);
- the cosine-BYOL run gets the EMA-lag and clock-D nulls, each far from its prediction's W.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from dynamics import replay, replay_general
from dynamics.simulate import main as simulate_main
from reports import compare, reference_cache
from reports.compose import findings, pair_runs
from reports.experiments.markers import written_files
from reports.inputs import load_inputs, load_result
from reports.references import references, references_of
from symbolic.common.cli import run_main
from tests.empirical.conftest import train

pytestmark = pytest.mark.slow

LINEAR = [
    "--backbone", "linear", "--input-dim", "8", "--width", "8", "--projector", "none",
    "--optimizer", "sgd", "--momentum", "0", "--lr-schedule", "constant", "--measure-every", "10",
    "--no-probes", "--train-subset", "512", "--moments-images", "512", "--batch-size", "64",
    "--threads", "1", "--lr", "0.08",
]  # fmt: skip
RUNS = {
    "barlow_twins": ["--weight-decay", "0"],
    "byol": ["--predictor", "linear", "--ema-base", "0.99", "--ema-final", "0.99",
             "--weight-decay", "0"],
}  # fmt: skip
AUGMENTATION = {"augmentation", "X' x2", "X' x0.5"}


@pytest.fixture(scope="module")
def runs(fashion_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("general_nulls")
    done = {}

    def get(method: str) -> Path:
        if method not in done:
            code = train(method, root / method, fashion_dir, *LINEAR, *RUNS[method], epochs=5)
            assert code == 0
            done[method] = root / method
        return done[method]

    return get


def derive(run: Path) -> tuple[Path, Path]:
    """The prediction and its other-seed null, through the command line."""
    pred, null = run / "prediction.nc", run / "null.nc"
    for initial, out in (("run", pred), ("seed", null)):
        argv = ["--from-run", str(run), "--initial", initial, "--seed", "7", "--quiet"]
        assert run_main(simulate_main, [*argv, "--out", str(out)]) == 0
    return pred, null


def verdicts(run: Path, pred: Path, null: Path) -> dict[str, compare.Row]:
    sims, loaded = load_inputs([str(pred), str(null)], [str(run)])
    return {row.key: row for _, _, row in findings(pair_runs(loaded, sims))}


def without_augmentation(pairs: Path) -> None:
    """Each stored pair's two views replaced by their mean (X' = 0 in the pairs)."""
    with xr.open_dataset(pairs, engine="netcdf4") as ds:
        ds = ds.load()
    mean = (ds["x1"] + ds["x2"]) / 2
    ds["x1"], ds["x2"] = mean, mean.copy()
    pairs.unlink()
    ds.to_netcdf(pairs, engine="netcdf4")


def test_the_matched_prediction_agrees_on_w_and_names_what_it_tested(runs, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(runs("barlow_twins"), copy)
    rows = verdicts(copy, *derive(copy))
    w = rows["w_error"]
    assert w.verdict == "agrees", w.detail
    assert set(w.tested) == AUGMENTATION and set(w.ablations) == AUGMENTATION  # no wd, no EMA
    assert w.detail.startswith("agrees (tested: augmentation, X' x2, X' x0.5")
    assert "noise floor" in w.tolerance_rule
    assert rows["sigma_error"].ablations.keys() == AUGMENTATION  # Sigma has the same nulls


def test_a_prediction_from_pairs_without_augmentation_never_agrees(runs, tmp_path):
    matched = tmp_path / "matched"
    shutil.copytree(runs("barlow_twins"), matched)
    good = verdicts(matched, *derive(matched))["w_error"]
    copy = tmp_path / "edited"
    shutil.copytree(runs("barlow_twins"), copy)
    without_augmentation(copy / "pairs.nc")
    rows = verdicts(copy, *derive(copy))
    assert {"w_error", "sigma_error"} <= set(rows)
    for key, row in rows.items():
        assert row.verdict != "agrees", (key, row.detail)
    assert rows["w_error"].value > 3 * good.value
    # a pairs.nc edited after the prediction was derived does not pair with it
    pred, null = derive(matched)
    without_augmentation(matched / "pairs.nc")
    sims, loaded = load_inputs([str(pred), str(null)], [str(matched)])
    (pairing,) = pair_runs(loaded, sims)
    assert not pairing.predictions and len(pairing.changed) == 2


def test_the_replay_lands_far_closer_to_the_run_than_another_seed(runs, tmp_path):
    run = runs("barlow_twins")
    result = load_result(run / "measurements.nc", "training")
    refs = references(result)
    measured = result.trajectory()
    _, null = derive(shutil.copytree(run, tmp_path / "run"))
    other = load_result(null, "simulation").trajectory()
    floor = compare.relative_error(refs.replay.w, measured.w)
    assert 10 * floor < compare.relative_error(other.w, measured.w), floor
    assert floor > 0  # the run has minibatch noise; the replay has none


def test_an_ema_run_gets_the_ema_lag_and_clock_nulls(runs, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(runs("byol"), copy)
    w = verdicts(copy, *derive(copy))["w_error"]
    assert set(w.ablations) == AUGMENTATION | {"EMA lag", "clock D"}
    assert {"EMA lag", "clock D"} <= set(w.tested), w.detail


def test_the_stacked_and_parallel_references_equal_each_flow_computed_alone(runs):
    """A run's nulls of its own loss integrated as one stacked system (``replay.flows``;
    ``replay.ablations`` integrates them one by one) equal each null's flow integrated alone
    (to the adaptive integration's tolerance: its steps follow the whole stacked state); the
    references of several runs computed in worker processes equal those computed here."""
    byol, barlow = runs("byol"), runs("barlow_twins")
    problem = replay_general.load_problem(byol, source="flow")
    ingredients = list(problem.applicable())
    members = [problem.without(i) for i in ingredients]
    paths = replay.flows(members, inertial=problem.momentum > 0)
    stacked = dict(zip(ingredients, paths, strict=True))
    for ingredient in ingredients:
        alone = replay.flow(problem.without(ingredient))
        assert np.abs(stacked[ingredient].w - alone.w).max() < 1e-8, ingredient
        assert np.abs(stacked[ingredient].wp - alone.wp).max() < 1e-8, ingredient
    paths = {m: run / "measurements.nc" for m, run in (("byol", byol), ("barlow", barlow))}
    parallel = references_of(paths, jobs=2)
    for method, path in paths.items():
        here = references(load_result(path, "training"))
        there = parallel[method]
        assert set(there.ablations) == set(here.ablations) and there.notes == here.notes
        pairs = [(there.replay, here.replay)]
        pairs += [(there.ablations[i], here.ablations[i]) for i in here.ablations]
        for a, b in pairs:
            assert np.abs(a.w - b.w).max() < 1e-10 and np.abs(a.t - b.t).max() == 0
            if b.sigma is not None:
                assert np.abs(a.sigma - b.sigma).max() < 1e-10


def _same(a, b) -> bool:
    """Two trajectories with equal arrays (exactly), eta and alpha_p."""
    fields = ("t", "wp", "w", "sigma")
    arrays = all(
        (getattr(a, f) is None) == (getattr(b, f) is None)
        and (getattr(a, f) is None or np.array_equal(getattr(a, f), getattr(b, f)))
        for f in fields
    )
    return arrays and (a.eta, a.alpha_p) == (b.eta, b.alpha_p)


def test_references_are_computed_once_per_run_and_code(runs, tmp_path, monkeypatch):
    """A run's references stored beside it (reports.reference_cache) read back equal to those
    computed here, and only under the same code revision and files: another revision or an
    edited pairs.nc computes them again, and code with uncommitted changes has no key."""
    run = tmp_path / "run"
    shutil.copytree(runs("barlow_twins"), run)
    path = run / "measurements.nc"
    monkeypatch.setattr(reference_cache, "git_revision", lambda: "0" * 40)
    files = {p.name: p.read_bytes() for p in written_files(run)}
    stored = reference_cache.cached_references_of({"a": path}, jobs=1)["a"]
    expected = references(load_result(path, "training"))
    assert reference_cache.cache_path(load_result(path, "training")).is_file()
    # the run's files (its manifest, the runner's marker of it) are as they were
    assert (
        "manifest.json" in files and {p.name: p.read_bytes() for p in written_files(run)} == files
    )

    def refuse(*_):
        raise AssertionError("computed again")

    monkeypatch.setattr(reference_cache, "references", refuse)
    monkeypatch.setattr(reference_cache, "references_of", refuse)
    read = reference_cache.cached_references(load_result(path, "training"))
    again = reference_cache.cached_references_of({"a": path})["a"]
    for refs in (stored, read, again):
        assert refs.notes == expected.notes and refs.inertial is None
        assert set(refs.ablations) == set(expected.ablations) == AUGMENTATION
        assert _same(refs.replay, expected.replay)
        assert all(_same(refs.ablations[i], expected.ablations[i]) for i in AUGMENTATION)

    monkeypatch.setattr(reference_cache, "git_revision", lambda: "1" * 40)
    with pytest.raises(AssertionError, match="computed again"):
        reference_cache.cached_references(load_result(path, "training"))
    monkeypatch.setattr(reference_cache, "git_revision", lambda: "0" * 40)
    pairs = xr.load_dataset(run / "pairs.nc")
    pairs["x1"] = pairs["x1"] * 1.001
    pairs.to_netcdf(run / "pairs.nc")
    with pytest.raises(AssertionError, match="computed again"):
        reference_cache.cached_references(load_result(path, "training"))
    monkeypatch.setattr(reference_cache, "git_revision", lambda: "0" * 40 + "-dirty")
    assert reference_cache.cache_key(load_result(path, "training")) is None
