"""Which modes of a simulation collapsed at its end: one rule for simulations, sweeps and reports.

A mode's fate is read from the predictor's eigenvalues against the closed-form p*_+- where the
model has them (models whose W_p is learned: Tian's classification,
:func:`~dynamics.models.eigenmodes.mode_fates`), otherwise from the eigenvalues of the feature
correlation: collapsed when below 2% of the largest one at t = 0
(:func:`dynamics.observables.collapsed`). A model may choose with a class attribute
``collapse_spectrum`` ("wp" or "corr"). ``python -m dynamics.simulate`` stores the result as
``mode_collapsed`` and prints its count; sweeps store it per grid point; the report reads it.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from dynamics.models.base import Model
from dynamics.models.eigenmodes import mode_fates
from dynamics.observables import collapsed as is_collapsed
from symbolic.common.schema import MODE


def collapse_spectrum(model: Model, closed: dict[str, float], final: xr.Dataset) -> str:
    """'wp' (predictor eigenvalues against p*_+-) or 'corr' (feature-correlation eigenvalues)."""
    default = "wp" if "p_star_plus" in closed and "wp_eig_real" in final else "corr"
    return getattr(model, "collapse_spectrum", default)


def final_fates(model: Model, ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray] | None:
    """(collapsed, converged) per mode at the last time of ``ds`` (the model's observables over
    time); None for a model without a spectrum to judge (no ``wp_eig_real`` or ``corr_eig``)."""
    closed = model.closed_forms()
    final, first = ds.isel(time=-1), ds.isel(time=0)
    kind = collapse_spectrum(model, closed, final)
    if kind == "wp" and "wp_eig_real" in final and "p_star_plus" in closed:
        # per mode: the mode's own p_j where the model has it (the sorted spectrum is per rank)
        per_mode = "p" in final and final["p"].dims == (MODE,)
        p = (
            final["p"].values.astype(complex)
            if per_mode
            else final["wp_eig_real"].values + 1j * final["wp_eig_imag"].values
        )
        sigma2 = getattr(model.params, "sigma2", 0.0)
        return mode_fates(p, closed["p_star_plus"], closed["p_star_minus"], sigma2)
    if "corr_eig" not in final:
        return None
    corr = final["corr_eig"].values
    collapsed = is_collapsed(corr, float(np.max(first["corr_eig"].values)))
    return collapsed, ~collapsed
