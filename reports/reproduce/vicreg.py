"""Claims of Bardes, Ponce, LeCun 2022 (VICReg) and Garrido et al. 2022 (arXiv 2206.02574)."""

from __future__ import annotations

from reports.reproduce import configs
from reports.reproduce.common import MARGIN, collapse_panel, collapse_test, main_size, trajectories
from reports.reproduce.measured import Measured
from reports.reproduce.registry import Experiment, Outcome, Panel, empirical_claim
from reports.reproduce.scale import Scale
from reports.reproduce.verdict import Test


@empirical_claim(
    "vicreg-terms",
    "VICReg collapses without its variance term; without its covariance term the rank is lower",
    paper="Bardes, Ponce, LeCun 2022",
    where="Sec. 3 (the loss terms)",
    quote="Variance loss to maintain variance in the representations and prevent collapse. "
    "[...] The covariance term decorrelates the embedding dimensions to maximize information.",
)
def vicreg_terms(scale: Scale) -> Experiment:
    """VICReg with all three terms, without the variance term (std_coeff = 0) and without the
    covariance term (cov_coeff = 0).

    Statistics: the final distance from the toolkit's collapse criteria in decades
    (measured.collapse_margin), and the effective rank (RankMe) of the projector outputs.
    Tests: without the variance term the run ends collapsed (< 0) and the full loss does not
    (> 0); without the covariance term the final effective rank is lower than the full loss's
    (same-seed difference < 0). Size: the main runs' length; the invariance term alone pulls
    every embedding to one point at the rate of its coefficient (25), so a run without the
    variance term has collapsed long before the end unless something else holds it."""
    runs = {
        "full": configs.training(scale, "vicreg", "VICReg"),
        "no_variance": configs.training(
            scale, "vicreg", "VICReg without variance", "--loss-param", "std_coeff=0", probes=False
        ),
        "no_covariance": configs.training(
            scale,
            "vicreg",
            "VICReg without covariance",
            "--loss-param",
            "cov_coeff=0",
            probes=False,
        ),
    }

    def evaluate(m: Measured) -> Outcome:
        seeds, diff = m.contrast("no_covariance", "full", "effective_rank")
        tests = [
            collapse_test(m, "no_variance", True, "no variance term: collapses"),
            collapse_test(m, "full", False, "full loss: does not collapse"),
            Test(
                "no covariance term: lower effective rank",
                "final effective rank, no covariance term minus full loss",
                -1,
                0.0,
                diff,
                seeds,
                note=m.failures("no_covariance", "full"),
            ),
        ]
        labels = {"full": "full", "no variance": "no_variance", "no covariance": "no_covariance"}
        panels = [
            collapse_panel(m, labels),
            trajectories(m, labels, "effective_rank", "effective rank", "RankMe"),
        ]
        return Outcome(tests, panels)

    return Experiment(runs, evaluate, main_size(scale))


@empirical_claim(
    "garrido-width",
    "Non-contrastive methods do not need a large projector output",
    paper="Garrido, Chen, Bardes, Najman, LeCun 2022",
    where="abstract and Sec. 5 (embedding dimension)",
    quote="We also challenge the popular assumption that non-contrastive methods need large "
    "output dimensions.",
)
def garrido_width(scale: Scale) -> Experiment:
    """Non-contrastive methods (VICReg; Barlow Twins too at the GPU scale) and SimCLR
    (contrastive, for reference) with projector output widths from the smallest to the largest
    of the scale (64..4096 on the CPU), the projector's hidden width fixed at the largest output
    width (an output wider than the hidden layer would have rank at most the hidden width: a
    4096-wide output from a 256-wide layer is a 256-dimensional one), each trained for
    ``width_steps`` steps.

    Statistic: linear-probe accuracy of the backbone features. Tests: for each non-contrastive
    method the smallest width beats the random encoder (a comparison of widths means something
    only if the encoder learned), and is no worse than the largest by more than 0.01 (same-seed
    accuracy difference > -0.01, significantly: non-inferiority); SimCLR's same difference is
    context. Size: the runs are shorter than the main ones and, on the CPU, of half the batch
    (VICReg's two 4096 x 4096 covariances of 128 images cost about 25 GFLOP a step; Barlow
    Twins is left to the GPU scale for the same reason), and measured at the start and the end
    only (a measurement of 4096-wide projections takes tens of seconds)."""
    runs = {}
    names = {"vicreg": "VICReg", "barlow_twins": "Barlow Twins", "simclr": "SimCLR"}
    methods = {m: names[m] for m in scale.width_methods}
    for method, name in methods.items():
        for width in scale.widths:
            runs[f"{method}_{width}"] = configs.training(
                scale,
                method,
                f"{name}, d {width}",
                proj_dim=width,
                proj_hidden=max(scale.widths),
                steps=scale.width_steps,
                batch=scale.width_batch,
                measurements=1,
            )
    small, large = scale.widths[0], scale.widths[-1]

    def evaluate(m: Measured) -> Outcome:
        tests = []
        for method, name in methods.items():
            if method == "simclr":
                continue
            role = f"{method}_{small}"
            tests.append(
                Test(
                    f"{name}: d {small} beats the random encoder",
                    "linear-probe accuracy, final minus random encoder",
                    1,
                    0.0,
                    m.change(role, "linear_acc"),
                    m.seeds(role),
                    note=m.failures(role),
                )
            )
        for method, name in methods.items():
            seeds, diff = m.contrast(f"{method}_{small}", f"{method}_{large}", "linear_acc")
            tests.append(
                Test(
                    f"{name}: d {small} no worse than d {large}",
                    f"linear-probe accuracy, d {small} minus d {large}",
                    1,
                    -MARGIN,
                    diff,
                    seeds,
                    null=-MARGIN,
                    decides=method != "simclr",
                    note=m.failures(f"{method}_{small}", f"{method}_{large}"),
                )
            )
        series = {}
        random = []
        for method, name in methods.items():
            roles = [f"{method}_{w}" for w in scale.widths]
            finals = [m.final(r, "linear_acc") for r in roles]
            n = min(len(f) for f in finals)
            series[name] = (
                [list(map(float, scale.widths)) for _ in range(n)],
                [[finals[j][i] for j in range(len(roles))] for i in range(n)],
            )
            random += m.initial(roles[0], "linear_acc")
        hlines = [(sum(random) / len(random), "random encoder")] if random else []
        panel = Panel(
            "probe against output width",
            "projector output width d",
            "linear-probe accuracy",
            series,
            hlines=hlines,
            logx=True,
        )
        return Outcome(tests, [panel])

    sizing = (
        f"{scale.width_steps} steps of {scale.width_batch} images at widths "
        f"{', '.join(map(str, scale.widths))} (hidden width {max(scale.widths)} for every width)"
    )
    return Experiment(runs, evaluate, sizing)
