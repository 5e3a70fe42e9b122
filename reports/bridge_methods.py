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


def vicreg_size(size: Size) -> Size:
    """VICReg's rung: at full size the method rungs' problem (:func:`method_size`) with the
    whole pool of 1024 images in every step (batch 1024) and 64 augmented pairs per image
    (65 536) in its prediction; the quick sizes as they are.

    At the method rungs' batch 128 and 4096 pairs, seed 0's run was 0.20 from its own
    deterministic replay (seeds 1 and 2: 0.05, 0.04), all of it minibatch noise and the pair
    sample, amplified along output rotations that its loss restores slowly or not at all (README,
    the method rungs). Measured on that seed (2026-12-07, 3 seeds each, W's distance from the
    replay): 0.20 at batch 128 and 4096 pairs; 0.16 and 0.13 at batch 512 and 1024 (the
    minibatch noise falls, the pair sample's error stays); 0.068 and 0.039 at batch 1024 with
    16 384 and 65 536 pairs (the sample's error falls as its size^(-1/2)). VICReg's gradient
    reads only each block's second moments (:mod:`dynamics.models.closed_gradients`), so the
    prediction, the replay and the nulls cost no more for the larger sample; the training costs
    about 3x (the batch)."""
    small = method_size(size)
    if size.quick:
        return small
    return dataclasses.replace(small, batch=small.pool, pairs=64 * small.pool)


def deep_linear_rung(size: Size) -> Rung:
    """Rung 4, between the linear rungs and the MLP: Barlow Twins on a deep linear encoder
    W = W_2 W_1 at :func:`method_size`, predicted by the deep-linear flow of its own loss
    (``general`` with ``depth`` 2, ``dynamics.models.general``)."""
    small = method_size(size)
    options = (*linear_encoder(small), "--depth", "2", "--momentum", "0", "--lr-schedule",
               "constant")  # fmt: skip
    title = "deep linear encoder, 2 layers (Barlow Twins)"
    return Rung("4", title, "barlow_twins", options, "general", "deep-linear flow", size=small)


#: the method rungs whose sizes differ from :func:`method_size`'s
OWN_SIZES = {"vicreg": vicreg_size}


def method_rungs(size: Size) -> list[Rung]:
    """One rung per method with a linear encoder (no projector), each against the ``general``
    simulation derived from its run (the gradient flow of its own loss, the expected minibatch
    loss over its fixed augmented pairs) where ``--from-run`` predicts it."""
    plain = ("--momentum", "0", "--lr-schedule", "constant")
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
    out = []
    for key, title, method, extra, expect, lr_factor in rungs:
        own = OWN_SIZES.get(key, method_size)(size)
        options = (*linear_encoder(own), *plain, *extra)
        scenario = None if expect == refused else "general"
        out.append(Rung(key, title, method, options, scenario, expect, lr_factor, size=own,
                        refused=expect == refused))  # fmt: skip
    return out
