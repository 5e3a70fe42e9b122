"""A run with another loss than Tian's eq. 1 replayed, and its flows and ablation nulls.

A run of ``empirical.train`` on a linear encoder (``--backbone linear --projector none``) with
any loss that ``general`` predicts (cosine BYOL and SimSiam, Barlow Twins, VICReg, NT-Xent, Liu
et al.'s, the spectral loss; :mod:`dynamics.from_run_methods`) has as its population loss the
expected minibatch loss L at its batch size over its fixed sample of augmented pairs
(``pairs.nc``): the mean of the run's own loss over the n // B consecutive blocks of B pairs
(:meth:`dynamics.models.general.GeneralModel.minibatch_loss`, by torch autograd, all blocks at
once). :func:`load_problem` gives the run's :class:`dynamics.replay.Problem` with this loss's
gradient (:class:`PairLoss`) in place of eq. 1's, so that :func:`dynamics.replay.replay` (the
run's exact optimiser on L from its W(0), W_p(0), W_a(0): the noise floor),
:func:`dynamics.replay.flow` (first order: ``general``'s prediction; inertial for a momentum
run) and :func:`dynamics.replay.ablation` apply unchanged. The ablation nulls
(:data:`dynamics.replay.INGREDIENTS`):

- the augmentation: each pair's two views replaced by their mean m = (x_1 + x_2)/2 (no
  augmentation), or their differences from it scaled by sqrt(2) or sqrt(1/2)
  (x_v -> m + s (x_v - m): the augmentation's covariance X' times 2 or 1/2);
- the weight decay (wd = 0), the EMA lag (W_a = W: the online target under the loss's own
  stop-gradient), the clock D = 1 (the gradient of L / D_run for L: the run's flow time with
  the loss D_run times too weak, as for eq. 1), the momentum (the first-order flow);
- for plain SGD on a loss that is scale-invariant in W or W_p (NT-Xent, the cosine losses,
  Barlow Twins' and Liu et al.'s standardisation), the norm growth lr^2 E||g_B||^2 per step
  that the flows keep (:mod:`dynamics.models.norm_growth`): its null is the pure gradient
  flow.

Not replayed: a deep linear encoder (``--depth`` > 1; its layers are not in the optimiser's
record as one Problem) and the losses ``general`` does not predict (a queue, the Gram losses).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dynamics.from_run_methods import EQ1_LOSS, derive_general
from dynamics.models.general import GeneralModel, GeneralParams
from dynamics.replay import NotReplayable, Problem, optimiser_record, run_record
from symbolic.common.cli import UsageError
from symbolic.common.options import ParameterError, build


@dataclasses.dataclass(frozen=True)
class PairLoss:
    """dL/dW and dL/dW_p of a run's own loss L over its fixed pairs (see the module)."""

    model: GeneralModel  # the run's loss, pairs and batch size
    directions: float  # the run's D (loss_directions x loss_scale)

    def gradients(self, w, wp, wa) -> tuple[np.ndarray, np.ndarray]:
        """(dL/dW, dL/dW_p) at (W, W_p, W_a); ``wa`` None: the online target (W_a = W)."""
        grads = self.model.gradients(self._blocks(w, wp, wa))
        return grads["W"], grads.get("W_p", np.zeros_like(wp))

    def norm_drifts(self, w, wp, wa) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(dL/dW, dL/dW_p, n_W, n_P): the gradients and the norm growth per lr^2 of the
        weights on which the loss is scale-invariant (:mod:`dynamics.models.norm_growth`)."""
        grads, drifts = self.model.gradients(self._blocks(w, wp, wa), drift=True)
        zero_p = np.zeros_like(wp)
        return (
            grads["W"],
            grads.get("W_p", zero_p),
            drifts.get("W", np.zeros_like(w)),
            drifts.get("W_p", zero_p),
        )

    def _blocks(self, w, wp, wa) -> dict[str, np.ndarray]:
        blocks = {"W": w}
        if self.model.predictor_trained:
            blocks["W_p"] = wp
        if wa is not None:
            blocks["W_a"] = wa
        return blocks

    def with_views(self, scale: float) -> PairLoss:
        """The same loss on pairs x_v -> m + scale (x_v - m), m = (x_1 + x_2)/2."""
        given = self.model.inputs
        mean = (given.x1 + given.x2) / 2
        inputs = dataclasses.replace(
            given, x1=mean + scale * (given.x1 - mean), x2=mean + scale * (given.x2 - mean)
        )
        return dataclasses.replace(self, model=GeneralModel(self.model.params, inputs))


def load_problem(run: str | Path, source: str = "optimiser") -> Problem:
    """The :class:`dynamics.replay.Problem` of a run predicted by ``general``: its optimiser's
    record (``source`` as in :func:`dynamics.replay.load_problem`) and the gradient of its own
    loss over its fixed pairs; NotReplayable (with why) for a run that has none."""
    path, ds = run_record(run)
    if str(ds.attrs.get("loss_name")) == EQ1_LOSS:
        raise NotReplayable("its loss is eq. 1: dynamics.replay.load_problem")
    if "w_up" in ds:
        raise NotReplayable("a deep linear encoder: its layers are not replayed")
    try:
        derived = derive_general(path)
        params = build(GeneralParams, derived.params)
    except (UsageError, ParameterError) as err:
        raise NotReplayable(str(err)) from None
    record = optimiser_record(ds, source)
    model = GeneralModel(params, derived.inputs)
    # no predictor: an empty W_p (its path stays empty; reports.references drops it)
    wp0 = derived.inputs.wp0 if model.predictor_trained else np.zeros((0, 0))
    loss = PairLoss(model, record["directions"])
    if model.invariance and record["weight_decay"] > 0:
        # plain SGD on a scale-invariant loss (derive_general sets lr) with the weight decay
        # that shrinks the norm the growth holds (without it the norm stays in the flow too)
        record["configured"] = record["configured"] | {"norm growth"}
    return Problem(x=None, xp=None, wp0=wp0, loss=loss, **record)
