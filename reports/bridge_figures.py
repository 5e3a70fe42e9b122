"""The bridge's figures: the ladder (each rung's statistic next to its nulls) and the scaling
of rung 1's error with the learning rate and the batch size."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from reports import style
from reports.figures.base import Drawn, log_axis

#: the statistic drawn per rung: the W_p trajectory error where there is a prediction (the W
#: error for a method without W_p), else the final asymmetry (a property of the run that the
#: theory predicts to vanish); a rung without a prediction is named, with nothing drawn
HEADLINE = ("wp_error", "w_error", "final_asymmetry", "no_prediction")
SHORT = {
    "wp_error": "$W_p$ error",
    "w_error": "$W$ error",
    "final_asymmetry": "asymmetry",
    "no_prediction": "no prediction",
}


def ladder_figure(summaries: Sequence) -> Drawn:
    """Per rung: the headline statistic (mean and spread over seeds) and its nulls, log axis."""
    name, title = "ladder", "How far up the ladder the theory holds"
    order = list(dict.fromkeys(s.rung.key for s in summaries))  # the ladder's order
    found = {(s.rung.key, s.key): s for s in summaries}
    rungs = [
        next(found[r, key] for key in HEADLINE if (r, key) in found)
        for r in order
        if any((r, key) in found for key in HEADLINE)
    ]
    if not rungs:
        return Drawn(reason="no rung has a headline statistic", name=name, title=title)
    fig = style.new_figure("double", 3.4)
    ax = fig.subplots()
    x = np.arange(len(rungs))
    series = [("run vs theory", lambda s: s.values, "o")]
    series += [
        (f"null: {n}", (lambda s, n=n: s.nulls.get(n, [np.nan])), m)
        for n, m in (("frozen", "s"), ("other seed", "^"))
    ]
    for i, (label, get, marker) in enumerate(series):
        values = [np.asarray(get(s), dtype=float) for s in rungs]
        means = np.array(
            [np.mean(v) if v.size and np.all(np.isfinite(v)) else np.nan for v in values]
        )
        spread = np.array(
            [np.std(v) if v.size and np.all(np.isfinite(v)) else np.nan for v in values]
        )
        ax.errorbar(
            x + 0.12 * (i - 1),
            means,
            yerr=spread,
            ls="none",
            marker=marker,
            color=style.color(i),
            mfc="none" if i else style.color(i),
            label=label,
        )
    for j, s in enumerate(rungs):
        if np.isfinite(s.tolerance):
            ax.plot([j - 0.3, j + 0.3], [s.tolerance] * 2, color="0.6", lw=0.8, ls=":")
    ax.set_yscale("log")
    labels = [f"{s.rung.key}: {SHORT[s.key]}" for s in rungs]
    # slanted: the 16 rungs' names side by side overlap on a double-column figure
    ax.set_xticks(x, labels, fontsize="small", rotation=30, ha="right", rotation_mode="anchor")
    ax.set_ylabel("error (0 = the theory exactly)")
    handles = ax.get_legend_handles_labels()[0]
    handles.append(Line2D([], [], color="0.6", lw=0.8, ls=":", label="tolerance"))
    ax.legend(handles=handles, loc="best")
    caption = (
        "Each rung's headline statistic (mean and standard deviation over the seeds): the "
        "relative error of the W_p trajectory against the simulation derived from the run "
        "where the theory makes an input-space prediction (rungs 1-3; the method rungs: the W_p "
        "error, or the W error of a method without W_p), else the final asymmetry of W_p that "
        "the theory predicts to vanish; next to the same number for the frozen initial network "
        "and an other-seed simulation. Dotted: the tolerance. 'no prediction': --from-run "
        "refuses the method's runs (the table states why); nothing is drawn."
    )
    return Drawn(caption, figure=fig, width="double", name=name, title=title)


def scaling_figure(scaling: Sequence) -> Drawn:
    """Rung 1's W_p error against the learning rate and the batch size, with the fitted slopes."""
    name, title = "scaling", "Finite-step and minibatch error of rung 1"
    if not scaling:
        return Drawn(reason="no scaling study was run", name=name, title=title)
    fig = style.new_figure("double", 2.5)
    axes = fig.subplots(1, len(scaling), squeeze=False)[0]
    for ax, s in zip(axes, scaling, strict=True):
        v = np.asarray(s.values, dtype=float)
        means = np.array([np.mean(e) for e in s.errors])
        for value, errs in zip(v, s.errors, strict=True):
            ax.plot([value] * len(errs), errs, "o", mfc="none", color=style.color(0))
        fit = np.exp(np.polyval(np.polyfit(np.log(v), np.log(means), 1), np.log(v)))
        ax.plot(v, fit, color=style.color(1), label=f"slope {s.slope:.2f}")
        ax.set_xscale("log")
        ax.set_xticks(v, [f"{x:g}" for x in v])  # the values the study ran
        ax.xaxis.set_minor_formatter(NullFormatter())
        log_axis(ax)  # the errors span less than a decade: every tick labelled
        ax.set_xlabel("peak learning rate" if s.kind == "lr" else "batch size")
        ax.set_ylabel("$W_p$ trajectory error")
        ax.legend(loc="best")
    caption = (
        "Relative error of rung 1's W_p trajectory against the simulation derived from the run, "
        "at a fixed flow time, for learning rates over a decade (left) and batch sizes (right); "
        "open markers: seeds; line: the least-squares power law."
    )
    return Drawn(caption, figure=fig, width="double", name=name, title=title)
