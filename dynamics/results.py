"""Atomic, NaN-refusing netCDF writing for every result file of the toolkit.

DESIGN.md "Result schema": files are written to a temporary file in the same folder and renamed,
so a reader never sees a half-written result. The provenance attributes they carry come from
:func:`symbolic.provenance.provenance`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from dynamics.schema import annotate


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
