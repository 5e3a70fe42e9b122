"""Train the real self-supervised methods and measure what the theory predicts.

``python -m empirical.train METHOD --data fashion-mnist --epochs N --out DIR`` (``--list`` for
the methods). Losses come from :mod:`symbolic.losses`, observables from
:mod:`dynamics.observables`, result files follow :mod:`symbolic.common.schema`; see
empirical/README.md for the variables of ``DIR/measurements.nc``.

Modules: :mod:`~empirical.methods` (one class per method: heads, loss inputs, target, state,
options, defaults), :mod:`~empirical.config` (the shared options), :mod:`~empirical.train` (the
command line), :mod:`~empirical.trainer` (the loop), :mod:`~empirical.assembly` (its parts),
:mod:`~empirical.recorder` (measuring and writing a run; public, for any loop),
:mod:`~empirical.flow` (what a step is in flow time), :mod:`~empirical.augment` (batched per-sample
augmentations), :mod:`~empirical.recipes` (each method's augmentation),
:mod:`~empirical.backbones`, :mod:`~empirical.heads`, :mod:`~empirical.optim` (LARS, schedules),
:mod:`~empirical.distributed` (DDP, gathers, CPU SyncBN), :mod:`~empirical.data`,
:mod:`~empirical.moments` (X and X' of any augmentation), :mod:`~empirical.probes`,
:mod:`~empirical.measure`, :mod:`~empirical.record`, :mod:`~empirical.checkpoint`.
"""
