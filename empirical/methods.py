"""The self-supervised methods: architecture, official defaults, and the training loss.

Every training loss is ``symbolic.losses.get(name)`` (the one definition of each loss; SPEC
section 1), looked up at each step. This module only decides what tensors go in:

method        symbolic loss  inputs                                          DDP gathers
------------  -------------  ----------------------------------------------  ----------------------
byol          byol           online predictions p1, p2; EMA target z1', z2'  nothing (BN synced)
simsiam       simsiam        predictions p1, p2; projections z1, z2          nothing
barlow_twins  barlow_twins   projections z1, z2                              z1, z2 with grad
vicreg        vicreg         projections z1, z2                              z1, z2 with grad
simclr        nt_xent        projections z1, z2                              z1, z2 with grad
moco_v2       infonce        query z1, EMA key z2', queue of keys            keys, no grad (queue)
directpred    byol           p = W_p z (W_p set from F_hat); EMA target      f f^T averaged
directcopy    byol           same, W_p = F_hat + eps I                       f f^T averaged
liu           liu            W_p, projections z1, z2 (no stop-gradient)      z1, z2 with grad

Under DDP "with grad" means ``torch.distributed.nn.functional.all_gather`` before the loss, so
each rank evaluates the global-batch loss (see :mod:`empirical.distributed`). EMA targets are
copies of the online backbone and projector at initialisation and follow
xi <- tau xi + (1 - tau) theta after every optimiser step, parameters only (BN buffers of the
target are its own running statistics). Projector / predictor widths default to each paper's.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from empirical.directpred import directcopy_matrix, directpred_matrix, update_correlation
from empirical.distributed import gather_no_grad, gather_with_grad, mean_over_ranks
from empirical.heads import LinearPredictor, mlp


@dataclass(frozen=True)
class MethodSpec:
    """One method's architecture, loss and official hyperparameters (``None`` width: backbone's)."""

    name: str
    loss: str
    summary: str
    inputs: str  # 'target' | 'siamese' | 'pair' | 'queue' | 'liu'
    projector: dict
    proj_hidden: int | None
    proj_dim: int | None
    predictor: str  # 'none' | 'mlp' | 'linear' | 'directpred' | 'directcopy'
    pred_hidden: int = 0
    pred_layout: dict = field(default_factory=dict)
    ema_base: float | None = None
    ema_final: float = 1.0
    optimizer: str = "sgd"
    base_lr: float = 0.05
    weight_decay: float = 1e-4
    fix_pred_lr: bool = False
    loss_overrides: dict = field(default_factory=dict)
    gathered: str = "nothing"
    reference: str = ""

    @property
    def uses_target(self) -> bool:
        return self.ema_base is not None


# Term name -> function(loss_fn, args, hyperparameters) giving that term alone, unweighted.
TermFn = Callable[[Callable, tuple, dict], torch.Tensor]


def _with(**overrides) -> TermFn:
    return lambda fn, args, hp: fn(*args, **{**hp, **overrides})


def _barlow_off_diag(fn, args, hp):
    return fn(*args, **{**hp, "lambd": 1.0}) - fn(*args, **{**hp, "lambd": 0.0})


LOSS_TERMS: dict[str, dict[str, TermFn]] = {
    "barlow_twins": {"on_diag": _with(lambd=0.0), "off_diag": _barlow_off_diag},
    "vicreg": {
        "invariance": _with(sim_coeff=1.0, std_coeff=0.0, cov_coeff=0.0),
        "variance": _with(sim_coeff=0.0, std_coeff=1.0, cov_coeff=0.0),
        "covariance": _with(sim_coeff=0.0, std_coeff=0.0, cov_coeff=1.0),
    },
    "liu": {
        "invariance": _with(c_inv=1.0, c_cov=0.0),
        "covariance": _with(c_inv=0.0, c_cov=1.0),
    },
}

_BYOL_MLP = dict(layers=2, batchnorm=True)
_THREE = dict(layers=3, batchnorm=True, hidden_bias=False, last_bias=False)

_SIMSIAM_PROJ = dict(layers=3, batchnorm=True, hidden_bias=False, last_bias=False, last_bn=True)
_VICREG_PROJ = dict(layers=3, batchnorm=True, hidden_bias=True, last_bias=False)

METHODS: dict[str, MethodSpec] = {
    s.name: s
    for s in (
        MethodSpec(
            name="byol",
            loss="byol",
            summary="BYOL: EMA target, MLP predictor (or --predictor linear)",
            inputs="target",
            projector=_BYOL_MLP,
            proj_hidden=4096,
            proj_dim=256,
            predictor="mlp",
            pred_hidden=4096,
            pred_layout=_BYOL_MLP,
            ema_base=0.99,
            optimizer="lars",
            base_lr=0.45,
            weight_decay=1e-6,
            reference="Grill et al. 2020; DeepMind byol configs (100-epoch preset)",
        ),
        MethodSpec(
            name="simsiam",
            loss="simsiam",
            summary="SimSiam: shared weights, stop-gradient, bottleneck predictor",
            inputs="siamese",
            projector=_SIMSIAM_PROJ,
            proj_hidden=2048,
            proj_dim=2048,
            predictor="mlp",
            pred_hidden=512,
            pred_layout=dict(layers=2, batchnorm=True, hidden_bias=False),
            optimizer="sgd",
            base_lr=0.05,
            weight_decay=1e-4,
            fix_pred_lr=True,
            reference="Chen & He 2021; facebookresearch/simsiam (--fix-pred-lr)",
        ),
        MethodSpec(
            name="barlow_twins",
            loss="barlow_twins",
            summary="Barlow Twins: cross-correlation to identity",
            inputs="pair",
            projector=_THREE,
            proj_hidden=8192,
            proj_dim=8192,
            predictor="none",
            optimizer="lars",
            base_lr=0.2,
            weight_decay=1.5e-6,
            gathered="z1, z2 with gradients (C over the global batch)",
            reference="Zbontar et al. 2021; facebookresearch/barlowtwins",
        ),
        MethodSpec(
            name="vicreg",
            loss="vicreg",
            summary="VICReg: invariance, variance hinge, covariance",
            inputs="pair",
            projector=_VICREG_PROJ,
            proj_hidden=8192,
            proj_dim=8192,
            predictor="none",
            optimizer="lars",
            base_lr=0.2,
            weight_decay=1e-6,
            gathered="z1, z2 with gradients (variance and covariance over the global batch)",
            reference="Bardes et al. 2022; facebookresearch/vicreg",
        ),
        MethodSpec(
            name="simclr",
            loss="nt_xent",
            summary="SimCLR: NT-Xent over 2N views",
            inputs="pair",
            projector=_BYOL_MLP,
            proj_hidden=None,
            proj_dim=128,
            predictor="none",
            optimizer="lars",
            base_lr=0.3,
            weight_decay=1e-6,
            gathered="z1, z2 with gradients (negatives from every rank)",
            reference="Chen et al. 2020 (SimCLR v1, ImageNet settings)",
        ),
        MethodSpec(
            name="moco_v2",
            loss="infonce",
            summary="MoCo v2: momentum key encoder and a queue of negatives",
            inputs="queue",
            projector=dict(layers=2, batchnorm=False),
            proj_hidden=None,
            proj_dim=128,
            predictor="none",
            ema_base=0.999,
            ema_final=0.999,
            optimizer="sgd",
            base_lr=0.03,
            weight_decay=1e-4,
            loss_overrides={"temperature": 0.2},
            gathered="keys without gradient, to fill the queue",
            reference="Chen et al. 2020 (MoCo v2): tau 0.2, m 0.999, K 65536",
        ),
        MethodSpec(
            name="directpred",
            loss="byol",
            summary="DirectPred: linear predictor set from the eigenbasis of F_hat",
            inputs="target",
            projector=_BYOL_MLP,
            proj_hidden=512,
            proj_dim=128,
            predictor="directpred",
            ema_base=0.996,
            optimizer="sgd",
            base_lr=0.06,
            weight_decay=4e-4,
            gathered="nothing; the batch f f^T is averaged over ranks for F_hat",
            reference="Tian, Chen, Ganguli 2021, eq. 18-19; luckmatters STL-10 settings",
        ),
        MethodSpec(
            name="directcopy",
            loss="byol",
            summary="DirectCopy: linear predictor W_p = F_hat + eps I",
            inputs="target",
            projector=_BYOL_MLP,
            proj_hidden=512,
            proj_dim=128,
            predictor="directcopy",
            ema_base=0.996,
            optimizer="sgd",
            base_lr=0.06,
            weight_decay=4e-4,
            gathered="nothing; the batch f f^T is averaged over ranks",
            reference="Wang, Chen, Du, Tian 2021 (DirectCopy); SPEC 1.10",
        ),
        MethodSpec(
            name="liu",
            loss="liu",
            summary="Liu et al.: linear predictor, no stop-gradient, standardised, k parts",
            inputs="liu",
            projector=_THREE,
            proj_hidden=8192,
            proj_dim=8192,
            predictor="linear",
            optimizer="lars",
            base_lr=0.3,
            weight_decay=1e-6,
            gathered="z1, z2 with gradients (k parts of the global batch)",
            reference="Liu, Suganuma, Okatani 2022, eq. 17-19 (8192^3, k=8, c_inv=25, c_cov=1)",
        ),
    )
}


def get_spec(name: str) -> MethodSpec:
    """The spec of method ``name``; ValueError naming the known methods otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}") from None


def full(x: torch.Tensor) -> torch.Tensor:
    """Autocast outputs (bf16/fp16) back to float32 for the loss; other dtypes unchanged."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def loss_function(name: str) -> Callable:
    """``symbolic.losses.get(name)``, looked up at every call (the single loss definition)."""
    from symbolic import losses

    return losses.get(name)


@dataclass(frozen=True)
class Architecture:
    """Resolved widths and choices of a method instance."""

    proj_hidden: int
    proj_dim: int
    predictor: str
    pred_hidden: int
    ema_base: float | None
    ema_final: float
    queue_size: int = 65536
    rho: float = 0.3
    eps: float = 0.1
    eps_convention: str = "code"
    freq: int = 1


class Online(nn.Module):
    """Backbone + projector (+ predictor); forward(x1, x2) gives h, z (and p) of both views."""

    def __init__(
        self,
        backbone: nn.Module,
        projector: nn.Module,
        predictor: nn.Module | None,
        apply_predictor: bool,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = projector
        self.predictor = predictor
        self.apply_predictor = apply_predictor

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.backbone(x)
        return h, self.projector(h)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> dict[str, torch.Tensor]:
        h1, z1 = self.encode(x1)
        h2, z2 = self.encode(x2)
        out = {"h1": h1, "h2": h2, "z1": z1, "z2": z2}
        if self.apply_predictor:
            out["p1"], out["p2"] = self.predictor(z1), self.predictor(z2)
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


class SSLModel(nn.Module):
    """A method instance: online network, optional EMA target, queue or F_hat, and the loss."""

    def __init__(
        self, spec: MethodSpec, arch: Architecture, backbone: nn.Module, loss_params: dict
    ) -> None:
        super().__init__()
        self.spec = spec
        self.arch = arch
        self.loss_params = dict(loss_params)
        feat = backbone.out_dim
        projector = mlp(feat, arch.proj_hidden, arch.proj_dim, **spec.projector)
        predictor: nn.Module | None = None
        if arch.predictor == "mlp":
            predictor = mlp(arch.proj_dim, arch.pred_hidden, arch.proj_dim, **spec.pred_layout)
        elif arch.predictor in ("linear", "directpred", "directcopy"):
            predictor = LinearPredictor(arch.proj_dim)
        self.online = Online(backbone, projector, predictor, spec.inputs in ("target", "siamese"))
        self.target = Target(self.online) if arch.ema_base is not None else None
        if spec.inputs == "queue":
            queue = F.normalize(torch.randn(arch.queue_size, arch.proj_dim), dim=1)
            self.register_buffer("queue", queue)
            self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        if arch.predictor in ("directpred", "directcopy"):
            self.register_buffer("f_hat", torch.zeros(arch.proj_dim, arch.proj_dim))
            self.register_buffer("f_hat_ready", torch.zeros((), dtype=torch.bool))
        self.set_forward(self.online)
        self.autocast: Callable = contextlib.nullcontext  # the trainer sets bf16 autocast on CUDA

    def set_forward(self, module: nn.Module) -> None:
        """Route training forwards through ``module`` (the DDP or compiled wrapper of online).

        Stored outside the module registry so the state dict keeps only ``online.*`` keys.
        """
        object.__setattr__(self, "forward_online", module)

    # ------------------------------------------------------------------ measurements
    def predictor_matrix(self) -> torch.Tensor | None:
        """W_p (d x d) for the linear-predictor methods, else None."""
        pred = self.online.predictor
        return pred.weight.detach() if isinstance(pred, LinearPredictor) else None

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Backbone features h and projector outputs z of the online network (eval mode)."""
        return self.online.encode(x)

    # ------------------------------------------------------------------ training
    def loss_inputs(self, v1: torch.Tensor, v2: torch.Tensor) -> tuple[tuple, dict]:
        """The positional arguments of the symbolic loss for views v1, v2, and the outputs."""
        with self.autocast():
            out = {k: full(v) for k, v in self.forward_online(v1, v2).items()}
        kind = self.spec.inputs
        if kind == "target":
            with torch.no_grad(), self.autocast():
                t1, t2 = full(self.target(v1)), full(self.target(v2))
            return (out["p1"], out["p2"], t1, t2), out
        if kind == "siamese":
            return (out["p1"], out["p2"], out["z1"], out["z2"]), out
        if kind == "pair":
            return (gather_with_grad(out["z1"]), gather_with_grad(out["z2"])), out
        if kind == "queue":
            with torch.no_grad(), self.autocast():
                key = full(self.target(v2))
            out["key"] = key
            return (out["z1"], key, self.queue), out
        if kind == "liu":
            wp = self.online.predictor.weight
            return (wp, gather_with_grad(out["z1"]), gather_with_grad(out["z2"])), out
        raise AssertionError(kind)

    def training_loss(
        self, v1: torch.Tensor, v2: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict]:
        """(loss, unweighted loss terms (detached), network outputs) for one batch of views."""
        args, out = self.loss_inputs(v1, v2)
        fn = loss_function(self.spec.loss)
        loss = fn(*args, **self.loss_params)
        terms = {}
        if self.spec.loss in LOSS_TERMS:
            detached = tuple(a.detach() for a in args)
            with torch.no_grad():
                for name, term in LOSS_TERMS[self.spec.loss].items():
                    terms[name] = term(fn, detached, self.loss_params).detach()
        return loss, terms, out

    @torch.no_grad()
    def after_step(self, step: int, tau: float | None, out: dict) -> None:
        """After optimiser step ``step`` (0-based): EMA update, queue, DirectPred's W_p."""
        if self.target is not None and tau is not None:
            online = [*self.online.backbone.parameters(), *self.online.projector.parameters()]
            target = list(self.target.parameters())
            torch._foreach_mul_(target, tau)
            torch._foreach_add_(target, online, alpha=1 - tau)
        if self.spec.inputs == "queue":
            keys = gather_no_grad(F.normalize(out["key"], dim=1))
            idx = (self.queue_ptr + torch.arange(keys.shape[0], device=keys.device)) % len(
                self.queue
            )
            self.queue[idx] = keys
            self.queue_ptr.copy_((self.queue_ptr + keys.shape[0]) % len(self.queue))
        if self.arch.predictor in ("directpred", "directcopy"):
            z = torch.cat([out["z1"], out["z2"]]).detach().float()
            update_correlation(
                self.f_hat, self.f_hat_ready, mean_over_ranks(z.T @ z / len(z)), self.arch.rho
            )
            if (step + 1) % self.arch.freq == 0:
                if self.arch.predictor == "directpred":
                    wp = directpred_matrix(self.f_hat, self.arch.eps, self.arch.eps_convention)
                else:
                    wp = directcopy_matrix(self.f_hat, self.arch.eps)
                self.online.predictor.weight.copy_(wp)
