"""The training step flushes subnormal floats on the CPU; everything else keeps them."""

from __future__ import annotations

import numpy as np
import torch

from empirical.trainer import subnormals_flushed

TINY = 1e-39  # below float32's smallest normal number, 1.18e-38


def test_subnormals_are_flushed_inside_the_step_only():
    x = torch.tensor([TINY], dtype=torch.float32)
    assert float(x * 1.0) > 0  # gradual underflow outside
    with subnormals_flushed(torch.device("cpu")):
        assert float(x * 1.0) == 0.0
    assert float(x * 1.0) > 0  # restored after the block


def test_lapack_after_the_step_sees_gradual_underflow():
    """The SVD of a matrix with subnormal-scale singular values (a collapsed run's features)
    stays finite once the step's block has ended."""
    with subnormals_flushed(torch.device("cpu")):
        pass
    rng = np.random.default_rng(0)
    h = rng.standard_normal((200, 16)) * 1e-310
    s = np.linalg.svd(h, compute_uv=False)
    assert np.all(np.isfinite(s)) and s[0] > 0
