"""The general model: a linear encoder (and predictor) trained on ANY loss of symbolic.losses.

Full-batch gradient flow on the fixed synthetic data set of :mod:`dynamics.models.encoder`
(n points, two sampled views each), with the right-hand side computed by torch autograd of the
loss's torch back end (float64), or, for the losses of
:data:`dynamics.models.closed_gradients.FORMS` on a one-layer encoder, by their gradients written
out in closed form (the same numbers to rounding, 1.7-13x faster: benchmarks/bench_gradients.py):

    dW/dt = -dL/dW / D - eta W,   dW_p/dt = -alpha_p (dL/dW_p / D + e_p W_p),
    dW_a/dt = beta (W - W_a)

with L the mean of the loss over the n // B consecutive blocks of B pairs (``batch_size`` B, 0: one
block of n; the expected minibatch loss at batch size B over the fixed sample), D
(``directions``) the loss convention of a run (``loss_directions`` x ``loss_scale``: the flow time
of one unit of learning rate, empirical.flow; 1: the loss itself), e_p = eta / alpha_p
(``predictor_decay='eta'``) or eta (``'alpha_p_eta'``, a run's one weight decay for both parameter
groups). A deep linear encoder (``depth`` L > 1) is the product W = W_L ... W_2 W_1 of L layers
(W_1: d x n1, the others d x d), each trained by the flow of the same loss (the deep-linear flow,
Saxe et al. 2014; Arora et al. 2018: dW_l/dt = -dL/dW_l / D - eta W_l).

This is how a user simulates a loss no one has written an ODE for. The loss's argument roles
(``loss.args``) decide what it is given, with Z_v = X_v W^T the online embeddings, T_v the target
embeddings (X_v W_a^T with an EMA target, else Z_v; stop-gradients are the loss's own):

    (z1, z2)            -> Z_1, Z_2                        invariance, nt_xent, barlow_twins, ...
    (p1, p2, z1, z2)    -> Z_1 W_p^T, Z_2 W_p^T, T_1, T_2  byol, simsiam
    (q, k, queue)       -> Z_1, T_2, Q W_a^T (Q: queue_size extra views)   infonce
    (wp, f1, f2)        -> W_p, Z_1, T_2                   linear_byol
    (wp, z1, z2)        -> W_p, Z_1, Z_2                   liu
    (k,)                -> Z_1^T (a column per sample)     garrido_lc, garrido_lnc

``target='auto'`` uses an EMA target for byol, infonce and linear_byol and the online network
otherwise. With ``loss=linear_byol`` the flow tends, as n grows, to Tian's population ODE of
``linear_byol`` (EMA target) or ``linear_simsiam`` (target online); same seed, same W(0), W_p(0).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import xarray as xr

from dynamics import symmetry
from dynamics.models import norm_growth
from dynamics.models.base import StateLayout
from dynamics.models.encoder import EncoderModel, EncoderParams, SyntheticViews
from dynamics.schedules import PiecewiseConstant
from symbolic import losses
from symbolic.common.options import ParameterError, param, require
from symbolic.common.schema import COL, INPUT, ROW, TIME
from symbolic.registry import loss_params_option

ROLES = {
    ("z1", "z2"): "pair",
    ("p1", "p2", "z1", "z2"): "predict",
    ("q", "k", "queue"): "queue",
    ("wp", "f1", "f2"): "linear_predictor",
    ("wp", "z1", "z2"): "predictor_pair",
    ("k",): "gram",
}
EMA_BY_DEFAULT = ("byol", "infonce", "linear_byol")
TARGETS = ("auto", "online", "ema")


@dataclasses.dataclass(frozen=True)
class RunInputs:
    """What a run supplies (``--from-run``, :mod:`dynamics.from_run_methods`): its fixed sample
    of augmented pairs ``x1``, ``x2`` (n, n1) in the encoder's input coordinates, its initial
    weights (``w_up0``: the layers above the first of a deep encoder) and its schedules."""

    x1: np.ndarray | None
    x2: np.ndarray | None
    w0: np.ndarray | None = None
    wp0: np.ndarray | None = None
    wa0: np.ndarray | None = None
    w_up0: np.ndarray | None = None
    alpha_p: PiecewiseConstant | None = None
    beta: PiecewiseConstant | None = None
    lr: PiecewiseConstant | None = None

    def breakpoints(self) -> np.ndarray:
        """Where a schedule jumps (the integrator restarts there)."""
        schedules = (self.alpha_p, self.beta, self.lr)
        parts = [s.breakpoints() for s in schedules if s is not None]
        return np.unique(np.concatenate(parts)) if parts else np.empty(0)


@dataclasses.dataclass(frozen=True)
class GeneralParams(EncoderParams):
    """A loss of symbolic.losses on a linear encoder; defaults match ``linear_byol``."""

    dim: int = param(12, "embedding dimension d (rows of W)", at_least=1)
    input_dim: int = param(16, "input dimension n1 (columns of W)", at_least=1)
    n_samples: int = param(1024, "number n of data points (each with two views)", at_least=2)
    eta: float = param(0.04, "weight decay eta", at_least=0)
    x_spectrum: str = param("isotropic", "data correlation X (as for linear_byol)")
    loss: str = param("linear_byol", "a loss of symbolic.losses (any name but batchnorm)")
    loss_params: dict = loss_params_option(
        "a hyperparameter of the loss NAME=VALUE (default: the official values)"
    )
    target: str = param(
        "auto",
        "'online', 'ema' (target W_a, rate beta) or 'auto' (ema for byol, infonce, linear_byol)",
        choices=TARGETS,
    )
    alpha_p: float = param(1.0, "relative learning rate of the predictor alpha_p", above=0)
    beta: float = param(0.4, "EMA rate beta of the target: dW_a/dt = beta (W - W_a)", above=0)
    queue_size: int = param(64, "number K of queue views for infonce", at_least=1)
    batch_size: int = param(
        0, "minibatch size B: L is the mean loss over n // B blocks of B pairs (0: B = n)",
        at_least=0,
    )  # fmt: skip
    directions: float = param(
        1.0, "loss convention D: the flow is that of L / D (a run's loss_directions x loss_scale)",
        above=0,
    )  # fmt: skip
    predictor_decay: str = param(
        "eta", "decay of W_p per unit time: eta, or alpha_p eta (a run's)",
        choices=("eta", "alpha_p_eta"),
    )  # fmt: skip
    symmetrize: bool = param(False, "add the loss with the two views swapped (Liu et al.'s run)")
    depth: int = param(1, "layers L of the deep linear encoder W = W_L ... W_1", at_least=1)
    lr: float = param(
        0.0,
        "learning rate per optimiser step of the run the flow predicts (plain SGD): the weights "
        "on which the loss is scale-invariant grow in norm by lr^2 E||g_B||^2 per step "
        "(docs/theory.md (D17)); 0: the pure gradient flow",
        at_least=0,
    )

    def __post_init__(self):
        super().__post_init__()
        try:
            loss = losses.get(self.loss)
        except ValueError as err:
            raise ParameterError(f"loss={self.loss!r} is not allowed: {err}") from None
        usable = [n for n in losses.names() if tuple(losses.get(n).args) in ROLES]
        require(tuple(loss.args) in ROLES, "loss", self.loss, "one of " + ", ".join(usable))
        block = self.batch_size or self.n_samples
        require(block <= self.n_samples, "batch_size", block, f"<= n_samples {self.n_samples}")
        require(block >= loss.min_n, "batch_size", block, f">= {loss.min_n}")
        require(self.depth == 1 or not self.ema_target, "depth", self.depth, "1 with an EMA target")
        try:  # the loss's own parser and checks (the one NAME=VALUE syntax of every command)
            resolved = loss.resolve({**loss.defaults, **loss.parse(dict(self.loss_params))})
        except (TypeError, ValueError) as err:
            raise ParameterError(f"loss_params is not allowed: {err}") from None
        object.__setattr__(self, "loss_params", resolved)

    @property
    def role(self) -> str:
        return ROLES[tuple(losses.get(self.loss).args)]

    @property
    def ema_target(self) -> bool:
        if self.target == "auto":
            return self.loss in EMA_BY_DEFAULT
        return self.target == "ema"


class GeneralModel(EncoderModel):
    """Gradient flow of any symbolic.losses loss on a linear encoder, by torch autograd."""

    name = "general"
    description = "any loss of symbolic.losses on a linear encoder (+ predictor), by autograd"

    def __init__(self, params: GeneralParams, inputs: RunInputs | None = None):
        import torch  # only this model needs torch

        from dynamics.models import closed_gradients  # (imports torch)

        self.torch = torch
        self.loss = losses.get(params.loss)
        self.hyper = dict(params.loss_params)
        #: what a run supplies (its pairs, weights and schedules), or None
        self.inputs = inputs
        super().__init__(params)
        if inputs is not None:  # the run's fixed sample of augmented pairs replaces the data
            self.data = SyntheticViews(inputs.x1, inputs.x1, inputs.x2)
        rng = np.random.default_rng(np.random.SeedSequence(params.seed).spawn(7)[6])
        queue = SyntheticViews.sample(self.x_corr, self.aug_cov, params.queue_size, rng)
        #: the infonce queue's input views
        self.queue_inputs = queue.x1
        self._tensors = {
            k: torch.from_numpy(v)
            for k, v in (("x1", self.data.x1), ("x2", self.data.x2), ("q", self.queue_inputs))
        }
        bound = 1 / np.sqrt(params.dim)  # torch's nn.Linear(d, d) initialisation
        self._w_up0 = rng.uniform(-bound, bound, (params.depth - 1, params.dim, params.dim))
        #: {block: 'rows' | 'matrix'}: the weights on which the loss is scale-invariant and
        #: whose norm growth the flow keeps (``lr`` > 0; not for a deep encoder)
        step = params.lr > 0 or (inputs is not None and inputs.lr is not None)
        self.invariance = self._invariance() if step and params.depth == 1 else {}
        #: the symmetries of the loss that a comparison may quotient out
        #: (:mod:`dynamics.symmetry`; a one-layer encoder only)
        rotates = params.depth == 1 and self._rotates()
        self.symmetries = (symmetry.OUTPUT_ROTATION,) if rotates else ()
        #: the loss's gradient in closed form on a one-layer encoder, where one is written
        #: (:mod:`dynamics.models.closed_gradients`)
        closed = params.depth == 1 and (params.loss, params.role) in closed_gradients.FORMS
        self._closed = closed_gradients.block_gradients if closed else None
        #: the pairs' minibatch blocks as the closed forms read them (moments computed once)
        self._block_views = closed_gradients.BlockViews(*self._blocks(self._tensors))

    @property
    def has_predictor(self) -> bool:
        return self.params.role in ("predict", "linear_predictor", "predictor_pair")

    def make_layout(self) -> StateLayout:
        q = self.params
        layout = super().make_layout()
        extra = [("W_up", (q.depth - 1, q.dim, q.dim))] if q.depth > 1 else []
        if q.ema_target:
            extra.append(("W_a", (q.dim, q.input_dim)))
        return StateLayout([*layout.blocks, *extra])

    def initial_state(self, w0=None, wp0=None, wa0=None) -> np.ndarray:
        given = self.inputs or RunInputs(None, None)
        w0 = next(w for w in (w0, given.w0, self._w0) if w is not None)
        blocks = {"W": w0}
        if self.predictor_trained:
            blocks["W_p"] = next(w for w in (wp0, given.wp0, self._wp0) if w is not None)
        if self.params.depth > 1:
            blocks["W_up"] = self._w_up0 if given.w_up0 is None else given.w_up0
        if self.params.ema_target:
            blocks["W_a"] = next(w for w in (wa0, given.wa0, w0) if w is not None)
        return self.layout.pack(**blocks)

    @staticmethod
    def encoder_matrix(blocks: dict[str, Any]) -> Any:
        """W = W_L ... W_2 W_1 (W_1 = ``W``, the others ``W_up``), numpy or torch, any leading
        (time) axes; W itself for one layer."""
        w = blocks["W"]
        if "W_up" in blocks:
            for layer in range(blocks["W_up"].shape[-3]):
                w = blocks["W_up"][..., layer, :, :] @ w
        return w

    def views(self, blocks):
        return self.embeddings(self.encoder_matrix(blocks))

    def eval_embeddings(self, blocks):
        return self.data.xbar @ np.swapaxes(self.encoder_matrix(blocks), -1, -2)

    def rates(self, t: float) -> tuple[float, float]:
        """(alpha_p, beta) at flow time t: the run's schedules where given, else the params."""
        q, given = self.params, self.inputs
        alpha_p = q.alpha_p if given is None or given.alpha_p is None else given.alpha_p(t)
        beta = q.beta if given is None or given.beta is None else given.beta(t)
        return float(alpha_p), float(beta)

    def minibatch_loss(self, blocks: dict[str, Any], x: dict[str, Any]) -> Any:
        """The mean of the loss over the n // B consecutive blocks of B pairs (the views
        swapped and added with ``symmetrize``); torch inputs: all blocks at once
        (``torch.func.vmap`` over the blocks, 3-4x faster than one block at a time)."""
        x1, x2 = self._blocks(x)
        if isinstance(x1, self.torch.Tensor):
            return self.torch.func.vmap(lambda v1, v2: self._block_loss(blocks, x, v1, v2))(
                x1, x2
            ).mean()
        pairs = zip(x1, x2, strict=True)
        return sum(self._block_loss(blocks, x, v1, v2) for v1, v2 in pairs) / len(x1)

    def _blocks(self, x: dict[str, Any]) -> tuple[Any, Any]:
        """The two views as (n // B, B, n1): the consecutive blocks of B pairs."""
        n = x["x1"].shape[0]
        size = self.params.batch_size or n
        parts = n // size
        return tuple(x[k][: parts * size].reshape(parts, size, -1) for k in ("x1", "x2"))

    def _block_loss(self, blocks: dict[str, Any], x: dict[str, Any], v1, v2) -> Any:
        """The loss of one block of pairs (v1, v2) (and of the swapped views: ``symmetrize``)."""
        total = self.loss(*self.loss_arguments(blocks, {**x, "x1": v1, "x2": v2}), **self.hyper)
        if self.params.symmetrize:
            swapped = {**x, "x1": v2, "x2": v1}
            total = total + self.loss(*self.loss_arguments(blocks, swapped), **self.hyper)
        return total

    def _invariance(self) -> dict[str, str]:
        """:func:`dynamics.models.norm_growth.invariant_groups` of W and W_p at a random state
        (the test's own generator; the EMA target, where there is one, held)."""
        rng = np.random.default_rng(12345)
        blocks = self.layout.unpack(rng.uniform(-1, 1, self.layout.size))
        names = ("W", "W_p") if self.predictor_trained else ("W",)
        return norm_growth.invariant_groups(self.loss_value, blocks, names, rng)

    def _rotates(self) -> bool:
        """:func:`dynamics.symmetry.rotation_invariant` of the loss at a random state (the
        test's own generator)."""
        rng = np.random.default_rng(54321)
        blocks = self.layout.unpack(rng.uniform(-1, 1, self.layout.size))
        return symmetry.rotation_invariant(self.loss_value, blocks, rng)

    def loss_arguments(self, blocks: dict[str, Any], x: dict[str, Any]) -> tuple:
        """The loss's arrays from the state ``blocks`` and inputs ``x`` (numpy or torch alike)."""
        w = self.encoder_matrix(blocks)
        wa = blocks.get("W_a", w)
        z1, z2 = x["x1"] @ w.T, x["x2"] @ w.T
        t1, t2 = (x["x1"] @ wa.T, x["x2"] @ wa.T) if "W_a" in blocks else (z1, z2)
        role = self.params.role
        if role == "pair":
            return z1, z2
        if role == "predict":
            wp = blocks["W_p"]
            return z1 @ wp.T, z2 @ wp.T, t1, t2
        if role == "queue":
            return z1, t2, x["q"] @ wa.T
        if role == "linear_predictor":
            return blocks["W_p"], z1, t2
        if role == "predictor_pair":
            return blocks["W_p"], z1, z2
        return (z1.T,)

    def gradients(self, blocks, drift: bool = False):
        """{block: dL/dblock} of the trained blocks (numpy); with ``drift`` also {block: n_G}
        of its scale-invariant ones (:func:`dynamics.models.norm_growth.drift`, from the
        gradient of each minibatch block: :meth:`_per_block_gradients`; the losses of
        :data:`dynamics.models.closed_gradients.FORMS` on a one-layer encoder, in closed form:
        :meth:`_closed_blocks`)."""
        torch = self.torch
        trained = [k for k in self.layout.shapes if k != "W_a"]
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in blocks.items()}
        # The problems are small: torch's intra-op threads only cost synchronisation (measured
        # 70 ms vs 0.6 ms per right-hand side with 2 threads vs 1 on a busy 2-core machine).
        # One thread inside this call only; the caller's torch setting is left as it was.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            per_block = self._closed_blocks(blocks) if self._closed is not None else None
            if per_block is None and drift and self.invariance:
                per_block = self._per_block_gradients(tensors, trained)
            if per_block is not None:
                grads = {k: g.mean(axis=0) for k, g in per_block.items()}
                if not drift:
                    return grads
                drifts = {
                    k: norm_growth.drift(per_block[k], blocks[k], group)
                    for k, group in self.invariance.items()
                }
                return grads, drifts
            for k in trained:
                tensors[k].requires_grad_(True)
            value = self.minibatch_loss(tensors, self._tensors)
            found = torch.autograd.grad(value, [tensors[k] for k in trained], allow_unused=True)
        finally:
            torch.set_num_threads(threads)
        grads = {
            k: np.zeros_like(blocks[k]) if g is None else g.numpy()
            for k, g in zip(trained, found, strict=True)
        }
        return (grads, {}) if drift else grads

    def _closed_blocks(self, blocks) -> dict[str, np.ndarray] | None:
        """{block: (n // B, *shape)}: each minibatch block's gradient in closed form
        (:func:`dynamics.models.closed_gradients.block_gradients`; None where it does not
        apply)."""
        q = self.params
        hyper = self.loss.resolve(self.hyper)
        return self._closed(q.loss, q.role, q.symmetrize, blocks, self._block_views, hyper)

    def _per_block_gradients(self, tensors: dict[str, Any], trained: list[str]) -> dict:
        """{block: (n // B, *shape) array}: the gradient of each minibatch block's loss, as
        the gradient of their sum with respect to one copy of the weights per block (a third
        faster than ``torch.func.vmap`` of ``torch.func.grad``, the same numbers)."""
        torch = self.torch
        x1, x2 = self._blocks(self._tensors)
        copies = {
            k: tensors[k].expand(len(x1), *tensors[k].shape).clone().requires_grad_(True)
            for k in trained
        }

        def block_loss(params, v1, v2):
            return self._block_loss({**tensors, **params}, self._tensors, v1, v2)

        per_block = torch.func.vmap(block_loss)(copies, x1, x2)
        found = torch.autograd.grad(per_block.sum(), [copies[k] for k in trained])
        return {k: g.numpy() for k, g in zip(trained, found, strict=True)}

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """The flow of the module docstring; with ``lr`` > 0 each scale-invariant block also
        grows by lr^2 n_G per optimiser step, i.e. (lr_block^2 / (D lr)) n_G per unit flow
        time (lr_block = lr for W, alpha_p lr for W_p; :mod:`dynamics.models.norm_growth`)."""
        q = self.params
        b = self.layout.unpack(y)
        grads, drifts = self.gradients(b, drift=True)
        alpha_p, beta = self.rates(t)
        lr = self.step_lr(t)
        out = {k: -grads[k] / q.directions - q.eta * b[k] for k in ("W", "W_up") if k in b}
        if "W" in drifts:
            out["W"] = out["W"] + lr / q.directions * drifts["W"]
        if self.predictor_trained:
            decay = q.eta * (alpha_p if q.predictor_decay == "alpha_p_eta" else 1.0)
            out["W_p"] = -alpha_p * grads["W_p"] / q.directions - decay * b["W_p"]
            if "W_p" in drifts:
                out["W_p"] = out["W_p"] + alpha_p**2 * lr / q.directions * drifts["W_p"]
        if q.ema_target:
            out["W_a"] = beta * (b["W"] - b["W_a"])
        return self.layout.pack(**out)

    def step_lr(self, t: float) -> float:
        """The predicted run's learning rate per step at flow time t (its schedule where
        given, else ``lr``)."""
        given = self.inputs
        return float(self.params.lr if given is None or given.lr is None else given.lr(t))

    def loss_value(self, blocks) -> float:
        x = {"x1": self.data.x1, "x2": self.data.x2, "q": self.queue_inputs}
        return float(self.minibatch_loss(blocks, x))

    def observables(self, t: np.ndarray, y: np.ndarray) -> xr.Dataset:
        """The encoder model's observables, with the weights: W (the product for a deep
        encoder) and W_p, W_a where trained."""
        ds = super().observables(t, y)
        b = self.layout.unpack(y)
        ds["w"] = ((TIME, ROW, INPUT), self.encoder_matrix(b))
        if "W_p" in b:
            ds["wp"] = ((TIME, ROW, COL), b["W_p"])
        if "W_a" in b:
            ds["w_target"] = ((TIME, ROW, INPUT), b["W_a"])
        if self.symmetries:
            ds.attrs[symmetry.SYMMETRIES_ATTR] = ", ".join(self.symmetries)
        return ds

    def summary(self, ds):
        q = self.params
        hyper = ", ".join(f"{k}={v}" for k, v in self.hyper.items()) or "no hyperparameters"
        target = "EMA" if q.ema_target else "online"
        predictor = "predictor W_p" if self.has_predictor else "no predictor"
        head = f"  loss {q.loss} ({hyper}), target {target}, {predictor}, n = {q.n_samples}"
        kept = ", ".join(f"{k} ({group})" for k, group in self.invariance.items())
        growth = [f"  norm growth lr^2 E||g_B||^2 per step kept for {kept} (docs (D17))"]
        return [head, *(growth if kept else []), *super().summary(ds)]
