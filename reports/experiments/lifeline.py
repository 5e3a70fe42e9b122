"""A child process that dies with its parent (Linux's ``prctl(PR_SET_PDEATHSIG, SIGKILL)``),
for the runner's children (:mod:`~.pool`) and the commands forked by its warm process
(:mod:`~.warm`)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

#: prctl options (linux/prctl.h): the signal a process gets when its parent dies; its name
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with(parent: int) -> None:
    """In a child: be killed when ``parent`` dies; exit at once if it already has (it died
    before the signal was armed)."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def set_name(name: str) -> None:
    """The process's name as ``ps``, ``top`` and ``/proc/PID/comm`` show it (15 bytes)."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
