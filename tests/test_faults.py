"""Faults around the edges (issue 13): kills during writes, orphaned workers, partial markers,
locks, interrupted and failed sweeps, damaged parts, fully collapsed simulations.

Processes are killed for real (SIGKILL, SIGINT) at chosen moments: a training run while it writes
a checkpoint (made large, so that the write takes a while, and caught by watching for its
temporary file), a sweep while its workers run. The next command in the same output must clean
what the killed one left and finish; nothing of ours may stay behind (temporary files, lock
files, parts folders, worker processes).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from dynamics.simulate import RunSettings
from dynamics.sweep import run as sweep_run
from dynamics.sweep.run import run_sweep
from symbolic.common.cli import run_main
from symbolic.common.files import atomic_path
from symbolic.common.lock import exclusive, lock_file
from tests.empirical.conftest import write_idx

REPO = Path(__file__).resolve().parents[1]
#: a tiny training run whose checkpoint is large (an MLP encoder of 1536 units: about 45 MB), so
#: that the kill can land while it is written
BIG_CHECKPOINT = (
    "--train-subset 256 --batch-size 64 --val-size 50 --no-probes --eval-size 64 "
    "--backbone mlp --width 1536 --depth 2 --proj-hidden 64 --proj-dim 16 --pred-hidden 64 "
    "--optimizer sgd --workers 0 --threads 1 --quiet"
).split()
#: a tiny training run of a few seconds (no --threads: it also runs in this process)
SMALL_RUN = (
    "--train-subset 256 --batch-size 64 --val-size 50 --no-probes --eval-size 64 --width 4 "
    "--proj-hidden 16 --proj-dim 8 --pred-hidden 16 --workers 0 --quiet"
).split()
#: a sweep of the matrix model, point by point, each point a fraction of a second
SLOW_SWEEP = ["linear_byol", "--dim", "8", "--input-dim", "8", "--t-end", "50", "--quiet"]


def python_m(*args: str, **kwargs) -> subprocess.Popen:
    """``python -m ARGS`` started as from a shell: one thread, and SIGINT at its default
    whatever this process's handler is (an ignored SIGINT is inherited: the child would
    never see Ctrl-C)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=kwargs.pop("cwd", REPO),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        **kwargs,
    )


def wait_for(condition, timeout: float, proc: subprocess.Popen | None = None, poll=0.002):
    """Poll ``condition()`` until it is true; fail when ``proc`` ends first or on timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the process ended first (exit {proc.returncode}): {proc.stderr.read()}")
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout} s waiting for {condition}")


def ours(folder: Path) -> list[str]:
    """What our writers leave when they die: temporary files, lock files, parts folders."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.name.endswith((".tmp", ".lock")) or p.name == ".lock" or p.name.endswith(".parts")
    )


def alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def workers_of(pid: int) -> list[int]:
    """The process-pool workers (multiprocessing spawn children) of process ``pid``."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "spawn_main" in cmdline:
                found.append(child)
    return found


@pytest.fixture(scope="module")
def fashion(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fashion")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 320), ("t10k", 100)):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    return root


@pytest.fixture(scope="module")
def killed_run(fashion, tmp_path_factory) -> Path:
    """A 3-epoch run killed (SIGKILL) while it wrote its epoch-2 checkpoint: the folder holds
    the epoch-1 checkpoint, measurements up to epoch 2 and the orphaned temporary file."""
    for _ in range(3):  # the kill may miss the write (it is over before we look): try again
        out = tmp_path_factory.mktemp("killed") / "run"
        proc = python_m(
            "empirical.train", "byol", "--data", f"fashion-mnist:{fashion}", "--epochs", "3",
            "--out", str(out), *BIG_CHECKPOINT,
        )  # fmt: skip
        try:
            wait_for(lambda out=out: (out / "checkpoint.pt").exists(), 120, proc)
            wait_for(lambda out=out: list(out.glob(".checkpoint.pt.*.tmp")), 120, proc, 0.0005)
            proc.kill()
        finally:
            proc.kill()
            proc.communicate()
        if list(out.glob(".checkpoint.pt.*.tmp")):
            return out
    pytest.fail("three kills missed the checkpoint write")


def test_kill_during_a_checkpoint_write_leaves_debris_that_resume_removes(
    killed_run, fashion, tmp_path
):
    run = tmp_path / "run"
    shutil.copytree(killed_run, run)
    assert list(run.glob(".checkpoint.pt.*.tmp")), "the fixture's kill left no temporary file"
    proc = python_m(
        "empirical.train", "byol", "--data", f"fashion-mnist:{fashion}", "--out", str(run),
        "--resume", "--epochs", "3", *BIG_CHECKPOINT,
    )  # fmt: skip
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert ours(run) == [], "the resumed run left temporary or lock files"
    with xr.open_dataset(run / "measurements.nc") as ds:
        assert ds.attrs["partial"] == 0 and ds.attrs["epochs_completed"] == 3


def test_a_killed_run_is_marked_partial_and_reported_as_such(killed_run):
    from reports.inputs import load_inputs

    with xr.open_dataset(killed_run / "measurements.nc") as ds:
        assert ds.attrs["partial"] == 1
        assert ds.attrs["epochs_completed"] < 3
        assert "--resume" in ds.attrs["status"]
    _, runs = load_inputs([], [str(killed_run)])
    assert runs[0].partial and "PARTIAL" in runs[0].describe()


def test_sweep_workers_exit_when_the_sweep_is_killed(tmp_path):
    proc = python_m(
        "dynamics.sweep", *SLOW_SWEEP, "--grid", "eta=0:0.2:400", "--workers", "2",
        "--out", str(tmp_path / "s.nc"),
    )  # fmt: skip
    workers: list[int] = []
    try:
        workers = wait_for(lambda: len(workers_of(proc.pid)) == 2 and workers_of(proc.pid), 60,
                           proc, 0.05)  # fmt: skip
        wait_for(lambda: list(tmp_path.glob("s.nc.parts/unit_*.npz")), 60, proc, 0.05)
        proc.kill()
        proc.wait()  # not communicate(): orphaned workers would hold its pipes open
        start = time.monotonic()
        while any(alive(w) for w in workers) and time.monotonic() - start < 5:
            time.sleep(0.05)
        left = [w for w in workers if alive(w)]
        assert not left, f"workers {left} outlived the killed sweep"
    finally:
        proc.kill()
        for w in workers:  # only the workers this test started
            if alive(w):
                os.kill(w, signal.SIGKILL)
        proc.stdout.close()
        proc.stderr.close()


def test_a_locked_sweep_output_is_refused_and_a_killed_holder_does_not_block(tmp_path, capsys):
    from dynamics.sweep.cli import main

    out = tmp_path / "s.nc"
    argv = [*SLOW_SWEEP, "--grid", "eta=0:0.2:60", "--out", str(out)]
    proc = python_m("dynamics.sweep", *argv)
    try:
        wait_for(lambda: lock_file(out, folder=False).exists(), 60, proc, 0.02)
        capsys.readouterr()
        assert run_main(main, argv) == 2
        err = capsys.readouterr().err
        assert f"pid {proc.pid}" in err and "in use by another process" in err
        wait_for(lambda: list(tmp_path.glob("s.nc.parts/unit_*.npz")), 60, proc, 0.02)
    finally:
        proc.kill()
        proc.communicate()
    assert lock_file(out, folder=False).exists()  # the killed holder's file: no longer a lock
    stored = len(list(tmp_path.glob("s.nc.parts/unit_*.npz")))
    # what a kill during a unit's write leaves (the kill above may or may not have hit one)
    (tmp_path / "s.nc.parts" / ".unit_000000059.npz.x1y2.tmp").write_bytes(b"half a unit")
    assert run_main(main, argv) == 2  # the stored units are not thrown away without --resume
    assert "--resume" in capsys.readouterr().err
    assert run_main(main, [*argv, "--resume"]) == 0, capsys.readouterr().err
    assert out.exists() and ours(tmp_path) == []
    with xr.open_dataset(out) as ds:
        assert ds.attrs["resumed_points"] == stored and ds.sizes["eta"] == 60


def test_a_second_training_into_a_busy_folder_is_refused(fashion, tmp_path, capsys):
    from empirical.train import main

    out = tmp_path / "run"
    options = ["--data", f"fashion-mnist:{fashion}", "--epochs", "3", "--out", str(out)]
    proc = python_m("empirical.train", "byol", *options, *SMALL_RUN, "--threads", "1")
    try:
        wait_for(lambda: (out / ".lock").exists(), 120, proc, 0.02)
        capsys.readouterr()
        code = run_main(main, ["byol", *options, *SMALL_RUN])
        err = capsys.readouterr().err
        assert code == 2 and f"pid {proc.pid}" in err, err
        _, first_err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, first_err
    log = (out / "log.txt").read_text()
    assert log.count("summary:") == 1 and "in use" not in log
    assert ours(out) == []


def test_sigint_of_a_sweep_says_how_to_resume(tmp_path):
    out = tmp_path / "s.nc"
    # 3000 units of one point: once the first is stored the rest take seconds, so the signal
    # comes before the end even when this process waits a while for the CPU (300 did not)
    proc = python_m("dynamics.sweep", *SLOW_SWEEP, "--grid", "eta=0:0.2:3000", "--out", str(out))
    try:
        wait_for(lambda: list(tmp_path.glob("s.nc.parts/unit_*.npz")), 60, proc, 0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=600)  # a guard against a hang, not a timing
    finally:
        proc.kill()
    assert proc.returncode == 130
    line = err.strip().splitlines()[-1]
    assert "points are stored in" in line and "--resume" in line, err
    assert "Traceback" not in err and not out.exists()
    assert not lock_file(out, folder=False).exists()


def test_an_interrupted_run_main_leaves_the_callers_sigint_handler(capsys):
    """In-process (a notebook, a test) an interrupted command returns 130 and the caller's
    Ctrl-C still works; only a command's own exit (exit_main) ignores SIGINT while it exits."""

    def interrupted(_argv):
        raise KeyboardInterrupt("resume with --resume")

    before = signal.getsignal(signal.SIGINT)
    assert run_main(interrupted, [], prog="cmd") == 130
    assert signal.getsignal(signal.SIGINT) is before
    assert capsys.readouterr().err.strip() == "cmd: interrupted: resume with --resume"
    code = "\n".join((
        "import signal, sys",
        "from symbolic.common.cli import exit_main",
        "def main(_argv):",
        "    raise KeyboardInterrupt",
        "try:",
        "    exit_main(main, prog='cmd')",
        "finally:",
        "    print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)",
    ))  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 130 and proc.stdout.strip() == "True", proc.stderr


EIGEN = {"p0": "0.02:1.2", "s0": "0.1:0.1"}


def test_a_damaged_unit_is_found_first_and_recomputed(tmp_path, capsys):
    out = tmp_path / "s.nc"
    grid = ["eta=0:0.3:12"]

    def stop_after_three(unit, seen=[]):  # noqa: B006 (a counter kept across calls)
        seen.append(unit)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt, match="--resume"):
        run_sweep("eigenmodes", grid, EIGEN, out=out, chunk=2, on_unit=stop_after_three)
    parts = sorted((tmp_path / "s.nc.parts").glob("unit_*.npz"))
    assert len(parts) == 3
    parts[1].write_bytes(parts[1].read_bytes()[:100])  # truncated, as by a failing disk
    capsys.readouterr()
    ran = []
    ds = run_sweep("eigenmodes", grid, EIGEN, out=out, chunk=2, resume=True,
                   on_unit=lambda u: ran.append(u.start))  # fmt: skip
    assert f"{parts[1]} was damaged" in capsys.readouterr().err
    assert ds.attrs["resumed_points"] == 4 and len(ran) == 4  # 2 damaged + 6 missing points
    full = run_sweep("eigenmodes", grid, EIGEN, chunk=2)
    for name in ("wp_eig_real", "mode_collapsed", "time_to_converge"):
        np.testing.assert_array_equal(ds[name].values, full[name].values)
    assert ours(tmp_path) == []


def test_a_sweep_that_fails_before_its_first_unit_leaves_nothing(tmp_path, monkeypatch):
    def broken(*args):
        raise RuntimeError("the unit failed")

    monkeypatch.setattr(sweep_run, "run_unit", broken)
    with pytest.raises(RuntimeError):
        run_sweep("eigenmodes", ["eta=0:0.3:4"], EIGEN, out=tmp_path / "s.nc")
    assert list(tmp_path.iterdir()) == []  # no parts folder in the next run's way, no lock
    monkeypatch.undo()
    assert run_sweep("eigenmodes", ["eta=0:0.3:4"], EIGEN, out=tmp_path / "s.nc").sizes["eta"] == 4


def test_the_lock_file_is_removed_on_release_and_relocked_safely(tmp_path):
    out = tmp_path / "result.nc"
    with exclusive(out, folder=False) as path:
        assert path.read_text().strip() == str(os.getpid())
    assert not path.exists()
    path.write_text("12345\n")  # left by a holder killed with -9: not a lock any more
    with exclusive(out, folder=False):
        assert path.read_text().strip() == str(os.getpid())
    assert not path.exists()


def test_a_fully_collapsed_simulation_is_written_and_reported_collapsed(tmp_path, capsys):
    from dynamics.simulate import main
    from reports.inputs import load_inputs
    from reports.tables import predictions_table

    out = tmp_path / "collapse.nc"
    argv = ["linear_byol", "--eta", "0.2", "--t-end", "1500", "--n-out", "301", "--out", str(out)]
    capsys.readouterr()
    assert run_main(main, argv) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "COLLAPSED: all 12 modes collapsed" in text and "undefined from t=" in text
    with xr.open_dataset(out) as ds:
        undefined = ds.attrs["undefined_values"].split(", ")
        assert "tau" in undefined and np.isnan(ds["tau"].values[-1])
        assert np.isfinite(ds["tau"].values[0])  # defined while the weights are resolved
        assert float(ds["w_norm"][-1]) < 1e-12 * float(ds["w_norm"][0])
        assert ds["mode_collapsed"].values.tolist() == [1] * 12
    sims, _ = load_inputs([str(out)], [])
    assert predictions_table(sims).frame.iloc[0]["collapsed"] == "all 12"


@pytest.mark.parametrize(
    "argv,collapsed",
    [
        (["directpred"], "none of 12"),
        (["directpred", "--convention", "code"], "all 12"),
        (["no_stopgrad"], None),
    ],
)
def test_summary_and_report_count_the_same_collapsed_modes(argv, collapsed, tmp_path, capsys):
    """DirectPred's default shows the method working (no collapse); its code convention
    collapses every mode; the report's table and the command's summary agree in each case."""
    from dynamics.simulate import main
    from reports.inputs import load_inputs
    from reports.tables import predictions_table

    out = tmp_path / "r.nc"
    capsys.readouterr()
    assert run_main(main, [*argv, "--n-out", "51", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    dim = 12
    line = next(line for line in text.splitlines() if "2% of" in line and f"of {dim}" in line)
    alive = int(re.search(rf"(\d+) of {dim}", line).group(1))  # the summary's surviving modes
    sims, _ = load_inputs([str(out)], [])
    shown = predictions_table(sims).frame.iloc[0]["collapsed"]
    if alive in (0, dim):
        assert shown == ("all 12" if alive == 0 else "none of 12"), (line, shown)
    else:
        assert shown.startswith("mode") and shown.count(",") + 1 == dim - alive or "-" in shown
    if collapsed is not None:
        assert shown == collapsed
    with xr.open_dataset(out) as ds:
        assert int(ds["mode_collapsed"].sum()) == dim - alive


def test_the_demo_can_run_again_into_its_own_folders(tmp_path):
    """validate() accepts a report folder and a work folder a previous demo wrote."""
    from reports.demo import WORK_MARKER, build_parser, validate

    out, work = tmp_path / "report", tmp_path / "demo_work"
    out.mkdir()
    (out / "report.md").write_text("# an earlier report\n")
    work.mkdir()
    (work / WORK_MARKER).write_text("python -m reports.demo owns this folder\n")
    (work / "runs").mkdir()
    args = build_parser().parse_args(["--out", str(out), "--work", str(work), "--audit", "none"])
    assert validate(args)[:2] == (out, work)
    (work / WORK_MARKER).unlink()
    args = build_parser().parse_args(["--out", str(out), "--work", str(work), "--audit", "none"])
    with pytest.raises(Exception, match="not a work folder of python -m reports.demo"):
        validate(args)


def test_result_files_get_ordinary_permissions(tmp_path, capsys):
    """Results are created as open(..., "w") would create them (0666 less the umask), like the
    figures, not with mkstemp's 0600."""
    from dynamics.simulate import main as simulate_main
    from symbolic.derive import main as derive_main

    umask = os.umask(0o022)
    try:
        assert run_main(simulate_main, ["eigenmodes", "--out", str(tmp_path / "e.nc")]) == 0
        run_sweep("eigenmodes", ["eta=0:0.3:3"], EIGEN, out=tmp_path / "s.nc")
        assert run_main(derive_main, ["simsiam", "--check", "--out", str(tmp_path / "d.json")]) == 0
    finally:
        os.umask(umask)
    for name in ("e.nc", "s.nc", "d.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
    assert ours(tmp_path) == []


# ------------------------------------------------------------------------------------ issue 24
def run_in_process(module: str, argv: list[str], capsys) -> tuple[int, list[str]]:
    """(exit status, non-empty stderr lines) of ``python -m MODULE ARGV`` in this process."""
    import importlib

    main = importlib.import_module(module).main
    capsys.readouterr()
    code = run_main(main, argv, prog=f"python -m {module}")
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def files_in(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*")}


def mounted(folder: Path, options: str):
    """Mount a tmpfs at ``folder`` (root only), or skip the test where mounting is refused."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'not root'})")


@pytest.fixture
def full_disk(tmp_path):
    """A 2 MiB file system filled to about 97 KB free: a full disk."""
    folder = tmp_path / "full"
    mounted(folder, "size=2m")
    try:
        (folder / "fill").write_bytes(bytes(2_000_000))
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def a_simulation(tmp_path_factory) -> Path:
    from dynamics.simulate import simulate
    from symbolic.common.results import write_netcdf

    path = tmp_path_factory.mktemp("sim") / "e.nc"
    ds = simulate("eigenmodes", RunSettings(t_end=100, n_out=51))
    write_netcdf(
        ds,
        path,
        undefined=[n.strip() for n in ds.attrs.get("undefined_values", "").split(",") if n.strip()],
    )
    return path


FULL_DISK_CASES = {
    "simulate": ("dynamics.simulate", ["linear_byol", "--out", "{full}/x.nc", "--quiet"]),
    "simulate-plot": (
        "dynamics.simulate",
        ["eigenmodes", "--n-out", "51", "--plot", "--out", "{full}/y.nc", "--quiet"],
    ),
    "phase": ("dynamics.phase", ["line", "--out", "{full}/ph", "--quiet"]),
    "build": (
        "reports.build",
        ["--audit", "none", "--sim", "{sim}", "--out", "{full}/rep", "--quiet"],
    ),
    "train": (
        "empirical.train",
        [
            "byol",
            "--data",
            "fashion-mnist:{fashion}",
            "--epochs",
            "1",
            "--out",
            "{full}/run",
            *SMALL_RUN,
        ],
    ),
}


@pytest.mark.parametrize("name", FULL_DISK_CASES)
def test_a_full_disk_is_one_line_naming_the_path_and_leaves_nothing(
    name, full_disk, a_simulation, fashion, capsys
):
    module, argv = FULL_DISK_CASES[name]
    fill = {"full": full_disk, "sim": a_simulation, "fashion": fashion}
    code, lines = run_in_process(module, [a.format(**fill) for a in argv], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert "no space left on the device" in lines[0] and f"cannot write {full_disk}/" in lines[0]
    assert files_in(full_disk) == {"fill": 2_000_000}, "a file was left on the full disk"


def test_a_read_only_file_system_is_not_called_permission_denied(tmp_path, capsys):
    folder = tmp_path / "ro"
    mounted(folder, "size=1m,ro")
    try:
        code, lines = run_in_process(
            "dynamics.simulate", ["eigenmodes", "--out", str(folder / "x.nc")], capsys
        )
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
    assert code == 2 and len(lines) == 1, lines
    assert f"cannot write into {folder} (read-only file system)" in lines[0]


def test_an_unnamed_writer_failure_on_a_full_disk_is_reported_as_such(
    tmp_path, monkeypatch, capsys
):
    """HDF5 reports ENOSPC as "RuntimeError: NetCDF: HDF error": with no space left in the
    folder, that is a full disk, named by the result's path (not the temporary file's)."""
    from symbolic.common import files

    def half_written(self, path, *args, **kwargs):
        Path(path).write_bytes(b"\x89HDF half a file")
        raise RuntimeError("NetCDF: HDF error")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", half_written)
    monkeypatch.setattr(files, "free_bytes", lambda folder: 0)
    out = tmp_path / "x.nc"
    code, lines = run_in_process("dynamics.simulate", ["eigenmodes", "--out", str(out)], capsys)
    assert code == 2 and lines == [
        f"python -m dynamics.simulate: error: cannot write {out}: no space left on the device"
    ]
    assert list(tmp_path.iterdir()) == []


def test_a_figure_that_cannot_be_written_takes_its_result_back(tmp_path, monkeypatch, capsys):
    """--plot: the .nc is written first; the figure fails (ENOSPC): the earlier version of the
    .nc is back in place and no new file stays."""
    import errno

    from matplotlib.figure import Figure

    out = tmp_path / "y.nc"
    out.write_bytes(b"the previous result")

    def no_space(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"%PDF-1.4 cut")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", no_space)
    argv = ["eigenmodes", "--n-out", "51", "--plot", "--quiet", "--out", str(out)]
    code, lines = run_in_process("dynamics.simulate", argv, capsys)
    assert code == 2 and len(lines) == 1 and f"cannot write {tmp_path}/y." in lines[0], lines
    assert "no space left on the device" in lines[0]
    assert files_in(tmp_path) == {"y.nc": len(b"the previous result")}
    assert out.read_bytes() == b"the previous result"


WRITER = """
import sys
import numpy as np
import xarray as xr
from symbolic.common.cli import exit_main
from symbolic.common.results import write_netcdf

def main(argv):
    wp = np.random.default_rng(0).standard_normal((2000, 100, 100))  # 160 MB
    ds = xr.Dataset({"wp": (("time", "row", "col"), wp)}, coords={"time": np.arange(2000.0)})
    write_netcdf(ds, sys.argv[1])
    return 0

exit_main(main, prog="writer")
"""


def test_sigint_during_a_netcdf_write_neither_hangs_nor_leaves_a_temporary_file(tmp_path):
    """Ctrl-C pressed again and again while a large result is written: xarray's file lock must
    not be left held by a KeyboardInterrupt (closing the file then waited on it forever)."""
    out = tmp_path / "big.nc"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(out)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # not inherited ignored
    )
    try:
        wait_for(lambda: list(tmp_path.glob(".big.nc.*.tmp")), 120, proc, 0.001)
        for _ in range(
            20
        ):  # while the write lasts (not at the exit, where Python's default is back)
            if proc.poll() is not None or not list(tmp_path.glob(".big.nc.*.tmp")):
                break
            proc.send_signal(signal.SIGINT)
            time.sleep(0.01)
        _, err = proc.communicate(timeout=300)  # a deadlock never ends
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["writer: interrupted"]
    assert list(tmp_path.iterdir()) == [], "the interrupted write left a file"


def test_ctrl_c_pressed_again_while_a_write_is_undone_leaves_no_file(tmp_path, monkeypatch):
    """The second Ctrl-C comes while the interrupted write's temporary file is being removed
    (what the test above does by chance, under load): it must not stop the removal."""
    remove = Path.unlink

    def pressed_again(self, *args, **kwargs):
        signal.raise_signal(signal.SIGINT)
        return remove(self, *args, **kwargs)

    with pytest.raises(KeyboardInterrupt):
        with atomic_path(tmp_path / "r.nc") as tmp:
            tmp.write_bytes(b"partial")
            monkeypatch.setattr(Path, "unlink", pressed_again)
            signal.raise_signal(signal.SIGINT)  # the first Ctrl-C, during the write
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_a_diverging_simulation_says_so_in_one_line_without_warnings(tmp_path):
    proc = python_m("dynamics.simulate", "linear_byol", "--eta", "1e300", "--quiet",
                    "--out", str(tmp_path / "x.nc"))  # fmt: skip
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1
    assert len(err.strip().splitlines()) == 1 and "run failed: diverged at t=0" in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_manifest_names_a_damaged_file_and_accepts_its_previous_version(tmp_path):
    from symbolic.common import manifest
    from symbolic.common.files import write_text

    write_text(tmp_path / "a.txt", "first version\n")
    manifest.start(tmp_path, ["a.txt", "absent.txt"])
    assert manifest.damage(tmp_path) == []
    write_text(tmp_path / "a.txt", "second version\n")  # recorded by the atomic write itself
    assert manifest.damage(tmp_path) == []
    # killed between the record and the rename: the file is the previous version, whole
    pending = tmp_path / ".a.txt.x.tmp"
    pending.write_text("third version\n")
    manifest.record(pending, "a.txt")
    pending.unlink()
    assert manifest.damage(tmp_path) == []
    (tmp_path / "a.txt").write_text("second\n")  # cut short behind the writer's back
    assert manifest.damage(tmp_path) == [f"{tmp_path}/a.txt: 7 bytes, 14 or 15 when it was written"]
    (tmp_path / "a.txt").write_text("first Version\n")  # same size as a record, other bytes
    assert manifest.damage(tmp_path) == [
        f"{tmp_path}/a.txt: changed since it was written (its SHA-256 differs)"
    ]
    (tmp_path / "a.txt").unlink()
    with pytest.raises(ValueError, match="a.txt: missing"):
        manifest.verify(tmp_path)


def test_eigenmode_results_index_mode_by_the_mode_and_sorted_spectra_by_rank():
    """ds.sel(mode=j) is mode j in every variable; the sorted spectra have their own dimension
    (rank 0 = the largest), and the fates are read per mode from p_j (not from the sorted
    spectrum): a mode ends collapsed exactly where its own p_j ends near 0."""
    from dynamics.simulate import simulate

    ds = simulate("eigenmodes", RunSettings(t_end=150, n_out=51), eta=0.1)
    assert ds["p"].dims == ds["s"].dims == ("time", "mode")
    assert ds["wp_eig_real"].dims == ds["corr_eig"].dims == ("time", "rank")
    p, s = ds["p"].values, ds["s"].values
    np.testing.assert_array_equal(ds["wp_eig_real"].values, -np.sort(-p, axis=1))
    np.testing.assert_allclose(ds["corr_eig"].values, -np.sort(-(1 + 0.5) * s, axis=1))
    final = np.abs(p[-1])
    collapsed = ds["mode_collapsed"].values.astype(bool)
    assert 0 < collapsed.sum() < collapsed.size  # both fates occur: the check can fail
    assert np.all(final[collapsed] < 0.01) and np.all(final[~collapsed] > 0.1)
    assert not np.array_equal(p[-1], ds["wp_eig_real"].values[-1])  # the two orders differ
