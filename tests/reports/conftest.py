"""Fixtures: synthetic inputs and one report built from them by the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reports import synthetic

REPO = Path(__file__).resolve().parents[2]

AUDIT = [
    {
        "id": "a",
        "claim": "NT-Xent dl_k/ds_m = p_m/tau",
        "verdict": "true_if",
        "condition": "m is a negative",
        "corrected_statement": "dl_k/ds_m = p_m/tau for m != k+, (p_m - 1)/tau for m = k+",
        "method": "sympy",
        "evidence": {"abs_error_negatives": 0.0},
        "provenance": {"name": "symbolic.audit", "git_revision": "0123456789abcdef", "seed": 0},
    },
    {
        "id": "g",
        "claim": "ratio is d((N-1)/N)^2 | with a pipe & 50% $x_1$",
        "verdict": "false",
        "corrected_statement": "ratio is d^2 ((N-1)/N)^2",
        "method": "numerical",
        "evidence": "relative error 3e-16",
    },
]


def run_build(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reports.build", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="session")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inputs")
    paths = synthetic.write_inputs(root)
    paths["audit"] = root / "audit.json"
    paths["audit"].write_text(json.dumps(AUDIT), encoding="utf-8")
    return paths


@pytest.fixture(scope="session")
def report(inputs, tmp_path_factory) -> Path:
    """The report built from every synthetic input by ``python -m reports.build``."""
    out = tmp_path_factory.mktemp("built") / "report"
    proc = run_build(
        "--sim",
        str(inputs["sim"]),
        str(inputs["null"]),
        str(inputs["modes"]),
        "--runs",
        str(inputs["byol"]),
        str(inputs["barlow_twins"]),
        "--out",
        str(out),
        "--audit",
        str(inputs["audit"]),
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    return out
