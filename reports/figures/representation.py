"""The representation: decorrelation of the projector outputs over training.

- ``sigma_distance``: the mean squared off-diagonal correlation of every trained method against
  epochs, with the estimator's floor, and the dead dimensions (Liu et al. 2022, Fig. 1, plots
  ||Sigma - I||_F^2 for the same purpose).
"""

from __future__ import annotations

import numpy as np

from reports import style
from reports.figures.base import Drawn, Inputs, absent, epoch_axis, figure, log_if_wide


@figure(
    "sigma_distance",
    "Decorrelation of the outputs: mean squared correlation",
    section="measurements",
)
def sigma_distance(inputs: Inputs) -> Drawn:
    """Decorrelation of the projector outputs over training, with the estimator floor."""
    members = [r for r in inputs.runs if r.has("sigma_corr_mean_sq")][: len(style.PALETTE)]
    if not members:
        return absent("no training run holds sigma_corr_mean_sq")
    fig = style.new_figure("double", 2.5)
    left, right = fig.subplots(1, 2)
    plotted = []
    for i, run in enumerate(members):
        look = {"color": style.color(i), "marker": style.marker(i), "ms": 3}
        y = run.values("sigma_corr_mean_sq")
        left.plot(run.steps(), y, ls=style.LINESTYLES[i % len(style.LINESTYLES)],
                  label=f"{run.ident} {run.label}", **look)  # fmt: skip
        plotted.append(y[np.isfinite(y)])
        if run.has("sigma_floor"):
            floor = run.values("sigma_floor")
            left.plot(run.steps(), floor, color=style.color(i), ls=":", lw=0.8)
            plotted.append(floor)
        if run.has("dead_dims"):
            right.plot(run.steps(), run.values("dead_dims"), ls="-", **look)
    log_if_wide(left, plotted)
    for ax in (left, right):
        epoch_axis(ax)
    left.set_ylabel(r"mean$_{i \neq j}\ \rho_{ij}^2$")
    left.set_title("mean squared off-diagonal correlation")
    right.set_ylabel("dead dimensions")
    right.set_title("dimensions with std < 2% of the largest")
    left.legend(loc="best")
    caption = (
        "Left: the mean over pairs of live dimensions of the squared Pearson correlation of the "
        "projector outputs on the fixed, un-augmented evaluation set (||Sigma - I||_F^2 / "
        "(d (d-1)) when no dimension is dead; it does not grow with d), against epochs; dotted: "
        "its floor 1/(N-1) for independent features of the N evaluation images, which no "
        "estimate can go below. Right: the number of dead dimensions (std below 2% of the "
        "largest); a collapsed encoder shows there, not as a low correlation. Epoch 0 is the "
        "randomly initialised encoder, its BatchNorm statistics filled. Liu et al. 2022, Fig. 1, "
        "plots ||Sigma - I||_F^2 (total, growing with d) for the same purpose."
    )
    return Drawn(caption, members, fig, width="double")
