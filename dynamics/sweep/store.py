"""The finished work of a sweep on disk, so that an interrupted sweep can be resumed.

``OUT.parts/`` holds ``sweep.json`` (what the sweep computes: scenario, parameters, grid,
integration settings) and one ``unit_<first point>.npz`` per finished unit of grid points, each
written to a temporary file and renamed. A unit is a run of consecutive flat point indices; the
results of a point do not depend on the unit it was computed in, so a resumed sweep may cut the
missing points into units of another size (``--chunk``), or run them with other workers or
another back end, and still assembles the Dataset an uninterrupted sweep gives.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from symbolic.common.cli import UsageError


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


class PartStore:
    """The parts folder ``OUT.parts/`` of the sweep described by ``spec`` (JSON-storable)."""

    def __init__(self, out: Path, spec: dict[str, Any], resume: bool):
        self.folder = out.with_name(out.name + ".parts")
        self.spec = json.dumps(spec, sort_keys=True, default=str)
        spec_file = self.folder / "sweep.json"
        if self.folder.exists():
            if not resume:
                raise UsageError(
                    f"{self.folder} holds an interrupted sweep: pass --resume to continue it "
                    "or delete the folder"
                )
            if not spec_file.exists() or spec_file.read_text() != self.spec:
                raise UsageError(
                    f"--resume: {self.folder} belongs to a different sweep (scenario, "
                    "parameters, grid or settings differ); delete it or change --out"
                )
        else:
            self.folder.mkdir(parents=True)
            self._atomic(spec_file, lambda f: f.write(self.spec.encode()))

    def _atomic(self, path: Path, write: Callable) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _parts(self) -> Iterator[Path]:
        return iter(sorted(self.folder.glob("unit_*.npz")))

    def done(self) -> np.ndarray:
        """The flat indices of every stored point, sorted."""
        found = [np.load(path)["indices"] for path in self._parts()]
        return np.sort(np.concatenate(found)) if found else np.zeros(0, dtype=int)

    def save(self, unit: Unit, record: dict[str, np.ndarray]) -> None:
        path = self.folder / f"unit_{unit.start:09d}.npz"
        self._atomic(path, lambda f: np.savez(f, indices=unit.indices, **record))

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
        shutil.rmtree(self.folder)
