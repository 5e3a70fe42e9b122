"""Completion markers: what a finished command wrote, so that ``--resume`` never builds on
damage.

``WORK/done/NAME.json`` marks a finished command: its seconds and the size and SHA-256 of every
file it wrote, recorded once its netCDF files were read back (they open, none is marked
partial). On ``--resume`` a command is skipped only when its files are unchanged; a damaged one
(a truncated ``measurements.nc``) is removed and recomputed, never used. ``WORK/logs/NAME.log``
holds each command's error output.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from pathlib import Path

from reports.experiments.commands import Command
from symbolic.common.files import write_text

MARKERS = "done"
LOGS = "logs"


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def written_files(output: Path) -> list[Path]:
    """The files a command wrote: ``output`` itself, or every file below the folder (not the
    hidden ones: locks, temporary files)."""
    if output.is_file():
        return [output]
    if not output.is_dir():
        return []
    return sorted(
        p
        for p in output.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(output).parts)
    )


def unreadable(command: Command) -> str | None:
    """Why a result file of ``command`` cannot be used (it does not open, or it is marked
    partial), None when every netCDF file it wrote opens complete."""
    import xarray as xr

    files = [p for p in written_files(command.output) if p.suffix == ".nc"]
    if command.output.suffix == ".nc" and not files:
        return f"{command.output} is missing"
    for path in files:
        try:
            with xr.open_dataset(path) as ds:
                partial = int(ds.attrs.get("partial", 0))
        except Exception as err:  # noqa: BLE001 - any reader error means a damaged file
            return f"{path} does not open ({type(err).__name__})"
        if partial:
            return f"{path} is marked partial"
    return None


def remove(path: Path) -> None:
    """Remove a command's output (a file or a folder) before it starts afresh."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


class Markers:
    """The completion markers and logs of the commands run in ``work``."""

    def __init__(self, work: Path):
        self.work = work

    def marker(self, command: Command) -> Path:
        return self.work / MARKERS / f"{command.stem}.json"

    def log(self, command: Command) -> Path:
        return self.work / LOGS / f"{command.stem}.log"

    def verify(self, command: Command) -> str | None:
        """Why the finished ``command`` cannot be reused (None: its files are as written)."""
        path = self.marker(command)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            files = {str(k): (int(v[0]), str(v[1])) for k, v in record["files"].items()}
            args = record["args"]
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
            return f"its marker {path} is damaged"
        if args != command.recorded(self.work):
            return "it was run with other options"
        for name, (size, digest) in files.items():
            file = command.output.parent / name
            if not file.is_file():
                return f"{file} is missing"
            if file.stat().st_size != size or _digest(file) != digest:
                return f"{file} changed after it was written"
        return unreadable(command)

    def finish(self, command: Command, seconds: float) -> None:
        """The marker of a command whose files were read back: seconds, sizes and hashes."""
        base = command.output.parent
        files = {
            p.relative_to(base).as_posix(): [p.stat().st_size, _digest(p)]
            for p in written_files(command.output)
        }
        record = {
            "name": command.name,
            "args": command.recorded(self.work),
            "seconds": seconds,
            "files": files,
        }
        write_text(self.marker(command), json.dumps(record, indent=1) + "\n")

    def state(self, command: Command) -> tuple[str, str]:
        """("done" | "resume" | "new", why): done when its marker's files are unchanged; new
        (recomputed, and why) when they are damaged."""
        if self.marker(command).exists():
            problem = self.verify(command)
            if problem is None:
                return "done", ""
            return "new", f"recomputed: {problem}"
        if command.resume_file and (command.output / command.resume_file).exists():
            return "resume", ""
        return "new", ""

    def timings(self) -> dict[str, float]:
        """Seconds of every finished command (earlier sessions included), by name."""
        out = {}
        for path in sorted((self.work / MARKERS).glob("*.json")):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                record = json.loads(path.read_text(encoding="utf-8"))
                out[str(record["name"])] = float(record["seconds"])
        return out
