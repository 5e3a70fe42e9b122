"""Writing result files (netCDF) by the schema: atomically, checked, never silently NaN.

docs/conventions.md "Result files": a result is written to a temporary file in the same folder and
renamed (:func:`symbolic.common.files.atomic_path`), so a reader never sees a half-written result.
Before writing, :func:`symbolic.common.schema.check` refuses variables or dimensions the schema does
not know, and non-finite values are refused unless the variable is declared to hold undefined values
(NaN where a ratio has no meaning, e.g. the asymmetry of a W_p that collapsed to 0), which the file
then lists in its attribute ``undefined_values``. The provenance attributes come from
:func:`symbolic.common.provenance.provenance`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from symbolic.common.files import atomic_path
from symbolic.common.schema import annotate, check


def nonfinite_variables(ds: xr.Dataset) -> list[str]:
    """Names of the numeric variables of ``ds`` that hold NaN or infinity."""
    return [
        name
        for name, var in ds.data_vars.items()
        if np.issubdtype(var.dtype, np.number) and not np.all(np.isfinite(var.values))
    ]


def write_netcdf(
    ds: xr.Dataset,
    path: str | os.PathLike,
    allow_nonfinite: bool = False,
    extra_dims: Iterable[str] = (),
    undefined: Iterable[str] = (),
) -> Path:
    """Write ``ds`` to ``path`` atomically, after checking it against the schema.

    Non-finite values are refused (ValueError naming the variable) unless ``allow_nonfinite``
    (a file marked partial) or the variable is in ``undefined`` (NaN marks values that are not
    defined, listed in the attribute ``undefined_values``). ``extra_dims`` declares swept
    parameters or grid variables as dimensions (see :func:`~symbolic.common.schema.check`).
    """
    path = Path(path)
    check(ds, tuple(extra_dims))
    undefined = sorted(set(undefined))
    bad = [name for name in nonfinite_variables(ds) if name not in undefined]
    if bad and not allow_nonfinite:
        raise ValueError(f"variable {bad[0]!r} holds NaN or infinite values")
    if undefined:
        ds.attrs["undefined_values"] = ", ".join(undefined)
    annotate(ds)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4")
    return path


def params_from_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """The parameter mapping stored by :func:`~symbolic.common.provenance.provenance`."""
    return json.loads(attrs["params_json"])


def is_number(value: Any) -> bool:
    """True for a finite real number (not a bool)."""
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
