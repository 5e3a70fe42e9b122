"""One grid point of a sweep over any scenario: integrate it and reduce it to the sweep's record.

Used for the matrix models (and any scenario without a vectorised sweep). The record holds the
final spectrum (the final ``wp_eig_real``/``wp_eig_imag`` and ``corr_eig`` the model reports),
which modes collapsed (:func:`dynamics.fates.final_fates`, the rule a single simulation uses),
the time to converge and whether the run diverged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dynamics import scenarios
from dynamics.engine import RunSettings, run_model
from dynamics.fates import final_fates


def convergence_time(t: np.ndarray, rate: np.ndarray, tol: float) -> float:
    """The time after which ``rate`` stays below ``tol`` (NaN if it ends above it).

    Interpolated in log(rate) between the last sample at or above ``tol`` and the next one.
    """
    above = np.flatnonzero(rate >= tol)
    if above.size == 0:
        return 0.0
    i = above[-1]
    if i == t.size - 1:
        return float("nan")
    r0, r1 = rate[i], rate[i + 1]
    frac = np.log(r0 / tol) / np.log(r0 / r1) if r1 > 0 else 1.0
    return float(t[i] + (t[i + 1] - t[i]) * np.clip(frac, 0.0, 1.0))


def run_point(
    name: str, params: dict[str, Any], settings: dict[str, Any], conv_tol: float
) -> dict[str, np.ndarray]:
    """Integrate scenario ``name`` at ``params`` and return its sweep record."""
    scenario = scenarios.get(name)
    model = scenario.model(scenario.params(**params))
    run = RunSettings(**settings)
    traj = run_model(model, run.solver, run.saveat)
    t, y = traj.t, traj.y
    if t.size == 0:  # failed at t = 0
        t, y = np.zeros(1), model.initial_state()[None]
    ends = [0, t.size - 1]
    ds = model.observables(t[ends], y[ends])
    final = ds.isel(time=-1)
    record: dict[str, np.ndarray] = {}
    for var in ("wp_eig_real", "wp_eig_imag", "corr_eig"):
        if var in final:
            record[var] = final[var].values
    collapsed, converged = final_fates(model, ds)
    rate = np.array([np.max(np.abs(model.rhs(ti, yi))) for ti, yi in zip(t, y, strict=True)])
    t_conv = convergence_time(t, rate, conv_tol) if traj.complete else float("nan")
    record.update(
        mode_collapsed=collapsed,
        mode_converged=converged,
        time_to_converge=np.array(t_conv if np.isfinite(t_conv) else t[-1]),
        converged=np.array(bool(np.isfinite(t_conv))),
        diverged=np.array(not traj.complete),
        t_reached=np.array(float(t[-1])),
    )
    return record
