"""What a self-supervised method is: a class that declares its parts, registered by its name.

A method (one file in this package, a subclass of :class:`Method` with a ``name``) declares

- its heads: ``projector_layout`` (the MLP of its paper) and :meth:`Method.build_predictor`;
- what its predictor is (``predictor``): ``"trained"`` by gradient descent, ``"set"`` from the
  features at every step (DirectPred), or ``"absent"``;
- what its target branch is (``target``): ``"ema"`` (an EMA copy of the online backbone and
  projector, xi <- tau xi + (1 - tau) theta after every step, parameters only), ``"online"`` (the
  online network under stop-gradient), or ``"none"`` (both branches trained);
- its loss: ``losses`` (the names in :mod:`symbolic.losses` it can train with, the first the
  default), ``loss_overrides`` (its paper's hyperparameter values), :meth:`Method.loss_args` (the
  tensors the loss takes), ``loss_terms`` (the unweighted terms recorded), ``loss_directions``;
- its augmentation (``augmentation``: its paper's recipe in :mod:`empirical.recipes`);
- its per-step state (:meth:`Method.update_state`: a queue, a running correlation);
- its options (``options``: dataclasses of :func:`~symbolic.common.options.param` fields) and its
  defaults for the shared ones (``defaults``: learning rate, optimiser, widths, ...).

The trainer, the recorder and the reports ask the method (or the attributes it writes into the
run's files, :meth:`Method.describe`), never its name. Every training loss is
``symbolic.losses.get(name)``, looked up at every step.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from empirical.heads import LinearPredictor, mlp
from symbolic import losses
from symbolic.common.options import param

PREDICTOR_KINDS = ("trained", "set", "absent")
TARGET_KINDS = ("ema", "online", "none")

#: name -> method class, filled by :meth:`Method.__init_subclass__`
METHODS: dict[str, type[Method]] = {}

#: term name -> function(loss_fn, args, hyperparameters) giving that term alone, unweighted
TermFn = Callable[[Callable, tuple, dict], torch.Tensor]


def with_hypers(**overrides) -> TermFn:
    """The loss with some hyperparameters replaced (e.g. one term's weight 1, the others 0)."""
    return lambda fn, args, hp: fn(*args, **{**hp, **overrides})


def _term(term: TermFn, fn: Callable, *args, **hp) -> torch.Tensor:
    """One loss term as a loss function of the loss's arguments (for ``Method.loss_value``)."""
    return term(fn, args, hp)


def full(x: torch.Tensor) -> torch.Tensor:
    """Autocast outputs (bf16/fp16) back to float32 for the loss; other dtypes unchanged."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


@dataclasses.dataclass(frozen=True)
class EMAOptions:
    """Options of a method with an EMA target."""

    ema_base: float = param(
        0.99, "EMA momentum tau at step 0 (cosine to --ema-final)", at_least=0, at_most=1
    )
    ema_final: float = param(1.0, "EMA momentum tau at the last step", at_least=0, at_most=1)


@dataclasses.dataclass(frozen=True)
class PredictorOptions:
    """Options of a method whose predictor is trained: an MLP (its paper's) or linear W_p."""

    predictor: str = param(
        "mlp",
        "predictor: the paper's MLP, a bias-free linear W_p (d x d), or none (the identity: the "
        "ablation of Tian et al.'s Sec. 3, which collapses)",
        choices=("mlp", "linear", "none"),
    )
    pred_hidden: int = param(4096, "hidden width of the MLP predictor", at_least=1, at_most=65536)


class Online(nn.Module):
    """Backbone + projector (+ predictor); forward(x1, x2) gives h, z (and p) of both views."""

    def __init__(
        self, backbone: nn.Module, projector: nn.Module, predictor: nn.Module | None, apply: bool
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = projector
        self.predictor = predictor
        self.apply_predictor = apply

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.backbone(x)
        return h, self.projector(h)

    def forward_once(self, x: torch.Tensor) -> None:
        """Every layer on one batch of inputs (to fill the BatchNorm statistics)."""
        z = self.encode(x)[1]
        if self.predictor is not None:
            self.predictor(z)

    def forward(self, *views: torch.Tensor) -> dict[str, torch.Tensor]:
        """h, z (and p) of each view given: ``h1, z1, p1`` of the first, ``h2, ...`` of the
        second."""
        out = {}
        for i, x in enumerate(views, start=1):
            out[f"h{i}"], out[f"z{i}"] = self.encode(x)
        if self.apply_predictor:  # without a predictor module, p = z (the identity)
            head = self.predictor if self.predictor is not None else (lambda z: z)
            for i in range(1, len(views) + 1):
                out[f"p{i}"] = head(out[f"z{i}"])
        return out


class Target(nn.Module):
    """EMA copy of the online backbone and projector (no predictor)."""

    def __init__(self, online: Online) -> None:
        super().__init__()
        self.backbone = copy.deepcopy(online.backbone)
        self.projector = copy.deepcopy(online.projector)
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.backbone(x))


class Method(nn.Module):
    """A self-supervised method: online network, optional EMA target and state, and its loss."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    losses: ClassVar[tuple[str, ...]] = ()
    loss_overrides: ClassVar[dict[str, Any]] = {}
    loss_terms: ClassVar[dict[str, dict[str, TermFn]]] = {}
    predictor: ClassVar[str] = "absent"
    target: ClassVar[str] = "none"
    #: what a DDP run gathers before the loss (documentation, see empirical.distributed)
    gathered: ClassVar[str] = "nothing"
    projector_layout: ClassVar[dict[str, Any]] = {"layers": 2, "batchnorm": True}
    options: ClassVar[tuple[type, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}
    #: the two-view augmentation of its paper (a name in :data:`empirical.recipes.RECIPES`),
    #: used on image backbones unless ``--augment`` names another
    augmentation: ClassVar[str] = "byol"
    #: the linear-theory scenario of dynamics.simulate that predicts this method when its
    #: predictor is linear (a run records it; ``--from-run`` and the reports use it)
    scenario: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if not name:
            return
        if name in METHODS and METHODS[name].__qualname__ != cls.__qualname__:
            raise ValueError(f"method {name!r} is registered twice ({METHODS[name]} and {cls})")
        if cls.predictor not in PREDICTOR_KINDS or cls.target not in TARGET_KINDS:
            raise ValueError(f"method {name!r}: predictor/target kind not allowed")
        METHODS[name] = cls

    # ------------------------------------------------------------------ configuration
    @classmethod
    def check(cls, cfg: Any) -> None:
        """Checks of the resolved configuration that involve the method (ValueError, one line)."""

    @classmethod
    def loss_hyperparameters(cls, loss: str, given: dict[str, Any]) -> dict[str, Any]:
        """The loss's hyperparameters: its defaults, the method's values, then ``given``.

        ``given`` maps names to values or to their text (from ``--loss-param NAME=VALUE``);
        ValueError names a bad one.
        """
        fn = losses.get(loss)
        overrides = cls.loss_overrides if loss == cls.losses[0] else {}
        try:
            return fn.resolve({**fn.defaults, **overrides, **fn.parse(given)})
        except (TypeError, ValueError) as err:
            raise ValueError(f"--loss-param {err}") from None

    def __init__(self, cfg: Any, backbone: nn.Module) -> None:
        super().__init__()
        self.cfg = cfg
        self.loss_params = dict(cfg.loss_params)
        feat = backbone.out_dim
        if cfg.projector == "none":
            projector: nn.Module = nn.Identity()
            self.dim = feat
        else:
            projector = mlp(feat, cfg.proj_hidden, cfg.proj_dim, **self.projector_layout)
            self.dim = cfg.proj_dim
        predictor = self.build_predictor(self.dim)
        self.online = Online(backbone, projector, predictor, self.applies_predictor)
        self.target_net = Target(self.online) if self.target == "ema" else None
        self.set_forward(self.online)
        self.autocast: Callable = contextlib.nullcontext  # the trainer sets bf16 autocast on CUDA

    #: whether the online forward applies the predictor to both views (p1, p2)
    applies_predictor: ClassVar[bool] = False
    #: the views the online network encodes (MoCo's loss uses only the first view's query)
    online_views: ClassVar[int] = 2

    def build_predictor(self, dim: int) -> nn.Module | None:
        """The predictor head on d-dimensional projections (None: no predictor)."""
        return None

    def set_forward(self, module: nn.Module) -> None:
        """Route training forwards through ``module`` (the DDP or compiled wrapper of online).

        Stored outside the module registry so the state dict keeps only ``online.*`` keys.
        """
        object.__setattr__(self, "forward_online", module)

    # ------------------------------------------------------------------ what the run records
    def predictor_matrix(self) -> torch.Tensor | None:
        """W_p (d x d) when the predictor is linear, else None."""
        pred = self.online.predictor
        return pred.weight.detach() if isinstance(pred, LinearPredictor) else None

    def predictor_weight(self) -> torch.Tensor:
        """W_p of a linear predictor; the identity (a constant) without a predictor."""
        if self.online.predictor is None:
            return torch.eye(self.dim, device=next(self.parameters()).device)
        return self.online.predictor.weight

    def predictor_features(self, z):
        """The predictor's input computed from projector outputs z (numpy, N x d)."""
        return z

    def predictor_lr_fixed(self) -> bool:
        """True when the predictor keeps the peak learning rate (SimSiam's --fix-pred-lr)."""
        return False

    @property
    def loss_directions(self) -> int:
        """How many one-direction losses of Tian's eq. 1 the training loss sums (flow time)."""
        return 1

    @property
    def loss_scale(self) -> float:
        """The loss's factor s (``--loss-param scale=``, 1 when the loss has none): the step of
        SGD, hence the flow time of a step, is s times that of the unscaled loss."""
        return float(self.loss_params.get("scale", 1.0))

    def predictor_kind(self) -> str:
        """What this instance's predictor is: the class's kind, 'absent' without a predictor."""
        return self.predictor if self.online.predictor is not None else "absent"

    def describe(self) -> dict[str, Any]:
        """Attributes of the run's result file that say what this method is."""
        linear = self.predictor_matrix() is not None
        return {
            "predictor_kind": self.predictor_kind(),
            "predictor_linear": int(linear),
            "predictor_lr": "fixed at the peak" if self.predictor_lr_fixed() else "scheduled",
            "target": self.target,
            "loss_name": self.cfg.loss,
            "loss_directions": self.loss_directions,
            "loss_scale": self.loss_scale,
            "matched_scenario": self.scenario if linear and self.scenario else "none",
        }

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Backbone features h and projector outputs z of the online network."""
        return self.online.encode(x)

    # ------------------------------------------------------------------ training
    def target_embed(self, x: torch.Tensor) -> torch.Tensor:
        """Projections of the EMA target (no gradient)."""
        with torch.no_grad(), self.autocast():
            return full(self.target_net(x))

    def loss_args(self, out: dict, v1: torch.Tensor, v2: torch.Tensor) -> tuple:
        """The positional arguments of the symbolic loss for views v1, v2 (outputs ``out``)."""
        raise NotImplementedError

    def loss_value(self, fn: Callable, args: tuple) -> torch.Tensor:
        """The training loss from the loss function and its arguments (one call by default)."""
        return fn(*args, **self.loss_params)

    def training_loss(
        self, v1: torch.Tensor, v2: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict]:
        """(loss, unweighted loss terms (detached), network outputs) for one batch of views."""
        with self.autocast():
            online = self.forward_online(*(v1, v2)[: self.online_views])
            out = {k: full(v) for k, v in online.items()}
        args = self.loss_args(out, v1, v2)
        fn = losses.get(self.cfg.loss)
        loss = self.loss_value(fn, args)
        terms = {}
        with torch.no_grad():
            detached = tuple(a.detach() for a in args)
            for name, term in self.loss_terms.get(self.cfg.loss, {}).items():
                terms[name] = self.loss_value(functools.partial(_term, term, fn), detached)
        return loss, terms, out

    @torch.no_grad()
    def after_step(self, step: int, tau: float | None, out: dict) -> None:
        """After optimiser step ``step`` (0-based): the EMA update, then the method's state."""
        if self.target_net is not None and tau is not None:
            online = [*self.online.backbone.parameters(), *self.online.projector.parameters()]
            target = list(self.target_net.parameters())
            torch._foreach_mul_(target, tau)
            torch._foreach_add_(target, online, alpha=1 - tau)
        self.update_state(step, out)

    def update_state(self, step: int, out: dict) -> None:
        """The method's own per-step state (a queue, a running correlation); none by default."""


def predictor_head(kind: str, dim: int, hidden: int, layout: dict) -> nn.Module | None:
    """The trained predictor: the paper's MLP (``layout``), a bias-free linear W_p, or None
    (``none``: p = z, the no-predictor ablation)."""
    if kind == "none":
        return None
    if kind == "linear":
        return LinearPredictor(dim)
    return mlp(dim, hidden, dim, **layout)


class PredictorMethod(Method):
    """A method with a trained predictor on the online branch (BYOL, SimSiam): the paper's MLP
    (``predictor_layout``), a linear W_p, or none; the loss of Tian's eq. 1 (``linear_byol``)
    takes W_p itself."""

    predictor = "trained"
    applies_predictor = True
    predictor_layout: ClassVar[dict[str, Any]] = {"layers": 2, "batchnorm": True}

    @classmethod
    def check(cls, cfg) -> None:
        super().check(cfg)
        if cfg.loss == "linear_byol" and cfg.predictor == "mlp":
            raise ValueError(
                "--loss linear_byol needs --predictor linear or none (the loss takes W_p)"
            )

    def build_predictor(self, dim: int) -> nn.Module | None:
        return predictor_head(self.cfg.predictor, dim, self.cfg.pred_hidden, self.predictor_layout)
