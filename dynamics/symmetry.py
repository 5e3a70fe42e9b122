"""Symmetries of a loss that a comparison quotients out: an orthogonal map of the embeddings.

A loss is invariant under an orthogonal map Q of the embedding space when L(Q W, Q W_p Q^T,
Q W_a) = L(W, W_p, W_a) for every orthogonal Q: the embeddings rotate together (z -> Q z, the
predictor conjugated) and every term the loss builds from inner products is unchanged. NT-Xent,
InfoNCE, the spectral contrastive loss, the cosine losses of BYOL and SimSiam and Tian's eq. 1
are; Barlow Twins, VICReg and Liu et al. (terms per feature: standardisation, the variance hinge,
off-diagonal covariances) are not. The gradient flow (weight decay included) is then
equivariant: W(0) -> Q W(0) gives W(t) -> Q W(t), and the minibatch noise of a run moves it
along that orbit with no restoring force, so a prediction of W(t) is a prediction up to Q
(:func:`reports.compare.orbit_error`). Detected numerically, at a random state and Q.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

#: the name of the symmetry, listed in a simulation's attribute :data:`SYMMETRIES_ATTR`
OUTPUT_ROTATION = "output rotation"
SYMMETRIES_ATTR = "symmetries"
#: a loss counts as invariant when the map changes it by less than this (relative): an exact
#: invariance holds to rounding, a broken one (per-feature terms) changes the loss at order 1
ROTATION_RTOL = 1e-9


def rotation_invariant(
    loss: Callable[[Mapping[str, np.ndarray]], float],
    blocks: Mapping[str, np.ndarray],
    rng: np.random.Generator,
) -> bool:
    """Whether ``loss`` (of the state ``blocks``: ``W`` (d, n), optional ``W_p`` (d, d) and
    ``W_a`` (d, n)) is unchanged, to :data:`ROTATION_RTOL`, by W -> Q W, W_p -> Q W_p Q^T,
    W_a -> Q W_a for a random orthogonal Q."""
    d = blocks["W"].shape[0]
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    rotated = {k: q @ blocks[k] for k in ("W", "W_a") if k in blocks}
    if "W_p" in blocks:
        rotated["W_p"] = q @ blocks["W_p"] @ q.T
    base = loss(blocks)
    return abs(loss({**blocks, **rotated}) - base) <= ROTATION_RTOL * max(1.0, abs(base))
