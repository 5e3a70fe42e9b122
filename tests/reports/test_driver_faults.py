"""The drivers (reports.reproduce, reports.bridge, reports.demo) under bad input and faults:
sizes refused before anything runs, a second driver into a held folder, kill -9 of the driver
(its trainings must die with it), a damaged plan, a resumed set with other sizes, a damaged
finished run (recomputed, the verdicts unchanged), --quiet, a full disk.

No test depends on speed: the commands run without a time limit, and a wait for a process to
appear or vanish is bounded only to turn a hang into a failure."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr

from symbolic.common.lock import exclusive
from tests.empirical.conftest import _fashion_arrays, write_idx

REPO = Path(__file__).resolve().parents[2]
#: the smallest claim: two configurations, three seeds (six runs of 48 steps)
CLAIM = "tian-fig2"
#: a wait for a process that should come or go within seconds; only a hang reaches it
PATIENCE_S = 600


def command(module: str, *args: str) -> subprocess.CompletedProcess:
    """A driver's command line as a user runs it (no time limit)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True
    )


def refused(proc: subprocess.CompletedProcess, *expected: str) -> str:
    """The one line of a refusal (exit status 2), which names every ``expected`` text."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("fashion_tiny")
    for name, array in _fashion_arrays(1000, 300).items():
        write_idx(root / f"{name}.gz", array)
    return f"fashion-mnist:{root}"


def claims(out: Path, data: str, *extra: str) -> list[str]:
    return ["--quick", "--claim", CLAIM, "--data", data, "--out", str(out), *extra]


# ---------------------------------------------------------------------------- sizes, at once
@pytest.mark.parametrize(
    "module,args,expected",
    [
        (
            "reports.reproduce",
            ["--plan", "--seeds", "1000000"],
            "--seeds 1000000: allowed 3 to 100",
        ),
        ("reports.reproduce", ["--plan", "--jobs", "100000"], "--jobs 100000: allowed 1 to 256"),
        ("reports.bridge", ["--quick", "--seeds", "1000000"], "--seeds 1000000: allowed 2 to 100"),
        ("reports.bridge", ["--quick", "--jobs", "0"], "--jobs 0: allowed 1 to 256"),
        ("reports.demo", ["--jobs", "0", "--audit", "none"], "--jobs 0: allowed 1 to 256"),
        ("reports.demo", ["--epochs", "0", "--audit", "none"], "--epochs 0 is not allowed"),
        (
            "reports.demo",
            ["--train-subset", "10", "--audit", "none"],
            "--train-subset 10 is not allowed",
        ),
    ],
)
def test_a_size_out_of_range_is_refused_before_anything_runs(tmp_path, module, args, expected):
    out = tmp_path / "out"
    refused(command(module, *args, "--out", str(out)), expected)
    assert not out.exists()


def test_a_bad_option_in_a_planned_command_line_is_refused_before_the_first_run(tmp_path):
    """The bridge checks every training command line with empirical.train's own parser."""
    out = tmp_path / "out"
    line = refused(command("reports.bridge", "--quick", "--precision", "fp64", "--out", str(out)))
    assert "fp64" in line and "fp32" in line
    assert not out.exists()


def test_a_gpu_asked_for_where_there_is_none_is_refused_at_once(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    out = tmp_path / "out"
    for module in ("reports.bridge", "reports.demo"):
        refused(command(module, "--device", "cuda", "--out", str(out)), "--device cuda")
    assert not out.exists()


# ---------------------------------------------------------------------------- two drivers
@pytest.mark.parametrize(
    "module,args",
    [
        ("reports.bridge", ["--quick", "--rungs", "1", "--no-scaling"]),
        ("reports.reproduce", ["--quick", "--claim", CLAIM]),
    ],
)
def test_a_second_driver_into_a_held_folder_refuses(tmp_path, tiny_data, module, args):
    out = tmp_path / "out"
    extra = ["--data", tiny_data] if module == "reports.reproduce" else []
    with exclusive(out, folder=True):  # another driver holds --out
        proc = command(module, *args, *extra, "--out", str(out))
        refused(proc, f"--out {out} is in use by another process (pid {os.getpid()})")
        assert [p.name for p in out.iterdir()] == [".lock"]  # nothing written


# ---------------------------------------------------------------------------- kill -9
def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _descendants(pid: int) -> list[int]:
    """The children of ``pid``, their children, and so on."""
    found, frontier = [], [pid]
    while frontier:
        children = [c for p in frontier for c in _children(p)]
        found += children
        frontier = children
    return found


def _command(pid: int) -> str:
    """The command line of ``pid`` and its name (a command forked from the runner's warm
    process has the warm process's command line and the module's name)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        return cmdline + " " + Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_training_dies_with_its_driver_killed_hard(tmp_path, tiny_data):
    """kill -9 of reports.reproduce while a training runs (forked from the runner's warm
    process): the training is gone too and never finishes its run (an orphan would go on and
    write a complete measurements.nc)."""
    out = tmp_path / "out"
    driver = subprocess.Popen(
        [sys.executable, "-m", "reports.reproduce", *claims(out, tiny_data, "--jobs", "1")],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + PATIENCE_S
    training = []
    while not training and driver.poll() is None and time.monotonic() < deadline:
        training = [c for c in _descendants(driver.pid) if "empirical.train" in _command(c)]
        time.sleep(0.02)
    assert training, "the driver started no training"
    child = training[0]
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(child), "the training outlived its driver"
    for results in (out / "work" / "runs").rglob("measurements.nc"):
        with xr.open_dataset(results) as ds:
            assert int(ds.attrs["partial"]) == 1, results  # killed midway, never finished


# ---------------------------------------------------------------------------- a set of claims
@pytest.fixture(scope="module")
def claimed(tmp_path_factory, tiny_data) -> tuple[Path, subprocess.CompletedProcess]:
    """One claim's --quick set, with --quiet, by the real command line."""
    out = tmp_path_factory.mktemp("claims") / "out"
    return out, command("reports.reproduce", *claims(out, tiny_data, "--quiet"))


@pytest.mark.slow
def test_quiet_prints_nothing_and_finishes(claimed):
    out, proc = claimed
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == "" and proc.stderr == ""
    assert (out / "claims.json").is_file()


@pytest.mark.slow
def test_resume_with_other_sizes_is_refused_in_one_line(claimed, tiny_data):
    out, _ = claimed
    plan = (out / "work" / "plan.json").read_text()
    args = ["--claim", CLAIM, "--data", tiny_data, "--out", str(out), "--resume"]
    refused(command("reports.reproduce", *args), "scale 'quick'", "scale 'cpu'", "--quick")
    refused(command("reports.reproduce", *args, "--plan"), "scale 'quick'", "scale 'cpu'")
    assert (out / "work" / "plan.json").read_text() == plan  # nothing rewritten


@pytest.mark.slow
@pytest.mark.parametrize(
    "damage", ['{"commands": [1]}', "{not json", '{"commands": {"x": 5}}', ""], ids=repr
)
def test_a_damaged_plan_is_refused_naming_the_file(claimed, tiny_data, tmp_path, damage):
    out, _ = claimed
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    plan = copy / "work" / "plan.json"
    plan.write_text(damage)
    files = {p: p.stat().st_mtime_ns for p in copy.rglob("*")}
    refused(command("reports.reproduce", *claims(copy, tiny_data, "--resume")), str(plan))
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("*")} == files  # nothing written


@pytest.mark.slow
def test_resume_recomputes_a_truncated_run_and_keeps_the_verdicts(claimed, tiny_data, tmp_path):
    """A finished run's measurements.nc truncated: --resume recomputes that run (only that
    one), and every claim's per-seed effects and verdicts are those of the intact set."""
    out, _ = claimed
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    runs = sorted((copy / "work" / "runs").rglob("measurements.nc"))
    damaged = runs[1]
    with open(damaged, "r+b") as fh:
        fh.truncate(damaged.stat().st_size // 2)
    others = {p: p.stat().st_mtime_ns for p in runs if p != damaged}
    proc = command("reports.reproduce", *claims(copy, tiny_data, "--resume"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "recomputed" in proc.stdout and str(damaged) in proc.stdout
    assert proc.stdout.count("recomputed") == 1
    with xr.open_dataset(damaged) as ds:
        assert int(ds.attrs["partial"]) == 0
    assert {p: p.stat().st_mtime_ns for p in others} == others  # the intact runs kept
    before = json.loads((out / "claims.json").read_text())["claims"]
    after = json.loads((copy / "claims.json").read_text())["claims"]
    for a, b in zip(before, after, strict=True):
        assert a["verdict"] == b["verdict"], a["id"]
        assert [t["effects"] for t in a["tests"]] == [t["effects"] for t in b["tests"]], a["id"]


@pytest.mark.slow
def test_a_rerun_without_resume_is_refused(claimed, tiny_data):
    out, _ = claimed
    refused(command("reports.reproduce", *claims(out, tiny_data)), "pass --resume")


# ---------------------------------------------------------------------------- files
def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def full_disk(tmp_path) -> Path:
    """A 2 MiB tmpfs filled to ~100 KiB free (where this machine allows mounting one)."""
    disk = tmp_path / "full"
    disk.mkdir()
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)):
        pytest.skip("cannot mount a tmpfs here")
    (disk / "filler").write_bytes(b"\0" * (1900 * 1024))
    yield disk
    subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_full_disk_is_one_line_naming_the_device_and_leaves_nothing(full_disk, tiny_data):
    out = full_disk / "claims"
    proc = command("reports.reproduce", *claims(out, tiny_data))
    line = refused(proc, str(out))
    assert "free on its device" in line or "no space left" in line, line
    assert not out.exists()
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


@pytest.fixture
def read_only(tmp_path) -> Path:
    """A read-only bind mount (root ignores permissions, not a read-only file system)."""
    source, target = tmp_path / "source", tmp_path / "ro"
    source.mkdir()
    target.mkdir()
    if os.geteuid() != 0 or not _mount("--bind", str(source), str(target)):
        pytest.skip("cannot bind-mount here")
    if not _mount("-o", "remount,bind,ro", str(target)):
        subprocess.run(["umount", str(target)], capture_output=True)
        pytest.skip("cannot remount read-only here")
    yield target
    subprocess.run(["umount", str(target)], capture_output=True)


@pytest.mark.parametrize("module", ["reports.bridge", "reports.reproduce", "reports.demo"])
def test_a_read_only_file_system_is_refused_naming_the_folder(read_only, module):
    out = read_only / "x"
    extra = ["--plan"] if module == "reports.reproduce" else []
    refused(command(module, *extra, "--out", str(out)), f"cannot write into {read_only}")


# ---------------------------------------------------------------------------- markers
def test_a_marker_keeps_a_finished_command_until_one_of_its_files_changes(tmp_path):
    """The completion marker against the files themselves: unchanged -> done; truncated,
    rewritten with other bytes, or removed -> recomputed, with the file named."""
    import numpy as np

    from reports.experiments import Workspace
    from reports.experiments.commands import train

    work = tmp_path / "work"
    run = work / "runs" / "a"
    command = train("a", ["byol", "--seed", "0"], run)
    workspace = Workspace(work, "test", "--work", [])
    assert workspace.state(command) == ("new", "")
    run.mkdir(parents=True)
    xr.Dataset({"x": ("t", np.arange(100.0))}, attrs={"partial": 0}).to_netcdf(run / "m.nc")
    (run / "checkpoint.pt").write_bytes(b"weights")
    assert workspace.state(command) == ("resume", "")  # a checkpoint, no marker: continue it
    workspace.markers.finish(command, 1.5)
    assert workspace.state(command) == ("done", "")
    assert workspace.timings() == {"a": 1.5}
    data = (run / "m.nc").read_bytes()
    for damage in (data[: len(data) // 2], data[:-1] + b"\x01"):
        (run / "m.nc").write_bytes(damage)
        state, why = workspace.state(command)
        assert state == "new" and str(run / "m.nc") in why, why
    (run / "m.nc").write_bytes(data)
    assert workspace.state(command) == ("done", "")
    (run / "checkpoint.pt").unlink()
    state, why = workspace.state(command)
    assert state == "new" and "checkpoint.pt is missing" in why
