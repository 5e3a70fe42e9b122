"""A run's references (:func:`reports.references.references`) kept beside it, so that the
bridge's report stage, ``--resume`` and ``reports.build`` compute them once.

The replay and the ablation nulls of a full-size method run take minutes (thousands of
gradients over 4096 pairs) and depend only on the run's files (its measurements, ``moments.nc``
and ``pairs.nc``) and the code. They are stored beside the run's measurements as
``.references/<file>_references.nc`` (outside the run's own files) with a key: the code's git
revision and the files' sha256. A stored file is used only under the present key; nothing is
stored for code with uncommitted changes or outside a git checkout (the revision would not say
what computed the numbers) or where the folder is not writable. The numbers read back are the
numbers written (netCDF, float64).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Hashable, Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from reports.compare import Trajectory
from reports.inputs import Result, load_result
from reports.references import References, references, references_of
from symbolic.common.files import atomic_path
from symbolic.common.provenance import git_revision

CACHE_SUFFIX = "_references.nc"
CACHE_FOLDER = ".references"
#: the arrays of a Trajectory the references fill (reports.references.references)
FIELDS = ("t", "wp", "w", "sigma")


def cached_references(run: Result) -> References:
    """:func:`reports.references.references` of ``run``, read from :func:`cache_path` where
    its key matches, else computed (and stored where it can be)."""
    key = cache_key(run)
    found = read(cache_path(run), key)
    if found is None:
        found = references(run)
        store(run, key, found)
    return found


def cached_references_of(runs: Mapping[Hashable, str | Path], jobs: int = 1) -> dict:
    """{key: the references of the training run at ``runs[key]``}: those stored under the
    present key read back, the others computed by :func:`reports.references.references_of`
    (``jobs`` worker processes) and stored."""
    loaded = {name: load_result(path, "training") for name, path in runs.items()}
    keys = {name: cache_key(run) for name, run in loaded.items()}
    found = {name: read(cache_path(run), keys[name]) for name, run in loaded.items()}
    missing = {name: runs[name] for name, refs in found.items() if refs is None}
    for name, refs in (references_of(missing, jobs) if missing else {}).items():
        store(loaded[name], keys[name], refs)
        found[name] = refs
    return found


def store(run: Result, key: str | None, refs: References) -> None:
    """:func:`write` ``refs`` to :func:`cache_path` under ``key``; nothing without a key or
    where the folder is not writable."""
    if key is not None:
        with contextlib.suppress(OSError):
            write(cache_path(run), key, refs)


def cache_path(run: Result) -> Path:
    """Where the references of ``run`` are kept: in a hidden folder beside its measurements
    file, outside the files of the run (its ``manifest.json``, the runner's marker of the
    training: a cache written into the run folder changed its manifest, and ``--resume``
    trained every predicted run again)."""
    return run.path.parent / CACHE_FOLDER / (run.path.stem + CACHE_SUFFIX)


def cache_key(run: Result) -> str | None:
    """The code's git revision and the sha256 of the run's files, or None for code whose
    revision is unknown or has uncommitted changes."""
    revision = git_revision()
    if revision == "unknown" or revision.endswith("-dirty"):
        return None
    return json.dumps([revision, run.sha256, run.companion_sha256()], sort_keys=True)


def write(path: Path, key: str, refs: References) -> None:
    """``refs`` as netCDF at ``path`` (atomically): trajectory i's arrays as ``{field}_{i}``;
    its role (replay, inertial or the ablation's ingredient), eta and alpha_p and the notes in
    the attributes."""
    named = [("replay", "", refs.replay), ("inertial", "", refs.inertial)]
    named += [("ablation", name, traj) for name, traj in refs.ablations.items()]
    named = [item for item in named if item[2] is not None]
    ds = xr.Dataset()
    for i, (*_, traj) in enumerate(named):
        for field in FIELDS:
            value = getattr(traj, field)
            if value is not None:
                dims = [f"{field}_{i}_{axis}" for axis in range(np.ndim(value))]
                ds[f"{field}_{i}"] = (dims, np.asarray(value, dtype=float))
    ds.attrs["key"] = key
    ds.attrs["trajectories"] = json.dumps(
        [[role, name, traj.eta, traj.alpha_p] for role, name, traj in named]
    )
    ds.attrs["notes"] = json.dumps(refs.notes)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4")


def read(path: Path, key: str | None) -> References | None:
    """The References stored at ``path`` under ``key``; None without one (or another key)."""
    if key is None or not path.is_file():
        return None
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            if ds.attrs.get("key") != key:
                return None
            out = References(notes=json.loads(ds.attrs["notes"]))
            stored = json.loads(ds.attrs["trajectories"])
            for i, (role, name, eta, alpha_p) in enumerate(stored):
                arrays = {f: ds[f"{f}_{i}"].values for f in FIELDS if f"{f}_{i}" in ds}
                traj = Trajectory(eta=eta, alpha_p=alpha_p, **arrays)
                if role == "ablation":
                    out.ablations[name] = traj
                else:
                    setattr(out, role, traj)
    except (OSError, KeyError, ValueError):  # unreadable or not this module's file
        return None
    return out
