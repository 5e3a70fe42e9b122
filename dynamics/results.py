"""Provenance attributes and atomic netCDF writing for every result file of the toolkit.

DESIGN.md "Result schema": attributes hold the model or method, every parameter, seed, solver and
tolerances, package version, git revision and creation time; files are written to a temporary
file in the same folder and renamed, so a reader never sees a half-written result.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from dynamics import __version__
from dynamics.schema import annotate

_REPO_ROOT = Path(__file__).resolve().parent.parent


def git_revision(path: Path = _REPO_ROOT) -> str:
    """The git commit of the source tree, with ``-dirty`` if it has uncommitted changes."""
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
        "package_version": __version__,
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


def check_finite(ds: xr.Dataset) -> None:
    """Raise ValueError naming the first variable of ``ds`` that holds NaN or infinity."""
    for name, var in ds.data_vars.items():
        if np.issubdtype(var.dtype, np.number) and not np.all(np.isfinite(var.values)):
            raise ValueError(f"variable {name!r} holds NaN or infinite values")


def write_netcdf(ds: xr.Dataset, path: str | os.PathLike, allow_nonfinite: bool = False) -> Path:
    """Write ``ds`` to ``path`` atomically (temporary file in the same folder, then rename).

    Refuses NaN/inf unless ``allow_nonfinite`` (used only for files marked partial).
    """
    path = Path(path)
    if not allow_nonfinite:
        check_finite(ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    annotate(ds)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine="netcdf4")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def params_from_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """The parameter mapping stored by :func:`provenance`."""
    return json.loads(attrs["params_json"])


def is_number(value: Any) -> bool:
    """True for a finite real number (not a bool)."""
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
