"""Provenance of every result the toolkit writes: what made it, with which parameters, on what code.

docs/conventions.md "Result files": attributes hold the model or method, every parameter, seed,
package version, git revision (of the repository root) and creation time. It lives in ``symbolic``
because that package is the bottom of the import graph (docs/conventions.md "Layers"):
``dynamics``, ``empirical`` and ``reports`` all import it, and it imports nothing of ours.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.metadata
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

#: the repository root (``symbolic/common/provenance.py`` is three levels below it): the git
#: revision recorded in result files is the one of the whole source tree
_REPO_ROOT = Path(__file__).resolve().parents[2]


def _package_version() -> str:
    """The installed version of the ssl-dynamics distribution."""
    try:
        return importlib.metadata.version("ssl-dynamics")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


#: version of the ssl-dynamics distribution, stored in every result file
PACKAGE_VERSION = _package_version()


def git_revision(path: Path = _REPO_ROOT) -> str:
    """The git commit of the source tree at ``path`` (default: this repository's root), with
    ``-dirty`` if a tracked file has uncommitted changes; "unknown" outside a git checkout."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=5
        )
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _attr_value(value: Any) -> Any:
    """A netCDF-storable version of ``value`` (bools as ints, None and containers as JSON text)."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | float | str | np.integer | np.floating):
        return value
    return json.dumps(value, default=str)


def provenance(kind: str, name: str, params: Any, **extra: Any) -> dict[str, Any]:
    """Attributes for a result file: what made it, with which parameters, on which code.

    ``kind`` is "simulation", "training" or "sweep"; ``name`` the scenario or method; ``params``
    a dataclass or a mapping. Each parameter is stored as ``param_<name>`` and all together as the
    JSON text ``params_json`` so that a reader can rebuild the configuration.
    """
    if dataclasses.is_dataclass(params):
        params = dataclasses.asdict(params)
    params = dict(params)
    attrs: dict[str, Any] = {
        "kind": kind,
        "name": name,
        "package_version": PACKAGE_VERSION,
        "git_revision": git_revision(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "host": platform.node(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "params_json": json.dumps(params, default=str, sort_keys=True),
    }
    for key, value in params.items():
        attrs[f"param_{key}"] = _attr_value(value)
    for key, value in extra.items():
        attrs[key] = _attr_value(value)
    return attrs
