"""A training run replayed on its population loss, and the flows that predict it.

A run of ``python -m empirical.train`` with a linear encoder W (n2 x n1), a linear predictor W_p
and the loss of Tian et al. 2021, eq. 1 records its optimiser step by step (``empirical.flow``):
the learning rates lr_k and lr^p_k, the EMA momentum tau_k, the weight decay wd, torch's
heavy-ball momentum mu (v_k = mu v_{k-1} + g_k, P_{k+1} = P_k - lr_k v_k, g_k holding wd P_k)
and D, the number of one-direction losses the training loss sums times the loss's factor
(``empirical.flow``: loss_directions x loss_scale); ``moments.nc`` holds X and X'.
Its population loss is D times eq. 1, whose gradients are those of Lemma 1 (Tian et al. 2021;
docs/theory.md (D1), the step-to-flow-time map (D3)):

    R = W_a X - W_p W (X + X'),   g_W = -D W_p^T R + wd W,   g_P = -D R W^T + wd W_p

(SimSiam: W_a = W; without the stop-gradient g_W also gets -D (W_p W X - W (X + X'))).

- :func:`replay`: the run's exact optimiser on this loss from the run's W(0), W_p(0), W_a(0),
  i.e. the run without its minibatch noise. run - replay is the minibatch noise (the noise
  floor of the comparison); replay - flow is what the flow leaves out of the optimiser (the
  finite step and, for the first-order flow, the momentum).
- :func:`flow`: the continuous limit in the step index kappa (step k covers [k, k + 1), with its
  recorded lr_k, lr^p_k, tau_k):
  first order, ``dP/dkappa = -c_k g(P)``, c_k = lr_k (1 - mu^(k+1))/(1 - mu) (lr_k for mu = 0):
  the gradient flow of ``dynamics.simulate --from-run`` in flow time t (dt = D c_k per step);
  inertial (heavy ball), ``dP/dkappa = -lr_k v``, ``dv/dkappa = lambda (g(P)/(1 - mu) - v)``,
  lambda = -ln mu, v(0) = 0; for both ``dW_a/dkappa = -ln(tau_k) (W - W_a)``.
  In flow time the inertial flow is the first-order one plus an inertia of relaxation time
  T_m = D lr/(1 - mu)^2 (at mu = 0.9, lr = 0.001, D = 2: T_m = 0.2, against 1/eta = 20: the
  first-order flow misses it by about 5%). It is the limit of the replay as lr -> 0 at fixed
  T_m (and fixed flow time; the test checks the error falling with lr), while the first-order
  flow is not: at fixed lr/(1 - mu) the flow time of one step stays fixed, so that limit has
  no continuum; fixing the inertia time lr/(1 - mu)^2 does.
- :data:`INGREDIENTS`: the physics a prediction rests on, each removed or made wrong (the
  ablation nulls of ``reports.compare``): the augmentation (X' = 0, and X' wrong by a factor 2
  either way: a prediction must resolve X' to better than a factor 2), the weight decay
  (wd = 0), the EMA lag (W_a = W), the two-direction clock (D = 1) and the momentum (the
  first-order flow).

A run with another loss (``Problem.loss``, :mod:`dynamics.replay_general`) is replayed and
flowed the same way with the gradient of its own loss over its fixed augmented pairs; there the
augmentation's nulls edit the pairs (:data:`VIEW_SCALE`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import xarray as xr
from scipy.integrate import solve_ivp

RUN_FILE = "measurements.nc"
MOMENTS_FILE = "moments.nc"

#: ingredient -> what its ablation null changes
INGREDIENTS = {
    "augmentation": "X' = 0 (no augmentation)",
    "X' x2": "X' doubled (the augmentation wrong by a factor 2)",
    "X' x0.5": "X' halved (the augmentation wrong by a factor 2)",
    "weight decay": "wd = 0 (no weight decay)",
    "EMA lag": "W_a = W (no EMA lag)",
    "clock D": "D = 1 (the one-direction clock: flow time lr per step, eta = wd)",
    "momentum": "the momentum-free (first-order) flow",
    "norm growth": "the pure gradient flow (no lr^2 E||g_B||^2 norm growth of scale-invariant "
    "weights per step)",
}
#: for a run with another loss (pairs instead of X, X'): the factor on each view's difference
#: from its pair's mean that the augmentation's nulls apply (it scales X' by its square)
VIEW_SCALE = {"augmentation": 0.0, "X' x2": math.sqrt(2.0), "X' x0.5": math.sqrt(0.5)}


class PairGradient(Protocol):
    """The gradient of a run's own loss (:mod:`dynamics.replay_general`)."""

    directions: float  # the run's D: the loss's factor in the run's flow time

    def gradients(self, w, wp, wa) -> tuple[np.ndarray, np.ndarray]:
        """(dL/dW, dL/dW_p) of the run's loss L; ``wa`` None: the online target."""

    def with_views(self, scale: float) -> PairGradient:
        """The same loss on pairs whose views' differences from their mean are scaled."""

    def norm_drifts(self, w, wp, wa) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(dL/dW, dL/dW_p, n_W, n_P): the gradients and the norm growth per lr^2 of the
        scale-invariant weights (:mod:`dynamics.models.norm_growth`; zero where none)."""


class NotReplayable(ValueError):
    """The run cannot be replayed (no linear encoder, no flow time, another loss)."""


@dataclasses.dataclass(frozen=True)
class Problem:
    """A run's population problem and optimiser, step by step."""

    x: np.ndarray | None  # X (n1 x n1); None for another loss (``loss``)
    xp: np.ndarray | None  # X' (n1 x n1); None for another loss
    w0: np.ndarray
    wp0: np.ndarray
    wa0: np.ndarray
    lr: np.ndarray  # (S,) encoder learning rate of each step
    lr_p: np.ndarray  # (S,) predictor learning rate of each step
    tau: np.ndarray | None  # (S,) EMA momentum of each step; None: W_a = W (SimSiam)
    momentum: float
    weight_decay: float
    directions: float  # D
    stop_gradient: bool
    steps: np.ndarray  # (T,) the steps after which the run measured (0: the initial network)
    times: np.ndarray  # (T,) the run's flow time at those measurements
    # the ingredients the run's configuration has (the norm growth: a scale-invariant loss's,
    # set by dynamics.replay_general)
    configured: frozenset[str] = frozenset(INGREDIENTS) - {"norm growth"}
    exact_loss: bool = True  # the run's loss is eq. 1 (else the replay is not its optimiser)
    loss: PairGradient | None = None  # another loss than eq. 1: its gradient (not X, X')
    norm_growth: bool = True  # the flows keep the norm growth of scale-invariant weights

    @property
    def n_steps(self) -> int:
        return int(self.lr.size)

    def applicable(self) -> dict[str, str]:
        """The ingredients this run trained with (each ablation null applies), with what the
        null changes; from the run's configuration (options), not from its recorded values,
        so that a record edited to remove an ingredient still meets that ingredient's null."""
        return {k: v for k, v in INGREDIENTS.items() if k in self.configured}

    def without(self, ingredient: str) -> Problem:
        """The same problem with one ingredient removed or wrong (the momentum: see
        :func:`flow`); for another loss the augmentation's nulls edit its pairs."""
        if self.loss is not None and ingredient in VIEW_SCALE:
            return dataclasses.replace(self, loss=self.loss.with_views(VIEW_SCALE[ingredient]))
        changes = {
            "norm growth": {"norm_growth": False},
            "weight decay": {"weight_decay": 0.0},
            "EMA lag": {"tau": None, "wa0": self.w0},
            "clock D": {"directions": 1.0},
            "momentum": {"momentum": 0.0},
        }
        if self.loss is None:
            changes["augmentation"] = {"xp": np.zeros_like(self.xp)}
            changes["X' x2"] = {"xp": 2 * self.xp}
            changes["X' x0.5"] = {"xp": 0.5 * self.xp}
        if ingredient not in changes:
            raise ValueError(f"unknown ingredient {ingredient!r}: {', '.join(INGREDIENTS)}")
        return dataclasses.replace(self, **changes[ingredient])

    def gradients(self, w, wp, wa) -> tuple[np.ndarray, np.ndarray]:
        """(g_W, g_P): the gradients of D x eq. 1 plus the weight decay (module docstring); for
        another loss L, (D / D_run) dL plus the weight decay (D = D_run but in the clock null)."""
        if self.loss is None:
            return self._eq1(w, wp, wa)
        return self._scaled(w, wp, *self.loss.gradients(w, wp, self._target(wa)))

    def flow_terms(self, w, wp, wa) -> tuple[np.ndarray, ...]:
        """(g_W, g_P, n_W, n_P): :meth:`gradients` and the norm growth per lr^2 of the
        scale-invariant weights that the first-order flow keeps (zero for eq. 1, without
        ``norm_growth`` and where the loss is not scale-invariant)."""
        if self.loss is None or not self.norm_growth:
            g_w, g_p = self.gradients(w, wp, wa)
            return g_w, g_p, np.zeros_like(w), np.zeros_like(wp)
        g_w, g_p, n_w, n_p = self.loss.norm_drifts(w, wp, self._target(wa))
        return (*self._scaled(w, wp, g_w, g_p), n_w, n_p)

    def _target(self, wa):
        return wa if self.tau is not None else None

    def _scaled(self, w, wp, g_w, g_p) -> tuple[np.ndarray, np.ndarray]:
        """(D / D_run) dL plus the weight decay, from the loss's (dL/dW, dL/dW_p)."""
        scale = self.directions / self.loss.directions
        return scale * g_w + self.weight_decay * w, scale * g_p + self.weight_decay * wp

    def _eq1(self, w, wp, wa) -> tuple[np.ndarray, np.ndarray]:
        target = wa if self.tau is not None else w
        return eq1_gradients(
            self.x,
            self.x + self.xp,
            self.directions,
            self.weight_decay,
            self.stop_gradient,
            w,
            wp,
            target,
        )


def eq1_gradients(x, view, d, wd, stop_gradient: bool, w, wp, target):
    """(g_W, g_P) of D x eq. 1 plus the weight decay (module docstring; view = X + X', target
    W_a or W), for single matrices or stacks of them (leading batch axes; D, wd broadcast)."""
    residual = target @ x - wp @ w @ view
    g_w = -d * (np.swapaxes(wp, -1, -2) @ residual)
    if not stop_gradient:
        g_w = g_w - d * (wp @ w @ x - w @ view)
    g_p = -d * (residual @ np.swapaxes(w, -1, -2))
    return g_w + wd * w, g_p + wd * wp


def _open(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return ds.load()


def run_record(run: str | Path) -> tuple[Path, xr.Dataset]:
    """(path, dataset) of a run folder's (or file's) measurements; NotReplayable when it has no
    flow time or no linear encoder W."""
    run = Path(run)
    path = run / RUN_FILE if run.is_dir() else run
    ds = _open(path)
    if "flow_time_undefined" in ds.attrs:
        raise NotReplayable(str(ds.attrs["flow_time_undefined"]))
    if "w" not in ds:
        raise NotReplayable("the run stored no linear encoder W")
    return path, ds


def optimiser_record(ds: xr.Dataset, source: str) -> dict:
    """The fields of :class:`Problem` that describe the run's optimiser and measurements (any
    loss): learning rates, EMA momenta, momentum, weight decay (``source``: see
    :func:`load_problem`), D, W(0), W_a(0), the measured steps and times, the configuration."""
    attrs = ds.attrs
    params = json.loads(attrs.get("params_json", "{}"))
    if params.get("projector", "none") != "none":
        raise NotReplayable("a projector sits between its linear encoder W and the embedding")
    loss_params = params.get("loss_params") or {}
    # D of empirical.flow: the one-direction losses summed, times the loss's factor s
    directions = float(attrs.get("loss_directions", 1)) * float(attrs.get("loss_scale", 1.0))
    momentum = np.asarray(ds["momentum_step"].values, dtype=float)
    record = "weight_decay_step" if source == "optimiser" else "eta_step"
    wd = np.asarray(ds[record].values, dtype=float) * (directions if source == "flow" else 1)
    if np.ptp(momentum) > 0 or np.ptp(wd) > 0:
        raise NotReplayable("its momentum or weight decay changes during the run")
    tau = np.asarray(ds["ema_momentum_step"].values, dtype=float)
    ema = str(attrs.get("target")) == "ema" and bool(loss_params.get("stop_gradient", True))
    steps_per_epoch = float(attrs["steps_per_epoch"])
    steps = np.rint(np.asarray(ds["epoch"].values, dtype=float) * steps_per_epoch).astype(int)
    w0 = np.asarray(ds["w"].values[0], dtype=float)
    configured = {
        "augmentation": str(params.get("augment", "none")) != "none",
        "weight decay": float(params.get("weight_decay", 0)) > 0,
        "EMA lag": ema,
        "clock D": directions != 1,
        "momentum": float(params.get("momentum", 0)) > 0,
    }
    configured["X' x2"] = configured["X' x0.5"] = configured["augmentation"]
    lr_p = np.asarray(ds["lr_predictor_step"].values, dtype=float)
    return {
        "w0": w0,
        "wa0": np.asarray(ds["w_target"].values[0], dtype=float) if "w_target" in ds else w0,
        "lr": np.asarray(ds["lr_step"].values, dtype=float),
        "lr_p": np.where(np.isfinite(lr_p), lr_p, 0.0),
        "tau": tau if ema and np.all(np.isfinite(tau)) else None,
        "momentum": float(momentum[0]),
        "weight_decay": float(wd[0]),
        "directions": directions,
        "stop_gradient": bool(loss_params.get("stop_gradient", True)),
        "steps": steps,
        "times": np.asarray(ds["time"].values, dtype=float),
        "configured": frozenset(k for k, on in configured.items() if on),
    }


def load_problem(run: str | Path, source: str = "optimiser") -> Problem:
    """The population problem of eq. 1 of a run folder (or its measurements.nc);
    NotReplayable when the run has no linear encoder, no W_p or no flow time. For a run with
    another loss than eq. 1 ``exact_loss`` is False: eq. 1's flows still give the ablation
    nulls of an eq. 1 prediction, but the replay is not the run's optimiser (such a run's own
    loss: :func:`dynamics.replay_general.load_problem`).

    ``source``: where the weight decay comes from: ``'optimiser'``, the optimiser's record
    (``weight_decay_step``: the replay), or ``'flow'``, the flow's record that a simulation
    derived from the run reads (wd = D ``eta_step``: the prediction and its ablation nulls).
    """
    path, ds = run_record(run)
    if "wp" not in ds:
        raise NotReplayable("the run stored no W_p")
    moments = path.parent / MOMENTS_FILE
    if not moments.is_file():
        raise NotReplayable(f"no {MOMENTS_FILE} beside {path.name}")
    m = _open(moments)
    return Problem(
        x=np.asarray(m["x_corr"].values, dtype=float),
        xp=np.asarray(m["aug_cov"].values, dtype=float),
        wp0=np.asarray(ds["wp"].values[0], dtype=float),
        exact_loss=str(ds.attrs.get("loss_name")) == "linear_byol",
        **optimiser_record(ds, source),
    )


@dataclasses.dataclass
class Path_:
    """W_p and W of a replay or flow at the run's measurements (times ``t``)."""

    t: np.ndarray
    wp: np.ndarray
    w: np.ndarray


def replay(p: Problem) -> Path_:
    """The run's optimiser (heavy-ball SGD with its recorded steps) on the population loss."""
    w, wp, wa = p.w0.copy(), p.wp0.copy(), p.wa0.copy()
    v_w, v_p = np.zeros_like(w), np.zeros_like(wp)
    keep = {0: (wp.copy(), w.copy())}
    wanted = set(p.steps.tolist())
    for k in range(p.n_steps):
        g_w, g_p = p.gradients(w, wp, wa)
        v_w, v_p = p.momentum * v_w + g_w, p.momentum * v_p + g_p
        w, wp = w - p.lr[k] * v_w, wp - p.lr_p[k] * v_p
        if p.tau is not None:
            wa = p.tau[k] * wa + (1 - p.tau[k]) * w
        if not np.all(np.isfinite(w)) or not np.all(np.isfinite(wp)):
            raise FloatingPointError(f"the replay diverged at step {k + 1}")
        if k + 1 in wanted:
            keep[k + 1] = (wp.copy(), w.copy())
    return _stacked(p, keep)


def _stacked(p: Problem, keep: dict[int, tuple[np.ndarray, np.ndarray]]) -> Path_:
    wp = np.stack([keep[int(s)][0] for s in p.steps])
    w = np.stack([keep[int(s)][1] for s in p.steps])
    return Path_(p.times.copy(), wp, w)


class _Stack:
    """Problems that share their optimiser's schedule, as one system with a leading batch axis
    (each member's own X, X', D, wd and EMA; another loss: each member's own gradient)."""

    def __init__(self, problems: Sequence[Problem]):
        first = problems[0]
        for q in problems[1:]:
            pairs = zip(_schedule(q), _schedule(first), strict=True)
            if not all(np.array_equal(a, b) for a, b in pairs):
                raise ValueError("stacked flows need one optimiser schedule and measurements")
            if (q.momentum, q.stop_gradient, q.loss is None) != (
                first.momentum,
                first.stop_gradient,
                first.loss is None,
            ):
                raise ValueError("stacked flows need one momentum, stop-gradient and loss kind")
        self.members, self.first = list(problems), first
        self.d = np.array([q.directions for q in problems])[:, None, None]
        self.wd = np.array([q.weight_decay for q in problems])[:, None, None]
        self.uses_wa = np.array([q.tau is not None for q in problems])[:, None, None]
        # the EMA's rate -ln(tau_k) of each member and step (0: no EMA, W_a stays)
        self.ema = np.stack(
            [-np.log(q.tau) if q.tau is not None else np.zeros(q.n_steps) for q in problems]
        )
        if first.loss is None:
            self.x = np.stack([q.x for q in problems])
            self.view = np.stack([q.x + q.xp for q in problems])

    def flow_terms(self, w, wp, wa) -> tuple[np.ndarray, ...]:
        """(g_W, g_P, n_W, n_P) of every member (:meth:`Problem.flow_terms`), stacked."""
        if self.first.loss is not None:
            states = zip(w, wp, wa, strict=True)
            terms = [q.flow_terms(*s) for q, s in zip(self.members, states, strict=True)]
            return tuple(np.stack(parts) for parts in zip(*terms, strict=True))
        target = np.where(self.uses_wa, wa, w)
        g_w, g_p = eq1_gradients(
            self.x, self.view, self.d, self.wd, self.first.stop_gradient, w, wp, target
        )
        return g_w, g_p, 0.0, 0.0


def _schedule(p: Problem) -> tuple[np.ndarray, ...]:
    return (p.lr, p.lr_p, p.steps, p.times)


#: the adaptive integration's tolerances (scipy's DOP853 over a constant-schedule stretch): the
#: flows are compared with runs at errors of 1e-3 and more, so 1e-9 is exact for them
RTOL, ATOL = 1e-9, 1e-12
#: the ablation nulls of another loss than eq. 1 (each gradient a call over all pairs): a null
#: is compared with its run at distances of 0.05 and more; measured on the full-size bridge runs
#: of Liu et al., cosine BYOL and SimCLR (three nulls each), the nulls at 1e-6 were within
#: 2e-6 (relative) of those at RTOL, in 1.2-3.6x less time. The prediction keeps RTOL.
NULL_RTOL, NULL_ATOL = 1e-6, 1e-9
#: a stretch of constant schedule at least this many steps long is integrated adaptively (the
#: flow's time scales are hundreds of steps), in windows of at most ADAPTIVE_WINDOW steps
ADAPTIVE_MIN_STEPS, ADAPTIVE_WINDOW = 8, 100


class _Hard(Exception):
    """The adaptive integration of a window needed more gradients than Runge-Kutta would."""


def flow(
    p: Problem,
    inertial: bool | None = None,
    substeps: int | None = None,
    tolerances: tuple[float, float] = (RTOL, ATOL),
) -> Path_:
    """The first-order or the inertial flow of ``p`` (module docstring), at the run's
    measurements. ``inertial`` None: inertial when the run has momentum.

    Each stretch of steps with one schedule (lr_k, lr^p_k, tau_k and the warm-up factor of
    c_k all constant) at least :data:`ADAPTIVE_MIN_STEPS` long is integrated by scipy's
    adaptive DOP853 at ``tolerances`` (rtol, atol), window by window (a constant learning rate
    over hundreds of steps: tens of gradients where the flow is smooth), unless a window needs
    more gradients than the fixed steps below would: a hinge (VICReg's variance term slides
    along std = 1) or a stiff flow (the pure flow of a scale-invariant loss late under weight
    decay, whose curvature grows as its decaying norm's inverse square). That window and the
    rest of the stretch then go by the fixed steps, as do steps whose schedule changes every
    step (a warm-up, a cosine decay, momentum's warm-up factor): the classical Runge-Kutta
    method with ``substeps`` steps per optimiser step (no step straddles a jump of the
    schedule; with 4 the integration error of eq. 1's flows is below 1e-8 of the trajectory:
    tested against ``dynamics.simulate --from-run``'s adaptive DOP853 solution). ``substeps``
    None: 4 for eq. 1, 1 for another loss (each gradient costs autograd over all pairs; on a
    40-step cosine-BYOL run 1 and 4 substeps were 1.3e-6 apart). Where a flow is stiffer than
    one step per optimiser step can follow, fixed steps add a norm growth of their own, to the
    prediction's flow and to every null alike: measured on a quick cosine-BYOL rung run (seed 0,
    304 steps), W's distance from the run was 0.065 for the exact norm-growth flow (DOP853
    throughout) and 0.045 with its stiff windows by fixed steps. The pure flow's null is then
    nearer the run than the exact one (it errs towards "not tested"); ``dynamics.simulate
    --from-run`` (the bridge's prediction) integrates adaptively throughout.
    """
    inertial = p.momentum > 0 if inertial is None else inertial
    return flows([p], inertial, substeps, tolerances)[0]


def _stretches(schedule: np.ndarray) -> list[tuple[int, int]]:
    """The maximal stretches [a, b) of steps whose rows of ``schedule`` (steps x columns) are
    equal."""
    change = np.flatnonzero(np.any(np.diff(schedule, axis=0) != 0, axis=1)) + 1
    edges = [0, *change.tolist(), len(schedule)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def flows(
    problems: Sequence[Problem],
    inertial: bool,
    substeps: int | None = None,
    tolerances: tuple[float, float] = (RTOL, ATOL),
) -> list[Path_]:
    """:func:`flow` of each problem (one optimiser schedule: the same run's flow and its
    ablation nulls), integrated as one stacked system: each gradient is one batched matrix
    product over the problems instead of one per problem (eq. 1)."""
    stack = _Stack(problems)
    p = stack.first
    substeps = (1 if p.loss is not None else 4) if substeps is None else substeps
    mu = p.momentum
    warm = (1 - mu ** (np.arange(p.n_steps) + 1)) / (1 - mu) if mu > 0 else np.ones(p.n_steps)
    rate = -math.log(mu) if mu > 0 else math.inf

    def rhs(k: int, state: list[np.ndarray]) -> list[np.ndarray]:
        w, wp, wa = state[:3]
        g_w, g_p, n_w, n_p = stack.flow_terms(w, wp, wa)
        ema = stack.ema[:, k, None, None] * (w - wa)
        if not inertial:  # (the norm growth: lr^2 n per step; plain SGD only)
            return [
                -p.lr[k] * warm[k] * g_w + p.lr[k] ** 2 * n_w,
                -p.lr_p[k] * warm[k] * g_p + p.lr_p[k] ** 2 * n_p,
                ema,
            ]
        v_w, v_p = state[3:]
        return [
            -p.lr[k] * v_w,
            -p.lr_p[k] * v_p,
            ema,
            rate * (g_w / (1 - mu) - v_w),
            rate * (g_p / (1 - mu) - v_p),
        ]

    state = [np.stack([getattr(q, n) for q in problems]) for n in ("w0", "wp0", "wa0")]
    if inertial:
        state += [np.zeros_like(state[0]), np.zeros_like(state[1])]
    keep = {0: (state[1].copy(), state[0].copy())}
    wanted = set(p.steps.tolist())
    factor = np.ones(p.n_steps) if inertial else warm
    schedule = np.column_stack([p.lr, p.lr_p, factor, stack.ema.T])
    for a, b in _stretches(schedule):
        fixed = b - a < ADAPTIVE_MIN_STEPS
        for start in range(a, b, ADAPTIVE_WINDOW):
            end = min(start + ADAPTIVE_WINDOW, b)
            if not fixed:
                ends = sorted({k for k in wanted if start < k <= end} | {end})
                try:
                    budget = 4 * substeps * (end - start)
                    reached = _adaptive(rhs, start, ends, state, budget, tolerances)
                except _Hard:
                    fixed = True
                else:
                    keep.update(
                        {
                            k: (r[1].copy(), r[0].copy())
                            for k, r in zip(ends, reached, strict=True)
                            if k in wanted
                        }
                    )
                    state = reached[-1]
                    continue
            for k in range(start, end):
                state = _rk4_step(rhs, k, state, substeps)
                if not all(np.all(np.isfinite(s)) for s in state):
                    raise FloatingPointError(f"the flow diverged at step {k + 1}")
                if k + 1 in wanted:
                    keep[k + 1] = (state[1].copy(), state[0].copy())
    return [
        _stacked(p, {s: (wp[i], w[i]) for s, (wp, w) in keep.items()}) for i in range(len(problems))
    ]


def _rk4_step(rhs, k: int, state: list[np.ndarray], substeps: int) -> list[np.ndarray]:
    """Optimiser step k of the flow by ``substeps`` classical Runge-Kutta steps."""
    h = 1.0 / substeps
    for _ in range(substeps):
        k1 = rhs(k, state)
        k2 = rhs(k, [s + 0.5 * h * d for s, d in zip(state, k1, strict=True)])
        k3 = rhs(k, [s + 0.5 * h * d for s, d in zip(state, k2, strict=True)])
        k4 = rhs(k, [s + h * d for s, d in zip(state, k3, strict=True)])
        state = [
            s + h / 6 * (a + 2 * b + 2 * c + d)
            for s, a, b, c, d in zip(state, k1, k2, k3, k4, strict=True)
        ]
    return state


def _adaptive(
    rhs, a: int, ends: list[int], state: list[np.ndarray], budget: int, tolerances
) -> list:
    """The states at steps ``ends`` (the last: the window's end) of the flow from step ``a``,
    whose schedule is step a's throughout, by scipy's DOP853 at ``tolerances`` (rtol, atol);
    :class:`_Hard` once it has evaluated ``rhs`` more than ``budget`` times."""
    shapes = [s.shape for s in state]
    cuts = np.cumsum([s.size for s in state])[:-1]

    def unflat(y: np.ndarray) -> list[np.ndarray]:
        return [part.reshape(shape) for part, shape in zip(np.split(y, cuts), shapes, strict=True)]

    calls = 0

    def fun(_kappa: float, y: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls > budget:
            raise _Hard
        return np.concatenate([d.ravel() for d in rhs(a, unflat(y))])

    y0 = np.concatenate([s.ravel() for s in state])
    with np.errstate(over="ignore", invalid="ignore"):
        rtol, atol = tolerances
        sol = solve_ivp(fun, (a, ends[-1]), y0, "DOP853", t_eval=ends, rtol=rtol, atol=atol)
    if sol.status != 0 or not np.all(np.isfinite(sol.y)):
        raise FloatingPointError(f"the flow diverged between steps {a} and {ends[-1]}")
    return [unflat(y) for y in sol.y.T]


def ablation(p: Problem, ingredient: str) -> Path_:
    """The prediction's flow (inertial for a run with momentum) with ``ingredient`` removed;
    removing the momentum gives the first-order flow with the run's flow-time map."""
    return ablations(p, [ingredient])[ingredient]


def ablations(p: Problem, ingredients: Sequence[str], prediction: bool = False) -> dict:
    """{ingredient: :func:`ablation`} (and ``'prediction'``: :func:`flow` of ``p`` itself when
    ``prediction``), the flows of one order integrated as one stacked system (:func:`flows`)
    for eq. 1, whose stacked gradient is one batched product; for another loss one by one:
    each member's gradient is its own call there, so a stack would only make every member take
    the steps of the stiffest (the pure flow of a scale-invariant loss; on a quick NT-Xent run,
    600 steps, its five nulls took 12 288 gradients stacked, 8 885 one by one), and its nulls
    are integrated at :data:`NULL_RTOL`, :data:`NULL_ATOL`."""
    inertial = p.momentum > 0
    named = {i: p.without(i) for i in ingredients if i != "momentum"}
    if prediction:
        named = {"prediction": p, **named}
    if p.loss is None:
        paths = flows(list(named.values()), inertial) if named else []
        null_tolerances = (RTOL, ATOL)
    else:
        null_tolerances = (NULL_RTOL, NULL_ATOL)
        paths = [
            flow(q, inertial, tolerances=(RTOL, ATOL) if name == "prediction" else null_tolerances)
            for name, q in named.items()
        ]
    out = dict(zip(named, paths, strict=True))
    if "momentum" in ingredients:
        out["momentum"] = flow(p, inertial=False, tolerances=null_tolerances)
    return out
