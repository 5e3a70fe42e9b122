"""A command of a plan, and the check of every command line by its own command's parser.

A :class:`Command` is ``python -m MODULE ARGS`` with the one file or folder it writes
(``output``). :func:`validate` parses every distinct command line with the parser of its module
(``build_parser()``) and, for a training run, resolves its configuration (every bound of
``python -m empirical.train``'s options), so a bad option stops the driver with exit status 2
before its first command starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from symbolic.common.cli import UsageError

#: the modules whose command lines a plan may hold
MODULES = ("empirical.train", "dynamics.simulate")


@dataclasses.dataclass(frozen=True)
class Command:
    """``python -m MODULE ARGS``, writing ``output`` (a file or a folder).

    ``name`` is unique in its plan (``rung1/seed0``): it keys the command in ``plan.json``, its
    completion marker and its log. ``resume_file``: where ``output/resume_file`` exists, an
    interrupted run continues with ``--resume`` (``empirical.train``'s checkpoint).
    ``estimate``: seconds, for the plan's time.
    """

    name: str
    module: str
    args: tuple[str, ...]
    output: Path
    label: str = ""
    resume_file: str | None = None
    estimate: float = 0.0

    def __post_init__(self):
        if self.module not in MODULES:
            raise ValueError(f"command {self.name!r}: module {self.module!r} not in {MODULES}")
        if not re.fullmatch(r"[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*", self.name):
            raise ValueError(f"command name {self.name!r}: letters, digits, ._=- and / only")

    @property
    def stem(self) -> str:
        """The name as one file name (its marker and its log)."""
        return self.name.replace("/", "__")

    def recorded(self, work: Path) -> list[str]:
        """The arguments as recorded in ``work`` (``plan.json``, markers): paths below ``work``
        written from ``$WORK``, so that a moved or copied folder still resumes."""
        root = str(work)
        return [f"$WORK{a[len(root) :]}" if a.startswith(root + "/") else a for a in self.args]

    def argv(self, resume: bool = False) -> list[str]:
        """The command line (with ``--resume`` to continue an interrupted run)."""
        return [sys.executable, "-m", self.module, *self.args, *(["--resume"] if resume else [])]


def train(name: str, args: Iterable[str], out: Path, **kwargs) -> Command:
    """``python -m empirical.train ARGS --quiet --out OUT`` (continued with ``--resume``)."""
    argv = (*args, "--quiet", "--out", str(out))
    return Command(name, "empirical.train", argv, out, resume_file="checkpoint.pt", **kwargs)


def simulate(name: str, args: Iterable[str], out: Path, **kwargs) -> Command:
    """``python -m dynamics.simulate ARGS --quiet --out OUT``."""
    return Command(name, "dynamics.simulate", (*args, "--quiet", "--out", str(out)), out, **kwargs)


def derived(name: str, scenario: str, run: Path, initial: str, seed: int, out: Path) -> Command:
    """``python -m dynamics.simulate SCENARIO --from-run RUN --initial INITIAL --seed S``: the
    simulation derived from a training run, from its own initial weights (``run``) or from
    weights drawn for ``seed`` (``seed``: the other-seed null)."""
    args = (scenario, "--from-run", str(run), "--initial", initial, "--seed", str(seed))
    return simulate(name, args, out)


def prediction_and_null(
    stem: Path, scenario: str, run: Path, seed: int, null_seed: int
) -> tuple[Command, Command]:
    """The prediction of a run (``STEM.nc``) and its other-seed null (``STEM_null.nc``, initial
    weights drawn for ``null_seed``), named ``STEM_pred`` and ``STEM_null``."""
    return (
        derived(f"{stem.name}_pred", scenario, run, "run", seed, stem.with_name(stem.name + ".nc")),
        derived(
            f"{stem.name}_null",
            scenario,
            run,
            "seed",
            null_seed,
            stem.with_name(f"{stem.name}_null.nc"),
        ),
    )


def _without_values(args: tuple[str, ...], options: tuple[str, ...]) -> tuple[str, ...]:
    """``args`` with the values of ``options`` blanked: command lines that differ only there
    are checked once."""
    out = list(args)
    for i, a in enumerate(out[:-1]):
        if a in options:
            out[i + 1] = "_"
    return tuple(out)


def _parse(module: str, args: list[str]) -> None:
    """Parse ``args`` as ``python -m module`` does; SystemExit or UsageError on a bad option."""
    parser = importlib.import_module(module).build_parser()
    parsed = parser.parse_args(args)
    if module == "empirical.train":
        from empirical.train import configuration

        configuration(parsed)


def validate(commands: Iterable[Command]) -> None:
    """Parse every distinct command line by its own command's parser (a training run's
    configuration resolved too); UsageError "command NAME: the parser's message" on the first
    bad one. Nothing is written."""
    seen = set()
    for command in commands:
        key = (command.module, _without_values(command.args, ("--out", "--seed", "--from-run")))
        if key in seen:
            continue
        seen.add(key)
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):
                _parse(command.module, list(command.args))
        except SystemExit:
            last = (stderr.getvalue().strip().splitlines() or ["bad option"])[-1]
            raise UsageError(f"command {command.label or command.name!r}: {last}") from None
        except UsageError as err:
            raise UsageError(f"command {command.label or command.name!r}: {err}") from None
