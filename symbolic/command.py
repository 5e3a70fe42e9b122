"""Entry point shared by ``python -m symbolic.derive`` and ``python -m symbolic.audit``."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from symbolic.cli import run_main


def run(main: Callable[[Sequence[str] | None], int], prog: str) -> int:
    """``run_main`` (one-line errors, exit 2/1) that also ends quietly when stdout is closed."""
    try:
        return run_main(main, prog=prog)
    except BrokenPipeError:  # e.g. piped into head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
