"""The norm growth of scale-invariant weights under SGD: what a gradient flow leaves out.

A loss L is scale-invariant in a weight group G (a whole matrix, or each of its rows) when
L(c W_G) = L(W_G) for every c > 0: NT-Xent and the cosine losses of BYOL and SimSiam in W and in
W_p (they normalise each embedding), Barlow Twins and Liu et al. in each row of W (they
standardise each feature over the batch; Barlow Twins up to its eps). Then every minibatch
gradient g_B is orthogonal to W_G (Euler's theorem: W_G . dL/dW_G = 0), and one SGD step with
weight decay, W' = (1 - lr wd) W - lr g_B, gives exactly

    ||W'_G||^2 = (1 - lr wd)^2 ||W_G||^2 + lr^2 ||g_B,G||^2          docs/theory.md (D17)

The gradient flow keeps only the first term (d||W_G||^2/dt = -2 eta ||W_G||^2: the norm decays
without end, and the angular speed, which scales as 1/||W_G||^2, grows without end); the second,
of order lr^2 per step, holds the norm of a run where the flow lets it vanish (at 2 eta t = 4.8,
e^{-4.8} of the initial squared norm). In expectation over the minibatch, E||g_B||^2 = ||g||^2 +
tr Cov(g_B): the finite step and the minibatch noise alike. The flow that keeps it adds to
each group, per optimiser step,

    lr^2 n_G,   n_G = (1/2) (E_B ||g_B,G||^2 / ||W_G||^2) W_G

(radial: d||W_G||^2 = 2 W_G . lr^2 n_G = lr^2 E||g_B,G||^2), E_B the mean over the minibatch
blocks of the run's fixed pairs. The equilibrium this leads to (weight norm and angular update
per step set by lr and wd, not by the flow) is the subject of Wan et al., "Spherical motion
dynamics" (arXiv 2006.08419, ICLR 2021) and Kosson et al., "Rotational equilibrium" (arXiv
2305.17212); the recursion above, derived here, is all this module uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

#: a group counts as scale-invariant when scaling it changes the loss by less than this
#: (relative): Barlow Twins' eps (1e-5 on the batch variance) breaks it at about 1e-4
INVARIANCE_RTOL = 1e-3
#: the factors the test scales by (a whole matrix; each row by its own)
MATRIX_FACTOR = 1.7


def invariant_groups(
    loss: Callable[[Mapping[str, np.ndarray]], float],
    blocks: Mapping[str, np.ndarray],
    names: tuple[str, ...],
    rng: np.random.Generator,
) -> dict[str, str]:
    """{block: 'rows' or 'matrix'} of the blocks in ``names`` on which ``loss`` (of the state
    ``blocks``) is scale-invariant: 'rows' when scaling each row by its own factor leaves it
    unchanged, else 'matrix' when scaling the whole block does; blocks with neither left out."""
    base = loss(blocks)
    scale = max(1.0, abs(base))

    def unchanged(block: str, factor) -> bool:
        scaled = loss({**blocks, block: factor * blocks[block]})
        return abs(scaled - base) <= INVARIANCE_RTOL * scale

    found = {}
    for name in names:
        rows = rng.uniform(0.5, 2.0, (blocks[name].shape[0], 1))
        if unchanged(name, rows):
            found[name] = "rows"
        elif unchanged(name, MATRIX_FACTOR):
            found[name] = "matrix"
    return found


def drift(per_block: np.ndarray, weights: np.ndarray, group: str) -> np.ndarray:
    """n_G of the module docstring for one block: ``per_block`` (blocks, *shape) the gradient
    of each minibatch block's loss, ``weights`` the block, ``group`` 'rows' or 'matrix'."""
    axes = (-1,) if group == "rows" else tuple(range(-weights.ndim, 0))
    mean_square = np.mean(np.sum(per_block**2, axis=axes, keepdims=True), axis=0)
    norm = np.sum(weights**2, axis=axes, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(norm > 0, mean_square / norm, 0.0)
    return 0.5 * ratio * weights
