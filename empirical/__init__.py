"""Train the real self-supervised methods and measure what the theory predicts.

``python -m empirical.train METHOD --data fashion-mnist --epochs N --out DIR`` (``--list`` for
the methods). Losses come from :mod:`symbolic.losses`, observables from
:mod:`dynamics.observables`, result files follow :mod:`symbolic.common.schema`; see empirical/README.md
for the variables of ``DIR/measurements.nc``.

Modules: :mod:`~empirical.methods` (architectures, official defaults, which tensors enter each
loss), :mod:`~empirical.augment` (batched per-sample BYOL augmentations),
:mod:`~empirical.backbones`, :mod:`~empirical.heads`, :mod:`~empirical.directpred`,
:mod:`~empirical.optim` (LARS, schedules), :mod:`~empirical.distributed` (DDP, gathers,
CPU SyncBN), :mod:`~empirical.data`, :mod:`~empirical.probes`, :mod:`~empirical.measure`,
:mod:`~empirical.record`, :mod:`~empirical.checkpoint`, :mod:`~empirical.config`,
:mod:`~empirical.train`.
"""
