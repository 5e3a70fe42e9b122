"""The runner's warm start (reports.experiments.warm): a command forked from the warm process
behaves as the same command line started cold (the independent reference: a fresh ``python
-m``) in its exit status, error output, working folder, environment and arguments, and a
training's result is bit-identical; its children are stopped with the runner, and when the warm
process dies the commands it ran are reported killed and the rest start cold."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from reports.experiments import pool, warm
from tests.empirical.conftest import fashion_dir, tiny  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the warm start is Linux's"
)
REPO = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "tests.reports.warm_commands"]
#: seconds a stopped process may take to disappear (patience, not a measurement)
PATIENCE_S = 60.0


def execute(argvs, tmp_path: Path, warm_start: bool, ended=None, jobs: int = 2):
    """(exit status, last line of the log) of each command line, in order."""
    items = [
        (f"c{i}", list(a), tmp_path / "logs" / f"c{i}-{warm_start}.txt")
        for i, a in enumerate(argvs)
    ]
    statuses = {}

    def record(item, code, seconds):
        statuses[item[0]] = code
        return True if ended is None else ended(item, code)

    pool.execute(items, jobs, record, warm_start=warm_start)
    return [(statuses.get(name), pool.last_line(log)) for name, _, log in items]


def test_exit_statuses_and_error_output_are_those_of_a_cold_start(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    actions = [["exit", "0"], ["exit", "3"], ["message"], ["raise"], ["interrupt"], ["exit", "2"]]
    argvs = [[*COMMAND, *a] for a in actions]
    cold = execute(argvs, tmp_path, warm_start=False)
    hot = execute(argvs, tmp_path, warm_start=True)
    assert [c for c, _ in cold] == [0, 3, 1, 1, -signal.SIGINT, 2]
    assert hot == cold
    assert cold[2][1] == "a message as the exit"
    assert cold[3][1] == "ValueError: raised by the command"


def test_a_forked_command_sees_the_drivers_folder_environment_and_arguments(tmp_path, monkeypatch):
    """Each command takes the folder and environment the driver has when it starts it (they
    change here after the first command, after the warm process started)."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("WARM_TEST", "first")
    later = tmp_path / "later"
    later.mkdir()

    def change(item, code):
        monkeypatch.setenv("WARM_TEST", "second")
        monkeypatch.chdir(later)
        return True

    reports = {}
    for style in ("cold", "hot"):
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("WARM_TEST", "first")
        files = [tmp_path / f"{style}{i}.json" for i in range(2)]
        argvs = [[*COMMAND, "report", str(f), "a b", "--x"] for f in files]
        result = execute(argvs, tmp_path, warm_start=style == "hot", ended=change, jobs=1)
        assert result == [(0, "to the log")] * 2
        reports[style] = [json.loads(f.read_text()) for f in files]
    for cold, hot in zip(reports["cold"], reports["hot"], strict=True):
        assert cold == {**hot, "argv": cold["argv"]}
        assert cold["argv"][0] == hot["argv"][0] == str(REPO / "tests/reports/warm_commands.py")
        assert cold["argv"][3:] == hot["argv"][3:] == ["a b", "--x"]
    assert [(r["cwd"], r["env"]) for r in reports["hot"]] == [
        (str(tmp_path), "first"),
        (str(later), "second"),
    ]


def test_the_commands_are_forked_from_the_warm_process(tmp_path, monkeypatch):
    """The check that the tests above compared a fork with a cold start: the parent of each
    command is the warm process, not the driver."""
    monkeypatch.chdir(REPO)
    started = []
    real = pool.start
    monkeypatch.setattr(pool, "start", lambda *a: started.append(real(*a)) or started[-1])
    execute([[*COMMAND, "sleep", "0"]] * 2, tmp_path, warm_start=True)
    assert [type(p).__name__ for p in started] == ["Child", "Child"]


def test_a_training_forked_warm_equals_the_same_run_started_cold(
    tmp_path,
    fashion_dir,  # noqa: F811 (the fixture)
    monkeypatch,
):
    monkeypatch.chdir(REPO)

    def train(out: Path) -> list[str]:
        data = ("--data", f"fashion-mnist:{fashion_dir}", "--epochs", "2", "--out", str(out))
        return [sys.executable, "-m", "empirical.train", "byol", *data, *tiny("byol")]

    assert execute([train(tmp_path / "cold")], tmp_path, warm_start=False)[0][0] == 0
    hot = [tmp_path / "hot0", tmp_path / "hot1"]
    assert [c for c, _ in execute([train(o) for o in hot], tmp_path, warm_start=True)] == [0, 0]
    with xr.open_dataset(tmp_path / "cold" / "measurements.nc") as cold:
        assert cold.sizes["epoch"] >= 2
        for out in hot:
            with xr.open_dataset(out / "measurements.nc") as ds:
                for var in cold.data_vars:
                    if var != "throughput":
                        assert np.array_equal(cold[var].values, ds[var].values, equal_nan=True)


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_a_stopped_runner_kills_its_forked_commands(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    started = []
    real = pool.start
    monkeypatch.setattr(pool, "start", lambda *a: started.append(real(*a)) or started[-1])
    argvs = [[*COMMAND, "sleep", "600"], [*COMMAND, "exit", "5"]]
    result = execute(argvs, tmp_path, warm_start=True, ended=lambda item, code: False)
    assert result[1][0] == 5 and result[0][0] is None  # the sleeper never ended by itself
    assert type(started[0]).__name__ == "Child"
    assert _gone(started[0].pid), "a forked command outlived its runner"


def test_when_the_warm_process_dies_its_commands_fail_and_the_rest_start_cold(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(REPO)
    processes, started = [], []
    real_init, real_start = warm.WarmProcess.__init__, pool.start

    def keep(self, *args):
        real_init(self, *args)
        processes.append(self)

    monkeypatch.setattr(warm.WarmProcess, "__init__", keep)
    monkeypatch.setattr(pool, "start", lambda *a: started.append(real_start(*a)) or started[-1])

    def kill_the_warm_process(item, code):
        if item[0] == "c1":
            os.kill(processes[0]._proc.pid, signal.SIGKILL)
        return True

    argvs = [[*COMMAND, "sleep", "600"], [*COMMAND, "exit", "0"], [*COMMAND, "exit", "4"]]
    result = execute(argvs, tmp_path, warm_start=True, ended=kill_the_warm_process)
    assert [c for c, _ in result] == [-signal.SIGKILL, 0, 4]
    assert [type(p).__name__ for p in started] == ["Child", "Child", "Popen"]
    assert _gone(started[0].pid)
