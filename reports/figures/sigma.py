"""||Sigma - I|| measured and predicted, every method on one axes (Liu et al. 2022, Fig. 1, with
the theory beside it).

- ``sigma_prediction``: for each run with a simulation derived from it (``--from-run``), the
  decorrelation of its features on the held-out clean images as measured (markers) and as
  predicted from the simulated W(t) and the images' moments (lines,
  :mod:`dynamics.predicted_sigma`):
  the total ||Sigma - I||_F^2 (Liu et al.'s quantity) and the mean squared off-diagonal
  correlation with its floor.
"""

from __future__ import annotations

import numpy as np

from reports import style
from reports.figures.base import Drawn, Inputs, absent, epoch_axis, figure, unique

TOTAL, MEAN_SQ = "sigma_dist_pearson", "sigma_corr_mean_sq"
STEP = "step_at_measurement"


def run_label(run) -> str:
    """The run's method, with its loss where that is not the method's name (SimCLR trains
    NT-Xent or the spectral loss)."""
    method = str(run.attrs.get("name", run.ident))
    loss = run.attrs.get("loss_name")
    return method if loss in (None, method) else f"{method} ({loss})"


@figure("sigma_prediction", "||Sigma - I|| per method: measured and predicted", "agreement")
def sigma_prediction(inputs: Inputs) -> Drawn:
    """Measured and predicted ||Sigma - I|| of every predicted run, on one axes per statistic."""
    pairs = [
        (p.run, sim)
        for p in inputs.pairings
        for sim in p.predictions[:1]
        if p.run.has(TOTAL, MEAN_SQ) and sim.has(TOTAL, MEAN_SQ)
    ][: len(style.PALETTE)]
    if not pairs:
        return absent("no run has a simulation derived from it that predicts its Sigma")
    fig = style.new_figure("double", 3.0)
    left, right = fig.subplots(1, 2)
    # optimiser steps where every run recorded them: runs at other batch sizes line up
    by_step = all(run.has(STEP) for run, _ in pairs)
    for i, (run, sim) in enumerate(pairs):
        look = {"color": style.color(i)}
        label = run_label(run)
        x, t = (run.values(STEP) if by_step else run.steps()), run.flow_time()
        for ax, name in ((left, TOTAL), (right, MEAN_SQ)):
            predicted = np.interp(t, sim.flow_time(), sim.values(name))
            ax.plot(x, run.values(name), ls="none", marker=style.marker(i), ms=4,
                    label=f"{label}: run", **look)  # fmt: skip
            ax.plot(x, predicted, ls="-", lw=1.2, label=f"{label}: predicted", **look)
        if run.has("sigma_floor"):
            right.plot(x, run.values("sigma_floor"), ls=":", lw=0.8, **look)
    for ax in (left, right):
        epoch_axis(ax)
        if by_step:
            ax.set_xlabel("optimiser step")
    left.set_ylabel(r"$\|\Sigma - I\|_F^2$")
    left.set_title("total (Liu et al. 2022, Fig. 1)")
    right.set_ylabel(r"mean$_{i \neq j}\ \rho_{ij}^2$")
    right.set_title("mean squared correlation")
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize="small")
    caption = (
        "Decorrelation of the features on the run's held-out, un-augmented evaluation images "
        "against epochs: markers as the run measured it, lines as predicted by the simulation "
        "derived from the run (its W(t) applied to the images' stored mean and second moment; "
        "the same definitions as the run's). Left: ||Sigma - I||_F^2 with Sigma the Pearson "
        "correlation (Liu et al. 2022, Fig. 1); right: its mean over pairs of alive dimensions, "
        "dotted the floor 1/(N-1) of N independent features; against optimiser steps where "
        "every run recorded them, else epochs. Each method's prediction is the "
        "gradient flow of its own loss (simulation attribute prediction_kind)."
    )
    return Drawn(caption, unique([x for pair in pairs for x in pair]), fig, width="double")
