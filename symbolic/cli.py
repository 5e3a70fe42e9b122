"""Command-line conventions shared by the toolkit's commands (DESIGN.md "Command-line conventions").

Exit status 0 on success, 2 on bad input with one line naming the bad value, 1 when a run fails
(divergence, NaN) with its cause. No traceback for either. Kept in ``symbolic``, the bottom of the
import graph, so that every package's commands can share it without an import cycle.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence


class UsageError(ValueError):
    """Bad input from the user: reported in one line, exit status 2."""


class RunFailure(RuntimeError):
    """A run that started but failed (diverged, produced NaN): exit status 1."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's default in its help (unless the help states it); descriptions as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        return text if "(default" in text else super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line and exits with status 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # noqa: D401 - argparse hook
        self.exit(2, f"{self.prog}: error: {message}\n")


def run_main(
    main: Callable[[Sequence[str] | None], int],
    argv: Sequence[str] | None = None,
    prog: str | None = None,
) -> int:
    """Call ``main(argv)`` and turn UsageError / RunFailure into one line and exit status 2 / 1.

    ``prog`` names the command in the message (default: the script name).
    """
    prog = prog or argparse.ArgumentParser().prog
    try:
        return main(argv)
    except UsageError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except RunFailure as err:
        print(f"{prog}: run failed: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
