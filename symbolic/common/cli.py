"""Command-line conventions of every command of the toolkit (docs/conventions.md "Commands").

Exit status 0 on success, 2 on bad input with one line naming the bad value, 1 when a run fails
(divergence, NaN, out of memory) with its cause, 130 when interrupted. No traceback for any of
them. A file the command cannot read or write (permission denied, a folder where a file was
expected, a full disk) is reported in one line with its path, as bad input.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import NoReturn

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(ValueError):
    """Bad input from the user: reported in one line, exit status 2."""


class RunFailure(RuntimeError):
    """A run that started but failed (diverged, produced NaN): exit status 1."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's default in its help (unless the help names it); descriptions as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text:
            return text
        if action.default is None:  # never Python's "None" in a help text
            if not action.option_strings:
                return text
            shown = "required, no default" if action.required else "default: none"
            return f"{text} ({shown})"
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line and exits with status 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # noqa: D401 - argparse hook
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


#: errors only a write meets, in words (strerror's own words for the others)
_WRITE_ERRORS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
}


def _os_error_line(err: OSError) -> str:
    """'cannot write PATH: no space left on the device' style text for an OSError."""
    path = err.filename or ""
    if err.errno in _WRITE_ERRORS:
        reason = _WRITE_ERRORS[err.errno]
        return f"cannot write {path}: {reason}" if path else reason
    reason = err.strerror or str(err)
    return f"{path}: {reason}" if path else reason


def run_main(
    main: Callable[[Sequence[str] | None], int],
    argv: Sequence[str] | None = None,
    prog: str | None = None,
) -> int:
    """Call ``main(argv)`` and turn its failures into one line and the exit status above.

    ``prog`` names the command in the message (``python -m dynamics.simulate``).
    """
    prog = prog or argparse.ArgumentParser().prog
    try:
        return main(argv)
    except UsageError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except RunFailure as err:
        print(f"{prog}: run failed: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt as err:  # a command may say how to continue: KeyboardInterrupt(text)
        detail = f": {err}" if str(err) else ""
        print(f"{prog}: interrupted{detail}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout closed early, e.g. piped into head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except MemoryError:
        print(f"{prog}: run failed: out of memory (choose smaller sizes)", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as err:
        print(f"{prog}: error: {_os_error_line(err)}", file=sys.stderr)
        return EXIT_USAGE


def exit_main(main: Callable[[Sequence[str] | None], int], prog: str) -> NoReturn:
    """A command's entry point: exit with :func:`run_main`'s status. After an interrupt
    SIGINT is ignored for the exit, so that a Ctrl-C pressed again while the process shuts
    down cannot turn the exit status 130 into a death by SIGINT; :func:`run_main` itself
    leaves the handler alone (a caller in the same process keeps its Ctrl-C)."""
    code = run_main(main, prog=prog)
    if code == EXIT_INTERRUPTED and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


def run_command(command: list[str]) -> None:
    """Run another command of the toolkit as a subprocess and carry its failure over.

    Its exit status 2 (bad input) becomes a UsageError, any other failure a RunFailure, each
    with the command's last line of error output; orchestrators (``reports.demo``,
    ``reports.bridge``) run the real command lines this way.
    """
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode == 0:
        return
    last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
    shown = " ".join(command[2:5])
    if proc.returncode == EXIT_USAGE:
        raise UsageError(f"`{shown} ...` rejected its input: {last}")
    raise RunFailure(f"`{shown} ...` failed with exit status {proc.returncode}: {last}")
