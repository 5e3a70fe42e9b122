"""Agreement of a prediction with the run it was derived from, next to the nulls.

- ``prediction_error``: the relative error of the predicted W_p at each measurement of the run,
  for the prediction, the other-seed null and the frozen initial network.
"""

from __future__ import annotations

import math

import numpy as np

from reports import style
from reports.figures.base import FLOW_TIME, MAX_PANELS, Drawn, Inputs, absent, figure, grid, unique
from reports.inputs import Result


@figure("prediction_error", "Prediction error over time, against the nulls", section="agreement")
def prediction_error(inputs: Inputs) -> Drawn:
    """The prediction's W_p error at each measurement, next to the nulls' errors."""
    panels = [
        (p, sim)
        for p in inputs.pairings
        for sim in p.predictions
        if p.run.has("wp") and sim.has("wp")
    ]
    panels = [(p, sim) for p, sim in panels if p.run.has_flow_time][:MAX_PANELS]
    if not panels:
        return absent("no run stores W_p next to a simulation derived from it")
    ncols = min(len(panels), 2)
    width = "single" if len(panels) == 1 else "double"
    fig = style.new_figure(width, 2.2 * math.ceil(len(panels) / ncols) + 0.4)
    sources: list[Result] = []
    for ax, (p, sim) in zip(grid(fig, len(panels), ncols), panels, strict=True):
        run = p.run.trajectory()
        curves = [("prediction", sim.trajectory().at(run.t), "-", 0)]
        curves += [("null: other seed", n.trajectory().at(run.t), "--", 1) for n in p.nulls[:1]]
        curves.append(("null: frozen initial network", run.frozen(), ":", 2))
        for label, traj, ls, i in curves:
            num = np.linalg.norm(run.wp - traj.wp, axis=(-2, -1))
            den = np.linalg.norm(traj.wp, axis=(-2, -1))
            ax.plot(run.t, num / np.where(den > 0, den, np.nan), ls=ls, color=style.color(i),
                    marker=style.marker(i), ms=3, label=label)  # fmt: skip
        ax.set_xlabel(FLOW_TIME)
        ax.set_ylabel(r"$\|W_p^{run} - W_p\|_F / \|W_p\|_F$")
        ax.set_yscale("log")
        ax.set_title(f"{p.run.ident} vs {sim.ident}")
        sources += [p.run, sim, *p.nulls[:1]]
    # every panel draws the same series: the first one's entries make the legend
    handles = fig.axes[0].get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    caption = (
        "Relative error of the predicted W_p at each measurement of the run, "
        "||W_p^run(t) - W_p(t)||_F / ||W_p(t)||_F, for the simulation derived from the run "
        "(solid), a simulation of the same run started from another seed's initial weights "
        "(dashed) and the run's initial network held frozen (dotted). A prediction that "
        "deserves the name sits far below both nulls."
    )
    return Drawn(caption, unique(sources), fig, width=width)
