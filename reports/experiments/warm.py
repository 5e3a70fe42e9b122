"""Commands forked from a warm process: ``python -m MODULE ARGS`` without Python's start.

A command of a plan started cold spends seconds importing torch (and ``torch._dynamo``, which
the first optimiser imports), xarray, scipy and the toolkit before it does anything: a
``--quick`` rung-1 training takes 12.9 s started cold and 8.5-9.3 s forked from a process that
has imported them (measured idle, 2026-12-07). :class:`WarmProcess` starts one such process
(:func:`serve`), which imports :data:`PRELOAD` once and
then forks each command it is sent. The forked child (:func:`_run_child`) starts its own
session, dies with the warm process (which dies with the driver), points its standard input
and output at /dev/null and its standard error at the command's log, takes the driver's working
folder and environment, names itself after the module (``ps``, ``/proc/PID/comm``) and runs the
module with :mod:`runpy` as ``python -m`` does. Its exit status is ``python -m``'s: the code of
SystemExit, 1 and the traceback for an uncaught exception, death by SIGINT for an uncaught
KeyboardInterrupt. Unlike a fresh process it runs no ``atexit`` handler (those registered by
the imports belong to the warm process), and the settings that a C library read once when the
warm process loaded it stay the warm process's (OpenBLAS's thread count: the warm process starts
with the runner's :data:`~.pool.BLAS_THREADS`).

The two talk in lines of JSON: the driver writes ``{"module", "args", "log", "cwd", "env"}``,
the warm process answers ``{"pid": PID}`` once it has forked and ``{"ended": PID, "status":
STATUS}`` when it has reaped it (``subprocess``'s convention: -N for death by signal N).
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import json
import os
import runpy
import select
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from reports.experiments.lifeline import die_with, set_name

#: what the warm process imports: the command modules' imports, not the command modules
#: themselves (runpy warns about a module run as __main__ that is already imported)
PRELOAD = (
    "torch", "torch._dynamo", "torch.optim", "numpy", "scipy.integrate", "scipy.linalg",
    "xarray", "netCDF4", "dask.base", "distributed", "empirical.checkpoint", "empirical.config",
    "empirical.methods", "empirical.record", "empirical.trainer", "dynamics.engine",
    "dynamics.from_run", "dynamics.from_run_methods", "dynamics.models.general",
    "dynamics.replay", "symbolic.common.cli", "symbolic.common.results",
)  # fmt: skip
#: seconds between two looks for ended children in the warm process
REAP_S = 0.05


class WarmUnavailable(RuntimeError):
    """The warm process has ended: start the command cold."""


class Child:
    """A command forked by the warm process: ``pid``, ``poll()`` and ``returncode`` as
    :class:`subprocess.Popen` has them."""

    def __init__(self, pid: int, warm: WarmProcess):
        self.pid, self._warm, self.returncode = pid, warm, None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._warm.status(self.pid)
        return self.returncode


class WarmProcess:
    """The driver's end of a warm process (started by the driver's main thread, killed by
    :meth:`close`)."""

    def __init__(self, log: Path, env: Mapping[str, str], setup: Callable[[], None]):
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w", encoding="utf-8") as fh:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", f"from {__name__} import serve; serve()"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=fh,
                preexec_fn=setup,
                env=dict(env),
            )
        self._pids: collections.deque[int] = collections.deque()
        self._ended: dict[int, int] = {}
        self._unread = b""
        self.alive = True

    def start(self, module: str, args: Sequence[str], log: Path, env: Mapping[str, str]) -> Child:
        """``python -m module args`` forked, its standard error into ``log``; WarmUnavailable
        if the warm process has ended."""
        request = {"module": module, "args": list(args), "log": str(log), "cwd": os.getcwd()}
        try:
            self._proc.stdin.write(json.dumps({**request, "env": dict(env)}).encode() + b"\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError):  # ValueError: closed
            self.alive = False
        while self.alive and not self._pids:
            self._read(timeout=None)
        if not self._pids:
            raise WarmUnavailable(f"the warm process ended (its log: {self.log})")
        return Child(self._pids.popleft(), self)

    def status(self, pid: int) -> int | None:
        """The exit status of child ``pid``, None while it runs (-SIGKILL once the warm process
        has ended: its children die with it)."""
        self._read(timeout=0)
        if pid in self._ended:
            return self._ended.pop(pid)
        return None if self.alive else -signal.SIGKILL

    def _read(self, timeout: float | None) -> None:
        """Take in what the warm process has written (waiting up to ``timeout`` seconds)."""
        if not self.alive:
            return
        out = self._proc.stdout.fileno()
        if not select.select([out], [], [], timeout)[0]:
            return
        data = os.read(out, 1 << 16)
        if not data:
            self.alive = False
            return
        *lines, self._unread = (self._unread + data).split(b"\n")
        for line in lines:
            message = json.loads(line)
            if "pid" in message:
                self._pids.append(message["pid"])
            else:
                self._ended[message["ended"]] = message["status"]

    def close(self) -> None:
        """Kill the warm process (its children die with it) and reap it."""
        self.alive = False
        with contextlib.suppress(ProcessLookupError):
            self._proc.kill()
        self._proc.wait()
        for pipe in (self._proc.stdin, self._proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()


# ---------------------------------------------------------------------------- the warm process
def serve() -> None:
    """The warm process: import :data:`PRELOAD`, then fork a child for each request on the
    standard input and report on the standard output, until the driver closes it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the driver stops the children
    requests, replies = os.dup(0), os.dup(1)
    quiet = os.open(os.devnull, os.O_RDWR)
    os.dup2(quiet, 0)
    os.dup2(quiet, 1)  # what an import prints cannot reach the replies
    os.close(quiet)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 (the command that needs it will say why)
            print(f"warm start: not preloaded: {name}", file=sys.stderr)
    parent, unread = os.getpid(), b""

    def reply(message: dict) -> None:
        os.write(replies, json.dumps(message).encode() + b"\n")

    while True:
        if select.select([requests], [], [], REAP_S)[0]:
            data = os.read(requests, 1 << 16)
            if not data:
                return
            *lines, unread = (unread + data).split(b"\n")
            for line in lines:
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    os.close(requests)
                    os.close(replies)
                    _run_child(request, parent)
                reply({"pid": pid})
        for pid, status in _reaped():
            reply({"ended": pid, "status": status})


def _reaped() -> list[tuple[int, int]]:
    """(pid, exit status) of every child that has ended since the last call."""
    ended = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended.append((pid, os.waitstatus_to_exitcode(status)))


def _run_child(request: dict, parent: int) -> None:
    """In the forked child: become the command of ``request`` and exit with its status (1, and
    the reason in the warm process's log, if it cannot)."""
    try:
        _become(request, parent)
    except BaseException:  # noqa: BLE001 (never return into the warm process's loop)
        traceback.print_exc()
        _flush()
        os._exit(1)
    os._exit(_run_module(request["module"]))


def _become(request: dict, parent: int) -> None:
    """The command's session, lifeline, name, standard streams, folder, environment and argv."""
    os.setsid()
    die_with(parent)
    set_name(request["module"])
    signal.signal(signal.SIGINT, signal.default_int_handler)
    quiet = os.open(os.devnull, os.O_RDWR)
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    for fd, target in ((0, quiet), (1, quiet), (2, log)):
        os.dup2(target, fd)
    os.close(quiet)
    os.close(log)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [request["module"], *request["args"]]  # runpy sets argv[0] to the module's file


def _run_module(module: str) -> int:
    """Run ``module`` as ``python -m`` does; its exit status."""
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = _exit_status(exc.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        _flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        code = 1
    except BaseException:  # noqa: BLE001 (python -m prints it and exits 1)
        traceback.print_exc()
        code = 1
    _flush()
    return code


def _exit_status(code: object) -> int:
    """The exit status of ``SystemExit(code)``: None is 0, an integer itself, anything else is
    printed and 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
