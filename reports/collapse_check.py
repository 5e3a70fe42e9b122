"""The bridge rung ``collapse``: the collapse map of a linear-encoder run checked by training.

    python -m reports.bridge --rungs collapse --out report_collapse/

1. A pilot run (one epoch) measures X and X' through the augmentation; its collapse map
   (:mod:`dynamics.collapse_map`) gives each mode's threshold, D x_j^2 / (4 (x_j + x'_j)).
2. Linear-encoder BYOL runs (Tian's eq. 1 loss, SGD, constant lr, constant EMA) are trained at
   weight decays bracketing the thresholds of the :data:`BRACKETED` strongest modes, at
   (1 -+ :data:`BRACKET`) times each threshold, and away from them (between neighbouring
   thresholds), for every seed.
3. Each run gets its own map at its own setting (its X, X' and initial weights) and is measured
   with the same rule: mode j is alive when u_j = ||W v_j||^2 at the end is at least
   :data:`dynamics.collapse_modes.ALIVE_FRACTION` of its smallest non-collapsed fixed point.

Reported: predicted and measured alive modes per run, and per bracketed mode the measured
bracket of its threshold (alive at the lower weight decay in every seed, dead at the upper)
against the closed form. A mode alive below and dead above its bracket has its threshold within
the bracket, i.e. within BRACKET of the prediction (the target is 20%).

The runs are commands of the bridge's plan (:mod:`reports.experiments`: the pilot, then the
bracketing runs, each added to ``plan.json`` as its stage starts), with completion markers:
``--resume`` keeps every run that finished, and an interrupted one continues from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import xarray as xr

from dynamics.collapse_map import (
    alive_weight,
    collapse_map,
    parse_grid,
    pencil_modes,
    problem_from_run,
)
from reports.experiments import Workspace
from reports.experiments import commands as cmd
from reports.experiments.commands import Command
from reports.experiments.options import device_options
from reports.tables import Column, Table, table_frame, to_markdown, write_table
from symbolic.common.files import write_text
from symbolic.common.provenance import git_revision

#: the rung's name, and its commands' prefix in the bridge's plan
COLLAPSE = "collapse"
#: modes whose thresholds are bracketed, strongest first
BRACKETED = 3
#: the weight decays at (1 - BRACKET) and (1 + BRACKET) times each threshold
BRACKET = 0.15
#: a run is near a threshold when a mode's own threshold is within this fraction of its decay
NEAR = 0.2


@dataclasses.dataclass(frozen=True)
class CheckSize:
    """The runs of the check: a linear encoder on PCA coordinates of Fashion-MNIST (or, for the
    MLP rung, ``depth`` Linear-ReLU blocks on the pixels)."""

    rung: str = COLLAPSE  # the prefix of its commands' names
    backbone: str = "linear"
    depth: int = 1  # mlp only
    input_dim: int = 16
    width: int = 16
    batch: int = 256
    lr: float = 0.05
    ema: float = 0.95
    epochs: int = 38  # 16 steps an epoch over the pool: 608 steps, flow time 60.8
    pool: int = 4096
    measure_every: int = 304
    val_size: int = 1000
    eval_size: int = 1000
    data: str = "fashion-mnist"


SIZE = CheckSize()


def train_command(
    name: str,
    size: CheckSize,
    weight_decay: float,
    seed: int,
    epochs: int,
    out: Path,
    loss: str = "linear_byol",
) -> Command:
    """``python -m empirical.train byol`` for one run of the check, a command of the runner
    (``loss``: eq. 1 by default; ``byol`` is the cosine loss, used by ``reports.bao_sweep``)."""
    encoder = (
        ("--input-dim", size.input_dim) if size.backbone == "linear" else ("--depth", size.depth)
    )
    options = {
        "--backbone": size.backbone, encoder[0]: encoder[1], "--width": size.width,
        "--projector": "none", "--predictor": "linear", "--loss": loss,
        "--optimizer": "sgd", "--momentum": 0, "--lr-schedule": "constant",
        "--lr": size.lr, "--batch-size": size.batch, "--ema-base": size.ema,
        "--ema-final": size.ema, "--weight-decay": f"{weight_decay:.6g}", "--epochs": epochs,
        "--train-subset": size.pool, "--moments-images": size.pool, "--val-size": size.val_size,
        "--eval-size": size.eval_size, "--measure-every": size.measure_every, "--threads": 1,
        "--seed": seed, "--data": size.data,
    }  # fmt: skip
    flat = [str(v) for pair in options.items() for v in pair]
    device = device_options()  # CPU-sized: stays on the CPU in fp32 on a GPU machine too
    return cmd.train(f"{size.rung}/{name}", ["byol", *flat, *device, "--no-probes"], out)


def measured_alive(run: Path) -> tuple[np.ndarray, np.ndarray]:
    """(u_j at the last measurement, alive per mode) of a run, modes of its own X, X'."""
    with xr.open_dataset(run / "moments.nc", engine="netcdf4") as m:
        modes = pencil_modes(m["x_corr"].values, m["aug_cov"].values)
    with xr.open_dataset(run / "measurements.nc", engine="netcdf4") as ds:
        w = ds["w"].values[-1]
        alpha_p = float(ds["alpha_p_step"].values[-1])
    a = w @ modes.directions.T
    u = np.sum(a * a, axis=0)
    return u, u >= alive_weight(modes, np.asarray(alpha_p))[0]


def predicted(run: Path) -> xr.Dataset:
    """The run's own collapse map at its own weight decay (one point)."""
    problem = problem_from_run(run)
    wd = problem.setting.axes.weight_decay
    return collapse_map(problem, parse_grid([f"weight_decay={wd!r}"])).isel(weight_decay=0)


@dataclasses.dataclass
class Outcome:
    """One trained run: its weight decay, seed, predicted and measured alive modes."""

    weight_decay: float
    seed: int
    predicted: np.ndarray  # alive per mode at the horizon (per-mode ODE)
    closed_form: int  # modes with D eta*_j above the weight decay
    measured: np.ndarray
    thresholds: np.ndarray  # the run's own D eta*_j
    weight_predicted: np.ndarray  # u_j at the horizon, per-mode ODE
    weight_measured: np.ndarray  # u_j of the trained W

    @property
    def near_threshold(self) -> bool:
        """A mode's threshold within NEAR of the weight decay (its fate is the bracket's)."""
        return near_threshold(self.weight_decay, self.thresholds)

    @property
    def weight_error(self) -> float:
        """max |u_measured / u_predicted - 1| over the modes alive in both (NaN: none)."""
        both = self.predicted & self.measured
        ratio = self.weight_measured[both] / self.weight_predicted[both]
        return float(np.max(np.abs(ratio - 1))) if both.any() else float("nan")


def near_threshold(weight_decay: float, thresholds: np.ndarray) -> bool:
    """Whether a positive threshold lies within NEAR (relative) of ``weight_decay``."""
    positive = np.asarray(thresholds)[np.asarray(thresholds) > 0]
    return bool(np.any(np.abs(weight_decay / positive - 1) <= NEAR))


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def away_from_thresholds(thresholds: np.ndarray) -> np.ndarray:
    """Weight decays between neighbouring bracketed thresholds (their geometric means), where
    the count of alive modes is not a bracket's. (Not above the largest: there a run's W decays
    to exactly 0 within the run, and the trainer cannot write its measurements.)"""
    ordered = np.sort(thresholds)
    return np.sqrt(ordered[1:] * ordered[:-1])


def bracketing_decays(pilot: Path) -> tuple[np.ndarray, list[float]]:
    """The pilot's thresholds D eta*_j of the BRACKETED strongest modes and the weight decays
    of the check: (1 -+ BRACKET) times each, and those between them."""
    with xr.open_dataset(pilot / "moments.nc", engine="netcdf4") as m:
        modes = pencil_modes(m["x_corr"].values, m["aug_cov"].values)
    thresholds = 2 * modes.threshold[:BRACKETED]  # D = 2: BYOL sums both directions
    decays = sorted(
        {round(float(t * f), 6) for t in thresholds for f in (1 - BRACKET, 1 + BRACKET)}
        | {round(float(v), 6) for v in away_from_thresholds(thresholds)}
    )
    return thresholds, decays


def run_check(
    workspace: Workspace,
    work: Path,
    seeds: int,
    jobs: int,
    settings: dict,
    size: CheckSize | None = None,
) -> dict:
    """Train the pilot, then the bracketing runs under ``work`` with the bridge's runner: each
    stage is added to the bridge's plan (``settings``: the bridge's), and a run finished in an
    earlier session (its marker and files intact: ``--resume``) is kept. Returns every
    number."""
    size = size or SIZE
    start, cpu, load = time.perf_counter(), children_cpu(), os.getloadavg()[0]
    pilot = train_command("pilot", size, 0.0, 0, 1, work / "pilot")
    workspace.begin([pilot], settings, True, "replace")
    workspace.run_stage([pilot], jobs, lambda finished: None)
    thresholds, decays = bracketing_decays(pilot.output)
    runs = {(wd, s): train_command(f"wd{wd:g}_seed{s}", size, wd, s, size.epochs,
                                   work / f"wd{wd:g}_seed{s}")
            for wd in decays for s in range(seeds)}  # fmt: skip
    workspace.begin(list(runs.values()), settings, True, "replace")
    kept = workspace.run_stage(list(runs.values()), jobs, lambda finished: None)
    timings = workspace.timings()
    return {
        "pilot_thresholds": thresholds.tolist(),
        "decays": decays,
        "outcomes": collect({key: c.output for key, c in runs.items()}),
        "wall_seconds": time.perf_counter() - start,
        "run_seconds": sum(timings.get(c.name, 0.0) for c in [pilot, *runs.values()]),
        "cpu_seconds": children_cpu() - cpu,
        "kept": kept,
        "load": [load, os.getloadavg()[0]],
        "size": dataclasses.asdict(size),
        "seeds": seeds,
    }


def collect(runs: dict[tuple[float, int], Path]) -> list[Outcome]:
    """Each trained run ((weight decay, seed) -> folder) against its own map."""
    outcomes = []
    for (wd, s), out in runs.items():
        pred = predicted(out)
        weight, alive = measured_alive(out)
        outcomes.append(
            Outcome(wd, s, pred["mode_survives"].values.astype(bool),
                    int(pred["surviving_modes_closed_form"]), alive,
                    pred["threshold_weight_decay"].values, pred["mode_weight"].values, weight)
        )  # fmt: skip
    return outcomes


RUN_COLUMNS = [
    Column("weight_decay", "weight decay", "weight decay"),
    Column("seed", "seed", "seed"),
    Column("predicted", "alive: map (horizon)", "alive: map (horizon)"),
    Column("closed_form", "alive: closed form", "alive: closed form"),
    Column("measured", "alive: measured", "alive: measured"),
    Column("in_bracket", "a threshold within 20%", "a threshold within 20%"),
    Column("agree", "same modes alive", "same modes alive"),
    Column("weight_error", "max rel. error of u_j (alive modes)", "max rel. error of $u_j$"),
]
MODE_COLUMNS = [
    Column("mode", "mode", "mode"),
    Column("threshold", "threshold D eta*_j (closed form, mean ± sd)", "threshold (closed form)"),
    Column("bracket", "trained at", "trained at"),
    Column("alive_below", "alive below (seeds)", "alive below (seeds)"),
    Column("dead_above", "dead above (seeds)", "dead above (seeds)"),
    Column("measured", "measured threshold", "measured threshold"),
    Column("within", "within 20%", "within 20%"),
]


def run_table(result: dict) -> Table:
    records = []
    for o in result["outcomes"]:
        records.append({
            "weight_decay": f"{o.weight_decay:.4g}", "seed": o.seed,
            "predicted": int(o.predicted.sum()), "closed_form": o.closed_form,
            "measured": int(o.measured.sum()),
            "in_bracket": "yes" if o.near_threshold else "no",
            "agree": "yes" if np.array_equal(o.predicted, o.measured) else "no",
            "weight_error": f"{o.weight_error:.3f}",
        })  # fmt: skip
    return Table(
        name="collapse_runs",
        title="Alive modes per run: the run's own collapse map against its trained W",
        caption=(
            "Each run's map (python -m dynamics.collapse_map --from-run RUN at its own weight "
            "decay: per-mode ODE to the run's horizon, and the closed-form count of thresholds "
            "above the weight decay) against the modes alive in its trained W (same rule: "
            "u_j >= 1/4 of the smallest non-collapsed fixed point), and the largest relative "
            "error of u_j = ||W v_j||^2 over the modes alive in both. 'A threshold within 20%': "
            "some mode's own threshold is within 20% of the run's weight decay, where the count "
            "may differ. 'Same modes alive': the map and the run agree mode by mode."
        ),
        frame=table_frame(records, RUN_COLUMNS),
        columns=list(RUN_COLUMNS),
    )


def mode_table(result: dict) -> Table:
    records = []
    outcomes = result["outcomes"]
    for j, pilot in enumerate(result["pilot_thresholds"]):
        lo, hi = round(pilot * (1 - BRACKET), 6), round(pilot * (1 + BRACKET), 6)
        below = [o.measured[j] for o in outcomes if o.weight_decay == lo]
        above = [not o.measured[j] for o in outcomes if o.weight_decay == hi]
        own = [o.thresholds[j] for o in outcomes]
        ok = all(below) and all(above) and below and above
        records.append({
            "mode": j + 1, "threshold": f"{np.mean(own):.4g} ± {np.std(own, ddof=1):.2g}",
            "bracket": f"{lo:.4g}, {hi:.4g}", "alive_below": f"{sum(below)}/{len(below)}",
            "dead_above": f"{sum(above)}/{len(above)}",
            "measured": f"in [{lo:.4g}, {hi:.4g}]" if ok else "outside the bracket",
            "within": "yes" if ok else "no",
        })  # fmt: skip
    return Table(
        name="collapse_thresholds",
        title="Thresholds of the strongest modes: closed form against training",
        caption=(
            f"For each of the {BRACKETED} strongest modes, runs at (1 -+ {BRACKET:g}) times "
            "its threshold from a pilot run's X, X'; the measured threshold lies in the bracket "
            "when the mode is alive below it and dead above it in every seed (then within "
            f"{BRACKET:.0%} of the closed form). Threshold: mean ± sd over every run's own "
            "moments."
        ),
        frame=table_frame(records, MODE_COLUMNS),
        columns=list(MODE_COLUMNS),
    )


def write_rung(
    out: Path, workspace: Workspace, work: Path, seeds: int, jobs: int, settings: dict, quiet: bool
) -> None:
    """Run the check in the bridge's ``workspace`` (its runs under ``work``) and write
    ``out``/collapse.md, its tables and provenance.json."""
    result = run_check(workspace, work, seeds, jobs, settings)
    tables = [run_table(result), mode_table(result)]
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# The collapse map checked by training",
        "",
        f"{len(result['outcomes'])} runs ({seeds} seeds; {result['kept']} kept from an earlier "
        f"session), wall {result['wall_seconds']:.0f} s, CPU of this session's runs "
        f"{result['cpu_seconds']:.0f} s, the runs' own wall time summed "
        f"{result['run_seconds']:.0f} s (load average {result['load'][0]:.1f} at the start, "
        f"{result['load'][1]:.1f} at the end); "
        f"sizes {result['size']}; git {git_revision()}.",
    ]
    for table in tables:
        write_table(table, out / "tables")
        lines += ["", f"**{table.title}.** {table.caption}", "", to_markdown(table)]
    write_text(out / "collapse.md", "\n".join(lines) + "\n")
    record = {
        "pilot_thresholds": result["pilot_thresholds"],
        "decays": result["decays"],
        "runs": [
            {"weight_decay": o.weight_decay, "seed": o.seed,
             "predicted": o.predicted.astype(int).tolist(), "closed_form": o.closed_form,
             "measured": o.measured.astype(int).tolist(),
             "thresholds": o.thresholds.tolist(), "weight_predicted": o.weight_predicted.tolist(),
             "weight_measured": o.weight_measured.tolist()}
            for o in result["outcomes"]
        ],
        "wall_seconds": result["wall_seconds"], "run_seconds": result["run_seconds"],
        "cpu_seconds": result["cpu_seconds"],
        "kept": result["kept"],
        "load_average": result["load"], "git_revision": git_revision(),
    }  # fmt: skip
    write_text(out / "provenance.json", json.dumps(record, indent=2) + "\n")
    if not quiet:
        for table in tables:
            print(to_markdown(table))
