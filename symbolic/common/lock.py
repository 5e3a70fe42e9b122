"""An exclusive lock on an output, so that two commands never write the same results.

``flock`` on a small lock file: the operating system releases it when the holding process ends,
however it ends (kill -9 included), so a stale lock can never block a later run. A second command
asking for a held lock fails at once with a one-line UsageError naming the output and the
holder's process id, instead of both running and interleaving their files.

The lock file is removed when the lock is released (a finished command leaves no ``.lock`` file
behind). That is safe because a process that obtains the lock checks that the file it locked is
still the one at the lock's path (not one removed by the previous holder in the meantime) and
otherwise tries again; a file left by a killed holder is simply locked again.
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


def _same_file(fd: int, path: Path) -> bool:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


def _acquire(path: Path, output, what: str) -> int:
    """A descriptor of ``path`` holding its exclusive lock; UsageError when another holds it."""
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise UsageError(
                f"{what} {output} is in use by another process (pid {holder}); wait for it to "
                f"finish or choose another {what}"
            ) from None
        if _same_file(fd, path):
            return fd
        os.close(fd)  # the previous holder removed this file while we waited: lock the new one
    raise UsageError(f"{what} {output}: cannot take its lock {path}")


@contextlib.contextmanager
def exclusive(output: str | os.PathLike, folder: bool, what: str = "--out") -> Iterator[Path]:
    """Hold the exclusive lock of ``output`` (a result folder, or a result file) for the block.

    UsageError "--out runs/x is in use by another process (pid 1234); wait for it or choose
    another --out" when another process holds it. A folder ``output`` is created if needed.
    """
    path = lock_file(Path(output), folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(path, output, what)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # still ours: removed before the lock is released
        os.close(fd)  # closing the descriptor releases the lock
