"""Child processes ``--jobs`` at a time, which never outlive the driver.

Each child is started from the driver's main thread in its own process group, with the Linux
parent-death signal set (:mod:`~.lifeline`): when the driver dies, however it dies (kill -9
included), the kernel kills the child. On Ctrl-C or SIGTERM the driver kills the process group
of every running child (the child and what it started) before it exits. A command line
``python -m MODULE ...`` is forked from a warm process that has imported torch and the toolkit
(:mod:`~.warm`, which dies with the driver and its children with it) where more than one
command is to run; any other, or all when the warm process has ended, starts cold.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from reports.experiments.commands import Command
from reports.experiments.lifeline import die_with
from reports.experiments.warm import Child, WarmProcess, WarmUnavailable

#: seconds between two looks at the running children
POLL_S = 0.2
#: seconds a stopped child gets to exit after SIGTERM before SIGKILL
GRACE_S = 10.0
#: numpy's BLAS in every child: one thread, as the children run ``--jobs`` at once (an SVD of a
#: 2000 x 32 embedding with OpenBLAS's two threads on a loaded two-core machine: median 1.5 ms,
#: up to 450 ms; with one thread: 1.0 ms, at most 13 ms); the environment's own setting wins
BLAS_THREADS = {"OPENBLAS_NUM_THREADS": "1"}  # numpy's wheels: OpenBLAS; torch: its own threads
#: the warm process's error output, beside the commands' logs
WARM_LOG = "warm-start.txt"


@dataclasses.dataclass
class Finished:
    """A command that ended: its wall time and, if it failed, its exit status and the reason
    (its last line of error output)."""

    command: Command
    seconds: float
    returncode: int = 0
    failure: str | None = None


def _die_with(parent: int) -> Callable[[], None]:
    """The child's set-up between fork and exec: die with ``parent``."""
    return lambda: die_with(parent)


def _environment() -> dict[str, str]:
    return {**BLAS_THREADS, **os.environ}


def start(
    argv: Sequence[str], log: Path, warm: WarmProcess | None = None
) -> subprocess.Popen | Child:
    """``argv`` as a child in its own process group that dies with this process; its standard
    error into ``log``. Forked from ``warm`` where there is one and ``argv`` is ``python -m``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    if warm is not None and warm.alive and list(argv[:2]) == [sys.executable, "-m"]:
        with contextlib.suppress(WarmUnavailable):
            return warm.start(argv[2], argv[3:], log, _environment())
    with open(log, "w", encoding="utf-8") as fh:
        return subprocess.Popen(
            list(argv),
            stdout=subprocess.DEVNULL,
            stderr=fh,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with(os.getpid()),
            env=_environment(),
        )


def stop(procs: Sequence[subprocess.Popen | Child]) -> None:
    """Kill the process group of every child still running: SIGTERM, then SIGKILL after
    :data:`GRACE_S`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [p for p in procs if p.poll() is None]
        for proc in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
        deadline = time.monotonic() + GRACE_S
        while any(p.poll() is None for p in alive) and time.monotonic() < deadline:
            time.sleep(0.05)


def _kill(pid: int, sig: int) -> None:
    """``sig`` to the process group of ``pid`` (to ``pid`` alone if it has not made its own
    group yet: a command forked a moment ago)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    except PermissionError:
        pass


@contextlib.contextmanager
def terminated_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the block (as Ctrl-C does), so that the children are
    stopped on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def last_line(path: Path) -> str:
    """The last line of a child's error output."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "no message"
    return lines[-1] if lines else "no message"


#: one child to start: the command, its command line, its log
Item = tuple[Command, list[str], Path]


def execute(
    items: Sequence[Item],
    jobs: int,
    ended: Callable[[Item, int, float], object],
    warm_start: bool = True,
) -> None:
    """Run each item ``jobs`` at a time, in order. ``ended(item, exit status, seconds)`` is
    called as each ends: it returns True (go on), False (start nothing more: the running
    children are stopped) or an item to start next (a retry). Every child is stopped when this
    returns or raises. With ``warm_start`` and more than one item, the ``python -m`` command
    lines are forked from a warm process (:mod:`~.warm`)."""
    pending = list(items)
    running: dict[subprocess.Popen | Child, tuple[Item, float]] = {}
    go_on = True
    warm = None
    with terminated_as_interrupt():
        try:
            if warm_start and len(items) > 1 and sys.platform.startswith("linux"):
                log = items[0][2].parent / WARM_LOG
                warm = WarmProcess(log, _environment(), _die_with(os.getpid()))
            while go_on and (pending or running):
                while pending and len(running) < max(1, jobs):
                    item = pending.pop(0)
                    running[start(item[1], item[2], warm)] = (item, time.perf_counter())
                time.sleep(POLL_S)
                for proc in [p for p in running if p.poll() is not None]:
                    item, began = running.pop(proc)
                    outcome = ended(item, proc.returncode, time.perf_counter() - began)
                    if outcome is False:
                        go_on = False
                        break
                    if outcome is not True:
                        pending.insert(0, outcome)
        finally:
            stop(list(running))
            if warm is not None:
                warm.close()
