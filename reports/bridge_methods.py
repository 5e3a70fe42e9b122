"""The bridge's method rungs: one linear-encoder run per method, each against the ``general``
simulation derived from it (:mod:`dynamics.from_run_methods`: the gradient flow of the run's own
loss, the expected minibatch loss at its batch size over its fixed augmented pairs), or, where
``--from-run`` refuses the method's runs (DirectPred, DirectCopy: W_p set from the features, not
trained by the loss), a row stating the refusal's reason."""

from __future__ import annotations

import dataclasses

from reports.bridge import LINEAR_PREDICTOR, QUICK, Rung, Size, linear_encoder


def method_size(size: Size) -> Size:
    """The sizes of the method rungs: the ladder's at ``--quick``; at full size the quick
    problem (8 PCA coordinates, 1024 images, batch 128; the cost of the ``general`` prediction
    per right-hand side grows with the pairs, and NT-Xent's 2B x 2B logits per block make it the
    largest) at an eighth of the learning rate over eight times the steps (the same flow time
    and 2 eta t = 4.8: 2400 steps of lr 0.00125) with four times the pairs (4096), the full
    size's seeds and held-out images.

    Both shrink what the flow cannot predict (docs/theory.md (D18), measured on quick-sized
    runs of 600 steps): the minibatch noise falls as sqrt(lr) (NT-Xent, W's distance from its
    replay on 4096 pairs, two seeds: 0.072 and 0.082 at lr 0.005, 0.042 and 0.043 at 0.00125),
    the finite step as lr, and the error of the fixed sample of pairs as its size^(-1/2) (two
    samples of 1024 pairs give replays 5-15% apart for every method)."""
    if size.quick:
        return size
    return dataclasses.replace(
        QUICK,
        quick=False,
        steps=8 * QUICK.steps,
        lr=QUICK.lr / 8,
        measure_every=8 * QUICK.measure_every,
        pairs=4 * QUICK.pairs,
        seeds=size.seeds,
        eval_size=size.eval_size,
    )


def method_rungs(size: Size) -> list[Rung]:
    """One rung per method with a linear encoder (no projector), each against the ``general``
    simulation derived from its run (the gradient flow of its own loss, the expected minibatch
    loss over its fixed augmented pairs) where ``--from-run`` predicts it."""
    small = method_size(size)
    lin = (*linear_encoder(small), "--momentum", "0", "--lr-schedule", "constant")
    ema = ("--ema-base", "0.99", "--ema-final", "0.99")
    general = "general: gradient flow of its own loss"
    refused = "no prediction (W_p set, not trained)"
    rungs = [
        ("bt", "Barlow Twins", "barlow_twins", (), general, 1.0),
        ("vicreg", "VICReg", "vicreg", (), general, 1.0),
        ("simclr", "SimCLR (NT-Xent)", "simclr", (), general, 1.0),
        ("spectral", "spectral contrastive loss", "simclr", ("--loss", "spectral"), general, 1.0),
        ("liu", "Liu et al. (linear W_p, no stop-gradient)", "liu", (), general, 0.1),
        ("byol_cosine", "BYOL, cosine loss", "byol", (*LINEAR_PREDICTOR, "--loss", "byol", *ema),
         general, 1.0),
        ("directpred", "DirectPred (W_p from F_hat)", "directpred", ema, refused, 1.0),
        ("directcopy", "DirectCopy (W_p = F_hat + eps I)", "directcopy", ema, refused, 1.0),
    ]  # fmt: skip
    return [
        Rung(key, title, method, (*lin, *extra), None if expect == refused else "general",
             expect, lr_factor, size=small, refused=expect == refused)
        for key, title, method, extra, expect, lr_factor in rungs
    ]  # fmt: skip
