"""python -m symbolic.derive and python -m symbolic.audit: output, formats, exit status."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from symbolic import audit, derive
from symbolic.common.cli import run_main


def run(module, argv, capsys):
    code = run_main(module.main, argv, prog=f"python -m symbolic.{module.__name__.split('.')[-1]}")
    out, err = capsys.readouterr()
    return code, out, err


def test_derive_closed_form_and_check(capsys, tmp_path):
    out_file = tmp_path / "check.json"
    code, out, _ = run(
        derive,
        ["linear_byol", "--check", "--loss-param", "eta=0.2", "--out", str(out_file)],
        capsys,
    )
    assert code == 0
    assert "dL/dW_p = eta*W_p + (-F_2 + W_p*F_1)*F_1.T" in out
    assert "dL/df2 = 0 (stop-gradient)" in out
    assert "sympy matrix calculus for dL/dW_p: DISAGREES" in out
    assert out.rstrip().endswith("OK")
    record = json.loads(out_file.read_text())
    assert record["checks"][0]["ok"] and record["checks"][0]["autograd_error"] < 1e-10
    assert record["provenance"]["git_revision"]


def test_derive_entry_formulas_text_and_latex(capsys):
    code, out, _ = run(derive, ["simsiam", "--n", "2", "--d", "2"], capsys)
    assert code == 0 and "dL/dp1[0,0] = " in out and "dL/dz1 = 0 (stop-gradient)" in out
    code, out, _ = run(derive, ["simsiam", "--n", "2", "--d", "2", "--latex"], capsys)
    assert code == 0 and r"\frac{\partial L}{\partial p^{(1)}_{0,0}}" in out


def test_derive_all_check(capsys):
    code, out, _ = run(derive, ["all", "--check", "--points", "1"], capsys)
    assert code == 0
    lines = [line for line in out.splitlines() if line.endswith("OK")]
    assert len(lines) == 13
    assert "all 13 losses at N=3, d=2" in out


def test_derive_list(capsys):
    code, out, _ = run(derive, ["--list"], capsys)
    assert code == 0 and "liu" in out and "k=8" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["simclr"], "unknown loss 'simclr'"),
        (["nt_xent", "--n", "1"], "--n 1 is not allowed"),
        (["nt_xent", "--d", "0"], "--d 0 is not allowed"),
        (["nt_xent", "--loss-param", "temperature=abc"], "expected a real number"),
        (["nt_xent", "--loss-param", "temperature=0"], "temperature=0.0 is not allowed"),
        (["nt_xent", "--loss-param", "lambd=1"], "unknown hyperparameter 'lambd'"),
        (["liu", "--loss-param", "k=2"], "k=2 must divide N=3"),
        (["liu", "--loss-param", "k=1.5"], "expected an integer"),
    ],
)
def test_derive_bad_input_exits_2_with_one_line(argv, message, capsys):
    code, _, err = run(derive, argv, capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_commands_as_subprocesses():
    bad = subprocess.run(
        [sys.executable, "-m", "symbolic.derive", "nosuchloss"], capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("python -m symbolic.derive: error: unknown loss 'nosuchloss'")
    good = subprocess.run(
        [sys.executable, "-m", "symbolic.audit", "--format", "json", "--claims", "h"],
        capture_output=True,
        text=True,
    )
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)[0]["verdict"] == "true"


def test_audit_json_for_the_reports_package(capsys):
    code, out, _ = run(audit, ["--format", "json", "--claims", "g,d"], capsys)
    assert code == 0
    data = json.loads(out)
    assert [d["id"] for d in data] == ["g", "d"]
    for item in data:
        for key in ("id", "claim", "verdict", "corrected_statement", "method", "evidence"):
            assert item[key] not in (None, "")
        assert item["provenance"]["param_seed"] == 0
    assert data[0]["verdict"] == "true" and data[1]["verdict"] == "true_if"


@pytest.mark.parametrize(
    "fmt, marker", [("text", "(g) "), ("markdown", "| g |"), ("latex", r"\item[(g)")]
)
def test_audit_formats(fmt, marker, capsys):
    code, out, _ = run(audit, ["--format", fmt, "--claims", "g"], capsys)
    assert code == 0 and marker in out and "TRUE" in out


def test_audit_bad_claim(capsys):
    code, _, err = run(audit, ["--claims", "a,i"], capsys)
    assert code == 2 and "unknown claim id 'i'" in err
