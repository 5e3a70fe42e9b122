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
    problem (8 PCA coordinates, 1024 images: the fixed pairs whose expected minibatch loss the
    ``general`` prediction integrates, at its cost per right-hand side, which NT-Xent's
    2B x 2B logits per block and VICReg's sliding variance hinge make the largest) at half the
    learning rate over twice the steps (the same flow time and 2 eta t = 4.8, half the
    finite-step error), the full size's seeds and held-out images."""
    if size == QUICK:
        return size
    return dataclasses.replace(
        QUICK, steps=2 * QUICK.steps, lr=QUICK.lr / 2, seeds=size.seeds, eval_size=size.eval_size
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
