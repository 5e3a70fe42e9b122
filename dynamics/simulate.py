"""Command line and Python entry point: integrate a scenario, summarise it, write the result.

    python -m dynamics.simulate linear_byol [--eta 0.04 --alpha-p 1 ... --out X.nc --plot]
    python -m dynamics.simulate --list

Python: ``simulate("linear_byol", eta=0.1)`` returns the result Dataset.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import xarray as xr

from dynamics import scenarios
from dynamics.integrate import METHODS, Trajectory, integrate
from dynamics.models.base import Model
from symbolic.common.cli import ArgumentParser, RunFailure, UsageError, run_main
from symbolic.common.options import ParameterError
from symbolic.common.provenance import provenance
from symbolic.common.results import write_netcdf

#: option names that differ from the parameter name with "_" -> "-"
FLAG_NAMES = {"stop_gradient": "--no-stopgrad", "standardize": "--no-standardize"}


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """How a scenario is integrated (not a property of the model)."""

    t_end: float
    n_out: int = 401
    method: str = "DOP853"
    rtol: float = 1e-10
    atol: float = 1e-12
    blowup: float = 1e6

    def __post_init__(self):
        for name in ("t_end", "rtol", "atol", "blowup"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ParameterError(f"{name}={value!r} is not allowed: a finite number > 0")
        if self.n_out < 2:
            raise ParameterError(f"n_out={self.n_out!r} is not allowed: an integer >= 2")
        if self.method not in METHODS:
            raise ParameterError(
                f"method={self.method!r} is not allowed: one of {', '.join(METHODS)}"
            )


def run_model(model: Model, settings: RunSettings, progress: bool = False) -> Trajectory:
    """Integrate ``model`` from its initial state with ``settings``.

    A discrete-time model (one with a ``run_discrete`` method) is stepped by that method instead.
    """
    if hasattr(model, "run_discrete"):
        return model.run_discrete(settings.t_end, settings.n_out, settings.blowup, progress)
    return integrate(
        model.rhs,
        model.initial_state(),
        settings.t_end,
        n_out=settings.n_out,
        method=settings.method,
        rtol=settings.rtol,
        atol=settings.atol,
        blowup=settings.blowup,
        progress=progress,
    )


def failure_message(model: Model, traj: Trajectory) -> str:
    """'diverged at t=...: <variable> ...' for a trajectory that stopped early."""
    where = model.layout.describe(traj.failed_index) if traj.failed_index >= 0 else "the state"
    return f"diverged at t={traj.t_fail:.6g}: {where}: {traj.failure}"


def to_dataset(model: Model, settings: RunSettings, traj: Trajectory, wall_s: float) -> xr.Dataset:
    """The result Dataset with its provenance and closed-form attributes."""
    ds = model.observables(traj.t, traj.y)
    ds.attrs.update(
        provenance(
            "simulation",
            model.name,
            model.params,
            solver="discrete steps" if hasattr(model, "run_discrete") else settings.method,
            rtol=settings.rtol,
            atol=settings.atol,
            t_end=settings.t_end,
            n_out=settings.n_out,
            seed=getattr(model.params, "seed", 0),
            rhs_evaluations=traj.n_rhs,
            wall_seconds=round(wall_s, 4),
            partial=int(not traj.complete),
            status="complete" if traj.complete else failure_message(model, traj),
            **model.closed_forms(),
        )
    )
    return ds


def simulate(
    name: str, settings: RunSettings | None = None, keep_partial: bool = False, **params
) -> xr.Dataset:
    """Integrate scenario ``name`` with ``params`` and return its result Dataset.

    Raises ParameterError for bad parameters and RunFailure if the run diverges (unless
    ``keep_partial``, which returns the partial result with ``attrs['partial'] = 1``).
    """
    scenario = scenarios.get(name)
    model = scenario.model(scenario.params(**params))
    settings = settings or RunSettings(t_end=scenario.t_end)
    start = time.perf_counter()
    traj = run_model(model, settings)
    if not traj.complete and not keep_partial:
        raise RunFailure(failure_message(model, traj))
    return to_dataset(model, settings, traj, time.perf_counter() - start)


def _add_param_options(parser: ArgumentParser, params_cls: type) -> None:
    """One option per field of the parameter dataclass, with its help text and default."""
    for field in dataclasses.fields(params_cls):
        help_text = field.metadata.get("help", "")
        option = FLAG_NAMES.get(field.name, "--" + field.name.replace("_", "-"))
        if field.type in (bool, "bool"):
            action = "store_false" if field.default else "store_true"
            if field.default:  # the option switches off what the field's help describes
                help_text = f"{help_text} (default: on; this option switches it off)"
            parser.add_argument(option, dest=field.name, action=action, help=help_text)
        else:
            kind = {"int": int, "float": float, "str": str}[
                field.type if isinstance(field.type, str) else field.type.__name__
            ]
            parser.add_argument(
                option, dest=field.name, type=kind, default=field.default, help=help_text
            )


def build_parser() -> ArgumentParser:
    """The argument parser: one sub-command per scenario."""
    parser = ArgumentParser(
        prog="python -m dynamics.simulate",
        description="Integrate a linear SSL learning-dynamics scenario and write the result.",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    sub = parser.add_subparsers(dest="scenario", metavar="SCENARIO", parser_class=ArgumentParser)
    for scenario in scenarios.SCENARIOS.values():
        p = sub.add_parser(
            scenario.name, help=scenario.description, description=scenario.model.__doc__
        )
        _add_param_options(p, scenario.params)
        run = p.add_argument_group("integration and output")
        run.add_argument("--t-end", type=float, default=scenario.t_end, help="final flow time")
        run.add_argument("--n-out", type=int, default=401, help="number of output times")
        run.add_argument(
            "--method", default="DOP853", help=f"solve_ivp method: {', '.join(METHODS)}"
        )
        run.add_argument("--rtol", type=float, default=1e-10, help="relative tolerance")
        run.add_argument("--atol", type=float, default=1e-12, help="absolute tolerance")
        run.add_argument(
            "--blowup", type=float, default=1e6, help="stop when a state entry reaches this size"
        )
        run.add_argument(
            "--out", type=Path, default=Path("results") / f"{scenario.name}.nc", help="result file"
        )
        run.add_argument("--plot", action="store_true", help="also write a figure (.png, .pdf)")
        run.add_argument(
            "--keep-partial",
            action="store_true",
            help="write the result of a diverged run too (marked partial)",
        )
        run.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        width = max(map(len, scenarios.SCENARIOS))
        for scenario in scenarios.SCENARIOS.values():
            print(f"{scenario.name:<{width}}  {scenario.description}")
        return 0
    if args.scenario is None:
        raise UsageError("no scenario given; allowed: " + ", ".join(scenarios.SCENARIOS))
    scenario = scenarios.get(args.scenario)
    names = [f.name for f in dataclasses.fields(scenario.params)]
    try:
        model = scenario.model(scenario.params(**{n: getattr(args, n) for n in names}))
        settings = RunSettings(
            args.t_end, args.n_out, args.method, args.rtol, args.atol, args.blowup
        )
    except ParameterError as err:
        raise UsageError(str(err)) from None
    start = time.perf_counter()
    traj = run_model(model, settings, progress=not args.quiet)
    if not traj.complete and not args.keep_partial:
        raise RunFailure(
            failure_message(model, traj) + "; no file written (--keep-partial keeps it)"
        )
    ds = to_dataset(model, settings, traj, time.perf_counter() - start)
    if not args.quiet:
        for line in summary_lines(model, ds):
            print(line)
    try:
        write_netcdf(ds, args.out)
    except OSError as err:
        raise UsageError(f"cannot write --out {args.out}: {err.strerror or err}") from None
    if not args.quiet:
        print(f"wrote {args.out}")
    if args.plot:
        from dynamics.plot import plot_result

        for path in plot_result(ds, args.out.with_suffix("")):
            if not args.quiet:
                print(f"wrote {path}")
    if not traj.complete:
        print(f"run failed: {failure_message(model, traj)} (partial result kept)", file=sys.stderr)
        return 1
    return 0


def summary_lines(model: Model, ds: xr.Dataset) -> list[str]:
    """A header naming the run, then the model's own comparison with theory."""
    a = ds.attrs
    head = f"{model.name}: " + ", ".join(
        f"{k}={v}" for k, v in dataclasses.asdict(model.params).items() if k != "seed"
    )
    solver = f"  t_end={a['t_end']:g}, solver {a['solver']} rtol={a['rtol']:g} atol={a['atol']:g}"
    timing = f", {a['rhs_evaluations']} rhs evaluations, {a['wall_seconds']:.2f} s"
    return [head, solver + timing, *model.summary(ds)]


if __name__ == "__main__":
    sys.exit(run_main(main, prog="python -m dynamics.simulate"))
