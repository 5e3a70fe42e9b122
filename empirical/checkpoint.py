"""A run's checkpoint: what it holds, written atomically, read with ``weights_only=True``.

A checkpoint holds only tensors and plain containers of numbers and strings: model and optimiser
state dicts, every rank's augmentation generator state (restored rank by rank: a DDP resume
draws the views an uninterrupted run draws), every global RNG state (torch, CUDA, numpy,
python), the epoch and step counters, the per-step record, the measurement history and the loss
terms summed since the last measurement (:func:`loss_sums`). It is
written to a temporary file in the same folder and renamed
(:func:`symbolic.common.files.atomic_path`), so the previous checkpoint survives a crash; the
checkpoint it replaces is kept as ``checkpoint.previous.pt``.

The first checkpoint opts the run folder into a manifest (:mod:`symbolic.common.manifest`): the
sizes and SHA-256 hashes of the checkpoints, ``measurements.nc`` and ``moments.nc`` as written,
kept up to date by every later write. :func:`resume` (``--resume``) continues from the latest
checkpoint that is as it was written and loads: the previous one when the latest was cut short
or changed since (it says so); with none, one line naming each checkpoint and its damage. The
other files are recomputed from it: ``measurements.nc`` from the checkpoint's record (by the
caller), a damaged ``moments.nc`` removed so that the run writes it again (its data moments).
"""

from __future__ import annotations

import os
import pickle
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from empirical.distributed import all_ranks
from empirical.record import from_storable, to_storable
from symbolic.common import manifest
from symbolic.common.cli import UsageError
from symbolic.common.files import atomic_path
from symbolic.common.options import resume_conflicts

FORMAT = 3
CHECKPOINT = "checkpoint.pt"
#: the checkpoint before the latest, which ``--resume`` falls back on
PREVIOUS = "checkpoint.previous.pt"


def rng_state() -> dict[str, Any]:
    """Global RNG states as tensors and lists (weights_only-loadable)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (saving the global state)
    version, py_state, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {"version": version, "state": list(py_state), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


#: the files of a run folder that a resumed run builds on (or reports), checked on --resume
RECORDED = (CHECKPOINT, PREVIOUS, "measurements.nc", "moments.nc")
#: the data moments of a linear run: recomputed by the resumed run when damaged
MOMENTS = "moments.nc"


def save_checkpoint(state: dict[str, Any], path: Path) -> Path:
    """torch.save to a temporary file beside ``path``, then rename over it (atomic), the file it
    replaces kept as :data:`PREVIOUS`; the first one starts the folder's manifest of
    :data:`RECORDED` files."""
    path = Path(path)
    if path.exists():  # a second name for it: the latest stays in place until replaced
        previous = path.with_name(PREVIOUS)
        previous.unlink(missing_ok=True)
        try:
            os.link(path, previous)
        except OSError:  # a file system without hard links
            shutil.copy2(path, previous)
        manifest.rename(path.parent, path.name, PREVIOUS)
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)
    if not manifest.manifest_of(Path(path).parent).exists():
        manifest.start(Path(path).parent, RECORDED)
    return Path(path)


#: what a checkpoint of this format holds (and ``loss_sums``/``loss_count``, optional: see
#: :func:`loss_sums`)
KEYS = ("config", "epoch", "step", "steps", "model", "optimizer", "generator", "rng", "history")


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load with ``weights_only=True`` onto the CPU.

    ValueError naming the problem for a run folder whose recorded files were damaged since they
    were written (:data:`RECORDED`), an empty or truncated file, a file that is not a checkpoint
    (not a dictionary), another format version, or missing entries.
    """
    try:
        manifest.verify(Path(path).parent, [Path(path).name])
    except ValueError as err:
        raise ValueError(f"damaged: {err}") from None
    if Path(path).stat().st_size == 0:
        raise ValueError("the file is empty")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (EOFError, RuntimeError, pickle.UnpicklingError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"not a readable checkpoint ({reason})") from None
    if not isinstance(state, dict):
        raise ValueError(f"holds a {type(state).__name__}, not a checkpoint dictionary")
    if state.get("format") != FORMAT:
        raise ValueError(f"checkpoint format {state.get('format')!r}, expected {FORMAT}")
    missing = [k for k in KEYS if k not in state]
    if missing:
        raise ValueError(f"incomplete checkpoint: no {', '.join(missing)}")
    return state


def run_state(run) -> dict[str, Any]:
    """Everything :func:`resume` needs to continue ``run`` (an :class:`empirical.trainer.Run`)
    bit-identically: configuration, counters, model, optimiser, random streams, the record."""
    record = run.recorder
    return {
        "config": run.cfg.to_dict(),
        "epoch": run.epoch,
        "step": run.step,
        "model": run.method.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "generator": all_ranks(run.generator.get_state()),
        "rng": rng_state(),
        "steps": {k: torch.tensor(v, dtype=torch.float64) for k, v in record.steps.items()},
        "history": [to_storable(e) for e in record.history],
        "loss_sums": {k: torch.as_tensor(v).detach().cpu() for k, v in record.loss_sums.items()},
        "loss_count": record.loss_count,
        "skipped_files": record.skipped_files(),
    }


def loss_sums(state: dict[str, Any], path: Path, device) -> tuple[dict[str, torch.Tensor], int]:
    """The loss terms summed over the steps since the last measurement, on ``device``, and their
    count: the next measurement's ``loss*`` means continue from them as the uninterrupted run's do.

    A checkpoint written before they were stored has no ``loss_sums``: taken at a measurement
    (every checkpoint of a run measured once an epoch) the sums were empty, ``({}, 0)``; taken
    between two, UsageError, as its next loss would average only the steps after the resume.
    """
    if "loss_sums" in state:
        sums = {k: v.to(device) for k, v in state["loss_sums"].items()}
        return sums, int(state["loss_count"])
    measured = int(state["history"][-1]["step"])
    if measured != int(state["step"]):
        raise UsageError(
            f"--resume: {path} was taken at step {state['step']}, between measurements (the last "
            f"at step {measured}), by a version that did not store the loss sums since then; "
            "train again into another --out"
        )
    return {}, 0


def checkpoints(folder: Path) -> list[Path]:
    """The checkpoints of run folder ``folder``, the latest first."""
    return [p for p in (Path(folder) / CHECKPOINT, Path(folder) / PREVIOUS) if p.exists()]


def last_good(folder: Path) -> tuple[dict[str, Any], Path, list[str]]:
    """(state, path, what was wrong with the later ones) of the latest checkpoint in ``folder``
    that is intact and loads; UsageError naming each checkpoint and its damage when none is."""
    problems = []
    for path in checkpoints(folder):
        try:
            return load_checkpoint(path), path, problems
        except (RuntimeError, ValueError, OSError, EOFError, TypeError, KeyError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            problems.append(f"cannot load {path}: {reason}")
    if not problems:
        raise UsageError(f"--resume: no checkpoint at {Path(folder) / CHECKPOINT}")
    raise UsageError(
        f"--resume: {'; nor the previous one: '.join(problems)}; restore the file or train again "
        "into another --out"
    )


def resume(run, folder: Path) -> str:
    """Load the last good checkpoint of run folder ``folder`` into ``run`` (a damaged data
    moments file removed, to be written again); UsageError when there is none or it was made
    with other options. Returns what was resumed, in words."""
    state, path, problems = last_good(folder)
    moments = manifest.damage(folder, [MOMENTS])
    if moments:
        (Path(folder) / MOMENTS).unlink()
    conflicts = resume_conflicts(state["config"], run.cfg)
    if conflicts:
        raise UsageError(
            f"--resume: {path} was made with other options ({'; '.join(conflicts[:3])}); "
            "use the same options or another --out"
        )
    run.epoch, run.step = int(state["epoch"]), int(state["step"])
    run.method.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    streams, rank = state["generator"], run.info.rank
    if len(streams) == run.info.world:
        run.generator.set_state(streams[rank])
    else:  # another number of processes: a fresh stream per rank, fixed by (seed, rank, step)
        seed = np.random.SeedSequence([run.cfg.seed, rank, run.step]).generate_state(1)[0]
        run.generator.manual_seed(int(seed))
    set_rng_state(state["rng"])
    record = run.recorder
    record.steps = {k: v.tolist() for k, v in state["steps"].items()}
    record.history = [from_storable(e) for e in state["history"]]
    record.skipped_before = set(state["skipped_files"])
    record.loss_sums, record.loss_count = loss_sums(state, path, run.device)
    said = f"resumed {path} at epoch {run.epoch}, step {run.step}"
    if problems:
        said += f" (the latest checkpoint is damaged: {problems[0]})"
    return said + "".join(f"; recomputing {m}" for m in moments)
