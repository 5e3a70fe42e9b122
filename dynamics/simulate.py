"""Command line and Python entry point: integrate a scenario, summarise it, write the result.

    python -m dynamics.simulate linear_byol [--eta 0.04 --alpha-p 1 ... --out X.nc --plot]
    python -m dynamics.simulate linear_byol --moments MOMENTS.nc --init INIT.nc [...]
    python -m dynamics.simulate --from-run RUN [--out X.nc]   (the scenario follows from the run)
    python -m dynamics.simulate --list

Python: ``simulate("linear_byol", eta=0.1)`` returns the result Dataset; a run trained by other
code is predicted from what it measured (``x_corr=, aug_cov=, w0=, wp0=, wa0=, schedules=``,
:mod:`dynamics.inputs`) or, for a run folder that records its flow, ``from_run=``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import xarray as xr

from dynamics import inputs as given_inputs
from dynamics import scenarios
from dynamics.engine import (
    RunSettings,
    Setup,
    check_size,
    failure_message,
    summary_lines,
    undefined_of,
)
from dynamics.from_run import INITIAL, derive
from dynamics.from_run_methods import EQ1_KIND, derive_general, moments_of, scenario_of
from dynamics.integrate import SaveAt
from symbolic.common.cli import ArgumentParser, RunFailure, UsageError, exit_main
from symbolic.common.files import all_or_nothing, check_output_file
from symbolic.common.options import (
    ParameterError,
    add_options,
    build,
    from_mapping,
    read_toml,
    resolve,
)
from symbolic.common.options import given as options_given
from symbolic.common.results import write_netcdf

#: scenarios that a training run can set up (``--from-run``), and the parameters the user may
#: still choose then (the others come from the run)
FROM_RUN = ("linear_byol", "linear_simsiam", "general")
FROM_RUN_FREE = ("seed", "sigma2")
#: solver tolerances of a derived ``general`` simulation (its right-hand side is autograd over
#: the minibatches; the run it predicts is noisy at the 1e-2 level, the solver's error 1e-4) unless
#: chosen
GENERAL_SOLVER = {"method": "RK45", "rtol": 1e-4, "atol": 1e-7}


def from_run_setup(
    scenario: scenarios.Scenario,
    run: Path,
    initial: str,
    given: dict,
    settings: dict,
    explicit: set[str] | None = None,
) -> Setup:
    """The simulation of ``scenario`` derived from the training run ``run`` (dynamics.from_run).

    ``given``: the parameters the user set (only seed and sigma2 may be: the rest comes from the
    run); ``settings``: solver settings (t_end and n_out come from the run's times);
    ``explicit``: the ones the user chose now (default: all of ``given``; the rest came from a
    stored --config). --sigma2 chosen for a linear run is refused: its X' is measured.
    """
    if scenario.name not in FROM_RUN:
        raise UsageError(
            f"--from-run: {scenario.name} cannot be derived from a run (allowed: "
            f"{', '.join(FROM_RUN)})"
        )
    taken = sorted(set(given) - set(FROM_RUN_FREE)) + sorted(set(settings) & {"t_end", "n_out"})
    if taken:
        raise UsageError(
            f"--from-run: {', '.join(taken)} come from the run; leave them out (allowed with "
            "--from-run: --seed, --sigma2 and the solver options)"
        )
    if scenario.name == "general":
        derived = derive_general(run, initial, given.get("seed", 0))
        settings = {**GENERAL_SOLVER, **settings}
    else:
        derived = derive(scenario.name, run, initial, given.get("seed", 0))
        derived.attrs["prediction_kind"] = EQ1_KIND
    explicit = set(given) if explicit is None else explicit
    linear = scenario.name == "general" or derived.inputs.aug_cov is not None
    if "sigma2" in given and linear:
        if "sigma2" not in explicit:  # a stored config's value, unused for a linear run
            given = {k: v for k, v in given.items() if k != "sigma2"}
        else:
            raise UsageError(
                f"--sigma2 {given['sigma2']}: not allowed with --from-run {run}: the run is "
                "linear, so X' comes from its moments.nc (--sigma2 applies to a run without a "
                "linear encoder)"
            )
    params = build(scenario.params, {**derived.params, **given})
    saveat = SaveAt(derived.t_eval)
    settings = build(RunSettings, {**settings, "t_end": saveat.t_end, "n_out": saveat.times.size})
    check_size(scenario.model, params, settings.n_out)
    try:
        model = scenario.model(params, derived.inputs)
    except ParameterError as err:
        raise UsageError(str(err)) from None
    attrs = {**derived.attrs, "from_run_initial": initial}
    return Setup(model, settings, saveat, attrs, moments_of(run))


def simulate(
    name: str,
    settings: RunSettings | None = None,
    keep_partial: bool = False,
    from_run: str | Path | None = None,
    initial: str = "run",
    *,
    x_corr=None,
    aug_cov=None,
    w0=None,
    wp0=None,
    wa0=None,
    schedules: dict | None = None,
    **params,
) -> xr.Dataset:
    """Integrate scenario ``name`` with ``params`` and return its result Dataset.

    ``from_run``: derive the simulation from a training run (see :mod:`dynamics.from_run`).
    ``x_corr``, ``aug_cov`` (X, X'), ``w0``, ``wp0``, ``wa0`` (initial weights) and
    ``schedules`` ({'alpha_p' or 'beta': PiecewiseConstant or (edges, values)} in flow time):
    inputs measured by any training loop (:mod:`dynamics.inputs`). Raises ParameterError
    (UsageError with ``from_run``) for bad parameters and RunFailure if the run diverges (unless
    ``keep_partial``, which returns the partial result with ``attrs['partial'] = 1``).
    """
    scenario = scenarios.get(name)
    arrays = dict(x_corr=x_corr, aug_cov=aug_cov, w0=w0, wp0=wp0, wa0=wa0)
    measured = any(v is not None for v in arrays.values()) or bool(schedules)
    if from_run is not None:
        if measured:
            raise ParameterError("from_run supplies X, X', the weights and the schedules: give "
                                 "either from_run or the measured inputs")  # fmt: skip
        chosen = dataclasses.asdict(settings) if settings else {}
        chosen = {k: v for k, v in chosen.items() if k not in ("t_end", "n_out")}
        setup = from_run_setup(scenario, Path(from_run), initial, params, chosen)
    else:
        inputs, attrs = None, {}
        if measured:
            params, inputs, attrs = given_inputs.apply(name, params, arrays, schedules)
        values = scenario.params(**params)
        settings = settings or RunSettings(t_end=scenario.t_end)
        check_size(scenario.model, values, settings.n_out)
        model = scenario.model(values, inputs) if inputs else scenario.model(values)
        setup = Setup(model, settings, attrs=attrs)
    traj, wall = setup.run()
    if not traj.complete and not keep_partial:
        raise RunFailure(failure_message(setup.model, traj))
    return setup.dataset(traj, wall)


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
        add_options(p, scenario.params)
        run = p.add_argument_group("integration and output")
        add_options(run, RunSettings, defaults={"t_end": scenario.t_end})
        if scenario.name in given_inputs.ACCEPTS:
            for flag, what in (("--moments", "X and X'"), ("--init", "initial weights")):
                run.add_argument(
                    flag, type=Path, default=None, metavar="FILE.nc",
                    help=f"{what} measured by any training loop (format: dynamics.inputs) "
                    "(default: none)",
                )  # fmt: skip
        if scenario.name in FROM_RUN:
            run.add_argument(
                "--from-run",
                type=Path,
                default=None,
                metavar="RUN",
                help="derive the simulation from a training run (python -m empirical.train's "
                "folder): its dimensions, eta, alpha_p(t), beta(t), initial weights, X and X', "
                "output times (default: none)",
            )
            run.add_argument(
                "--initial",
                choices=INITIAL,
                default="run",
                help="with --from-run: the run's initial weights, or weights drawn for --seed "
                "(the other-seed null)",
            )
        run.add_argument(
            "--config",
            type=Path,
            default=None,
            metavar="FILE.toml",
            help="read parameters and settings from a TOML file (options given here override "
            "it); every result file's attribute config_toml holds one that reruns it",
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


def with_run_scenario(argv: Sequence[str]) -> list[str]:
    """``argv`` with the scenario of ``--from-run RUN`` put first when none is named (the scenario
    follows from the run's method: :func:`dynamics.from_run_methods.scenario_of`)."""
    argv = list(argv)
    if any(a in scenarios.SCENARIOS for a in argv) or not argv or argv[0] in ("-h", "--help"):
        return argv
    for i, a in enumerate(argv):
        if a == "--from-run" and i + 1 < len(argv):
            return [scenario_of(argv[i + 1]), *argv]
        if a.startswith("--from-run="):
            return [scenario_of(a.split("=", 1)[1]), *argv]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(with_run_scenario(sys.argv[1:] if argv is None else argv))
    if args.list:
        width = max(map(len, scenarios.SCENARIOS))
        for scenario in scenarios.SCENARIOS.values():
            print(f"{scenario.name:<{width}}  {scenario.description}")
        return 0
    if args.scenario is None:
        raise UsageError("no scenario given; allowed: " + ", ".join(scenarios.SCENARIOS))
    scenario = scenarios.get(args.scenario)
    setup = resolve_run(scenario, args)
    model = setup.model
    check_output_file(args.out)
    traj, wall = setup.run(progress=not args.quiet)
    if not traj.complete and not args.keep_partial:
        raise RunFailure(
            failure_message(model, traj) + "; no file written (--keep-partial keeps it)"
        )
    ds = setup.dataset(traj, wall)
    if not args.quiet:
        for line in summary_lines(model, ds):
            print(line)
    written = [args.out]
    with all_or_nothing(args.out):  # a figure that cannot be written takes the result back
        write_netcdf(ds, args.out, undefined=undefined_of(ds))
        if args.plot:
            # the report's quick-look figure, read from the file: only drawing imports reports
            from reports.figures import write_quick_look

            written += write_quick_look(args.out)
    if not args.quiet:
        for path in written:
            print(f"wrote {path}")
    if not traj.complete:
        print(f"run failed: {failure_message(model, traj)} (partial result kept)", file=sys.stderr)
        return 1
    return 0


def resolve_run(scenario: scenarios.Scenario, args) -> Setup:
    """The simulation from the defaults, ``--config`` and the command line (or ``--from-run``)."""
    config = read_toml(args.config) if args.config else {}
    source = f"--config {args.config}"
    written_for = config.pop("scenario", scenario.name)
    if written_for != scenario.name:
        raise UsageError(
            f"{source}: written for scenario {written_for!r}, not {scenario.name} (run python -m "
            f"dynamics.simulate {written_for} --config {args.config}, or remove its line "
            "'scenario')"
        )
    for key in ("from_run", "moments_file", "init_file"):  # paths: texts in the file
        if not isinstance(config.get(key, ""), str):
            raise UsageError(f"{source}: option {key!r} = {config[key]!r} is not allowed: "
                             f"expected a path in quotes, e.g. {key} = \"runs/x\"")  # fmt: skip
    in_config = config.pop("from_run", None)
    from_run = getattr(args, "from_run", None) or in_config
    initial = config.pop("from_run_initial", getattr(args, "initial", "run"))
    if initial not in INITIAL:
        raise UsageError(f"{source}: option 'from_run_initial' = {initial!r} is not allowed: "
                         f"{' or '.join(map(repr, INITIAL))}")  # fmt: skip
    names = {f.name for f in dataclasses.fields(scenario.params)}
    model_part = {k: v for k, v in config.items() if k.replace("-", "_") in names}
    run_part = {k: v for k, v in config.items() if k not in model_part}
    if from_run is not None:
        if getattr(args, "moments", None) or getattr(args, "init", None):
            raise UsageError("--from-run supplies X, X' and the initial weights: leave out "
                             "--moments and --init")  # fmt: skip
        # a --config written for a derived simulation also holds what the run supplies: only the
        # parameters and settings the user may choose are taken from it
        in_file = from_mapping(scenario.params, model_part, source)
        given = {k: v for k, v in in_file.items() if k in FROM_RUN_FREE}
        explicit = options_given(args, scenario.params)
        given.update(explicit)
        in_file = from_mapping(RunSettings, run_part, source)
        chosen = {k: v for k, v in in_file.items() if k not in ("t_end", "n_out")}
        chosen.update(options_given(args, RunSettings))
        return from_run_setup(scenario, Path(from_run), initial, given, chosen, set(explicit))
    files = {
        o: getattr(args, o, None) or run_part.pop(f"{o}_file", None) for o in ("moments", "init")
    }
    try:
        arrays, origins = given_inputs.read_files(files)
        model_given = {**from_mapping(scenario.params, model_part, source),
                       **options_given(args, scenario.params)}  # fmt: skip
        measured, inputs, attrs = given_inputs.apply(
            scenario.name, model_given, arrays, None, origins
        )
        params = build(scenario.params, measured)
        settings = resolve(RunSettings, args, run_part, {"t_end": scenario.t_end}, source=source)
        check_size(scenario.model, params, settings.n_out)
        attrs.update({f"{o}_file": str(p) for o, p in files.items() if p is not None})
        model = scenario.model(params, inputs) if inputs else scenario.model(params)
        return Setup(model, settings, attrs=attrs)
    except ParameterError as err:
        raise UsageError(str(err)) from None


if __name__ == "__main__":
    exit_main(main, prog="python -m dynamics.simulate")
