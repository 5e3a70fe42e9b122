"""The finished work of a sweep on disk, so that an interrupted sweep can be resumed.

``OUT.parts/`` holds ``sweep.json`` (what the sweep computes: scenario, parameters, grid,
integration settings) and one ``unit_<first point>.npz`` per finished unit of grid points, each
written to a temporary file, flushed to disk and renamed (:func:`symbolic.common.files.
atomic_path`). Opening the store removes the temporary files a killed sweep left, and reads every
stored unit in full: a damaged one (a truncated file) is removed and its points are computed
again, before any other work. A parts folder that holds no finished unit (a sweep that failed or
was stopped before its first unit) is taken over by the next sweep.

A unit is a run of consecutive flat point indices; the results of a point do not depend on the
unit it was computed in, so a resumed sweep may cut the missing points into units of another size
(``--chunk``), or run them with other workers or another back end, and still assembles the
Dataset an uninterrupted sweep gives.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from symbolic.common.cli import UsageError
from symbolic.common.files import atomic_path, remove_debris


@dataclasses.dataclass(frozen=True)
class Unit:
    """A work unit: the grid points ``start``, ..., ``stop - 1`` (flat indices)."""

    start: int
    stop: int

    @property
    def indices(self) -> np.ndarray:
        return np.arange(self.start, self.stop)

    @property
    def size(self) -> int:
        return self.stop - self.start


def split(missing: np.ndarray, chunk: int) -> list[Unit]:
    """The sorted flat indices ``missing`` cut into units of at most ``chunk`` consecutive
    points."""
    if missing.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(missing) != 1) + 1
    units = []
    for run in np.split(missing, breaks):
        for start in range(int(run[0]), int(run[-1]) + 1, chunk):
            units.append(Unit(start, min(start + chunk, int(run[-1]) + 1)))
    return units


def _short(value: Any) -> str:
    """A value of a sweep description in a few words: an axis as "eta = 12 values from 0 to
    0.3", a grid as its axes."""
    if isinstance(value, list) and all(isinstance(v, list) and len(v) == 2 for v in value):
        return ", ".join(f"{name} = {_short(values)}" for name, values in value)
    numbers = isinstance(value, list) and all(isinstance(v, int | float) for v in value)
    if numbers and len(value) > 4:
        return f"{len(value)} values from {value[0]:g} to {value[-1]:g}"
    return repr(value)


def differences(saved: str | None, spec: dict[str, Any]) -> str:
    """What differs between a stored sweep description (JSON text) and ``spec``, in words:
    "grid: eta=0:0.3:12 stored, eta=0:0.3:13 now; params.beta: 1.0 stored, 0.5 now"."""
    try:
        before = json.loads(saved) if saved is not None else None
    except ValueError:
        before = None
    if not isinstance(before, dict):
        return "its description sweep.json is missing or unreadable"
    now = json.loads(json.dumps(spec, sort_keys=True, default=str))
    found = []
    for key in sorted(set(before) | set(now)):
        old, new = before.get(key), now.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            pairs = [(f"{key}.{k}", old.get(k), new.get(k)) for k in sorted(set(old) | set(new))]
        else:
            pairs = [(key, old, new)]
        found += [f"{name}: {_short(a)} stored, {_short(b)} now" for name, a, b in pairs if a != b]
    return "; ".join(found[:3]) or "the same options, written differently"


class PartStore:
    """The parts folder ``OUT.parts/`` of the sweep described by ``spec`` (JSON-storable)."""

    def __init__(self, out: Path, spec: dict[str, Any], resume: bool):
        self.folder = out.with_name(out.name + ".parts")
        self.spec = json.dumps(spec, sort_keys=True, default=str)
        #: units found damaged (and removed) when the store was opened: (file name, reason)
        self.damaged: list[tuple[str, str]] = []
        spec_file = self.folder / "sweep.json"
        if self.folder.is_dir():
            remove_debris(self.folder)
            stored = any(self._parts())
            if stored and not resume:
                raise UsageError(
                    f"{self.folder} holds an interrupted sweep: pass --resume to continue it "
                    "or delete the folder"
                )
            saved = spec_file.read_text() if spec_file.exists() else None
            if stored and saved != self.spec:
                raise UsageError(
                    f"--resume: {self.folder} belongs to a different sweep "
                    f"({differences(saved, spec)}); rerun with its options, delete the folder "
                    "or change --out"
                )
            if not stored:  # nothing finished: this sweep starts it afresh
                self._atomic(spec_file, lambda f: f.write(self.spec.encode()))
        else:
            if self.folder.exists():
                raise UsageError(f"{self.folder} is in the way of the sweep's parts folder")
            self.folder.mkdir(parents=True)
            self._atomic(spec_file, lambda f: f.write(self.spec.encode()))
        self._indices = self._read_parts()

    def _atomic(self, path: Path, write: Callable) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            write(f)

    def _parts(self) -> Iterator[Path]:
        return iter(sorted(self.folder.glob("unit_*.npz")))

    def _read_parts(self) -> list[np.ndarray]:
        """The point indices of every stored unit, each unit read in full; a damaged unit is
        removed (recorded in ``damaged``) so that its points are computed again."""
        found = []
        for path in self._parts():
            try:
                with np.load(path, allow_pickle=False) as part:
                    idx = part["indices"]
                    for name in part.files:
                        if part[name].shape[:1] != idx.shape[:1]:
                            raise ValueError(f"{name} does not hold one value per point")
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
                self.damaged.append((path.name, str(err).splitlines()[0] if str(err) else ""))
                path.unlink(missing_ok=True)
                continue
            found.append(idx)
        return found

    def done(self) -> np.ndarray:
        """The flat indices of every stored point, sorted."""
        found = self._indices
        return np.sort(np.concatenate(found)) if found else np.zeros(0, dtype=int)

    def stored_points(self) -> int:
        """How many points the units on disk hold now (also one whose save was interrupted
        between its rename and its bookkeeping)."""
        total = 0
        for path in self._parts():
            try:
                with np.load(path, allow_pickle=False) as part:
                    total += part["indices"].size
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                continue
        return total

    def save(self, unit: Unit, record: dict[str, np.ndarray]) -> None:
        path = self.folder / f"unit_{unit.start:09d}.npz"
        self._atomic(path, lambda f: np.savez(f, indices=unit.indices, **record))
        self._indices.append(unit.indices)

    def assemble(self, size: int) -> dict[str, np.ndarray]:
        """Every stored variable over all ``size`` points (leading axis: flat point index)."""
        arrays: dict[str, np.ndarray] = {}
        for path in self._parts():
            with np.load(path, allow_pickle=False) as part:
                idx = part["indices"]
                for name in part.files:
                    if name == "indices":
                        continue
                    values = part[name]
                    if name not in arrays:
                        arrays[name] = np.zeros((size, *values.shape[1:]), values.dtype)
                    arrays[name][idx] = values
        return arrays

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
