"""The bridge rung ``collapse_mlp``: does the collapse map predict how many modes of an MLP
encoder survive?

    python -m reports.bridge --rungs collapse_mlp --out report_collapse/

1. A pilot MLP-encoder run (``--backbone mlp``: Linear-ReLU on the pixels; Tian's eq. 1 loss, a
   linear predictor, no projector, SGD at a constant lr, constant EMA, no weight decay) writes at
   its end X and X' of its own output features h through its own augmentation
   (``feature_moments.nc``, :mod:`empirical.moments`).
2. The map's modes of (X_h, X'_h) (:func:`dynamics.collapse_modes.pencil_modes`) give the
   thresholds D x_j^2 / (4 (x_j + x'_j)), the encoder read as linear in its own features (W = I
   on h, the feature-space reading of Tian et al. 2021's per-mode theory): an approximation, and
   how good it is the question this rung asks. Predicted at each weight decay: the closed-form
   count (the thresholds above it), and the modes alive at the run's horizon by the map's
   per-mode ODE in the pilot's feature coordinates: W(0) = I (the features themselves), W_a(0) = I,
   W_p(0) the pilot's final predictor, the run's weight decay, lr, EMA and steps.
3. MLP runs at (1 -+ BRACKET) times the thresholds of the BRACKETED strongest modes and between
   them, every seed. Measured: the eigenvalues c_i of each run's final feature correlation E[h
   h^T] (``corr_eig``, un-augmented held-out images), strongest first, against the modes
   strongest first: c_i is alive when at least ALIVE_FRACTION x_i^3 / (4 lam_i^2), the linear
   rung's rule u_i >= ALIVE_FRACTION p_low^2 (p_low = x_i / (2 lam_i)) read in E[h h^T] = u_i x_i.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import xarray as xr

from dynamics.collapse_map import MapAxes, Problem, RunSetting, collapse_map, parse_grid
from dynamics.collapse_modes import ALIVE_FRACTION, pencil_modes
from reports.collapse_check import (
    BRACKET,
    BRACKETED,
    SIZE,
    away_from_thresholds,
    children_cpu,
    near_threshold,
    train_command,
)
from reports.experiments import Workspace
from reports.tables import Column, Table, table_frame, to_markdown, write_table
from symbolic.common.files import write_text
from symbolic.common.provenance import git_revision

#: the rung's name, and its commands' prefix in the bridge's plan
COLLAPSE_MLP = "collapse_mlp"
#: the MLP runs: one Linear(784 -> 16)-ReLU block, otherwise the linear rung's sizes
MLP_SIZE = dataclasses.replace(SIZE, rung=COLLAPSE_MLP, backbone="mlp", depth=1)
#: epochs of the pilot whose features give the moments (the features move in early training)
PILOT_EPOCHS = 4
FEATURES = "feature_moments.nc"


def feature_modes(run: Path):
    """The modes of X_h, X'_h in ``run``/feature_moments.nc."""
    with xr.open_dataset(run / FEATURES, engine="netcdf4") as m:
        return pencil_modes(m["x_corr"].values, m["aug_cov"].values)


def horizon_count(pilot: Path, run: Path) -> int:
    """Modes alive at ``run``'s horizon by the map's per-mode ODE in ``pilot``'s feature
    coordinates (W(0) = W_a(0) = I, W_p(0) the pilot's last predictor; module docstring)."""
    with xr.open_dataset(pilot / FEATURES, engine="netcdf4") as m:
        x_corr, aug_cov = m["x_corr"].values, m["aug_cov"].values
    with xr.open_dataset(pilot / "measurements.nc", engine="netcdf4") as ds:
        wp0 = ds["wp"].values[-1]
    with xr.open_dataset(run / "measurements.nc", engine="netcdf4") as ds:
        steps = int(ds["step_at_measurement"].values[-1])
        horizon = float(ds["flow_time_step"].values[steps - 1])
        axes = MapAxes(
            weight_decay=float(ds["weight_decay_step"].values[steps - 1]),
            ema=float(np.mean(ds["ema_momentum_step"].values[:steps])),
            lr=float(ds["lr_step"].values[steps - 1]),
            alpha_p=float(ds["alpha_p_step"].values[steps - 1]),
        )
        directions = int(ds.attrs.get("loss_directions", 1))
    eye = np.eye(x_corr.shape[0])
    setting = RunSetting(axes, horizon / steps, steps, directions)
    problem = Problem(x_corr, aug_cov, eye, wp0, eye, setting, {"from_run": str(run)})
    ds = collapse_map(problem, parse_grid([f"weight_decay={axes.weight_decay!r}"]))
    return int(ds["surviving_modes"].values[0])


def measured_count(run: Path, modes) -> tuple[int, np.ndarray]:
    """(alive count, final corr_eig strongest first) of a run against the pilot's ``modes``."""
    with xr.open_dataset(run / "measurements.nc", engine="netcdf4") as ds:
        eig = np.sort(ds["corr_eig"].values[-1])[::-1]
    lam = modes.x + modes.x_aug
    k = min(eig.size, lam.size)
    floor = ALIVE_FRACTION * modes.x[:k] ** 3 / (4 * lam[:k] ** 2)
    return int(np.sum((eig[:k] >= floor) & (modes.threshold[:k] > 0))), eig


def run_mlp_check(workspace: Workspace, work: Path, seeds: int, jobs: int, settings: dict,
                  size=None) -> dict:  # fmt: skip
    """The pilot, then the bracketing runs, on the bridge's runner (markers, --resume)."""
    size = size or MLP_SIZE
    start, cpu, load = time.perf_counter(), children_cpu(), os.getloadavg()[0]
    pilot = train_command("pilot", size, 0.0, 0, PILOT_EPOCHS, work / "pilot")
    workspace.begin([pilot], settings, True, "replace")
    workspace.run_stage([pilot], jobs, lambda finished: None)
    modes = feature_modes(pilot.output)
    thresholds = 2 * modes.threshold[:BRACKETED]  # D = 2
    decays = sorted(
        {round(float(t * f), 6) for t in thresholds for f in (1 - BRACKET, 1 + BRACKET)}
        | {round(float(v), 6) for v in away_from_thresholds(thresholds)}
    )
    runs = {(wd, s): train_command(f"wd{wd:g}_seed{s}", size, wd, s, size.epochs,
                                   work / f"wd{wd:g}_seed{s}")
            for wd in decays for s in range(seeds)}  # fmt: skip
    workspace.begin(list(runs.values()), settings, True, "replace")
    kept = workspace.run_stage(list(runs.values()), jobs, lambda finished: None)
    outcomes = []
    for (wd, s), command in runs.items():
        count, eig = measured_count(command.output, modes)
        predicted = int(np.sum(2 * modes.threshold > wd))
        horizon = horizon_count(pilot.output, command.output)
        outcomes.append({"weight_decay": wd, "seed": s, "predicted": predicted,
                         "predicted_horizon": horizon, "measured": count,
                         "corr_eig": eig.tolist()})  # fmt: skip
    timings = workspace.timings()
    return {
        "thresholds": (2 * modes.threshold).tolist(),
        "bracketed": thresholds.tolist(),
        "mode_x": modes.x.tolist(),
        "mode_x_aug": modes.x_aug.tolist(),
        "decays": decays,
        "outcomes": outcomes,
        "wall_seconds": time.perf_counter() - start,
        "run_seconds": sum(timings.get(c.name, 0.0) for c in [pilot, *runs.values()]),
        "cpu_seconds": children_cpu() - cpu,
        "kept": kept,
        "load": [load, os.getloadavg()[0]],
        "size": dataclasses.asdict(size),
        "pilot_epochs": PILOT_EPOCHS,
    }


COLUMNS = [
    Column("weight_decay", "weight decay", "weight decay"),
    Column("seed", "seed", "seed"),
    Column("near", "a threshold within 20%", "a threshold within 20%"),
    Column("predicted", "alive: map (closed form)", "alive: map"),
    Column("horizon", "alive: map (horizon)", "alive: map (horizon)"),
    Column("measured", "alive: measured", "alive: measured"),
    Column("error", "measured - predicted", "measured - predicted"),
]


def mlp_table(result: dict) -> Table:
    thresholds = np.array(result["thresholds"])
    records = []
    for o in result["outcomes"]:
        near = near_threshold(o["weight_decay"], thresholds)
        records.append({
            "weight_decay": f"{o['weight_decay']:.4g}", "seed": o["seed"],
            "near": "yes" if near else "no", "predicted": o["predicted"],
            "horizon": o["predicted_horizon"],
            "measured": o["measured"], "error": o["measured"] - o["predicted_horizon"],
        })  # fmt: skip
    return Table(
        name="collapse_mlp",
        title="MLP encoder: alive modes predicted from its feature-space moments against training",
        caption=(
            "Predicted: the thresholds D x_j^2 / (4 (x_j + x'_j)) of the pilot's feature moments "
            "(X, X' of its output features through its augmentation) above the run's weight "
            "decay (closed form), and the map's per-mode ODE to the run's horizon from W = I in "
            "those coordinates and the pilot's W_p (horizon). 'measured - predicted': against "
            "the horizon. Measured: eigenvalues of the run's final feature correlation at least "
            "1/4 of the smallest non-collapsed one of the mode of the same rank, x^3 / (4 lam^2)."
        ),
        frame=table_frame(records, COLUMNS),
        columns=list(COLUMNS),
    )


def write_mlp_rung(out: Path, workspace: Workspace, work: Path, seeds: int, jobs: int,
                   settings: dict, quiet: bool) -> None:  # fmt: skip
    """Run the MLP check in the bridge's ``workspace`` and write ``out``/collapse_mlp.md, its
    table and provenance.json."""
    result = run_mlp_check(workspace, work, seeds, jobs, settings)
    table = mlp_table(result)
    out.mkdir(parents=True, exist_ok=True)
    thresholds = ", ".join(f"{v:.4g}" for v in result["thresholds"][:6])
    lines = [
        "# The collapse map of an MLP encoder checked by training",
        "",
        f"{len(result['outcomes'])} runs ({seeds} seeds; {result['kept']} kept from an earlier "
        f"session), wall {result['wall_seconds']:.0f} s, CPU of this session's runs "
        f"{result['cpu_seconds']:.0f} s, the runs' own wall time summed "
        f"{result['run_seconds']:.0f} s (load average {result['load'][0]:.1f} at the start, "
        f"{result['load'][1]:.1f} at the end); pilot {result['pilot_epochs']} epochs; sizes "
        f"{result['size']}; git {git_revision()}.",
        "",
        f"Thresholds (weight decay, strongest first): {thresholds}, ...",
        "",
        f"**{table.title}.** {table.caption}",
        "",
        to_markdown(table),
    ]
    write_table(table, out / "tables")
    write_text(out / "collapse_mlp.md", "\n".join(lines) + "\n")
    record = {**result, "git_revision": git_revision()}
    write_text(out / "provenance.json", json.dumps(record, indent=2) + "\n")
    if not quiet:
        print(to_markdown(table))
