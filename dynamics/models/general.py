"""The general model: a linear encoder (and predictor) trained on ANY loss of symbolic.losses.

Full-batch gradient flow on the fixed synthetic data set of :mod:`dynamics.models.encoder`
(n points, two sampled views each), with the right-hand side computed by torch autograd of the
loss's torch back end (float64):

    dW/dt = -dL/dW - eta W,   dW_p/dt = -alpha_p dL/dW_p - eta W_p,   dW_a/dt = beta (W - W_a)

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

from dynamics.models.base import StateLayout
from dynamics.models.encoder import EncoderModel, EncoderParams, SyntheticViews
from symbolic import losses
from symbolic.common.options import ParameterError, param, require
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

    def __post_init__(self):
        super().__post_init__()
        try:
            loss = losses.get(self.loss)
        except ValueError as err:
            raise ParameterError(f"loss={self.loss!r} is not allowed: {err}") from None
        usable = [n for n in losses.names() if tuple(losses.get(n).args) in ROLES]
        require(tuple(loss.args) in ROLES, "loss", self.loss, "one of " + ", ".join(usable))
        require(self.n_samples >= loss.min_n, "n_samples", self.n_samples, f">= {loss.min_n}")
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

    def __init__(self, params: GeneralParams):
        import torch  # only this model needs torch

        self.torch = torch
        self.loss = losses.get(params.loss)
        self.hyper = dict(params.loss_params)
        super().__init__(params)
        rng = np.random.default_rng(np.random.SeedSequence(params.seed).spawn(7)[6])
        queue = SyntheticViews.sample(self.x_corr, self.aug_cov, params.queue_size, rng)
        #: the infonce queue's input views
        self.queue_inputs = queue.x1
        self._tensors = {
            k: torch.from_numpy(v)
            for k, v in (("x1", self.data.x1), ("x2", self.data.x2), ("q", self.queue_inputs))
        }

    @property
    def has_predictor(self) -> bool:
        return self.params.role in ("predict", "linear_predictor", "predictor_pair")

    def make_layout(self) -> StateLayout:
        layout = super().make_layout()
        if self.params.ema_target:
            layout = StateLayout(
                [*layout.blocks, ("W_a", (self.params.dim, self.params.input_dim))]
            )
        return layout

    def initial_state(self, w0=None, wp0=None, wa0=None) -> np.ndarray:
        blocks = {"W": self._w0 if w0 is None else w0}
        if self.predictor_trained:
            blocks["W_p"] = self._wp0 if wp0 is None else wp0
        if self.params.ema_target:
            blocks["W_a"] = blocks["W"] if wa0 is None else wa0
        return self.layout.pack(**blocks)

    def loss_arguments(self, blocks: dict[str, Any], x: dict[str, Any]) -> tuple:
        """The loss's arrays from the state ``blocks`` and inputs ``x`` (numpy or torch alike)."""
        w = blocks["W"]
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

    def gradients(self, blocks):
        torch = self.torch
        trained = [k for k in self.layout.shapes if k != "W_a"]
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in blocks.items()}
        for k in trained:
            tensors[k].requires_grad_(True)
        # The problems are small: torch's intra-op threads only cost synchronisation (measured
        # 70 ms vs 0.6 ms per right-hand side with 2 threads vs 1 on a busy 2-core machine).
        # One thread inside this call only; the caller's torch setting is left as it was.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            value = self.loss(*self.loss_arguments(tensors, self._tensors), **self.hyper)
            grads = torch.autograd.grad(value, [tensors[k] for k in trained], allow_unused=True)
        finally:
            torch.set_num_threads(threads)
        return {
            k: np.zeros_like(blocks[k]) if g is None else g.numpy()
            for k, g in zip(trained, grads, strict=True)
        }

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        q = self.params
        b = self.layout.unpack(y)
        grads = self.gradients(b)
        out = {"W": -grads["W"] - q.eta * b["W"]}
        if self.predictor_trained:
            out["W_p"] = -q.alpha_p * grads["W_p"] - q.eta * b["W_p"]
        if q.ema_target:
            out["W_a"] = q.beta * (b["W"] - b["W_a"])
        return self.layout.pack(**out)

    def loss_value(self, blocks) -> float:
        x = {"x1": self.data.x1, "x2": self.data.x2, "q": self.queue_inputs}
        return float(self.loss(*self.loss_arguments(blocks, x), **self.hyper))

    def summary(self, ds):
        q = self.params
        hyper = ", ".join(f"{k}={v}" for k, v in self.hyper.items()) or "no hyperparameters"
        target = "EMA" if q.ema_target else "online"
        predictor = "predictor W_p" if self.has_predictor else "no predictor"
        head = f"  loss {q.loss} ({hyper}), target {target}, {predictor}, n = {q.n_samples}"
        return [head, *super().summary(ds)]
