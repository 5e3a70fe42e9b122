"""Missing or malformed input: exit 2, one line naming the file and the problem, no report."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from reports import build as build_mod
from reports import figures
from symbolic.common.cli import run_main
from symbolic.common.results import write_netcdf
from tests.reports import synthetic
from tests.reports.conftest import run_build


def cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    code = run_main(build_mod.main, argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def assert_nothing_written(out: Path) -> None:
    assert not out.exists(), "a partial report was left behind"
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")] == []


def test_missing_file_from_the_command_line(tmp_path):
    out = tmp_path / "report"
    missing = tmp_path / "results" / "nothere.nc"
    proc = run_build("--sim", str(missing), "--out", str(out), "--audit", "none")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(missing) in lines[0] and "no such file" in lines[0]
    assert "Traceback" not in proc.stderr
    assert_nothing_written(out)


def _variant(tmp_path: Path, name: str, change) -> Path:
    ds = synthetic.simulation()
    ds = change(ds)
    path = tmp_path / f"{name}.nc"
    ds.to_netcdf(path)  # written raw: the schema-checking writer refuses malformed files
    return path


def _drop_attr(key):
    def change(ds):
        del ds.attrs[key]
        return ds

    return change


MALFORMED_SIMS = {
    "no_git": (_drop_attr("git_revision"), "missing provenance attribute 'git_revision'"),
    "no_time": (
        lambda ds: ds.rename({"time": "t"}),
        "has no 'time' dimension",
    ),
    "bad_dims": (
        lambda ds: ds.assign(wp_eig_real=(("mode", "time"), ds["wp_eig_real"].values.T)),
        "variable 'wp_eig_real' has dims ('mode', 'time'), expected ('time', 'mode')",
    ),
    "training_kind": (
        lambda ds: ds.assign_attrs(kind="training"),
        "is a 'training' file, expected kind 'simulation'",
    ),
    "bad_params": (
        lambda ds: ds.assign_attrs(params_json="{not json"),
        "attribute 'params_json' is not valid JSON",
    ),
    "time_backwards": (
        lambda ds: ds.assign_coords(time=ds["time"].values[::-1]),
        "coordinate 'time' is not non-decreasing",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_SIMS))
def test_malformed_simulation(tmp_path, capsys, case):
    change, problem = MALFORMED_SIMS[case]
    path = _variant(tmp_path, case, change)
    out = tmp_path / "report"
    code, err = cli(["--sim", str(path), "--out", str(out), "--audit", "none"], capsys)
    assert code == 2
    assert len(err) == 1 and str(path) in err[0] and problem in err[0], err
    assert_nothing_written(out)


def test_not_a_netcdf_file(tmp_path, capsys):
    path = tmp_path / "garbage.nc"
    path.write_text("this is not netCDF\n")
    out = tmp_path / "report"
    code, err = cli(["--sim", str(path), "--out", str(out), "--audit", "none"], capsys)
    assert code == 2 and len(err) == 1
    assert str(path) in err[0] and "not a readable netCDF file" in err[0]
    assert_nothing_written(out)


def test_run_folder_problems(tmp_path, capsys, inputs):
    empty = tmp_path / "runs" / "empty"
    empty.mkdir(parents=True)
    out = tmp_path / "report"
    code, err = cli(["--runs", str(empty), "--out", str(out), "--audit", "none"], capsys)
    assert code == 2 and len(err) == 1
    assert str(empty) in err[0] and "holds no netCDF file" in err[0]

    no_time = tmp_path / "runs" / "no_time"
    write_netcdf(synthetic.run("byol").drop_vars("time"), no_time / "m.nc")
    code, err = cli(["--runs", str(no_time), "--out", str(out), "--audit", "none"], capsys)
    assert code == 2 and len(err) == 1
    assert str(no_time / "m.nc") in err[0] and "no coordinate 'time' along 'epoch'" in err[0]

    # a simulation given as a run
    code, err = cli(["--runs", str(inputs["sim"]), "--out", str(out), "--audit", "none"], capsys)
    assert code == 2 and "expected kind 'training'" in err[0]
    assert_nothing_written(out)


def test_malformed_audit_file(tmp_path, capsys, inputs):
    audit = tmp_path / "audit.json"
    audit.write_text(json.dumps([{"id": "a", "claim": "x"}]))
    out = tmp_path / "report"
    code, err = cli(["--sim", str(inputs["sim"]), "--out", str(out), "--audit", str(audit)], capsys)
    assert code == 2 and len(err) == 1
    assert str(audit) in err[0] and "entry 0 lacks the key(s) verdict" in err[0]
    assert_nothing_written(out)


def test_bad_input_keeps_an_earlier_report(tmp_path, capsys, inputs):
    out = tmp_path / "report"
    build_mod.build([str(inputs["sim"])], [], out, audit="none")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, err = cli(["--sim", str(tmp_path / "gone.nc"), "--out", str(out)], capsys)
    assert code == 2 and "gone.nc: no such file" in err[0]
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert before == after


def test_failure_while_building_leaves_nothing(tmp_path, inputs, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("figure failed")

    entry = figures.REGISTRY["conservation_residual"]
    monkeypatch.setitem(figures.REGISTRY, entry.name, dataclasses.replace(entry, draw=broken))
    out = tmp_path / "report"
    with pytest.raises(RuntimeError, match="figure failed"):
        build_mod.build([str(inputs["sim"])], [], out, audit="none")
    assert_nothing_written(out)


def test_refuses_to_replace_a_folder_that_is_not_a_report(tmp_path, capsys, inputs):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("keep me")
    code, err = cli(["--sim", str(inputs["sim"]), "--out", str(out), "--audit", "none"], capsys)
    assert code == 2 and "holds no report.md; not replacing" in err[0]
    assert (out / "thesis.tex").read_text() == "keep me"


def test_nothing_to_report(tmp_path, capsys):
    code, err = cli(["--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "nothing to report" in err[0]


def test_demo_rejects_bad_options_before_running_anything(tmp_path, capsys):
    from reports import demo

    code = run_main(demo.main, ["--out", str(tmp_path / "r"), "--epochs", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--epochs 0 is not allowed: an integer >= 1" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_sweep_files_are_listed_not_drawn(tmp_path, inputs):
    """A sweep among --sim files (results/*.nc) is listed with its provenance, not rejected."""
    import numpy as np
    import xarray as xr

    from symbolic.common.provenance import provenance

    sweep = xr.Dataset({"p": (("eta", "mode"), np.ones((3, 2)))}, coords={"eta": [0.0, 0.1, 0.2]})
    sweep.attrs = provenance("sweep", "eigenmodes", {"grid": "eta=0:0.2:3", "seed": 0})
    path = write_netcdf(sweep, tmp_path / "sweep.nc", extra_dims=["eta"])
    out = build_mod.build([str(inputs["sim"]), str(path)], [], tmp_path / "r", audit="none")
    text = (out / "report.md").read_text(encoding="utf-8")
    listed = text.split("Listed but not drawn", 1)[1].split("##", 1)[0]
    assert "[S2] sweep eigenmodes" in listed
    assert "| S2 | sweep | eigenmodes |" in text
