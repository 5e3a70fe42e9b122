"""Claims of Liu, Suganuma, Okatani 2022 (NeurIPS): decorrelation by every method, the diagonal
predictor of BYOL, and what keeps their method from collapsing."""

from __future__ import annotations

import numpy as np

from reports.reproduce import configs
from reports.reproduce.common import collapse_panel, collapse_test, main_size, trajectories
from reports.reproduce.measured import Measured, offdiagonal_mass
from reports.reproduce.registry import Experiment, Outcome, empirical_claim
from reports.reproduce.scale import Scale
from reports.reproduce.verdict import Test

PAPER = "Liu, Suganuma, Okatani 2022"


@empirical_claim(
    "liu-fig1",
    "The projector outputs decorrelate with training for every method",
    paper=PAPER,
    where="Fig. 1, Sec. 5.2",
    quote="We can see that all the tested methods decrease ||Sigma - I||^2 with epochs, "
    "including those using the asymmetry tricks (i.e., BYOL and SimSiam) and those using "
    "different forms of explicit decorrelation constraint (i.e., Barlow-Twins, VICReg, and ours).",
)
def liu_fig1(scale: Scale) -> Experiment:
    """BYOL with a linear predictor, BYOL and SimSiam with their MLP predictors, Barlow Twins,
    VICReg and Liu et al.'s method, all on the same encoder, heads and optimiser.

    Statistic (fixed before its values were computed on any run): the mean squared off-diagonal
    Pearson correlation of the projector outputs over pairs of ALIVE dimensions, minus its floor
    1/(N - 1) for independent features (``sigma_corr_mean_sq - sigma_floor``; the fixed
    un-augmented held-out images; undefined with fewer than two alive dimensions). Not Liu et
    al.'s plotted total ||Sigma - I||_F^2: that total falls when correlated dimensions die (a
    dead one counts 1 instead of up to 2(d - 1)): rank-4 data on 64 dimensions gives 1006, the
    same with 56 of them dead 72, so collapse would pass for decorrelation. Tests per method,
    both deciding, from both baselines: the change of the statistic from the random encoder
    (epoch 0) to the end is negative, and from the first measurement after training began
    (a tenth of the steps on the CPU, a third with --quick; Liu et al. plot per epoch) to the
    end is negative. Reported beside them: the dead dimensions at the end. Size: the main runs
    (the size of tian-fig2); the measurements span the trend."""
    runs = {
        "byol_linear": configs.byol_linear(scale),
        "byol": configs.byol_mlp(scale),
        "simsiam": configs.simsiam(scale),
        "barlow_twins": configs.training(scale, "barlow_twins", "Barlow Twins"),
        "vicreg": configs.training(scale, "vicreg", "VICReg"),
        "liu": configs.liu(scale),
    }
    names = {
        "byol_linear": "BYOL (linear W_p)",
        "byol": "BYOL",
        "simsiam": "SimSiam",
        "barlow_twins": "Barlow Twins",
        "vicreg": "VICReg",
        "liu": "Liu et al.",
    }
    options = runs["byol_linear"].options
    every = int(options[options.index("--measure-every") + 1])
    baselines = {0: "the random encoder", 1: f"step {every}"}

    def evaluate(m: Measured) -> Outcome:
        tests = []
        for role, name in names.items():
            for start, baseline in baselines.items():
                tests.append(
                    Test(
                        f"{name}: correlation falls from {baseline}",
                        f"change of the floor-subtracted mean squared correlation over alive "
                        f"pairs, {baseline} to the end",
                        -1,
                        0.0,
                        m.change(role, excess_correlation, start=start),
                        m.seeds(role),
                        note=m.failures(role),
                    )
                )
        facts = {
            f"dead dimensions at the end, {name} (per seed)": ", ".join(
                f"{d:g}" for d in m.final(role, "dead_dims")
            )
            for role, name in names.items()
        }
        labels = {names[r]: r for r in runs}
        panel = trajectories(
            m, labels, excess_correlation, "decorrelation", "mean rho^2 over alive pairs - floor"
        )
        panel.hlines.append((0.0, "independent features"))
        dead = trajectories(m, labels, "dead_dims", "dead dimensions", "dead dimensions")
        erank = trajectories(m, labels, "effective_rank", "effective rank", "RankMe")
        return Outcome(tests, [panel, dead, erank], facts)

    return Experiment(runs, evaluate, main_size(scale))


def excess_correlation(ds) -> np.ndarray:
    """The mean squared off-diagonal Pearson correlation over alive pairs minus its floor for
    independent features 1/(N - 1): 0 for decorrelated outputs, NaN with < 2 alive dimensions."""
    return ds["sigma_corr_mean_sq"].values - ds["sigma_floor"].values


@empirical_claim(
    "liu-fig3",
    "BYOL's linear predictor W_p approaches a diagonal matrix",
    paper=PAPER,
    where="Fig. 3, Sec. 3.3",
    quote="We empirically found this true for BYOL with a linear predictor; W_p quickly "
    "converges to a diagonal matrix as t increases, as shown in Fig. 3.",
)
def liu_fig3(scale: Scale) -> Experiment:
    """BYOL with a linear predictor and weight decay (the runs of tian-fig2).

    Statistic: the off-diagonal mass ||W_p - diag(W_p)||_F / ||W_p||_F (measured.offdiagonal_mass;
    sqrt(1 - 1/d) on average for the random W_p, 0 for cI). Test: its relative change from the
    random W_p to the end is below -0.5 (the off-diagonal mass at least halves). Size: that of
    tian-fig2: the theory's W_p converges to the same p*_+ in every surviving mode,
    i.e. to c times a projection, which is diagonal only if the surviving subspace is spanned by
    coordinate axes or is everything."""
    run = configs.byol_linear(scale)

    def evaluate(m: Measured) -> Outcome:
        test = Test(
            "off-diagonal mass of W_p falls",
            "relative change of ||W_p - diag W_p|| / ||W_p||",
            -1,
            -0.5,
            m.change("byol_linear", offdiagonal_mass, relative=True),
            m.seeds("byol_linear"),
            note=m.failures("byol_linear"),
        )
        panel = trajectories(
            m, {"BYOL, linear W_p": "byol_linear"}, offdiagonal_mass, "W_p", "off-diagonal mass"
        )
        return Outcome([test], [panel])

    return Experiment({"byol_linear": run}, evaluate, main_size(scale))


@empirical_claim(
    "liu-table3",
    "Liu et al.'s method collapses without standardisation; the full method does not",
    paper=PAPER,
    where="Table 3, Sec. 5.4",
    quote="First, we can confirm that the feature standardization helps prevent collapse "
    "independently of the presence of the correlation term (i.e., c_cov = 0 or 1).",
)
def liu_table3(scale: Scale) -> Experiment:
    """Liu et al.'s loss (no stop-gradient, linear predictor) in their Table 3 setting (k = 1,
    c_inv = 1): the full method (standardisation STD, c_cov = 1), without STD (c_cov 1 and 0),
    and with STD but c_cov = 0.

    Statistic: the final distance from the toolkit's collapse criteria in decades
    (measured.collapse_margin). Tests: both runs without STD end collapsed (< 0; Table 3 rows 1
    and 2: collapse), both runs with STD do not (> 0; rows 3 and 4: 50.9 and 61.4 top-1). Size:
    the main runs' length; without STD the zero-loss solution f = 0, W_p = 0 is reached at the
    rate of the weight decay and the invariance term (the size of tian-fig2)."""
    runs = {
        "full": configs.liu(scale),
        "no_std": configs.liu(
            scale,
            "--loss-param",
            "standardize=false",
            label="Liu et al. (no STD, c_cov 1)",
            probes=False,
        ),
        "no_std_no_cov": configs.liu(
            scale,
            "--loss-param",
            "standardize=false",
            "--loss-param",
            "c_cov=0",
            label="Liu et al. (no STD, c_cov 0)",
            probes=False,
        ),
        "std_no_cov": configs.liu(
            scale, "--loss-param", "c_cov=0", label="Liu et al. (STD, c_cov 0)", probes=False
        ),
    }

    def evaluate(m: Measured) -> Outcome:
        tests = [
            collapse_test(m, "no_std", True, "no STD, c_cov 1 collapses"),
            collapse_test(m, "no_std_no_cov", True, "no STD, c_cov 0 collapses"),
            collapse_test(m, "full", False, "STD, c_cov 1 (the method) does not collapse"),
            collapse_test(m, "std_no_cov", False, "STD, c_cov 0 does not collapse"),
        ]
        labels = {
            "STD, c_cov 1": "full",
            "no STD, c_cov 1": "no_std",
            "no STD, c_cov 0": "no_std_no_cov",
            "STD, c_cov 0": "std_no_cov",
        }
        return Outcome(tests, [collapse_panel(m, labels)])

    return Experiment(runs, evaluate, main_size(scale))
