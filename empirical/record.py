"""The per-epoch history of a run and its netCDF form (the result schema of DESIGN.md).

Dimensions: ``epoch`` (0 = the randomly initialised encoder before any step, then 1..E) with the
coordinate ``time`` along it = flow time t, the sum of the learning rates of all steps taken up to
the end of that epoch (0 at epoch 0); ``step`` (1..S) with ``flow_time_step`` = t after each step
and ``step_at_epoch_end`` (epoch) linking the two; ``mode`` (0..d-1) for eigen-indexed variables;
``row``/``col`` for ``wp``. Scalars per epoch have dims (epoch,), spectra (epoch, mode), W_p
(epoch, row, col). Epoch 0 carries the random-encoder measurements; its ``loss`` terms are those
of the first training step (evaluated before the first update), its ``throughput`` is 0. The
random-encoder probe accuracies are also stored as the 0-d variables ``knn_acc_random`` and
``linear_acc_random``.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from symbolic.common.schema import COL, EPOCH, MODE, ROW, TIME

STEP = "step"
RANDOM_BASELINE = ("knn_acc", "linear_acc")


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


def _dims(ndim: int) -> tuple[str, ...]:
    return {1: (EPOCH,), 2: (EPOCH, MODE), 3: (EPOCH, ROW, COL)}[ndim]


def build_dataset(history: list[dict], flow_time_step: np.ndarray, attrs: dict) -> xr.Dataset:
    """One Dataset from the per-epoch dictionaries (each with 'epoch', 'time', 'step' keys)."""
    names = [k for k in history[0] if k not in ("epoch", "time", "step")]
    for entry in history:
        missing = set(names) ^ (set(entry) - {"epoch", "time", "step"})
        if missing:
            raise ValueError(f"epoch {entry['epoch']} lacks or adds {sorted(missing)}")
    data_vars = {}
    for name in names:
        values = np.stack([np.asarray(e[name], dtype=np.float64) for e in history])
        data_vars[name] = (_dims(values.ndim), values)
    data_vars["step_at_epoch_end"] = (EPOCH, np.array([e["step"] for e in history], np.int64))
    data_vars["flow_time_step"] = (STEP, np.asarray(flow_time_step, dtype=np.float64))
    for name in RANDOM_BASELINE:
        if name in history[0]:
            data_vars[f"{name}_random"] = ((), float(history[0][name]))
    coords = {
        EPOCH: np.array([e["epoch"] for e in history], dtype=np.int64),
        TIME: (EPOCH, np.array([e["time"] for e in history], dtype=np.float64)),
        STEP: np.arange(1, len(flow_time_step) + 1, dtype=np.int64),
    }
    ds = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    if MODE in ds.dims:
        ds = ds.assign_coords({MODE: np.arange(ds.sizes[MODE])})
    if ROW in ds.dims:
        ds = ds.assign_coords({ROW: np.arange(ds.sizes[ROW]), COL: np.arange(ds.sizes[COL])})
    return ds
