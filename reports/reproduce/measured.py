"""The measurements a claim is decided from: every seed of every run it needs, by role.

A run's ``measurements.nc`` (:mod:`empirical.record`) has one entry per measurement along
``epoch``: entry 0 is the randomly initialised encoder (BatchNorm statistics filled), the last
the end of training. :class:`Measured` reads a variable, or a function of the Dataset, per seed:
its initial value, its final value, or its whole trajectory against the optimiser step.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr

from dynamics.observables import COLLAPSE_FRACTION, COLLAPSED_Z_STD
from reports.reproduce.registry import RunSpec
from symbolic.common.cli import UsageError

#: a statistic: a variable name, or a function of a run's Dataset giving one value per entry
Statistic = str | Callable[[xr.Dataset], np.ndarray]


def load_run(folder: Path) -> xr.Dataset:
    """A finished run's measurements, loaded into memory; UsageError naming a missing or
    unreadable file."""
    path = folder / "measurements.nc"
    try:
        with xr.open_dataset(path) as ds:
            return ds.load()
    except (OSError, ValueError) as err:
        raise UsageError(f"{path}: cannot read the run's measurements ({err})") from None


def mean_over_modes(name: str) -> Callable[[xr.Dataset], np.ndarray]:
    """The mean over modes of a (epoch, mode) variable, e.g. the mean alignment cos(W_p u_j, u_j)
    (NaN entries ignored)."""

    def statistic(ds: xr.Dataset) -> np.ndarray:
        return np.nanmean(ds[name].values, axis=-1)

    statistic.__name__ = f"mean_{name}"
    return statistic


def offdiagonal_mass(ds: xr.Dataset) -> np.ndarray:
    """||W_p - diag(W_p)||_F / ||W_p||_F per entry: 0 for a diagonal W_p, sqrt(1 - 1/d) on
    average for a random one (Liu et al. Fig. 3 shows W_p approaching cI)."""
    wp = ds["wp"].values
    diag = np.einsum("...ii->...i", wp)
    off = np.sqrt(np.maximum(np.sum(wp**2, axis=(-2, -1)) - np.sum(diag**2, axis=-1), 0.0))
    total = np.linalg.norm(wp, axis=(-2, -1))
    return np.where(total > 0, off / np.where(total > 0, total, 1.0), np.nan)


#: complete dimensional collapse: the projections' effective rank below this (one direction)
COLLAPSED_RANK = 2.0


def collapse_margin(ds: xr.Dataset) -> np.ndarray:
    """How far a run is from collapse, in decades (< 0: collapsed), by the toolkit's criteria.

    The toolkit calls an embedding collapsed when its spread z_std (the std of the
    l2-normalised projector outputs times sqrt(d)) falls below COLLAPSED_Z_STD
    (:func:`dynamics.observables.representation_collapsed`), and a mode of E[f f^T] collapsed
    when it falls below COLLAPSE_FRACTION of the initial largest eigenvalue (the ablations'
    convention, :func:`dynamics.models.ablations.collapse_summary`): a representation that
    shrinks to zero keeps its directions (z_std stays up) but loses every mode. A representation
    squeezed into one direction (RankMe effective rank below COLLAPSED_RANK = 2) has collapsed
    too. Per entry: log10 min(z_std / COLLAPSED_Z_STD, s_1 / (COLLAPSE_FRACTION s_1(0)),
    rank / COLLAPSED_RANK), s_1 the largest eigenvalue of F1 F1^T (``corr_eig``).
    """
    spread = ds["z_std"].values / COLLAPSED_Z_STD
    top = ds["corr_eig"].values.max(axis=-1)
    scale = COLLAPSE_FRACTION * top[0]
    shrink = top / scale if scale > 0 else np.zeros_like(top)
    rank = ds["effective_rank"].values / COLLAPSED_RANK
    return np.log10(np.maximum(np.minimum(np.minimum(spread, shrink), rank), 1e-12))


class Measured:
    """The runs of one claim: ``datasets[role][seed]`` (loaded Datasets), their configurations
    ``specs[role]``; ``failed[(role, seed)]`` holds why a run produced no measurements."""

    def __init__(
        self,
        datasets: dict[str, dict[int, xr.Dataset]],
        specs: dict[str, RunSpec],
        failed: dict[tuple[str, int], str] | None = None,
    ) -> None:
        self.datasets = datasets
        self.specs = specs
        self.failed = failed or {}

    def seeds(self, role: str) -> list[int]:
        """The seeds of ``role``, finished or failed, in order."""
        done = set(self.datasets.get(role, {}))
        return sorted(done | {s for r, s in self.failed if r == role})

    def values(self, role: str, stat: Statistic) -> dict[int, np.ndarray]:
        """seed -> the statistic at every measurement (NaN array for a failed run)."""
        out = {}
        for seed in self.seeds(role):
            ds = self.datasets.get(role, {}).get(seed)
            if ds is None:
                out[seed] = np.array([np.nan])
                continue
            value = stat(ds) if callable(stat) else ds[stat].values
            out[seed] = np.asarray(value, dtype=float).reshape(ds.sizes["epoch"], -1)[:, 0]
        return out

    def initial(self, role: str, stat: Statistic) -> list[float]:
        """Per seed: the statistic of the random encoder (entry 0)."""
        return [float(v[0]) for v in self.values(role, stat).values()]

    def final(self, role: str, stat: Statistic) -> list[float]:
        """Per seed: the statistic at the end of training (last entry)."""
        return [float(v[-1]) for v in self.values(role, stat).values()]

    def at(self, role: str, stat: Statistic, index: int) -> list[float]:
        """Per seed: the statistic at measurement ``index``."""
        return [float(v[index]) if v.size > 1 else np.nan for v in self.values(role, stat).values()]

    def change(self, role: str, stat: Statistic, relative: bool = False, start: int = 0):
        """Per seed: final - value at measurement ``start`` (0: the random encoder), divided by
        the latter when ``relative``."""
        first, last = self.at(role, stat, start), self.final(role, stat)
        if not relative:
            return [b - a for a, b in zip(first, last, strict=True)]
        return [(b - a) / a if a else np.nan for a, b in zip(first, last, strict=True)]

    def contrast(
        self, role_a: str, role_b: str, stat: Statistic, log2_ratio: bool = False
    ) -> tuple[list[int], list[float]]:
        """(seeds, final of ``role_a`` minus final of ``role_b``, or log2 of their ratio) over the
        seeds of both: runs of one seed share their initial weights, data order and
        augmentations. A ratio of values that are not both positive is NaN."""
        a = dict(zip(self.seeds(role_a), self.final(role_a, stat), strict=True))
        b = dict(zip(self.seeds(role_b), self.final(role_b, stat), strict=True))
        seeds = sorted(set(a) & set(b))
        if not log2_ratio:
            return seeds, [a[s] - b[s] for s in seeds]
        return seeds, [
            float(np.log2(a[s] / b[s])) if a[s] > 0 and b[s] > 0 else np.nan for s in seeds
        ]

    def steps(self, role: str) -> dict[int, np.ndarray]:
        """seed -> the optimiser step of every measurement."""
        return {
            seed: ds["step_at_measurement"].values.astype(float)
            for seed, ds in sorted(self.datasets.get(role, {}).items())
        }

    def series(self, role: str, stat: Statistic) -> tuple[list[list[float]], list[list[float]]]:
        """(steps, values) per finished seed: a figure's trajectories."""
        values = self.values(role, stat)
        xs, ys = [], []
        for seed, steps in self.steps(role).items():
            xs.append(steps.tolist())
            ys.append([float(v) for v in values[seed]])
        return xs, ys

    def eta_t(self, role: str) -> list[float]:
        """Per finished seed: eta t reached, the weight decay per unit flow time times the flow
        time at the end (empirical.flow); e^{-2 eta t} is the factor by which the initial
        condition's imprint on the conservation law has decayed."""
        return [
            float(np.sum(ds["eta_step"].values * np.diff(ds["flow_time_step"].values, prepend=0)))
            for _, ds in sorted(self.datasets.get(role, {}).items())
        ]

    def failures(self, *roles: str) -> str:
        """'run R seed S failed: why' lines for the given roles ('' when none failed)."""
        lines = [
            f"{self.specs[r].label} seed {s} failed: {why}"
            for (r, s), why in sorted(self.failed.items())
            if r in roles
        ]
        return "; ".join(lines)
