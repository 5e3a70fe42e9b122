"""The command line of the sweeps: ``python -m dynamics.sweep SCENARIO --grid NAME=VALUES ...``.

Finished work units are kept in ``OUT.parts/`` (atomic files) until the sweep is complete, so
``--resume`` continues where an interrupted sweep stopped (with any ``--chunk``, ``--workers``
or ``--backend``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import xarray as xr

from dynamics import scenarios
from dynamics.array_backend import BACKENDS
from dynamics.batch_integrate import METHODS as VECTORISED_METHODS
from dynamics.engine import RunSettings
from dynamics.sweep.run import MODE_CHUNK, SWEEP_ATOL, SWEEP_RTOL, VECTORISED, run_sweep
from symbolic.common.cli import ArgumentParser, UsageError
from symbolic.common.files import check_output_file
from symbolic.common.options import add_options, given, resolve


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m dynamics.sweep",
        description="Integrate a scenario over a parameter grid and write one Dataset.",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    sub = parser.add_subparsers(dest="scenario", metavar="SCENARIO", parser_class=ArgumentParser)
    for scenario in scenarios.SCENARIOS.values():
        vectorised = scenario.name in VECTORISED
        how = "vectorised over the grid" if vectorised else "point by point"
        p = sub.add_parser(
            scenario.name, help=f"{scenario.description} ({how})", description=__doc__
        )
        add_options(p, scenario.params)
        group = p.add_argument_group("sweep")
        group.add_argument(
            "--grid",
            action="append",
            required=True,
            metavar="NAME=VALUES",
            help="a swept parameter: NAME=a:b:n (n values from a to b), NAME=a:b (integers a..b, "
            "both included) or NAME=v1,v2,...; repeat for more axes",
        )
        group.add_argument(
            "--out", type=Path, default=Path("results") / f"sweep_{scenario.name}.nc",
            help="result file",
        )  # fmt: skip
        group.add_argument("--workers", type=int, default=1, help="parallel processes")
        group.add_argument(
            "--scheduler", default=None, help="address of a dask.distributed scheduler"
        )
        group.add_argument(
            "--resume", action="store_true", help="continue an interrupted sweep from OUT.parts/"
        )
        group.add_argument(
            "--conv-tol", type=float, default=1e-6,
            help="converged once max|dy/dt| stays below this",
        )  # fmt: skip
        add_options(
            group,
            RunSettings,
            defaults=sweep_defaults(scenario),
            exclude=("method", "n_out") if vectorised else (),
        )
        if vectorised:
            group.add_argument(
                "--method",
                default="DOP853",
                help=f"method of the vectorised stepper: {', '.join(VECTORISED_METHODS)}",
            )
            group.add_argument(
                "--chunk", type=int, default=None,
                help="grid points per stored unit (default: "
                + ", ".join(f"{n} on {b}" for b, n in MODE_CHUNK.items())
                + ", fewer when that leaves a worker idle)",
            )  # fmt: skip
            group.add_argument(
                "--backend", default="numpy",
                help=f"array back end: {', '.join(BACKENDS)} (torch: CUDA when present)",
            )  # fmt: skip
        group.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        width = max(map(len, scenarios.SCENARIOS))
        for scenario in scenarios.SCENARIOS.values():
            how = "vectorised" if scenario.name in VECTORISED else "point by point"
            print(f"{scenario.name:<{width}}  [{how}] {scenario.description}")
        return 0
    if args.scenario is None:
        raise UsageError("no scenario given; allowed: " + ", ".join(scenarios.SCENARIOS))
    scenario = scenarios.get(args.scenario)
    settings = resolve(RunSettings, args, defaults=sweep_defaults(scenario))
    if args.out is not None:
        check_output_file(args.out)
    ds = run_sweep(
        args.scenario,
        args.grid,
        given(args, scenario.params),
        settings,
        out=args.out,
        workers=args.workers,
        scheduler=args.scheduler,
        resume=args.resume,
        conv_tol=args.conv_tol,
        chunk=getattr(args, "chunk", None),
        progress=not args.quiet,
        backend=getattr(args, "backend", "numpy"),
    )
    if not args.quiet:
        for line in summary_lines(ds):
            print(line)
        print(f"wrote {args.out}")
    return 0


def sweep_defaults(scenario: scenarios.Scenario) -> dict:
    """The run settings of a sweep: the scenario's horizon, tolerances looser than a single
    simulation's (SWEEP_RTOL, SWEEP_ATOL)."""
    return {"t_end": scenario.t_end, "rtol": SWEEP_RTOL, "atol": SWEEP_ATOL}


def summary_lines(ds: xr.Dataset) -> list[str]:
    a = ds.attrs
    axes = ", ".join(f"{n} ({ds.sizes[n]})" for n in json.loads(a["swept"]))
    frac = ds["collapse_fraction"]
    return [
        f"sweep {a['name']}: {a['points']} points over {axes}, {a['wall_seconds']:.2f} s "
        f"({a['solver']}, rtol {a['rtol']:g}, atol {a['atol']:g}, t_end {a['t_end']:g})",
        f"  collapse fraction: min {float(frac.min()):.3f}, mean {float(frac.mean()):.3f}, "
        f"max {float(frac.max()):.3f}; converged points {int(ds['converged'].sum())}, "
        f"diverged {int(ds['diverged'].sum())}",
    ]
