"""What a folder's files held when they were written: sizes and SHA-256 hashes, checked on resume.

A resumed command builds on files an earlier run wrote (a training run's checkpoint, its
measurements, its data moments). A file cut short or changed since (a failing disk, a careless
copy, an edit) must not pass unnoticed into the continued run. ``manifest.json`` in the folder
records, for each file written there, its size and SHA-256 at write time; :func:`verify` compares
the files with it before they are used.

A folder opts in with :func:`start` (``empirical.train`` does when it writes its first
checkpoint); from then on every file written into it through
:func:`symbolic.common.files.atomic_path` is recorded (:func:`record`) just before it is renamed
into place. The entry keeps the file's previous record too, and a file matching either is intact:
a process killed between the record and the rename leaves the previous version, which is whole.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

NAME = "manifest.json"
_BLOCK = 1 << 20


def sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of the file at ``path`` (hex), read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def describe(path: str | os.PathLike) -> dict[str, int | str]:
    """``{"size": bytes, "sha256": hex}`` of the file at ``path``."""
    return {"size": os.stat(path).st_size, "sha256": sha256(path)}


def manifest_of(folder: str | os.PathLike) -> Path:
    return Path(folder) / NAME


def read(folder: str | os.PathLike) -> dict[str, dict]:
    """The records of ``folder`` (name -> record); {} without a manifest. A manifest that is not
    a JSON object of records is damage too: ValueError naming it."""
    path = manifest_of(folder)
    if not path.is_file():
        return {}
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{path} is damaged ({err})") from None
    if not isinstance(records, dict) or not all(isinstance(r, dict) for r in records.values()):
        raise ValueError(f"{path} is damaged (not an object of file records)")
    return records


def _write(folder: Path, records: dict[str, dict]) -> None:
    from symbolic.common.files import write_text  # files records into manifests: no cycle

    write_text(manifest_of(folder), json.dumps(records, indent=1, sort_keys=True) + "\n")


def start(folder: str | os.PathLike, names: Iterable[str]) -> None:
    """Record the files ``names`` of ``folder`` (those that exist) and opt the folder in: every
    later atomic write into it is recorded."""
    folder = Path(folder)
    records = read(folder)
    for name in names:
        if (folder / name).is_file():
            records[name] = describe(folder / name)
    _write(folder, records)


def record(written: str | os.PathLike, name: str) -> None:
    """Record the finished file ``written`` (a temporary file) as ``name`` in its folder's
    manifest, keeping the previous record of ``name``; a no-op in a folder without one."""
    folder = Path(written).parent
    if name == NAME or not manifest_of(folder).is_file():
        return
    records = read(folder)
    entry = describe(written)
    before = records.get(name)
    if before is not None:
        entry["previous"] = {k: before[k] for k in ("size", "sha256") if k in before}
    records[name] = entry
    _write(folder, records)


def rename(folder: str | os.PathLike, old: str, new: str) -> None:
    """Move the record of ``old`` to ``new`` (the file was renamed, e.g. a checkpoint kept as the
    previous one); a no-op in a folder without a manifest or without a record of ``old``."""
    folder = Path(folder)
    records = read(folder)
    if old not in records:
        return
    moved = records.pop(old)
    records[new] = {k: moved[k] for k in ("size", "sha256") if k in moved}
    _write(folder, records)


def _matches(record: dict, size: int, path: Path) -> bool:
    candidates = [record, record.get("previous") or {}]
    sized = [c for c in candidates if c.get("size") == size]
    if not sized:
        return False
    digest = sha256(path)
    return any(c.get("sha256") == digest for c in sized)


def damage(folder: str | os.PathLike, names: Iterable[str] | None = None) -> list[str]:
    """What no longer matches the records of ``folder``, one text per file ("F: 1000 bytes, 5480
    when written"; "F: missing"; "F: changed since it was written (its SHA-256 differs)").

    ``names``: only these files (default: every recorded file); a name without a record is not
    checked. An empty list: every checked file is as it was written.
    """
    folder = Path(folder)
    records = read(folder)
    found = []
    for name in records if names is None else names:
        if name not in records:
            continue
        path, rec = folder / name, records[name]
        if not path.is_file():
            found.append(f"{path}: missing (recorded in {manifest_of(folder)})")
            continue
        size = path.stat().st_size
        if _matches(rec, size, path):
            continue
        sizes = {rec.get("size"), (rec.get("previous") or {}).get("size")} - {None}
        if size not in sizes:
            shown = " or ".join(str(s) for s in sorted(sizes))
            found.append(f"{path}: {size} bytes, {shown} when it was written")
        else:
            found.append(f"{path}: changed since it was written (its SHA-256 differs)")
    return found


def verify(folder: str | os.PathLike, names: Iterable[str] | None = None) -> None:
    """ValueError naming the first damaged file of ``folder`` (see :func:`damage`)."""
    found = damage(folder, names)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ValueError(f"{found[0]}{more}")
