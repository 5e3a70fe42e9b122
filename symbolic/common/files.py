"""Files the toolkit writes: atomically, with their debris cleaned, after checking where they go.

docs/conventions.md "Result files": a result is written to a temporary file in the same folder,
flushed to disk (fsync) and renamed over the target, so a reader never sees a half-written file and
a crash leaves the previous version intact. The temporary file is named ``.NAME.<random>.tmp``; it
is removed when the write fails, and :func:`remove_debris` removes the ones a killed process
(kill -9, power loss) left behind. Files get the permissions an ordinary ``open(..., "w")`` would
give them (0666 masked by the umask), not mkstemp's 0600.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from symbolic.common.cli import UsageError

TMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path``; on success it is fsynced and renamed to ``path``.

    For writers that want a file name (netCDF, ``torch.save``, ``savefig``)::

        with atomic_path(out) as tmp:
            ds.to_netcdf(tmp)

    On any exception (KeyboardInterrupt included) the temporary file is removed and the
    exception propagates; ``path`` keeps its previous content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def remove_debris(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove the temporary files (``.NAME.*.tmp``) that killed writers left in ``folder``.

    Only files of target ``name`` when given, else every such file. Call it where no other
    process writes into ``folder`` (under :func:`symbolic.common.lock.exclusive`). Returns what
    was removed.
    """
    folder = Path(folder)
    pattern = f".{name}.*{TMP_SUFFIX}" if name else f".*{TMP_SUFFIX}"
    removed = []
    for tmp in folder.glob(pattern) if folder.is_dir() else ():
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside ``path``, renamed to ``path`` when the block succeeds.

    An existing folder at ``path`` is replaced only at the end (moved aside, then deleted), so a
    failure leaves it as it was; the temporary folder is removed on failure.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        old = None
        if path.exists():
            old = Path(
                tempfile.mkdtemp(prefix=f".{path.name}.old.", suffix=TMP_SUFFIX, dir=path.parent)
            )
            path.rename(old / path.name)
        tmp.rename(path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _writable_folder(folder: Path, option: str, shown: Path) -> None:
    """UsageError unless ``folder`` exists as a writable folder or can be created."""
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{option} {shown}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {shown}: cannot write into {existing} (permission denied)")
    try:  # what access() cannot tell: a read-only file system, /proc, a full quota, root squash
        fd, probe = tempfile.mkstemp(prefix=".write-test.", suffix=TMP_SUFFIX, dir=existing)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise UsageError(f"{option} {shown}: cannot write into {existing} ({reason})") from None
    os.close(fd)
    os.unlink(probe)


def folders_to_make(path: str | os.PathLike) -> list[Path]:
    """The folders that ``path.mkdir(parents=True)`` would create, deepest first."""
    path = Path(path).absolute()
    made = []
    while not path.exists() and path.parent != path:
        made.append(path)
        path = path.parent
    return made


def remove_empty(folders: list[Path]) -> None:
    """Remove each of ``folders`` (deepest first) that exists and is empty: what a refused
    command created before it knew it would write nothing."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (or already gone): the run wrote into it
            if folder.exists():
                return


def check_output_file(path: str | os.PathLike, option: str = "--out") -> Path:
    """Check, before any work, that a result file can be written at ``path``.

    UsageError "--out PATH: is a folder, expected a file" / "... cannot write into FOLDER
    (permission denied)" / "... FOLDER is a file, not a folder".
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a folder, expected a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{option} {path}: the file exists and is not writable")
    _writable_folder(path.parent, option, path)
    return path


def check_output_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """Check, before any work, that ``path`` is (or can become) a writable folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: is a file, expected a folder")
    _writable_folder(path, option, path)
    return path
