"""Gradients of every loss, derived entry by entry with sympy and checked two other ways.

For a loss and a size (N, d) every entry of every argument becomes a real sympy symbol; the sympy
back end of :mod:`symbolic.losses` builds the loss as one expression (constants exact rationals,
stop-gradient as :class:`~symbolic.sympy_backend.StopGradient`), ``sympy.diff`` differentiates it
with respect to each entry, and ``lambdify(..., cse=True)`` compiles all entries into one numpy
function. :func:`derive` caches the result per (loss, N, d, hyperparameters).

Two independent checks: torch autograd of the torch back end (:func:`autograd_gradient`) and
central finite differences of the loss value with every stop-gradient argument frozen at the base
point (:func:`finite_difference_gradient`), both at random float64 points away from kinks
(:func:`sample_point`). :func:`check` returns the largest relative errors.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np
import sympy as sp

from symbolic import losses
from symbolic.registry import Loss
from symbolic.sympy_backend import StopGradient, strip_stop_gradient

#: Tolerances of the checks (issue 3): relative, normwise over all gradient entries.
AUTOGRAD_TOL = 1e-10
FINITE_DIFFERENCE_TOL = 1e-6
#: Step of the five-point central difference stencil (points are O(1)).
FD_STEP = 1e-4


def dimensions(loss: Loss, n: int, d: int) -> dict[str, int]:
    """Sizes of the symbolic dimensions: N samples, d features, K (queue) = N."""
    return {"N": n, "d": d, "K": n}


def arg_shapes(loss: Loss, n: int, d: int) -> list[tuple[int, int]]:
    sizes = dimensions(loss, n, d)
    return [(sizes[r], sizes[c]) for r, c in loss.shapes]


def symbol_array(name: str, shape: tuple[int, int]) -> np.ndarray:
    """Object array of real symbols named ``name_i_j``."""
    out = np.empty(shape, dtype=object)
    for i in range(shape[0]):
        for j in range(shape[1]):
            out[i, j] = sp.Symbol(f"{name}_{i}_{j}", real=True)
    return out


@dataclasses.dataclass
class Derivation:
    """The entry-by-entry gradient of one loss at one size, compiled for evaluation.

    ``symbols[a]`` and ``gradients[a]`` are object arrays of the argument ``loss.args[a]``'s
    entries and of dL/d(entry) (stop-gradients removed after differentiation); ``expression`` is
    the loss with its sg(.) marks. ``gradient(*arrays)`` and ``value(*arrays)`` evaluate them.
    """

    loss: Loss
    n: int
    d: int
    hyperparameters: dict[str, Any]
    symbols: tuple[np.ndarray, ...]
    expression: sp.Expr
    gradients: tuple[np.ndarray, ...]
    _gradient_fn: Any = dataclasses.field(repr=False)
    _frozen_value_fn: Any = dataclasses.field(repr=False)

    @property
    def flat_symbols(self) -> list[sp.Symbol]:
        return [s for arr in self.symbols for s in arr.ravel()]

    def stopped(self) -> list[str]:
        """Arguments whose gradient is identically zero (only ever seen through sg)."""
        return [
            arg
            for arg, grad in zip(self.loss.args, self.gradients, strict=True)
            if all(g == 0 for g in grad.ravel())
        ]

    def gradient(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """dL/d(argument) for each argument at the float point ``arrays``."""
        flat = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])
        values = self._gradient_fn(*flat)
        out, start = [], 0
        for sym in self.symbols:
            out.append(np.array(values[start : start + sym.size], dtype=float).reshape(sym.shape))
            start += sym.size
        return out

    def frozen_value(self, arrays, frozen) -> float:
        """The loss with the arguments of every sg(.) taken at ``frozen`` instead of ``arrays``."""
        flat = [np.asarray(a, dtype=float).ravel() for a in (*arrays, *frozen)]
        return float(self._frozen_value_fn(*np.concatenate(flat)))

    def value(self, *arrays: np.ndarray) -> float:
        return self.frozen_value(arrays, arrays)


def derive(name: str, n: int = 3, d: int = 2, **hyperparameters: Any) -> Derivation:
    """The compiled entry-by-entry gradient of loss ``name`` at N=n, d=d (cached).

    Hyperparameters default to the official values; floats become exact rationals.
    """
    key = tuple(sorted(hyperparameters.items()))
    return _derive(name, int(n), int(d), key)


@functools.lru_cache(maxsize=128)
def _derive(name: str, n: int, d: int, key: tuple[tuple[str, Any], ...]) -> Derivation:
    loss = losses.get(name)
    if n < 2:
        raise ValueError(f"N={n} is not allowed: the batch size must be >= 2")
    if d < 1:
        raise ValueError(f"d={d} is not allowed: the dimension must be >= 1")
    hp = loss.resolve(dict(key), symbolic=True)
    symbols = tuple(
        symbol_array(arg, shape)
        for arg, shape in zip(loss.args, arg_shapes(loss, n, d), strict=True)
    )
    expression = sp.sympify(loss(*symbols, **hp))
    flat = [s for arr in symbols for s in arr.ravel()]
    gradients = []
    for arr in symbols:
        grad = np.empty(arr.shape, dtype=object)
        for idx, sym in np.ndenumerate(arr):
            grad[idx] = strip_stop_gradient(sp.diff(expression, sym))
        gradients.append(grad)
    flat_grads = [g for grad in gradients for g in grad.ravel()]
    gradient_fn = sp.lambdify(flat, flat_grads, modules="numpy", cse=True)
    frozen = {s: sp.Symbol(f"{s.name}__frozen", real=True) for s in flat}
    frozen_expr = expression.replace(
        lambda e: isinstance(e, StopGradient), lambda e: e.args[0].xreplace(frozen)
    )
    value_fn = sp.lambdify([*flat, *frozen.values()], frozen_expr, modules="numpy", cse=True)
    return Derivation(loss, n, d, hp, symbols, expression, tuple(gradients), gradient_fn, value_fn)


def sample_point(loss: Loss, n: int, d: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A random float64 point of the loss, away from its kinks.

    Entries are standard normal; for VICReg the features alternate between a batch standard
    deviation well below 1 (hinge active) and well above 1 (hinge off), at least 0.2 away from
    the kink at 1.
    """
    shapes = arg_shapes(loss, n, d)
    while True:
        arrays = [rng.normal(size=shape) for shape in shapes]
        if loss.name != "vicreg":
            return arrays
        ok = True
        for a in arrays:
            a[:, 0::2] *= 0.3
            a[:, 1::2] *= 3.0
            std = np.sqrt(a.var(axis=0, ddof=1) + loss.defaults["eps"])
            ok &= bool(np.all(np.abs(std - 1) > 0.2))
        if ok:
            return arrays


def autograd_gradient(loss: Loss, arrays, hyperparameters) -> list[np.ndarray]:
    """dL/d(argument) from torch autograd of the torch back end, in float64."""
    import torch

    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    loss(*tensors, **hyperparameters).backward()
    return [
        np.zeros(a.shape) if t.grad is None else t.grad.numpy()
        for a, t in zip(arrays, tensors, strict=True)
    ]


def finite_difference_gradient(derivation: Derivation, arrays, step: float = FD_STEP):
    """Five-point central differences of the loss value, stop-gradient arguments frozen."""
    base = [np.asarray(a, dtype=float) for a in arrays]
    out = []
    for which, array in enumerate(base):
        grad = np.zeros(array.shape)
        for idx in np.ndindex(array.shape):
            values = []
            for offset in (2, 1, -1, -2):
                moved = [a.copy() for a in base]
                moved[which][idx] += offset * step
                values.append(derivation.frozen_value(moved, base))
            grad[idx] = (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * step)
        out.append(grad)
    return out


def relative_error(found, reference) -> float:
    """max |found - reference| / max |reference| over all entries of all arrays."""
    diff = max(float(np.max(np.abs(f - r))) for f, r in zip(found, reference, strict=True))
    scale = max(float(np.max(np.abs(r))) for r in reference)
    return diff / scale if scale > 0 else diff


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """Largest relative errors of the sympy gradient over ``points`` random points."""

    name: str
    n: int
    d: int
    hyperparameters: dict[str, Any]
    points: int
    autograd_error: float
    finite_difference_error: float

    @property
    def ok(self) -> bool:
        return (
            self.autograd_error <= AUTOGRAD_TOL
            and self.finite_difference_error <= FINITE_DIFFERENCE_TOL
        )


def check(derivation: Derivation, points: int = 3, seed: int = 0) -> CheckResult:
    """Compare the sympy gradient with torch autograd and with finite differences."""
    rng = np.random.default_rng(seed)
    loss = derivation.loss
    numeric_hp = {k: _numeric(v) for k, v in derivation.hyperparameters.items()}
    auto_err = fd_err = 0.0
    for _ in range(points):
        arrays = sample_point(loss, derivation.n, derivation.d, rng)
        mine = derivation.gradient(*arrays)
        auto_err = max(auto_err, relative_error(mine, autograd_gradient(loss, arrays, numeric_hp)))
        fd = finite_difference_gradient(derivation, arrays)
        fd_err = max(fd_err, relative_error(mine, fd))
    return CheckResult(loss.name, derivation.n, derivation.d, numeric_hp, points, auto_err, fd_err)


def _numeric(value: Any) -> Any:
    """A Python number for an exact sympy hyperparameter (bools and ints unchanged)."""
    if isinstance(value, sp.Basic):
        return int(value) if value.is_Integer else float(value)
    return value


def fit_to_size(loss: Loss, n: int, hyperparameters: dict[str, Any]) -> tuple[dict, list[str]]:
    """Hyperparameters usable at batch size ``n`` and notes on what was changed.

    Only Liu et al.'s k (number of batch parts) depends on N: when it is not given and the
    official k=8 does not divide N, the largest divisor of N below it is used.
    """
    hp = dict(hyperparameters)
    notes = []
    if "k" in loss.hypers and "k" not in hp and n % loss.defaults["k"]:
        k = max(j for j in range(1, loss.defaults["k"] + 1) if n % j == 0)
        hp["k"] = k
        notes.append(
            f"k={k}: the largest divisor of N={n} not above the official k={loss.defaults['k']}"
        )
    return hp, notes
