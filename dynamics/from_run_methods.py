"""Any method's linear run predicted: the scenario of a run, and the ``general`` simulation of a
run whose loss is not Tian's eq. 1 (``dynamics.simulate --from-run RUN``).

A run of ``empirical.train`` with ``--backbone linear --projector none`` trained with the loss of
Tian et al.'s eq. 1 (``--loss linear_byol``) is predicted by ``linear_byol`` / ``linear_simsiam``
from X and X' (:mod:`dynamics.from_run`). Every other loss (cosine BYOL and SimSiam, Barlow Twins
with its per-batch standardisation, VICReg, NT-Xent, Liu et al.'s, the spectral loss) is predicted
by the ``general`` model (:mod:`dynamics.models.general`): the gradient flow of the run's own loss
(its hyperparameters, its target: EMA, online under stop-gradient, or none; Liu et al.'s two
directions) averaged over the n // B consecutive blocks of B pairs of the run's fixed sample of
augmented pairs (``pairs.nc``, :mod:`empirical.pairs`), B the run's batch size: the expected
minibatch loss at the run's batch size over that sample. As for eq. 1 (:mod:`dynamics.from_run`):

- flow time is the run's (``time``: D lr per step, D = loss_directions x loss_scale) and the flow
  is that of L_run / D, eta = wd / D, the predictor's decay alpha_p eta;
- W(0), W_p(0), W_a(0) are the run's first measurement (``initial='run'``), or drawn for another
  seed as torch initialises bias-free Linear layers (``initial='seed'``, the null);
- alpha_p(t) and beta(t) are the run's piecewise-constant schedules.

The attribute ``prediction_kind`` says which of the two predictions a result is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from dynamics.from_run import (
    MOMENTS_FILE,
    RUN_FILE,
    Derived,
    _one_value,
    _open,
    _run_params,
    _sha256,
    _variable,
    torch_like_init,
)
from dynamics.models.general import ROLES, RunInputs
from dynamics.schedules import PiecewiseConstant
from symbolic import losses
from symbolic.common.cli import UsageError

PAIRS_FILE = "pairs.nc"
#: the scenarios of Tian's eq. 1 (X and X') and of any other loss (the pairs)
EQ1_LOSS = "linear_byol"
GENERAL = "general"
EQ1_KIND = "population gradient flow of Tian's eq. 1 from X and X' (moments.nc)"


def run_file(run: str | Path) -> Path:
    run = Path(run)
    path = run / RUN_FILE if run.is_dir() else run
    if not path.is_file():
        raise UsageError(f"--from-run {run}: no {RUN_FILE} (a folder of python -m empirical.train)")
    return path


def scenario_of(run: str | Path) -> str:
    """The scenario that predicts the run: ``linear_byol``/``linear_simsiam`` for eq. 1 with a
    linear predictor, ``general`` for any other loss on a linear encoder."""
    path = run_file(run)
    attrs = _open(path).attrs
    predicted_by = str(attrs.get("matched_scenario", "none"))
    if str(attrs.get("loss_name")) == EQ1_LOSS and predicted_by != "none":
        return predicted_by
    return GENERAL


def _check_run(ds: xr.Dataset, path: Path, options: dict) -> None:
    attrs = ds.attrs
    if attrs.get("kind") != "training":
        raise UsageError(f"--from-run {path}: not a training run (kind {attrs.get('kind')!r})")
    if "flow_time_undefined" in attrs:
        raise UsageError(f"--from-run {path}: {attrs['flow_time_undefined']}")
    if "w" not in ds:
        raise UsageError(
            f"--from-run {path}: the run stored no W: general predicts runs of a linear encoder "
            "(--backbone linear --projector none)"
        )
    if str(options.get("projector", "none")) != "none":
        raise UsageError(f"--from-run {path}: the run has a projector; train with --projector none")
    if str(attrs.get("predictor_kind")) == "set":
        raise UsageError(
            f"--from-run {path}: its predictor is set from the features at every step "
            f"({attrs.get('name')}), not trained by its loss: general cannot predict it"
        )
    loss = str(attrs.get("loss_name"))
    if loss == EQ1_LOSS:
        raise UsageError(
            f"--from-run {path}: its loss is Tian's eq. 1: it is predicted by "
            f"{attrs.get('matched_scenario')} (from X and X')"
        )
    if tuple(losses.get(loss).args) not in ROLES or ROLES[tuple(losses.get(loss).args)] in (
        "queue",
        "gram",
    ):
        raise UsageError(
            f"--from-run {path}: its loss {loss} keeps state (a queue) or acts on the batch "
            "Gram matrix; general predicts pair, predictor and eq.-1 losses"
        )


def derive_general(run: str | Path, initial: str = "run", seed: int = 0) -> Derived:
    """The parameters, inputs and output times of ``general`` derived from the run ``run``."""
    path = run_file(run)
    ds = _open(path)
    options = _run_params(ds.attrs, path)
    _check_run(ds, path, options)
    attrs = ds.attrs
    pairs_path = path.parent / PAIRS_FILE
    if not pairs_path.is_file():
        raise UsageError(
            f"--from-run {run}: no {PAIRS_FILE} (the fixed sample of augmented pairs; runs of "
            "empirical.train on a linear backbone write it)"
        )
    pairs = _open(pairs_path)
    t_eval = _variable(ds, "time", path, "the measurement times")
    if t_eval[0] != 0 or np.any(np.diff(t_eval) <= 0):
        raise UsageError(f"--from-run {path}: its measurement times are not increasing from 0")
    edges = np.concatenate([[0.0], _variable(ds, "flow_time_step", path, "the flow time")])
    eta = _one_value(
        _variable(ds, "eta_step", path, "eta"), "weight decay per unit flow time eta", path
    )
    w0 = np.asarray(ds["w"].values[0], dtype=float)
    d, n1 = w0.shape
    x1 = np.asarray(pairs["x1"].values, dtype=float)
    batch = int(options.get("batch_size", 0))
    if x1.shape[1] != n1 or not 2 <= batch <= x1.shape[0]:
        raise UsageError(
            f"--from-run {run}: {PAIRS_FILE} holds {x1.shape[0]} pairs of dimension "
            f"{x1.shape[1]}; the run needs dimension {n1} and at least its batch size {batch}"
        )
    directions = float(attrs.get("loss_directions", 1)) * float(attrs.get("loss_scale", 1.0))
    loss = str(attrs.get("loss_name"))
    target = str(attrs.get("target", "none"))
    params: dict[str, Any] = {
        "dim": d,
        "input_dim": n1,
        "n_samples": x1.shape[0],
        "eta": eta,
        "loss": loss,
        "loss_params": dict(options.get("loss_params") or {}),
        "target": "ema" if target == "ema" else "online",
        "batch_size": batch,
        "directions": directions,
        "predictor_decay": str(attrs.get("predictor_decay", "alpha_p_eta")),
        "symmetrize": loss == "liu" and not bool(options.get("one_way", False)),
    }
    schedules: dict[str, Any] = {}
    for name in ("alpha_p", "beta"):
        values = _variable(ds, f"{name}_step", path, f"the schedule of {name}")
        if np.all(np.isfinite(values)) and values.size:
            schedule = PiecewiseConstant(edges, values)
            params[name] = float(values[0])
            schedules[name] = None if schedule.is_constant else schedule
    momentum = _variable(ds, "momentum_step", path, "the momentum")
    if not np.any(momentum):  # plain SGD: the norm growth of the scale-invariant weights
        lr = PiecewiseConstant(edges, _variable(ds, "lr_step", path, "the learning rate"))
        params["lr"] = float(lr.values[0])
        schedules["lr"] = None if lr.is_constant else lr
    rng = np.random.default_rng(seed)
    wp0 = np.asarray(ds["wp"].values[0], dtype=float) if "wp" in ds else None
    wa0 = np.asarray(ds["w_target"].values[0], dtype=float) if "w_target" in ds else w0
    w_up0 = np.asarray(ds["w_up"].values[0], dtype=float) if "w_up" in ds else None
    if w_up0 is not None:  # a deep linear encoder: W(0) is the product, W_1(0) its first layer
        params["depth"] = 1 + w_up0.shape[0]
        w0 = np.linalg.solve(_product(w_up0), w0)
    if initial == "seed":
        w0 = wa0 = torch_like_init(d, n1, rng)
        wp0 = torch_like_init(d, d, rng)
        if w_up0 is not None:
            w_up0 = np.stack([torch_like_init(d, d, rng) for _ in w_up0])
    kind = (
        f"gradient flow of the expected minibatch loss at the run's batch size {batch} over "
        f"{x1.shape[0]} fixed augmented pairs ({PAIRS_FILE}, seed {pairs.attrs.get('pairs_seed')})"
    )
    matched = [
        f"the loss ({loss}, {params['loss_params']}, target {params['target']}"
        + (", both directions" if params["symmetrize"] else "")
        + ")",
        f"the loss convention D = {directions:g} (loss_directions x loss_scale: the flow time)",
        "eta",
        "alpha_p(t), beta(t)",
        "flow-time grid (the run's measurement times)",
        *(["lr per step (the norm growth of scale-invariant weights)"] if "lr" in params else []),
        "W(0)" + (", W_p(0)" if wp0 is not None else "") + (", W_a(0)" if target == "ema" else "")
        if initial == "run"
        else f"the initial weights: drawn for seed {seed} (the other-seed null)",
    ]
    derived_attrs = {
        "from_run": str(run),
        "from_run_file_sha256": _sha256(path),
        "from_run_pairs_sha256": _sha256(pairs_path),
        "from_run_method": str(attrs.get("name")),
        "from_run_partial": int(attrs.get("partial", 0)),
        "initial": "the run's initial weights" if initial == "run" else f"seed {seed}",
        "prediction_kind": kind,
        "matched": "; ".join(matched),
        "not_matched": "finite learning rate and the minibatch noise of fresh augmentations "
        f"(the simulation is the gradient flow over {x1.shape[0]} fixed pairs), except the "
        "norm growth lr^2 E||g_B||^2 per step of the weights on which the loss is "
        "scale-invariant, which it keeps for plain SGD"
        + ("" if "lr" in params else " (not this run: it has momentum)"),
    }
    inputs = RunInputs(
        x1=x1,
        x2=np.asarray(pairs["x2"].values, dtype=float),
        w0=w0,
        wp0=wp0,
        wa0=wa0,
        w_up0=w_up0,
        **schedules,
    )
    return Derived(params=params, inputs=inputs, t_eval=t_eval, attrs=derived_attrs)


def _product(layers: np.ndarray) -> np.ndarray:
    """W_L ... W_2 of the stacked layers W_2 ... W_L."""
    out = np.eye(layers.shape[-1])
    for layer in layers:
        out = layer @ out
    return out


def moments_of(run: str | Path) -> xr.Dataset | None:
    """The run's ``moments.nc`` (for the held-out Sigma prediction), or None."""
    path = run_file(run).parent / MOMENTS_FILE
    return _open(path) if path.is_file() else None
