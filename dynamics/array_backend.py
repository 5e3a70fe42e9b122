"""The array operations of the vectorised stepper (:mod:`dynamics.batch_integrate`), on numpy
arrays or on float64 torch tensors (CPU or CUDA): one small class per back end, chosen by name
with :func:`backend`. Arithmetic operators, comparisons, boolean masks and ``abs`` are shared by
both libraries; these classes hold the few operations whose spelling differs.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np

#: back-end names accepted by :func:`backend`
BACKENDS = ("numpy", "torch", "torch:cpu", "torch:cuda")


class NumpyBackend:
    """The array operations of the stepper on numpy arrays."""

    name = "numpy"
    #: columns per inner batch: the stage arrays stay in the CPU cache
    batch = 8192

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """What holds while the stepper runs (numpy: nothing)."""
        yield

    def asarray(self, a) -> np.ndarray:
        return np.asarray(a, dtype=float)

    def empty(self, *shape: int) -> np.ndarray:
        return np.empty(shape)

    def to_numpy(self, a) -> np.ndarray:
        return np.asarray(a)

    def full(self, size: int, value, dtype=float):
        return np.full(size, value, dtype=dtype)

    def arange(self, start: int, stop: int):
        return np.arange(start, stop)

    def combine(self, coefficients: np.ndarray, k, out) -> None:
        """out = sum_i coefficients[i] k[i] in one pass (einsum: no BLAS threads, which
        oversubscribe the cores when sweeps run in parallel processes)."""
        np.einsum("i,i...->...", coefficients, k[: coefficients.size], out=out)

    def where(self, mask, a, b):
        return np.where(mask, a, b)

    def multiply(self, a, b, out) -> None:
        np.multiply(a, b, out=out)

    def put_where(self, dst, mask, src) -> None:
        """dst[..., j] = src[..., j] where mask[j], in place."""
        np.copyto(dst, src, where=mask)

    def clip(self, x, lo=None, hi=None):
        return np.clip(x, lo, hi)

    def maximum(self, a, b):
        return np.maximum(a, b)

    def amax(self, x):
        """max over the components (axis 0)."""
        return np.max(x, axis=0)

    def exp(self, x):
        return np.exp(x)

    def log(self, x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x)

    def isfinite(self, x):
        return np.isfinite(x)

    def spacing(self, t):
        return np.abs(np.spacing(t))

    def power(self, x, e):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return x**e


class TorchBackend(NumpyBackend):
    """The same operations on float64 torch tensors on ``device`` ("cpu" or "cuda")."""

    def __init__(self, device: str):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.name = f"torch:{self.device.type}"
        # CUDA: every column in one batch (kernel launches, not the cache, limit a GPU);
        # CPU: fewer, larger batches than numpy's (a torch operation costs more to start)
        self.batch = 1 << 62 if self.device.type == "cuda" else 16384

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """On the CPU one intra-op thread (parallel sweeps use --workers, as with numpy: two
        threads per operation on a loaded 2-core machine made each operation 20x slower)."""
        threads = self.torch.get_num_threads()
        if self.device.type == "cpu":
            self.torch.set_num_threads(1)
        try:
            yield
        finally:
            self.torch.set_num_threads(threads)

    def asarray(self, a):
        if isinstance(a, self.torch.Tensor):
            return a.to(self.device, self.torch.float64)
        return self.torch.as_tensor(np.asarray(a, float), device=self.device)

    def empty(self, *shape: int):
        return self.torch.empty(shape, dtype=self.torch.float64, device=self.device)

    def to_numpy(self, a) -> np.ndarray:
        return a.cpu().numpy() if isinstance(a, self.torch.Tensor) else np.asarray(a)

    def full(self, size: int, value, dtype=float):
        kind = {float: self.torch.float64, bool: self.torch.bool, int: self.torch.int64}[dtype]
        return self.torch.full((size,), value, dtype=kind, device=self.device)

    def arange(self, start: int, stop: int):
        return self.torch.arange(start, stop, device=self.device)

    def combine(self, coefficients, k, out) -> None:
        """out = sum_i coefficients[i] k[i], one fused multiply-add per non-zero coefficient."""
        out.zero_()
        for i, coefficient in enumerate(coefficients):
            if coefficient != 0.0:
                out.add_(k[i], alpha=float(coefficient))

    def where(self, mask, a, b):
        if not isinstance(a, self.torch.Tensor) and not isinstance(b, self.torch.Tensor):
            a = self.torch.tensor(a, dtype=self.torch.float64, device=self.device)
        return self.torch.where(mask, a, b)

    def multiply(self, a, b, out) -> None:
        self.torch.mul(a, b, out=out)

    def put_where(self, dst, mask, src) -> None:
        dst.copy_(self.torch.where(mask, src, dst))

    def clip(self, x, lo=None, hi=None):
        return self.torch.clamp(x, lo, hi)

    def maximum(self, a, b):
        return self.torch.maximum(a, b)

    def amax(self, x):
        return self.torch.amax(x, dim=0)

    def exp(self, x):
        return self.torch.exp(x)

    def log(self, x):
        return self.torch.log(x)

    def isfinite(self, x):
        return self.torch.isfinite(x)

    def spacing(self, t):
        return self.torch.nextafter(t, self.torch.full_like(t, math.inf)) - t


def backend(name: str = "numpy") -> NumpyBackend:
    """The back end called ``name``: 'numpy', 'torch' (CUDA when present, else CPU),
    'torch:cpu' or 'torch:cuda'. ValueError naming the value when it is unknown or unusable."""
    if name == "numpy":
        return NumpyBackend()
    if name not in BACKENDS:
        raise ValueError(f"backend={name!r} is not allowed: one of {', '.join(BACKENDS)}")
    try:
        import torch
    except ImportError:
        raise ValueError(
            f"backend={name!r} needs torch: pip install 'ssl-dynamics[torch]'"
        ) from None
    device = name.partition(":")[2] or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"backend={name!r} is not available: torch finds no CUDA device")
    return TorchBackend(device)
