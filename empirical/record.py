"""The history of a run and its netCDF form (docs/conventions.md, "Result files").

Dimensions: ``epoch`` (one entry per measurement: 0 = the randomly initialised encoder before
any step, then the end of each epoch, or every ``--measure-every`` steps; the coordinate holds
the fractional epoch step / steps_per_epoch) with the coordinate ``time`` along it = flow time t
at that measurement (:mod:`empirical.flow`; NaN for LARS) and ``step_at_measurement``;
``step`` (1..S) with the per-step record of :mod:`empirical.flow` (``flow_time_step`` = t after
each step, ``lr_step``, ``lr_predictor_step``, ``ema_momentum_step``, ``weight_decay_step``,
``momentum_step``, ``eta_step``, ``alpha_p_step``, ``beta_step``); ``mode`` for eigen-indexed
variables; ``row``/``col`` for ``wp``; ``row``/``input`` for ``w`` and ``w_target`` and
``layer``/``row``/``col`` for ``w_up`` (a linear encoder without a projector: its rows are the
embedding's, those of ``wp``); with a projector, whose input is the encoder's output h, the
encoder's rows are ``feature`` (``feature``/``input``, ``layer``/``feature``/``feature_col``).
Epoch 0
carries the random-encoder measurements; its ``loss`` terms are those of the first training step
(evaluated before the first update), its ``throughput`` is 0. The random-encoder probe accuracies
are also stored as the 0-d variables ``knn_acc_random`` and ``linear_acc_random``.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from dynamics import observables as obs
from symbolic.common.results import params_from_attrs
from symbolic.common.schema import (
    BEHIND_PROJECTOR,
    COL,
    EPOCH,
    FEATURE,
    FEATURE_COL,
    INPUT,
    LAYER,
    MODE,
    ROW,
    STEP,
    TIME,
)

RANDOM_BASELINE = ("knn_acc", "linear_acc")
#: per-step records (name in the run's step record -> variable name)
STEP_VARIABLES = {
    "flow_time": "flow_time_step",
    "lr": "lr_step",
    "lr_predictor": "lr_predictor_step",
    "ema_momentum": "ema_momentum_step",
    "weight_decay": "weight_decay_step",
    "momentum": "momentum_step",
    "eta": "eta_step",
    "alpha_p": "alpha_p_step",
    "beta": "beta_step",
}
#: ratio observables and the magnitudes in their denominators, per measurement: ``corr_eig``
#: (the root of the feature correlation F's largest eigenvalue, as ||W|| of a linear encoder) and
#: ``wp_singular`` (||W_p||_2); where one is numerically zero (a representation that collapsed
#: to W = 0, :func:`dynamics.observables.numerically_zero`) the ratio is 0/0, undefined (NaN),
#: as :func:`dynamics.engine.mark_undefined` marks a simulation's
RATIOS = {
    "conservation_residual": ("corr_eig",),
    "alignment_cos": ("corr_eig", "wp_singular"),
    "commutator_norm": ("corr_eig", "wp_singular"),
    "wp_asymmetry": ("wp_singular",),
}
#: variables whose NaN means "undefined" (LARS runs, a collapsed embedding, no EMA target, the
#: ratios of :data:`RATIOS` at a zero denominator)
UNDEFINED = (
    *RATIOS,
    "flow_time_step",
    "eta_step",
    "alpha_p_step",
    "beta_step",
    "ema_momentum_step",
    "sigma_corr_mean_sq",
    "sigma_corr_mean_sq_backbone",
    "aug_ratio",
)
_KEYS = ("epoch", "time", "step")


def to_storable(entry: dict) -> dict:
    """numpy arrays -> tensors, numpy scalars -> floats (a weights_only checkpoint holds them)."""
    out = {}
    for key, value in entry.items():
        if isinstance(value, np.ndarray) and value.ndim > 0:
            out[key] = torch.from_numpy(np.ascontiguousarray(value))
        elif isinstance(value, np.generic | np.ndarray):
            out[key] = value.item()
        else:
            out[key] = value
    return out


def from_storable(entry: dict) -> dict:
    return {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in entry.items()}


def _dims(name: str, ndim: int, projector: bool) -> tuple[str, ...]:
    if projector and name in BEHIND_PROJECTOR:
        return (EPOCH, *BEHIND_PROJECTOR[name])
    if ndim == 4:  # w_up: the layers of a deep linear encoder above the first
        return (EPOCH, LAYER, ROW, COL)
    if ndim == 3:
        return (EPOCH, ROW, INPUT) if name in ("w", "w_target") else (EPOCH, ROW, COL)
    return {1: (EPOCH,), 2: (EPOCH, MODE)}[ndim]


def mark_undefined(data_vars: dict[str, tuple]) -> None:
    """Set the ratios of :data:`RATIOS` to NaN (in place) where a denominator is numerically
    zero, relative to the largest value it reached up to that measurement."""
    for name, scales in RATIOS.items():
        if name not in data_vars:
            continue
        dims, values = data_vars[name]
        zero = np.zeros(values.shape[0], dtype=bool)
        for scale in scales:
            if scale in data_vars:
                magnitude = np.abs(data_vars[scale][1]).reshape(values.shape[0], -1).max(axis=1)
                if scale == "corr_eig":  # ||F|| ~ ||W||^2: its root is the scale of W
                    magnitude = np.sqrt(magnitude)
                zero |= obs.numerically_zero(magnitude)
        if zero.any():
            values = values.copy()
            values[zero] = np.nan
            data_vars[name] = (dims, values)


def summary_cells(history: list[dict], key: str) -> tuple[str, str]:
    """The first and last measurement's ``key`` as the run summary prints them: a ratio of
    :data:`RATIOS` that the file holds as undefined (:func:`mark_undefined`) as such, not as the
    0 that 0/0 evaluated to; another variable of :data:`UNDEFINED` that holds NaN as
    "undefined"."""
    values = np.array([float(history[i][key]) for i in (0, -1)])
    marked = values
    if key in RATIOS:
        names = [key, *(n for n in RATIOS[key] if n in history[0])]
        data_vars = {
            n: ((), np.stack([np.asarray(e[n], np.float64) for e in history])) for n in names
        }
        mark_undefined(data_vars)
        marked = data_vars[key][1][[0, -1]]
    first, last = (
        "undefined (W = 0)" if np.isnan(m) and not np.isnan(v)
        else "undefined" if np.isnan(v) and key in UNDEFINED
        else f"{v:.4f}"
        for v, m in zip(values, marked, strict=True)
    )  # fmt: skip
    return first, last


def build_dataset(history: list[dict], steps: dict[str, list], attrs: dict) -> xr.Dataset:
    """One Dataset from the measurements (dicts with 'epoch', 'time', 'step' keys) and the
    per-step record ``steps`` (name -> one value per step); ``attrs`` (the run's provenance)
    say whether a projector sits between a linear encoder and the embedding."""
    params = params_from_attrs(attrs) if "params_json" in attrs else {}
    projector = params.get("projector", "none") != "none"
    names = [k for k in history[0] if k not in _KEYS]
    for entry in history:
        missing = set(names) ^ (set(entry) - set(_KEYS))
        if missing:
            raise ValueError(f"measurement at step {entry['step']} lacks or adds {sorted(missing)}")
    data_vars = {}
    for name in names:
        values = np.stack([np.asarray(e[name], dtype=np.float64) for e in history])
        data_vars[name] = (_dims(name, values.ndim, projector), values)
    mark_undefined(data_vars)
    data_vars["step_at_measurement"] = (EPOCH, np.array([e["step"] for e in history], np.int64))
    for key, values in steps.items():
        data_vars[STEP_VARIABLES[key]] = (STEP, np.asarray(values, dtype=np.float64))
    for name in RANDOM_BASELINE:
        if name in history[0]:
            data_vars[f"{name}_random"] = ((), float(history[0][name]))
    n_steps = len(steps.get("lr", ()))
    coords = {
        EPOCH: np.array([e["epoch"] for e in history], dtype=np.float64),
        TIME: (EPOCH, np.array([e["time"] for e in history], dtype=np.float64)),
        STEP: np.arange(1, n_steps + 1, dtype=np.int64),
    }
    ds = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    for dim in (MODE, ROW, COL, INPUT, FEATURE, FEATURE_COL):
        if dim in ds.dims:
            ds = ds.assign_coords({dim: np.arange(ds.sizes[dim])})
    return ds
