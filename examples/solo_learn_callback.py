"""Record a solo-learn (PyTorch Lightning) run as a toolkit run folder, from a callback.

    from examples.solo_learn_callback import RecorderCallback
    callback = RecorderCallback(recorder, every=100, encoder=lambda m: m.backbone,
                                predictor=lambda m: m.predictor[0].weight)  # a linear W_p
    trainer = lightning.pytorch.Trainer(callbacks=[callback], ...)

The callback reads, after every optimiser step, the learning rate and weight decay of the first
parameter group, the EMA momentum of solo-learn's momentum methods (``momentum_updater.cur_tau``,
``None`` without one) and the logged loss, and passes them to ``recorder.record_step``; every
``every`` steps (and before the first) it calls ``recorder.measure``; at the end of training
``recorder.write``. Make the ``Recorder`` (``empirical.recorder``) with solo-learn's loss
convention, which sets the flow time (README, "Loss conventions"): BYOL sums its two directions
as the toolkit (``loss_directions=2``); Barlow Twins multiplies by ``scale_loss`` (pass
``loss_scale``, and ``--loss-param scale=`` to the toolkit's run to match); LARS (solo-learn's
default for BYOL) has no single flow time, so a run meant for ``--from-run`` trains with SGD.

Lightning is not a dependency of the toolkit: without it the class is a plain object with the
same hooks (``on_fit_start``, ``on_train_batch_end``, ``on_fit_end``), which any loop may call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:  # the base class only; nothing else of Lightning is used
    from lightning.pytorch import Callback
except ImportError:  # pragma: no cover - depends on the environment
    Callback = object


class RecorderCallback(Callback):
    """Calls a :class:`empirical.recorder.Recorder` from Lightning's training hooks.

    ``encoder(module)``: the network (or callable) whose output on un-augmented inputs is
    measured; ``predictor(module)``: a linear predictor's W_p (d x d) or None; ``weights(module)``:
    linear encoders' ``{"w": W, "w_target": W_a}`` or None.
    """

    def __init__(
        self,
        recorder: Any,
        every: int,
        encoder: Callable[[Any], Any],
        predictor: Callable[[Any], Any] = lambda module: None,
        weights: Callable[[Any], Any] = lambda module: None,
    ) -> None:
        super().__init__()
        self.recorder, self.every = recorder, every
        self.encoder, self.predictor, self.weights = encoder, predictor, weights
        self.schedule: dict[str, float | None] = {"lr": 0.0, "wd": 0.0, "ema": None}

    def _read(self, trainer, module) -> dict[str, float | None]:
        group = trainer.optimizers[0].param_groups[0]
        updater = getattr(module, "momentum_updater", None)
        ema = getattr(updater, "cur_tau", None)
        return {"lr": group["lr"], "wd": group.get("weight_decay", 0.0), "ema": ema}

    def _measure(self, step: int, module) -> None:
        self.recorder.measure(
            step,
            **self.schedule,
            encoder=self.encoder(module),
            predictor=self.predictor(module),
            weights=self.weights(module),
        )

    def on_fit_start(self, trainer, module) -> None:
        self.recorder.start()
        self.schedule = self._read(trainer, module)
        self._measure(0, module)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step  # optimiser steps taken, this one included
        self.schedule = self._read(trainer, module)
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        losses = {"loss": loss.detach()} if loss is not None else None
        self.recorder.record_step(step - 1, **self.schedule, losses=losses)
        if step % self.every == 0:
            self._measure(step, module)

    def on_fit_end(self, trainer, module) -> None:
        epochs = trainer.max_epochs or trainer.current_epoch
        self.recorder.write(epochs_completed=trainer.current_epoch, epochs=epochs)
