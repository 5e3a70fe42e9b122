"""``DRY=1 bash benchmarks/gpu_check.sh``: every part of the GPU check runs at tiny size on the CPU
(no timing is checked; on a GPU the same script measures the targets of README's GPU section)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.empirical.conftest import DEBIAN_FASHION, REPO

PARTS = {"env", "images", "decode", "step", "train", "reproduce", "sweep", "ddp"}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.skipif(
    not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").exists(),
    reason="the reproduce and torchrun parts train on the Debian package dataset-fashion-mnist",
)
def test_dry_run_runs_every_part(tmp_path):
    out = tmp_path / "check"
    env = {**os.environ, "DRY": "1", "OUT": str(out), "PY": sys.executable, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["part"] for r in rows} == PARTS
    assert not [r for r in rows if "FAILED" in r["name"]]
    steps = [r for r in rows if r["name"].endswith("synchronising calls per step")]
    assert steps and all(r["value"] == 0 for r in steps)  # the trainer's step, BYOL and SimCLR
    plan = next(r for r in rows if r["name"].endswith("--plan: estimated"))
    assert "estimated" in plan["value"]  # the GPU plan prints without CUDA
    assert "| part | measurement | value | target |" in (out / "table.md").read_text()
