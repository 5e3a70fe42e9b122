"""Atomic checkpoints that load with ``torch.load(..., weights_only=True)``.

A checkpoint holds only tensors and plain containers of numbers and strings: model and optimiser
state dicts, the augmentation generator's state, every global RNG state (torch, CUDA, numpy,
python), the epoch and step counters, the flow-time record and the measurement history. It is
written to a temporary file in the same folder and renamed, so the previous checkpoint survives
a crash mid-write.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = 1


def rng_state() -> dict[str, Any]:
    """Global RNG states as tensors and lists (weights_only-loadable)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (saving the global state)
    version, py_state, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {"version": version, "state": list(py_state), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(state: dict[str, Any], path: Path) -> Path:
    """torch.save to a temporary file beside ``path``, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save({"format": FORMAT, **state}, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load with ``weights_only=True`` onto the CPU; ValueError for another format version."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != FORMAT:
        raise ValueError(f"{path}: checkpoint format {state.get('format')!r}, expected {FORMAT}")
    return state
