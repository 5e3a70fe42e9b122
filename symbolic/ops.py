"""The array-operations namespace every loss of :mod:`symbolic.losses` is written against.

A loss is a function ``fn(ops, *arrays, **hyperparameters)`` that only uses Python arithmetic
(``+ - * / **``, indexing, ``.shape``) and the methods of ``ops``. Three back ends implement the
methods:

- :class:`NumpyOps`: float numpy arrays, a numpy scalar comes out;
- :class:`TorchOps`: torch tensors on any device and dtype, autograd and autocast intact
  (``stop_gradient`` is ``detach``); torch is imported only when a tensor is passed;
- :class:`~symbolic.sympy_backend.SympyOps`: numpy object arrays of sympy expressions, a sympy
  expression comes out; constants are exact rationals and ``stop_gradient`` is
  :class:`~symbolic.sympy_backend.StopGradient`, a sympy function whose derivative is 0. It lives
  in :mod:`symbolic.sympy_backend`, imported only when object arrays are passed, so that this
  module and :mod:`symbolic.losses` load without sympy.

:func:`ops_for` picks the back end from the types of the arrays.
"""

from __future__ import annotations

import functools
import math
import sys
from typing import Any

import numpy as np

#: The smallest norm ``normalize`` divides by in the numeric back ends (torch's F.normalize).
NORM_EPS = 1e-12


def composed_standardize(ops, z, eps, unbiased):
    """(z - mean) / sqrt(Var + eps) per column over the batch (rows), from elementary ops."""
    n = z.shape[0]
    centred = z - ops.mean(z, axis=0, keepdims=True)
    var = ops.sum(centred * centred, axis=0, keepdims=True) / (n - 1 if unbiased else n)
    return centred / ops.sqrt(var + eps)


class NumpyOps:
    """numpy back end (float arrays)."""

    name = "numpy"

    def const(self, value):
        return float(value)

    def csqrt(self, value):
        """Square root of a constant (exact in sympy)."""
        return math.sqrt(value)

    def sum(self, x, axis=None, keepdims=False):
        return np.sum(x, axis=axis, keepdims=keepdims)

    def mean(self, x, axis=None, keepdims=False):
        return np.mean(x, axis=axis, keepdims=keepdims)

    def exp(self, x):
        return np.exp(x)

    def log(self, x):
        return np.log(x)

    def sqrt(self, x):
        return np.sqrt(x)

    def relu(self, x):
        return np.maximum(x, 0)

    def matmul(self, a, b):
        return np.matmul(a, b)

    def T(self, x):
        """Swap the last two axes."""
        return np.swapaxes(x, -1, -2)

    def reshape(self, x, shape):
        return np.reshape(x, shape)

    def concat(self, xs, axis=0):
        return np.concatenate(xs, axis=axis)

    def diagonal(self, x, offset=0):
        return np.diagonal(x, offset, axis1=-2, axis2=-1)

    def eye(self, n):
        """Boolean identity mask (n, n)."""
        return np.eye(n, dtype=bool)

    def offdiag(self, x):
        """x with its main diagonal set to 0."""
        return np.where(np.eye(x.shape[-1], dtype=bool), 0, x)

    def logsumexp(self, x, axis, where=None):
        """log sum exp over ``axis``, over the entries where ``where`` is True."""
        if where is not None:
            x = np.where(where, x, -np.inf)
        m = np.max(x, axis=axis, keepdims=True)
        return np.log(np.sum(np.exp(x - m), axis=axis)) + np.squeeze(m, axis=axis)

    def standardize(self, z, eps, unbiased):
        """(z - mean) / sqrt(Var + eps) per column over the batch; Var biased or unbiased."""
        return composed_standardize(self, z, eps, unbiased)

    def normalize(self, x, axis=-1):
        """x / max(||x||, 1e-12) along ``axis``."""
        norm = np.sqrt(np.sum(x * x, axis=axis, keepdims=True))
        return x / np.maximum(norm, NORM_EPS)

    def stop_gradient(self, x):
        return x

    def eigh(self, x):
        """Eigenvalues (increasing) and eigenvectors (columns) of the symmetric part of x."""
        return np.linalg.eigh((x + self.T(x)) / 2)

    def maximum(self, x, floor):
        """max(x, floor) entrywise."""
        return np.maximum(x, floor)

    def max(self, x, axis=None, keepdims=False):
        return np.max(x, axis=axis, keepdims=keepdims)

    def identity(self, n, like):
        """The n x n identity in the dtype of ``like``."""
        return np.eye(n, dtype=like.dtype)


class TorchOps:
    """torch back end: any device and dtype, autograd and autocast kept; sg is ``detach``."""

    name = "torch"

    def __init__(self, device):
        import torch
        import torch.nn.functional as F

        self.torch = torch
        self.F = F
        self.device = device

    def const(self, value):
        return float(value)

    def csqrt(self, value):
        return math.sqrt(value)

    def sum(self, x, axis=None, keepdims=False):
        if axis is None:
            return x.sum()
        return x.sum(dim=axis, keepdim=keepdims)

    def mean(self, x, axis=None, keepdims=False):
        if axis is None:
            return x.mean()
        return x.mean(dim=axis, keepdim=keepdims)

    def exp(self, x):
        return x.exp()

    def log(self, x):
        return x.log()

    def sqrt(self, x):
        return x.sqrt()

    def relu(self, x):
        return self.F.relu(x)

    def matmul(self, a, b):
        return self.torch.matmul(a, b)

    def T(self, x):
        return x.transpose(-1, -2)

    def reshape(self, x, shape):
        return x.reshape(shape)

    def concat(self, xs, axis=0):
        return self.torch.cat(list(xs), dim=axis)

    def diagonal(self, x, offset=0):
        return x.diagonal(offset, dim1=-2, dim2=-1)

    def eye(self, n):
        return _torch_eye(self.torch, n, self.device)

    def offdiag(self, x):
        return x.masked_fill(self.eye(x.shape[-1]), 0)

    def logsumexp(self, x, axis, where=None):
        if where is not None:
            x = x.masked_fill(~where, float("-inf"))
        return x.logsumexp(dim=axis)

    def standardize(self, z, eps, unbiased):
        """BatchNorm's fused kernel (training mode, no affine); the unbiased variant uses
        sqrt(Var_u + eps) = sqrt(N/(N-1)) sqrt(Var_b + eps (N-1)/N). The kernel needs eps > 0:
        eps = 0 is composed from elementary operations."""
        if not eps > 0:
            return composed_standardize(self, z, eps, unbiased)
        if not unbiased:
            return self.F.batch_norm(z, None, None, training=True, eps=eps)
        ratio = (z.shape[0] - 1) / z.shape[0]
        return self.F.batch_norm(z, None, None, training=True, eps=eps * ratio) * math.sqrt(ratio)

    def normalize(self, x, axis=-1):
        return self.F.normalize(x, dim=axis, eps=NORM_EPS)

    def stop_gradient(self, x):
        return x.detach()

    def eigh(self, x):
        return self.torch.linalg.eigh((x + self.T(x)) / 2)

    def maximum(self, x, floor):
        return self.torch.clamp(x, min=floor)

    def max(self, x, axis=None, keepdims=False):
        return x.amax() if axis is None else x.amax(dim=axis, keepdim=keepdims)

    def identity(self, n, like):
        return self.torch.eye(n, dtype=like.dtype, device=like.device)


@functools.lru_cache(maxsize=32)
def _torch_eye(torch, n, device):
    return torch.eye(n, dtype=torch.bool, device=device)


NUMPY = NumpyOps()


def is_sympy(value: Any) -> bool:
    """Whether ``value`` is a sympy object; never imports sympy (none exists before it loads)."""
    sympy = sys.modules.get("sympy")
    return sympy is not None and isinstance(value, sympy.Basic)


def backend_of(value: Any) -> str | None:
    """'torch', 'sympy' or 'numpy' for an array argument; None for anything else."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return "torch"
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return "sympy"
        if np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer):
            return "numpy"
    return None


def ops_for(arrays: dict[str, Any]):
    """The back end for the named arrays; TypeError naming an argument of the wrong type."""
    kinds = {}
    for name, value in arrays.items():
        kind = backend_of(value)
        if kind is None:
            raise TypeError(
                f"argument {name!r} is a {type(value).__name__}: expected a torch tensor, a numpy "
                "float array or a numpy object array of sympy expressions"
            )
        kinds[name] = kind
    if len(set(kinds.values())) > 1:
        desc = ", ".join(f"{n} is {k}" for n, k in kinds.items())
        raise TypeError(f"arguments mix back ends ({desc}): pass all of one kind")
    kind = next(iter(kinds.values()))
    if kind == "torch":
        first = next(iter(arrays.values()))
        return TorchOps(first.device)
    if kind == "sympy":
        from symbolic.sympy_backend import SYMPY

        return SYMPY
    return NUMPY
