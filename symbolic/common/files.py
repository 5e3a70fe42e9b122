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
import contextvars
import errno
import os
import shutil
import signal
import tempfile
import threading
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


#: free bytes below which a writer's failure is put down to a full disk (HDF5 and torch's zip
#: writer report ENOSPC as a RuntimeError without its errno)
FULL_DISK_BYTES = 4 << 20
#: the all-or-nothing groups open in this context (see :func:`all_or_nothing`)
_GROUP: contextvars.ContextVar[list | None] = contextvars.ContextVar("file_group", default=None)


def free_bytes(folder: str | os.PathLike) -> int | None:
    """Bytes an ordinary user may still write into ``folder``'s file system (None: unknown)."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def _write_error(err: BaseException, path: Path) -> BaseException:
    """The error to report for a writer's failure on ``path``: an OSError naming ``path`` (not
    the temporary file), ENOSPC for an unnamed failure on a full disk, else ``err`` itself."""
    if isinstance(err, OSError) and err.errno is not None:
        return OSError(err.errno, err.strerror or os.strerror(err.errno), str(path))
    if isinstance(err, Exception):
        free = free_bytes(path.parent)
        if free is not None and free < FULL_DISK_BYTES:
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return err


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[list[int]]:
    """Hold SIGINT back for the block and deliver it after (main thread only); the block gets
    the list of the signals held back so far (empty: none came).

    A KeyboardInterrupt raised inside a library's file lock (xarray's netCDF writer) leaves the
    lock held, and closing the file then waits on it forever; the writers run with Ctrl-C held
    back instead, and an interrupt that came meanwhile is raised again, to whatever handler was
    installed, as soon as the write is over."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield caught
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
        if caught:
            signal.raise_signal(signal.SIGINT)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path``; on success it is fsynced and renamed to ``path``.

    For writers that want a file name (netCDF, ``torch.save``, ``savefig``)::

        with atomic_path(out) as tmp:
            ds.to_netcdf(tmp)

    On any exception (KeyboardInterrupt included) the temporary file is removed and the
    exception propagates; ``path`` keeps its previous content. An OSError names ``path`` (not
    the temporary file); a writer that fails otherwise on a full disk raises OSError ENOSPC.
    Ctrl-C is held back while the block runs and while its temporary file is renamed or
    removed (:func:`interrupts_deferred`); one pressed meanwhile abandons the write and is
    raised after the clean-up: an interrupted write leaves no file, however often Ctrl-C is
    pressed. In a folder with a
    manifest (:mod:`symbolic.common.manifest`) the file's size and hash are recorded; inside
    :func:`all_or_nothing` the write is undone if the group fails.
    """
    from symbolic.common import manifest

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as err:
        raise _write_error(err, path) from None
    os.close(fd)
    tmp = Path(name)
    with interrupts_deferred() as interrupted:  # raised after the clean-up below
        try:
            yield tmp
            if interrupted:
                raise KeyboardInterrupt
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o666 & ~_umask())
            manifest.record(tmp, path.name)
            _keep_for_undo(path)
            os.replace(tmp, path)
        except BaseException as err:
            tmp.unlink(missing_ok=True)
            reported = _write_error(err, path)
            if reported is err:
                raise
            raise reported from err
    _fsync_folder(path.parent)


def _keep_for_undo(path: Path) -> None:
    """Inside :func:`all_or_nothing`: note ``path`` (and a hard link to its current version)
    so that the group can undo the write."""
    group = _GROUP.get()
    if group is None:
        return
    backup, existed = None, path.exists()
    if existed:
        backup = path.with_name(f".{path.name}.{os.getpid()}.undo{TMP_SUFFIX}")
        backup.unlink(missing_ok=True)
        try:
            os.link(path, backup)
        except OSError:  # no hard links here: the old version cannot come back
            backup = None
    group.append((path, backup, existed))


@contextlib.contextmanager
def all_or_nothing(*places: str | os.PathLike) -> Iterator[None]:
    """Files written with :func:`atomic_path` in the block stand or fall together.

    A command that writes several files (a result and its figure) and fails on the second (a
    full disk) leaves none of them: each written file is removed again, or its earlier version
    put back, when the block raises; so are the folders of ``places`` (output files or folders)
    that the block created and left empty.
    """
    made = {folder for place in places for folder in folders_to_make(place)}
    made = sorted(made, key=lambda folder: -len(folder.parts))  # deepest first
    group: list[tuple[Path, Path | None, bool]] = []
    token = _GROUP.set(group)
    try:
        yield
    except BaseException:
        for path, backup, existed in reversed(group):
            if backup is not None:
                os.replace(backup, path)
            elif not existed:
                path.unlink(missing_ok=True)
        for folder in made:
            with contextlib.suppress(OSError):  # not empty: something else wrote into it
                folder.rmdir()
        raise
    else:
        for _, backup, _ in group:
            if backup is not None:
                backup.unlink(missing_ok=True)
    finally:
        _GROUP.reset(token)


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
    except OSError as err:  # a full disk: named by its place in ``path``, not in the scratch
        shutil.rmtree(tmp, ignore_errors=True)
        raise _moved(err, tmp, path) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _moved(err: OSError, tmp: Path, path: Path) -> OSError:
    """``err`` naming the file under ``path`` that it names under the scratch folder ``tmp``."""
    name = Path(err.filename) if err.filename else None
    if name is None:
        shown = path
    elif name.is_relative_to(tmp):
        shown = path / name.relative_to(tmp)
    else:
        shown = name
    return OSError(err.errno, err.strerror, str(shown))


def _why_not(folder: Path) -> str:
    """Why ``folder`` cannot be written into: a read-only file system or missing permission."""
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return "read-only file system" if read_only else "permission denied"


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
        raise UsageError(f"{option} {shown}: cannot write into {existing} ({_why_not(existing)})")
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
