"""The symbolic claims audit (docs/theory.md section 4) as the report's audit table.

The audit is produced by ``python -m symbolic.audit --format json``: a JSON list of objects with
the keys ``id``, ``claim``, ``verdict``, ``corrected_statement``, ``method`` and ``evidence``. The
report runs that command (``--audit auto``), reads a saved copy (``--audit FILE``) or leaves the
audit out (``--audit none``). When the command is absent or fails, the report says why instead of
failing; a saved copy that is malformed is bad input (exit status 2).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports.inputs import InputError
from symbolic.common.provenance import git_revision

AUDIT_MODULE = "symbolic.audit"
AUDIT_ARGS = ("--format", "json")
KEYS = ("id", "claim", "verdict", "corrected_statement", "method", "evidence")
DEFAULT_TIMEOUT_S = 300.0


@dataclass
class Audit:
    """Audit entries and where they came from, or none and the reason."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    origin: str = ""
    reason: str = ""


def parse(text: str) -> list[dict[str, Any]]:
    """The audit entries in ``text``; ValueError naming what is wrong."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ValueError(f"not valid JSON ({err})") from None
    if not isinstance(data, list):
        raise ValueError("is not a JSON list of claims")
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise ValueError(f"entry {i} is not a JSON object")
        missing = [k for k in KEYS if k not in entry]
        if missing:
            raise ValueError(f"entry {i} lacks the key(s) {', '.join(missing)}")
    return data


def read(path: str | Path) -> Audit:
    """A saved audit (JSON file); InputError when missing or malformed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, f"cannot be read ({err})") from None
    try:
        entries = parse(text)
    except ValueError as err:
        raise InputError(path, f"audit {err}") from None
    return Audit(entries, origin=f"file {path}")


def run(timeout_s: float = DEFAULT_TIMEOUT_S) -> Audit:
    """Run ``python -m symbolic.audit --format json``; an empty Audit with the reason on failure."""
    command = f"python -m {AUDIT_MODULE} {' '.join(AUDIT_ARGS)}"
    try:
        found = importlib.util.find_spec(AUDIT_MODULE) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        return Audit(reason=f"`{command}` is not available (no module {AUDIT_MODULE})")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", AUDIT_MODULE, *AUDIT_ARGS],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return Audit(reason=f"`{command}` did not finish within {timeout_s:g} s")
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        return Audit(reason=f"`{command}` failed with exit status {proc.returncode}: {last}")
    try:
        entries = parse(proc.stdout)
    except ValueError as err:
        return Audit(reason=f"`{command}` printed output that {err}")
    return Audit(entries, origin=f"`{command}` at git {git_revision()}")


def load(spec: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Audit:
    """``auto``: run the audit; ``none``: leave it out; otherwise the path of a saved JSON audit."""
    if spec == "none":
        return Audit(reason="left out on request (--audit none)")
    if spec == "auto":
        return run(timeout_s)
    return read(spec)
