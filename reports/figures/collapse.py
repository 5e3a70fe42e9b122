"""The collapse map of a run (``python -m dynamics.collapse_map ... --plot``).

Left: the modes alive at the run's horizon over the two first swept axes (weight decay on x
when swept), the other axes at the value nearest the run's; dashed vertical lines: the
closed-form thresholds D eta*_j = D x_j^2 / (4 (x_j + x'_j)) of the modes; star: the run's own
setting. Right: the count against the weight decay at the run's other settings, integrated to
the horizon and from the thresholds alone.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import BoundaryNorm

from reports import style
from reports.figures.base import Drawn, Inputs, absent, figure, headline
from reports.inputs import Result

#: a threshold line is numbered when this fraction of the axis away from the last numbered one
LABEL_GAP = 0.04


def _map_file(inputs: Inputs) -> Result | None:
    return next((r for r in inputs.sims if r.kind == "sweep" and r.name == "collapse_map"), None)


def _at_run(res: Result, keep: tuple[str, ...]):
    """The map with every axis not in ``keep`` at the value nearest the run's setting."""
    ds = res.ds
    for axis in [d for d in ds["surviving_modes"].dims if d not in keep]:
        ds = ds.sel({axis: float(res.attrs[f"run_{axis}"])}, method="nearest")
    return ds


def _thresholds(ax, res: Result, lo: float, hi: float, color: str) -> None:
    """Dashed lines at the modes' thresholds in [lo, hi], numbered where there is room."""
    last = -np.inf
    if "threshold_weight_decay" not in res.ds:  # the cosine loss: no thresholds
        return
    for j, value in enumerate(res.ds["threshold_weight_decay"].values):
        if not lo <= value <= hi:
            continue
        ax.axvline(value, color=color, ls="--", lw=0.8)
        if abs(last - value) >= LABEL_GAP * (hi - lo):
            ax.text(value, 1.0, f" {j + 1}", transform=ax.get_xaxis_transform(), rotation=90,
                    va="top", ha="right", fontsize=6, color=color)  # fmt: skip
            last = value


@figure("collapse_map", "Collapse map of a run: surviving modes", section="phase")
def collapse_map(inputs: Inputs) -> Drawn:
    res = _map_file(inputs)
    if res is None:
        return absent("no file of python -m dynamics.collapse_map")
    dims = list(res.ds["surviving_modes"].dims)
    if "weight_decay" not in dims:
        return absent("the map does not sweep the weight decay")
    other = next((d for d in dims if d != "weight_decay"), None)
    n_modes = res.ds.sizes["mode"]
    run = {k: float(res.attrs[f"run_{k}"]) for k in ("weight_decay", "ema", "lr", "alpha_p")}
    fig = style.new_figure("double", 2.9)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.35, 1]})
    wd = res.ds["weight_decay"].values
    if other is not None:
        ds = _at_run(res, ("weight_decay", other))
        counts = ds["surviving_modes"].transpose(other, "weight_decay").values
        ys = ds[other].values
        norm = BoundaryNorm(np.arange(-0.5, n_modes + 1.5), 256)
        mesh = left.pcolormesh(wd, ys, counts, norm=norm, cmap=style.SEQUENTIAL_CMAP,
                               shading="nearest")  # fmt: skip
        step = max(1, round(n_modes / 8))
        fig.colorbar(mesh, ax=left, label="modes alive at the horizon",
                     ticks=np.arange(0, n_modes + 1, step))  # fmt: skip
        _thresholds(left, res, wd.min(), wd.max(), "white")
        left.plot(run["weight_decay"], run[other], marker="*", ms=11, color="#d62728",
                  mec="white", ls="none", label="the run's setting")  # fmt: skip
        left.set_ylabel(other.replace("_", " "))
        left.set_xlabel("weight decay")
        left.legend(loc="lower left", frameon=True, edgecolor="none", framealpha=0.85)
    else:
        left.set_visible(False)
    line = _at_run(res, ("weight_decay",))
    right.step(wd, line["surviving_modes"].values, where="mid", color=style.color(0),
               label="per-mode ODE, at the horizon")  # fmt: skip
    right.step(wd, line["surviving_modes_closed_form"].values, where="mid", ls="--",
               color=style.PREDICTION_COLOR, label=r"closed form: $D\eta < D\eta^*_j$")  # fmt: skip
    _thresholds(right, res, wd.min(), wd.max(), "0.6")
    right.axvline(run["weight_decay"], color="#d62728", lw=1.0, label="the run's weight decay")
    right.set_xlabel("weight decay")
    right.set_ylabel("modes alive")
    right.set_ylim(-0.5, n_modes + 0.5)
    right.legend(loc="upper right", frameon=True, edgecolor="none", framealpha=0.85)
    fixed = (
        "weight_decay",
        other,
        *(["alpha_p"] if res.attrs.get("map_loss") == "directpred" else []),
    )
    held = ", ".join(f"{k} {v:.4g}" for k, v in run.items() if k not in fixed)
    right.set_title(f"at the run's {held}")
    headline(
        fig,
        res,
        f"Collapse map of {res.attrs.get('from_run', '?')}: {n_modes} modes of its measured X, "
        f"X' (commutator ratio {float(res.attrs['commutator_ratio']):.2f}; "
        f"loss {res.attrs.get('map_loss', 'linear_byol')})",
    )
    caption = (
        "Modes of the run's measured X, X' alive at its horizon (the per-mode ODE of Tian et "
        "al. 2021, eqs. 11-13, with each mode's x_j, x'_j, integrated from the run's initial "
        "weights), over the weight decay and a second hyperparameter (left; the others at the "
        "run's values) and against the weight decay alone (right). Dashed lines: each mode's "
        "closed-form threshold D x_j^2 / (4 (x_j + x'_j)), numbered from the strongest; star "
        "and red line: the run's own setting. The closed form is exact when X and X' commute; "
        "the commutator ratio in the title measures how far the run's moments are from it."
    )
    return Drawn(caption, [res], fig, width="double")
