"""What the claim families share: trajectory panels, the collapse test and panel, the margin of
the non-inferiority tests, and the sizing sentence of the main runs."""

from __future__ import annotations

import math

from reports.reproduce.measured import Measured, Statistic, collapse_margin
from reports.reproduce.registry import Panel
from reports.reproduce.scale import Scale
from reports.reproduce.verdict import Test

#: a configuration learns no worse than another when its probe accuracy is at most this lower
MARGIN = 0.01


def finite_mean(values) -> float:
    """The mean of the finite values (NaN when there are none: every run failed)."""
    finite = [float(v) for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def trajectories(
    m: Measured, roles: dict[str, str], stat: Statistic, title: str, ylabel: str
) -> Panel:
    """A panel of ``stat`` against the optimiser step, one series per role (label -> role)."""
    return Panel(
        title, "step", ylabel, {label: m.series(role, stat) for label, role in roles.items()}
    )


def main_size(scale: Scale) -> str:
    """The sizing sentence of every claim that uses the main runs: eta t at their end."""
    eta_t = scale.eta_t(scale.weight_decay, scale.steps, scale.lr, scale.momentum)
    return (
        f"{scale.steps} steps of {scale.batch} images, wd {scale.weight_decay:g}, lr "
        f"{scale.lr:g} per 256 images, momentum {scale.momentum:g}: eta t = {eta_t:.2g} at the "
        f"end, e^(-2 eta t) = {math.exp(-2 * eta_t):.1e}"
    )


def collapse_panel(m: Measured, roles: dict[str, str]) -> Panel:
    """The distance from the collapse criteria over training (label -> role), with the line."""
    panel = trajectories(m, roles, collapse_margin, "collapse", "distance from collapse (decades)")
    panel.hlines.append((0.0, "collapse criterion"))
    return panel


def collapse_test(m: Measured, role: str, collapses: bool, name: str) -> Test:
    """Whether ``role`` ends collapsed (:func:`~reports.reproduce.measured.collapse_margin` < 0)
    or not, in every seed."""
    return Test(
        name,
        "final distance from the collapse criteria (decades; < 0: collapsed)",
        -1 if collapses else 1,
        0.0,
        m.final(role, collapse_margin),
        m.seeds(role),
        note=m.failures(role),
    )
