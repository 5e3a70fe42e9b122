"""An exclusive lock on an output, so that two commands never write the same results.

``flock`` on a small lock file: the operating system releases it when the holding process ends,
however it ends (kill -9 included), so a stale lock can never block a later run. A second command
asking for a held lock fails at once with a one-line UsageError naming the output and the
holder's process id, instead of both running and interleaving their files.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from symbolic.common.cli import UsageError


def lock_file(output: Path, folder: bool) -> Path:
    """The lock file of ``output``: ``OUT/.lock`` for a folder, ``.NAME.lock`` beside a file."""
    output = Path(output)
    return output / ".lock" if folder else output.with_name(f".{output.name}.lock")


@contextlib.contextmanager
def exclusive(output: str | os.PathLike, folder: bool, what: str = "--out") -> Iterator[Path]:
    """Hold the exclusive lock of ``output`` (a result folder, or a result file) for the block.

    UsageError "--out runs/x is in use by another process (pid 1234); wait for it or choose
    another --out" when another process holds it.
    """
    path = lock_file(Path(output), folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise UsageError(
                f"{what} {output} is in use by another process (pid {holder}); wait for it to "
                f"finish or choose another {what}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock
