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
from reports.reproduce.registry import Experiment, Outcome, Panel, empirical_claim
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
    """BYOL with a bias-free linear predictor, trained with and without weight decay.

    Statistics: the asymmetry ||W_p - W_p^T||_F / ||W_p + W_p^T||_F and the mean over modes of
    cos(W_p u_j, u_j), u_j the eigenvectors of the predictor input's correlation F
    (``wp_asymmetry``, ``alignment_cos``). Tests: with weight decay the asymmetry falls below
    half its initial value (relative change < -0.5) and the mean cosine rises by more than 0.5
    (from about 0 for the random W_p towards 1); without weight decay the asymmetry keeps more
    than half its initial value (relative change > -0.5). Size: the weight decay, learning rate
    and length of the main runs give eta t of about 3 at their end (the sizing line states the
    value), so e^{-2 eta t} << 1 and the random, asymmetric W_p(0) is forgotten; Tian et al.'s
    STL-10 runs reach eta t = 10 (wd 4e-4, lr 0.03, momentum 0.9, 82 000 steps). The asymmetric
    part of W_p has no fixed point of its own to go to: without weight decay it keeps the part
    of W_p(0) that the gradient does not change."""
    wd = configs.byol_linear(scale)
    no_wd = configs.byol_linear(scale, weight_decay=0.0)

    def evaluate(m: Measured) -> Outcome:
        asym = "wp_asymmetry"
        tests = [
            Test(
                "asymmetry falls with weight decay",
                "relative change of ||W_p - W_p^T|| / ||W_p + W_p^T||",
                -1,
                -0.5,
                m.change("wd", asym, relative=True),
                m.seeds("wd"),
                note=m.failures("wd"),
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
            Test(
                "asymmetry stays without weight decay",
                "relative change of ||W_p - W_p^T|| / ||W_p + W_p^T|| (wd 0)",
                1,
                -0.5,
                m.change("no_wd", asym, relative=True),
                m.seeds("no_wd"),
                null=-0.5,
                note=m.failures("no_wd"),
            ),
        ]
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
    linear predictor at weight decays from the main one up (the sweep).

    Statistic: the distance of the final network from the toolkit's collapse criteria, in
    decades (measured.collapse_margin: z_std below 0.05, or every eigenvalue of the feature
    correlation below 2% of the largest it reached). Tests: the two ablations end collapsed
    (< 0); the largest swept weight decay collapses, the main one does not. The measured
    threshold (per seed, the smallest swept weight decay that collapsed) is put next to the
    prediction wd* = eta* wd / eta, eta* = tau^2 / (4 (1 + sigma^2)) with sigma^2 measured and
    tau = 1 (tian.threshold_prediction), as a context test: within a factor 2. Size: the main
    runs' length; the sweep reaches eta t far above 1 at every point, so a mode without a
    non-collapsed fixed point has decayed by e^{-eta t} (its decay rate at small p is eta)."""
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
    sweep = {f"wd{i}": configs.sweep_run(scale, wd) for i, wd in enumerate(wds)}
    runs.update(sweep)

    def evaluate(m: Measured) -> Outcome:
        roles = list(sweep)
        tests = [
            collapse_test(m, "no_predictor", True, "BYOL without predictor collapses"),
            collapse_test(m, "no_stop_gradient", True, "SimSiam without stop-gradient collapses"),
            collapse_test(m, roles[-1], True, f"weight decay {wds[-1]:g} collapses"),
            collapse_test(m, roles[0], False, f"weight decay {wds[0]:g} does not collapse"),
        ]
        margins = {
            r: dict(zip(m.seeds(r), m.final(r, collapse_margin), strict=True)) for r in roles
        }
        seeds = m.seeds(roles[0])
        measured = []
        for seed in seeds:
            hit = [wd for wd, r in zip(wds, roles, strict=True) if margins[r].get(seed, 1.0) < 0]
            measured.append(min(hit) if hit else math.nan)
        pred = threshold_prediction(m, roles[0])
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
                note=f"measured per seed {', '.join(f'{w:g}' for w in measured)}; predicted "
                f"wd* = {pred['wd_star']:.3g} (eta* = {pred['eta_star']:.3g}, sigma^2 = "
                f"{pred['sigma2']:.3g}, tau = 1)",
            )
        )
        sweep_panel = Panel(
            "weight-decay sweep",
            "weight decay",
            "final distance from collapse (decades)",
            {"BYOL, linear W_p, end of training": (
                [wds for _ in seeds], [[margins[r].get(s, math.nan) for r in roles] for s in seeds]
            )},
            hlines=[(0.0, "collapse criterion")],
            vlines=[(pred["wd_star"], "predicted threshold")],
            logx=True,
        )  # fmt: skip
        ablations = collapse_panel(
            m, {"no predictor": "no_predictor", "no stop-gradient": "no_stop_gradient"}
        )
        finite = [w for w in measured if math.isfinite(w)]
        facts = {
            "sigma^2 (aug_ratio of the random encoder)": pred["sigma2"],
            "sigma^2 (aug_ratio at the end of the main runs)": finite_mean(
                m.final(roles[0], "aug_ratio")
            ),
            "predicted threshold wd*": pred["wd_star"],
            "measured threshold wd (per seed)": ", ".join(f"{w:g}" for w in measured),
            "measured threshold wd (geometric mean)": float(np.exp(np.mean(np.log(finite))))
            if finite
            else math.nan,
        }
        return Outcome(tests, [ablations, sweep_panel], facts)

    eta_t = [scale.eta_t(wd, scale.steps, scale.lr, scale.momentum) for wd in wds]
    sizing = (
        f"{main_size(scale)}; sweep of the weight decay over {', '.join(f'{w:g}' for w in wds)}: "
        f"eta t = {eta_t[0]:.2g} to {eta_t[-1]:.3g} at the end"
    )
    return Experiment(runs, evaluate, sizing)
