"""What every model shares: parameter validation, the state layout, the model interface.

A model is a frozen parameter dataclass plus an object with ``initial_state()``, ``rhs(t, y)``
and ``observables(t, y)``. The state is one flat float64 vector made of named blocks (matrices
or vectors), so that a failure can be reported as "W_p[2, 3]" rather than "y[41]".
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import xarray as xr

from symbolic.common.options import ParameterError, require


def positive_numbers(text: str, name: str, example: str = "4,2,1,0.5") -> np.ndarray:
    """Comma-separated finite numbers > 0 (e.g. ``example``); ParameterError naming ``name``."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise ParameterError(
            f"{name}={text!r} is not allowed: comma-separated finite numbers > 0, e.g. '{example}'"
        )
    return np.array(values)


def parse_spectrum(text: str, n: int, name: str) -> str:
    """Validate a spectrum option: 'isotropic', 'random', n comma-separated positive numbers, or
    'measured' (a matrix measured by a training run, set by ``--from-run``)."""
    if text in ("isotropic", "random", "measured"):
        return text
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ParameterError(
            f"{name}={text!r} is not allowed: 'isotropic', 'random' or {n} comma-separated numbers"
        ) from None
    require(len(values) == n, name, text, f"{n} comma-separated numbers (one per input dimension)")
    require(all(math.isfinite(v) and v >= 0 for v in values), name, text, "values finite and >= 0")
    return text


class StateLayout:
    """Named blocks of a flat state vector: ``[("W", (n2, n1)), ("W_p", (n2, n2)), ...]``."""

    def __init__(self, blocks: list[tuple[str, tuple[int, ...]]]):
        self.blocks = blocks
        self.slices: dict[str, slice] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        start = 0
        for name, shape in blocks:
            size = int(np.prod(shape))
            self.slices[name] = slice(start, start + size)
            self.shapes[name] = shape
            start += size
        self.size = start

    def unpack(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """Views of the blocks; ``y`` may carry leading batch dimensions (e.g. time)."""
        lead = y.shape[:-1]
        return {n: y[..., s].reshape(*lead, *self.shapes[n]) for n, s in self.slices.items()}

    def pack(self, **arrays: np.ndarray) -> np.ndarray:
        """The flat state from the named blocks, in layout order."""
        return np.concatenate([np.asarray(arrays[name], float).ravel() for name, _ in self.blocks])

    def describe(self, index: int) -> str:
        """The block and entry of flat index ``index``, e.g. ``W_p[2, 3]``."""
        for name, s in self.slices.items():
            if s.start <= index < s.stop:
                entry = np.unravel_index(index - s.start, self.shapes[name])
                return f"{name}[{', '.join(str(int(i)) for i in entry)}]"
        return f"y[{index}]"


def time_mode_vars(values: dict[str, np.ndarray]) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """Dataset variables from arrays over time (T,) or over time and mode (T, d)."""
    return {k: (("time", "mode") if v.ndim == 2 else ("time",), v) for k, v in values.items()}


def conservation_vars(conserved: np.ndarray, t: np.ndarray, eta: float) -> dict[str, tuple]:
    """The residuals of a conservation law M(t) = e^{-2 eta t} M(0), C = M(0), on (T, d, d) stacks.

    ``conservation_residual_weight`` = ||M(t)|| / ||C|| (predicted: e^{-2 eta t}) and
    ``conservation_error`` = ||M(t) - e^{-2 eta t} C|| / ||C|| (predicted: 0); ``conservation_C``.
    """
    c0 = conserved[0]
    c_norm = np.linalg.norm(c0)
    decay = np.exp(-2 * eta * t)[:, None, None]
    return {
        "conservation_residual_weight": (
            ("time",),
            np.linalg.norm(conserved, axis=(-2, -1)) / c_norm,
        ),
        "conservation_error": (
            ("time",),
            np.linalg.norm(conserved - decay * c0, axis=(-2, -1)) / c_norm,
        ),
        "conservation_C": (("row", "col"), c0),
    }


class Model(ABC):
    """A dynamical model: parameters, state layout, right-hand side and observables."""

    #: scenario name and a one-line description for ``--list``
    name: ClassVar[str]
    description: ClassVar[str]
    #: True when the state holds a few numbers per mode (no matrices): sizes its memory estimate
    state_per_mode: ClassVar[bool] = False

    def __init__(self, params: Any):
        self.params = params
        self.layout = self.make_layout()

    @abstractmethod
    def make_layout(self) -> StateLayout:
        """The state layout."""

    @abstractmethod
    def initial_state(self) -> np.ndarray:
        """The flat initial state y(0)."""

    @abstractmethod
    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """dy/dt at (t, y)."""

    @abstractmethod
    def observables(self, t: np.ndarray, y: np.ndarray) -> xr.Dataset:
        """The result Dataset (schema names) for states ``y`` (T, n) at times ``t`` (T,)."""

    def summary(self, ds: xr.Dataset) -> list[str]:
        """Lines printed after a run: the result next to the closed-form prediction."""
        return []

    def closed_forms(self) -> dict[str, float]:
        """Closed-form predictions stored as attributes of the result file."""
        return {}
