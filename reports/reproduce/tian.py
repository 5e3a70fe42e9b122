"""Claims of Tian, Chen, Ganguli 2021 (ICML): the predictor's symmetry and alignment, DirectPred,
and the ways to collapse (no predictor, no stop-gradient, too much weight decay)."""

from __future__ import annotations

import math

import numpy as np

from reports.reproduce import configs
from reports.reproduce.common import (
    MARGIN,
    collapse_panel,
    collapse_test,
    finite_mean,
    main_size,
    trajectories,
)
from reports.reproduce.measured import Measured, collapse_margin, mean_over_modes
from reports.reproduce.registry import Experiment, Outcome, Panel, Refinement, empirical_claim
from reports.reproduce.scale import Scale
from reports.reproduce.verdict import Test

PAPER = "Tian, Chen, Ganguli 2021"
ALIGNMENT = mean_over_modes("alignment_cos")


@empirical_claim(
    "tian-fig2",
    "With weight decay W_p becomes symmetric and aligns with F; without it the asymmetry stays",
    paper=PAPER,
    where="Fig. 2, Sec. 3 (Assumption 3) and Eq. 14",
    quote="Moreover, during BYOL training without a symmetry constraint on the predictor, W_p "
    "gradually moves towards symmetry (Fig. 2). [...] In absence of weight decay (eta = 0), "
    "this integral reveals that the initial condition encoded in c_j is never forgotten.",
)
def tian_fig2(scale: Scale) -> Experiment:
    """BYOL with a bias-free linear predictor, trained with and without weight decay from the
    same seed (same W_p(0), encoder, data order and views): Tian et al.'s point is the contrast.

    Statistics: the asymmetry ||W_p - W_p^T||_F / ||W_p + W_p^T||_F and the mean over modes of
    cos(W_p u_j, u_j), u_j the eigenvectors of the predictor input's correlation F
    (``wp_asymmetry``, ``alignment_cos``). Tests: the same-seed contrast of the final
    asymmetry, log2(asymmetry with weight decay / asymmetry without), is below -1 (weight decay
    leaves at most half the asymmetry that the run without it keeps); with weight decay the mean
    cosine rises by more than 0.5 (from about 0 for the random W_p towards 1). Context: the
    relative change of the asymmetry in each run alone, which also falls when only the symmetric
    part of W_p grows (the ratio's denominator), with or without weight decay alike: it cannot
    tell the two apart, the contrast can. Size: the weight decay, learning rate and length of
    the main runs give eta t of about 3 at their end (the sizing line states the value), so
    e^{-2 eta t} << 1 and the random, asymmetric W_p(0) is forgotten; Tian et al.'s STL-10 runs
    reach eta t = 10 (wd 4e-4, lr 0.03, momentum 0.9, 82 000 steps). The asymmetric part of W_p
    has no fixed point of its own to go to: without weight decay it keeps the part of W_p(0)
    that the gradient does not change."""
    wd = configs.byol_linear(scale)
    no_wd = configs.byol_linear(scale, weight_decay=0.0)

    def evaluate(m: Measured) -> Outcome:
        asym = "wp_asymmetry"
        seeds, ratio = m.contrast("wd", "no_wd", asym, log2_ratio=True)
        tests = [
            Test(
                "weight decay leaves at most half the asymmetry (same seed)",
                "log2(final asymmetry with weight decay / without), same seed",
                -1,
                -1.0,
                ratio,
                seeds,
                note=m.failures("wd", "no_wd"),
            ),
            Test(
                "W_p aligns with the eigenvectors of F",
                "change of the mean over modes of cos(W_p u_j, u_j)",
                1,
                0.5,
                m.change("wd", ALIGNMENT),
                m.seeds("wd"),
                note=m.failures("wd"),
            ),
        ]
        for role, label in (("wd", f"wd {scale.weight_decay:g}"), ("no_wd", "wd 0")):
            tests.append(
                Test(
                    f"asymmetry falls by half, {label} alone",
                    f"relative change of ||W_p - W_p^T|| / ||W_p + W_p^T|| ({label})",
                    -1,
                    -0.5,
                    m.change(role, asym, relative=True),
                    m.seeds(role),
                    decides=False,
                    note=m.failures(role),
                )
            )
        roles = {f"wd {scale.weight_decay:g}": "wd", "wd 0": "no_wd"}
        panels = [
            trajectories(m, roles, asym, "asymmetry of W_p", "asymmetry"),
            trajectories(m, roles, ALIGNMENT, "alignment with F", "mean cos(W_p u_j, u_j)"),
        ]
        eta_t = m.eta_t("wd")
        facts = {"eta t reached (wd runs)": finite_mean(eta_t)}
        return Outcome(tests, panels, facts)

    return Experiment({"wd": wd, "no_wd": no_wd}, evaluate, main_size(scale))


@empirical_claim(
    "tian-directpred",
    "DirectPred and DirectCopy learn as well as BYOL with a trained linear predictor",
    paper=PAPER,
    where="Sec. 4, Tables 6 and 8",
    quote="Tbl. 6 shows that directly computing W_p through DirectPred works better (76.77%) "
    "than training via gradient descent (74.51% in Tbl. 3, regular W_p with EMA).",
)
def tian_directpred(scale: Scale) -> Experiment:
    """DirectPred (W_p set from the eigenbasis of the running correlation F_hat, Tian eq. 18-19)
    and DirectCopy (W_p = F_hat + eps I) against BYOL whose linear W_p is trained by SGD, all
    else equal (same seed: same initial encoder, data order and views).

    Statistic: linear-probe accuracy on frozen backbone features (penalty chosen on validation,
    accuracy on test). Tests: each set predictor is no worse than the trained one by more than
    0.01 (accuracy difference > -0.01, significantly: a non-inferiority test), and each of the
    three beats the random encoder of its own run (final minus epoch-0 accuracy > 0). Size: the
    weight-decay runs of tian-fig2; they are long enough that the probe of the trained encoder
    beats the random one (tested here), the probes' test split large enough (5000 images on the
    CPU) that its binomial noise (0.006) is below the margin."""
    runs = {
        "byol": configs.byol_linear(scale),
        "directpred": configs.training(scale, "directpred", "DirectPred"),
        "directcopy": configs.training(scale, "directcopy", "DirectCopy"),
    }
    names = {"byol": "BYOL (trained W_p)", "directpred": "DirectPred", "directcopy": "DirectCopy"}

    def evaluate(m: Measured) -> Outcome:
        acc = "linear_acc"
        tests = []
        for role in ("directpred", "directcopy"):
            seeds, diff = m.contrast(role, "byol", acc)
            tests.append(
                Test(
                    f"{names[role]} no worse than BYOL",
                    f"linear-probe accuracy, {names[role]} minus BYOL",
                    1,
                    -MARGIN,
                    diff,
                    seeds,
                    null=-MARGIN,
                    note=m.failures(role, "byol"),
                )
            )
        for role in runs:
            tests.append(
                Test(
                    f"{names[role]} beats the random encoder",
                    "linear-probe accuracy, final minus random encoder",
                    1,
                    0.0,
                    m.change(role, acc),
                    m.seeds(role),
                    note=m.failures(role),
                )
            )
        panel = trajectories(
            m, {names[r]: r for r in runs}, acc, "linear probe", "linear-probe accuracy"
        )
        return Outcome(tests, [panel])

    return Experiment(runs, evaluate, main_size(scale))


def threshold_prediction(m: Measured, main: str) -> dict[str, float]:
    """Tian et al.'s collapse threshold eta* = tau^2 / (4 (1 + sigma^2)) for the sweep's runs.

    sigma^2: the ``aug_ratio`` of the main run's random encoder (epoch 0; tr(E[z z^T] -
    E[z1 z2^T]) / tr(E[z1 z2^T]) on two views of the eval images, the sigma^2 of the linear
    theory in feature space), mean over seeds: whether a mode escapes collapse is decided while it
    is small, i.e. early. tau = 1: the target starts as a copy of the online network and the EMA
    keeps W_a / W near 1 while the network changes slowly (a network that weight decay shrinks
    has tau > 1, which raises the threshold). The run's own ``eta_step`` (weight decay per unit
    flow time, empirical.flow) converts: wd* = eta* wd / eta_step.
    """
    sigma2 = finite_mean(m.initial(main, "aug_ratio"))
    eta_star = 1.0 / (4 * (1 + sigma2))
    runs = list(m.datasets[main].values())
    wd = finite_mean([ds["weight_decay_step"].values[-1] for ds in runs])
    eta = finite_mean([ds["eta_step"].values[-1] for ds in runs])
    per_wd = wd / eta if eta > 0 else math.nan
    return {"sigma2": sigma2, "eta_star": eta_star, "wd_star": eta_star * per_wd}


@empirical_claim(
    "tian-collapse",
    "No predictor or no stop-gradient collapses; so does too large a weight decay",
    paper=PAPER,
    where="Sec. 1, Theorem 2, Sec. 3.2 (Obs. 5)",
    quote="The existence of the predictor and stop-gradient is absolutely essential. Removing "
    "either of them leads to representational collapse in BYOL and SimSiam. [...] When "
    "eta > tau^2/(4(1+sigma^2)) there is only one stable fixed point p*_j0 = 0. Under such "
    "strong weight decay collapse is unavoidable (Obs#5).",
)
def tian_collapse(scale: Scale) -> Experiment:
    """BYOL without a predictor, SimSiam without the stop-gradient, and the main BYOL run with a
    linear predictor at weight decays from the main one up (the sweep), refined by bisection.

    Statistic: the distance of the final network from the toolkit's collapse criteria, in
    decades (measured.collapse_margin: z_std below 0.05, or every eigenvalue of the feature
    correlation below 2% of the largest it reached, or RankMe below 2). Tests: the two ablations
    end collapsed (< 0); the largest swept weight decay collapses, the main one does not. The
    threshold: per seed, the smallest swept weight decay that collapsed and the largest below it
    that did not bracket it; the bracket is bisected (geometric midpoint, 3 significant digits)
    until it is within a factor BRACKET = 1.25, and its geometric middle is the seed's
    threshold. It is put next to the prediction wd* = eta* wd / eta, eta* = tau^2 / (4 (1 +
    sigma^2)) with sigma^2 measured and tau = 1 (tian.threshold_prediction), as a context
    test: within a factor 2 (the prediction's tau = 1 and its linear theory are cruder than the
    bracket). Size: the main runs' length; the sweep reaches eta t far above 1 at every point,
    so a mode without a non-collapsed fixed point has decayed by e^{-eta t} (its decay rate at
    small p is eta); a factor-2 grid needs 2 rounds of bisection, one run per seed each."""
    runs = {
        "no_predictor": configs.training(
            scale, "byol", "BYOL without predictor", "--predictor", "none", probes=False
        ),
        "no_stop_gradient": configs.simsiam(
            scale,
            "--loss-param",
            "stop_gradient=false",
            label="SimSiam without stop-gradient",
            probes=False,
        ),
    }
    wds = [scale.weight_decay, *scale.sweep_weight_decays]
    runs.update({sweep_role(wd): configs.sweep_run(scale, wd) for wd in wds})
    widest = max(b / a for a, b in zip(wds, wds[1:], strict=False))
    rounds = max(0, math.ceil(math.log2(math.log(widest) / math.log(BRACKET))))

    def refine(m: Measured) -> Refinement:
        asked: dict[float, list[int]] = {}
        for seed, outcomes in sweep_outcomes(m).items():
            wd = next_weight_decay(outcomes)
            if wd is not None:
                asked.setdefault(wd, []).append(seed)
        return {
            sweep_role(wd): (configs.sweep_run(scale, wd), tuple(seeds))
            for wd, seeds in asked.items()
        }

    def evaluate(m: Measured) -> Outcome:
        main, top = sweep_role(wds[0]), sweep_role(wds[-1])
        tests = [
            collapse_test(m, "no_predictor", True, "BYOL without predictor collapses"),
            collapse_test(m, "no_stop_gradient", True, "SimSiam without stop-gradient collapses"),
            collapse_test(m, top, True, f"weight decay {wds[-1]:g} collapses"),
            collapse_test(m, main, False, f"weight decay {wds[0]:g} does not collapse"),
        ]
        outcomes = sweep_outcomes(m)
        seeds = m.seeds(main)
        brackets = {seed: bracket(outcomes.get(seed, {})) for seed in seeds}
        measured = [math.sqrt(b[0] * b[1]) if b else math.nan for b in brackets.values()]
        pred = threshold_prediction(m, main)
        text = "; ".join(
            f"seed {seed}: " + (f"{b[0]:g} to {b[1]:g} (x{b[1] / b[0]:.3g})" if b else "none")
            for seed, b in brackets.items()
        )
        tests.append(
            Test(
                "measured threshold within a factor 2 of tau^2/(4(1+sigma^2))",
                "|log2(measured / predicted threshold weight decay)|",
                -1,
                1.0,
                [abs(math.log2(w / pred["wd_star"])) for w in measured],
                seeds,
                null=1.0,
                decides=False,
                note=f"brackets {text}; predicted wd* = {pred['wd_star']:.3g} (eta* = "
                f"{pred['eta_star']:.3g}, sigma^2 = {pred['sigma2']:.3g}, tau = 1)",
            )
        )
        series = {}  # one per seed: the bisection gives every seed its own weight decays
        for seed in seeds:
            points = dict(sorted(outcomes.get(seed, {}).items()))
            series[f"BYOL, linear W_p, seed {seed}"] = (
                [list(points)],
                [[margin for _, margin in points.values()]],
            )
        sweep_panel = Panel(
            "weight-decay sweep and bisection",
            "weight decay",
            "final distance from collapse (decades)",
            series,
            hlines=[(0.0, "collapse criterion")],
            vlines=[(pred["wd_star"], "predicted threshold")],
            logx=True,
        )
        ablations = collapse_panel(
            m, {"no predictor": "no_predictor", "no stop-gradient": "no_stop_gradient"}
        )
        finite = [w for w in measured if math.isfinite(w)]
        facts = {
            "sigma^2 (aug_ratio of the random encoder)": pred["sigma2"],
            "sigma^2 (aug_ratio at the end of the main runs)": finite_mean(
                m.final(main, "aug_ratio")
            ),
            "predicted threshold wd*": pred["wd_star"],
            "measured threshold wd (per seed, bracket)": text,
            "measured threshold wd (geometric mean)": float(np.exp(np.mean(np.log(finite))))
            if finite
            else math.nan,
        }
        return Outcome(tests, [ablations, sweep_panel], facts)

    eta_t = [scale.eta_t(wd, scale.steps, scale.lr, scale.momentum) for wd in wds]
    sizing = (
        f"{main_size(scale)}; sweep of the weight decay over {', '.join(f'{w:g}' for w in wds)}: "
        f"eta t = {eta_t[0]:.2g} to {eta_t[-1]:.3g} at the end, then up to {rounds} rounds of "
        f"bisection per seed to a factor {BRACKET:g}"
    )
    probe_free = configs.sweep_run(scale, wds[-1])
    return Experiment(runs, evaluate, sizing, refine, rounds, probe_free.seconds)


#: the bisection of tian-collapse stops when the threshold is bracketed within this factor
BRACKET = 1.25


def sweep_role(weight_decay: float) -> str:
    """The role of a point of tian-collapse's weight-decay sweep (its weight decay in it)."""
    return f"wd={weight_decay:g}"


def sweep_outcomes(m: Measured) -> dict[int, dict[float, tuple[bool | None, float]]]:
    """seed -> weight decay -> (collapsed: True, False, or None for a failed run; the final
    distance from collapse) over every sweep and bisection run measured so far."""
    out: dict[int, dict[float, tuple[bool | None, float]]] = {}
    for role in m.specs:
        if not role.startswith("wd="):
            continue
        wd = float(role[3:])
        for seed, margin in zip(m.seeds(role), m.final(role, collapse_margin), strict=True):
            state = None if not math.isfinite(margin) else bool(margin < 0)
            out.setdefault(seed, {})[wd] = (state, margin)
    return out


def bracket(outcomes: dict[float, tuple[bool | None, float]]) -> tuple[float, float] | None:
    """(lo, hi): hi the smallest weight decay that collapsed, lo the largest below it that did
    not; None when either is missing (the threshold lies outside the sweep)."""
    collapsed = [wd for wd, (state, _) in outcomes.items() if state is True]
    if not collapsed:
        return None
    hi = min(collapsed)
    below = [wd for wd, (state, _) in outcomes.items() if state is False and wd < hi]
    return (max(below), hi) if below else None


def next_weight_decay(outcomes: dict[float, tuple[bool | None, float]]) -> float | None:
    """The next bisection point of one seed: the geometric middle of its bracket (3
    significant digits), or None when the bracket is within BRACKET, missing, or its middle was
    run already (and failed: the bracket cannot shrink)."""
    b = bracket(outcomes)
    if b is None or b[1] / b[0] <= BRACKET:
        return None
    middle = float(f"{math.sqrt(b[0] * b[1]):.3g}")
    return None if middle in outcomes else middle
