"""Every bad input of every command: its exit status, one line naming the value, nothing written.

docs/conventions.md "Commands": exit status 2 on bad input with a one-line message naming
the bad value, 1 on a failed run with its cause, and (issue 13) no file written or left behind:
neither in the working folder (where the default outputs go) nor beside the inputs. One table,
run in this process (``run_main``, as ``python -m COMMAND`` runs it) from an empty working folder.

``{dir}``, ``{file}`` and the other names in braces are the fixtures of :func:`places`: a folder,
a plain file, a tiny Fashion-MNIST copy and its truncated twin, a folder of unreadable images,
damaged checkpoints. ``/sys`` stands for a folder nobody may write into (as root too, unlike a
folder without write permission).
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from empirical import checkpoint
from symbolic.common.cli import run_main
from tests.empirical.conftest import write_idx

READ_ONLY = "/sys"
#: a tiny training run (its data: the {fashion} fixture)
TINY = (
    "--train-subset 256 --batch-size 64 --val-size 50 --probe-train 64 --probe-test 64 "
    "--eval-size 64 --width 4 --proj-hidden 16 --proj-dim 8 --workers 0 --quiet --epochs 1"
).split()
FASHION = ["--data", "fashion-mnist:{fashion}", *TINY]
GRID = ["--grid", "eta=0:0.1:3"]

#: the function ``python -m COMMAND`` runs
MAINS = {
    "dynamics.simulate": ("dynamics.simulate", "main"),
    "dynamics.sweep": ("dynamics.sweep.cli", "main"),
    "dynamics.phase": ("dynamics.phase", "main"),
    "symbolic.derive": ("symbolic.derive", "main"),
    "symbolic.audit": ("symbolic.audit", "main"),
    "empirical.train": ("empirical.train", "main"),
    "reports.build": ("reports.build", "main"),
    "reports.demo": ("reports.demo", "main"),
    "reports.bridge": ("reports.bridge", "main"),
    "reports.reproduce": ("reports.reproduce.cli", "main"),
}


@dataclasses.dataclass(frozen=True)
class Case:
    """``python -m COMMAND ARGV`` exits with ``code`` and one line of stderr holding ``value``."""

    id: str
    command: str
    argv: tuple[str, ...]
    value: str
    code: int = 2


def case(id: str, command: str, argv: list[str], value: str, code: int = 2) -> Case:
    return Case(id, command, tuple(argv), value, code)


S, W, P = "dynamics.simulate", "dynamics.sweep", "dynamics.phase"
D, A, T, B, M, L, R = (
    "symbolic.derive",
    "symbolic.audit",
    "empirical.train",
    "reports.build",
    "reports.demo",
    "reports.bridge",
    "reports.reproduce",
)

CASES = [
    # ---------------------------------------------------------------- dynamics.simulate
    case("sim-dim-oom", S, ["linear_byol", "--dim", "100000"], "--dim 100000"),
    case("sim-input-dim-oom", S, ["linear_byol", "--input-dim", "10000000"], "10000000"),
    case("sim-n-out-float", S, ["linear_byol", "--n-out", "2e9"], "2e9"),
    case("sim-n-out-large", S, ["linear_byol", "--n-out", "2000000000"], "n_out=2000000000"),
    case("sim-t-end-huge", S, ["eigenmodes", "--t-end", "1e300"], "t_end=1e+300"),
    case("sim-eigen-dim", S, ["eigenmodes", "--dim", "1000000000"], "dim=1000000000"),
    case("sim-seed", S, ["linear_byol", "--seed", "-1"], "seed=-1"),
    case("sim-eta-nan", S, ["linear_byol", "--eta", "nan"], "eta=nan"),
    case("sim-eta-negative", S, ["linear_byol", "--eta", "-1"], "eta=-1"),
    case("sim-sigma2-inf", S, ["linear_byol", "--sigma2", "inf"], "sigma2=inf"),
    case("sim-beta-zero", S, ["linear_byol", "--beta", "0"], "beta=0"),
    case("sim-rtol", S, ["linear_byol", "--rtol", "2"], "rtol=2"),
    case("sim-method", S, ["linear_byol", "--method", "Euler"], "Euler"),
    case("sim-spectrum", S, ["linear_byol", "--x-spectrum", "1,2"], "x_spectrum='1,2'"),
    case("sim-convention", S, ["directpred", "--convention", "book"], "convention='book'"),
    case("sim-general-dim", S, ["general", "--dim", "100000"], "--dim 100000"),
    case("sim-liu-dim", S, ["liu", "--dim", "100000"], "--dim 100000"),
    case("sim-free-samples", S, ["free_features", "--n-samples", "100000000"], "100000000"),
    case("sim-unknown", S, ["nosuch"], "nosuch"),
    case("sim-config-missing", S, ["linear_byol", "--config", "{dir}/none.toml"], "none.toml"),
    case("sim-out-folder", S, ["linear_byol", "--out", "{dir}"], "{dir}"),
    case("sim-out-under-file", S, ["linear_byol", "--out", "{file}/x.nc"], "{file}"),
    case("sim-out-read-only", S, ["linear_byol", "--out", f"{READ_ONLY}/x.nc"], READ_ONLY),
    case("sim-diverged", S, ["linear_byol", "--blowup", "0.5"], "|y| = 0.5", code=1),
    # ---------------------------------------------------------------- dynamics.sweep
    case("sweep-axis-huge", W, ["eigenmodes", "--grid", "eta=0:0.1:3000000000"], "3000000000"),
    case(
        "sweep-grid-oom",
        W,
        ["eigenmodes", "--grid", "eta=0:0.1:1000000", "--grid", "beta=0.1:1:1000000"],
        "1,000,000,000,000 points",
    ),  # fmt: skip
    case("sweep-int-range", W, ["eigenmodes", "--grid", "seed=0:9999999999"], "9999999999"),
    case("sweep-seed", W, ["eigenmodes", *GRID, "--seed", "-1"], "seed=-1"),
    case("sweep-out-folder", W, ["eigenmodes", *GRID, "--out", "{dir}"], "{dir}"),
    case("sweep-out-read-only", W, ["eigenmodes", *GRID, "--out", f"{READ_ONLY}/s.nc"], READ_ONLY),
    case("sweep-workers-0", W, ["eigenmodes", *GRID, "--workers", "0"], "workers=0"),
    case("sweep-workers-huge", W, ["eigenmodes", *GRID, "--workers", "100000"], "workers=100000"),
    case("sweep-conv-tol", W, ["eigenmodes", *GRID, "--conv-tol", "nan"], "conv_tol=nan"),
    case("sweep-dim", W, ["eigenmodes", *GRID, "--dim", "100000000"], "dim=100000000"),
    case("sweep-matrix-oom", W, ["linear_byol", *GRID, "--dim", "100000"], "100000 modes"),
    case("sweep-chunk", W, ["eigenmodes", *GRID, "--chunk", "0"], "chunk=0"),
    case("sweep-backend", W, ["eigenmodes", *GRID, "--backend", "jax"], "backend='jax'"),
    case("sweep-method", W, ["eigenmodes", *GRID, "--method", "LSODA"], "method='LSODA'"),
    case("sweep-eta-negative", W, ["eigenmodes", "--grid", "eta=-1:0.1:3"], "eta=-1"),
    case("sweep-unknown-axis", W, ["eigenmodes", "--grid", "nosuch=1,2"], "nosuch"),
    case("sweep-dim-axis", W, ["eigenmodes", "--grid", "dim=1,2"], "--grid dim"),
    case("sweep-repeated", W, ["eigenmodes", "--grid", "eta=0.1,0.1"], "eta=0.1,0.1"),
    # ---------------------------------------------------------------- dynamics.phase
    case("phase-tau-nan", P, ["flow", "--tau", "nan", "--out", "ph"], "--tau nan"),
    case("phase-alpha-p", P, ["flow", "--alpha-p", "0", "--out", "ph"], "--alpha-p 0"),
    case("phase-sigma2-inf", P, ["line", "--sigma2", "inf", "--out", "ph"], "--sigma2 inf"),
    case("phase-flow-eta", P, ["flow", "--flow-eta=-1", "--out", "ph"], "--flow-eta '-1'"),
    case(
        "phase-panels",
        P,
        ["flow", "--flow-eta", ",".join(map(str, range(13))), "--out", "ph"],
        "at most 12",
    ),  # fmt: skip
    case("phase-all-align-eta", P, ["all", "--align-eta", "x", "--out", "ph"], "--align-eta 'x'"),
    case("phase-all-dim", P, ["all", "--dim", "100000", "--out", "ph"], "--dim 100000"),
    case("phase-all-betas", P, ["all", "--betas", "-1", "--out", "ph"], "beta=-1"),
    case("phase-all-p0", P, ["all", "--p0", "x:y", "--out", "ph"], "p0='x:y'"),
    case(
        "phase-eta-axis", P, ["collapse", "--eta", "0:0.3:3000000000", "--out", "ph"], "3000000000"
    ),
    case("phase-t-end", P, ["collapse", "--t-end", "1e300", "--out", "ph"], "t_end=1e+300"),
    case("phase-align-t-end", P, ["alignment", "--align-t-end", "inf", "--out", "ph"], "t_end=inf"),
    case("phase-tau0", P, ["collapse", "--tau0", "nan", "--out", "ph"], "tau0=nan"),
    case("phase-out-file", P, ["line", "--out", "{file}"], "{file}"),
    case("phase-out-read-only", P, ["line", "--out", f"{READ_ONLY}/ph"], READ_ONLY),
    # ---------------------------------------------------------------- symbolic.derive
    case("derive-n-huge", D, ["byol", "--n", "100000"], "--n 100000"),
    case("derive-d-huge", D, ["byol", "--d", "100000"], "--d 100000"),
    case("derive-n-1", D, ["byol", "--n", "1"], "--n 1"),
    case("derive-seed", D, ["byol", "--check", "--seed", "-1"], "--seed -1"),
    case("derive-points", D, ["byol", "--check", "--points", "100000000"], "--points 100000000"),
    case("derive-out-folder", D, ["byol", "--check", "--out", "{dir}"], "{dir}"),
    case("derive-out-under-file", D, ["byol", "--check", "--out", "{file}/x.json"], "{file}"),
    case("derive-out-read-only", D, ["byol", "--check", "--out", f"{READ_ONLY}/x"], READ_ONLY),
    case("derive-unknown", D, ["nosuch"], "nosuch"),
    case("derive-param-nan", D, ["nt_xent", "--param", "temperature=nan"], "temperature=nan"),
    # ---------------------------------------------------------------- symbolic.audit
    case("audit-seed", A, ["--claims", "a", "--seed", "-1"], "--seed -1"),
    case("audit-out-folder", A, ["--claims", "a", "--out", "{dir}"], "{dir}"),
    case("audit-out-read-only", A, ["--claims", "a", "--out", f"{READ_ONLY}/x"], READ_ONLY),
    case("audit-claim", A, ["--claims", "zz"], "'zz'"),
    case("audit-format", A, ["--format", "yaml"], "yaml"),
    # ---------------------------------------------------------------- empirical.train
    case("train-width", T, ["byol", *FASHION, "--width", "1000000"], "width=1000000"),
    case("train-proj-dim-float", T, ["byol", *FASHION, "--proj-dim", "2e9"], "2e9"),
    case(
        "train-heads-oom",
        T,
        ["byol", *FASHION, "--proj-dim", "1000000", "--proj-hidden", "1000000"],
        "--proj-dim 1000000",
    ),  # fmt: skip
    case(
        "train-predictor-oom",
        T,
        ["byol", *FASHION, "--pred-hidden", "65536", "--proj-dim", "1048576"],
        "--pred-hidden 65536",
    ),  # fmt: skip
    case(
        "train-queue-oom",
        T,
        ["moco_v2", *FASHION, "--queue-size", "16777216", "--proj-dim", "1048576"],
        "--queue-size 16777216",
    ),  # fmt: skip
    case("train-image-size", T, ["byol", *FASHION, "--image-size", "50000"], "image_size=50000"),
    case("train-seed", T, ["byol", *FASHION, "--seed", "-1"], "seed=-1"),
    case("train-lr-nan", T, ["byol", *FASHION, "--lr", "nan"], "lr=nan"),
    case("train-momentum", T, ["byol", *FASHION, "--momentum", "1"], "momentum=1"),
    case(
        "train-lars-eta",
        T,
        ["byol", *FASHION, "--optimizer", "lars", "--lars-eta", "inf"],
        "lars_eta=inf",
    ),  # fmt: skip
    case("train-eps-inf", T, ["directpred", *FASHION, "--eps", "inf"], "eps=inf"),
    case("train-batch", T, ["byol", *FASHION, "--batch-size", "1048576"], "--batch-size 1048576"),
    case(
        "train-pairs-below-batch",
        T,
        ["simclr", *FASHION, "--backbone", "linear", "--batch-size", "128", "--pairs", "100"],
        "pairs=100",
    ),  # fmt: skip
    case("train-out-file", T, ["byol", *FASHION, "--out", "{file}"], "{file}"),
    case("train-out-read-only", T, ["byol", *FASHION, "--out", f"{READ_ONLY}/run"], READ_ONLY),
    case("train-resume-none", T, ["byol", *FASHION, "--resume", "--out", "{dir}/x"], "--resume"),
    case("train-ckpt-empty", T, ["byol", *FASHION, "--resume", "--out", "{ck_empty}"], "empty"),
    case("train-ckpt-list", T, ["byol", *FASHION, "--resume", "--out", "{ck_list}"], "list"),
    case("train-ckpt-keys", T, ["byol", *FASHION, "--resume", "--out", "{ck_keys}"], "no config"),
    case("train-ckpt-junk", T, ["byol", *FASHION, "--resume", "--out", "{ck_junk}"], "{ck_junk}"),
    case(
        "train-gz-truncated",
        T,
        ["byol", *TINY, "--data", "fashion-mnist:{truncated}"],
        "{truncated}/train-images-idx3-ubyte.gz",
    ),  # fmt: skip
    case(
        "train-images-unreadable",
        T,
        [
            "byol",
            *TINY,
            "--data",
            "folder:{unreadable}",
            "--batch-size",
            "4",
            "--val-size",
            "2",
            "--probe-train",
            "2",
            "--probe-test",
            "2",
            "--eval-size",
            "2",
            "--image-size",
            "16",
            "--load-size",
            "16",
        ],
        "{unreadable}",
    ),  # fmt: skip
    case("train-data-kind", T, ["byol", "--data", "imagenet:"], "imagenet"),
    case("train-unknown", T, ["nosuch"], "nosuch"),
    case("train-epochs", T, ["byol", "--epochs", "x"], "'x'"),
    case("train-config-missing", T, ["--config", "{dir}/none.toml"], "none.toml"),
    case("train-config-no-value", T, ["--config"], "--config"),  # was "train.py: error:"
    # ------------------------------------------------ hostile configuration files (issue 24)
    case("sim-config-dim-bool", S, ["linear_byol", "--config", "{cfg_dim_bool}"], "'dim' = true"),
    case(
        "sim-config-seed-huge",
        S,
        ["linear_byol", "--config", "{cfg_seed_huge}"],
        "seed=1180591620717411303424 is not allowed: an integer from 0 to 2^63 - 1",
    ),
    case(
        "sim-config-from-run-int",
        S,
        ["linear_byol", "--config", "{cfg_from_run_int}"],
        "'from_run' = 5",
    ),
    case(
        "sim-config-moments-int",
        S,
        ["linear_byol", "--config", "{cfg_moments_int}"],
        "'moments_file' = 5 is not allowed: expected a path",
    ),
    case("sim-config-non-utf8", S, ["linear_byol", "--config", "{cfg_non_utf8}"], "byte 0xff"),
    case("sim-config-netcdf", S, ["linear_byol", "--config", "{netcdf}"], "{netcdf}: not a TOML"),
    case("sim-config-fifo", S, ["linear_byol", "--config", "{fifo}"], "{fifo}: is a named pipe"),
    case("sim-config-device", S, ["linear_byol", "--config", "/dev/zero"], "character device"),
    case(
        "sim-config-other-scenario",
        S,
        ["linear_byol", "--config", "{cfg_eigenmodes}"],
        "written for scenario 'eigenmodes', not linear_byol",
    ),
    case(
        "sim-config-initial",
        S,
        ["linear_byol", "--config", "{cfg_initial}"],
        "'from_run_initial' = 'both'",
    ),
    case(
        "train-config-epochs-bool",
        T,
        ["--config", "{cfg_epochs_bool}", "--out", "r"],
        "'epochs' = true is not allowed: expected an integer",
    ),
    case(
        "train-config-loss-params",
        T,
        ["--config", "{cfg_loss_params}", "--out", "r"],
        "'loss_params' = \"x\" is not allowed: expected a table",
    ),
    case("train-config-method-int", T, ["--config", "{cfg_method_int}"], "method = 5"),
    case("train-config-out-int", T, ["--config", "{cfg_out_int}"], "'out' = 5"),
    case("train-config-non-utf8", T, ["--config", "{cfg_non_utf8}"], "byte 0xff"),
    case("train-config-fifo", T, ["--config", "{fifo}"], "{fifo}: is a named pipe"),
    # ---------------------------------------- --from-run on incomplete or foreign runs (issue 24)
    case(
        "from-run-no-eta-step",
        S,
        ["linear_byol", "--from-run", "{run_no_eta_step}"],
        "no variable 'eta_step'",
    ),
    case(
        "from-run-no-flow-time",
        S,
        ["linear_byol", "--from-run", "{run_no_flow_time}"],
        "no variable 'flow_time_step'",
    ),
    case(
        "from-run-no-x-corr",
        S,
        ["linear_byol", "--from-run", "{run_no_x_corr}"],
        "no variable 'x_corr'",
    ),
    case(
        "from-run-moments-other-dim",
        S,
        ["linear_byol", "--from-run", "{run_other_dim}"],
        "x_corr is 4 x 4, expected 6 x 6",
    ),
    case(
        "from-run-params-json",
        S,
        ["linear_byol", "--from-run", "{run_bad_json}"],
        "params_json is not valid JSON",
    ),
    case(
        "from-run-seed-negative",
        S,
        ["linear_byol", "--from-run", "{run}", "--initial", "seed", "--seed", "-1"],
        "seed=-1",
    ),
    case(
        "from-run-mlp-predictor",
        S,
        ["linear_byol", "--from-run", "{run_mlp_predictor}"],
        "train with --predictor linear",
    ),
    case(
        "from-run-other-scenario",
        S,
        ["linear_simsiam", "--from-run", "{run}"],
        "predicted by linear_byol",
    ),
    # ------------------------------------------------------- resumed damage (issue 24)
    case(
        "train-resume-checkpoint-truncated",
        T,
        ["--config", "{run_truncated}/config.toml", "--out", "{run_truncated}", "--resume"],
        "{run_truncated}/checkpoint.pt: 5000 bytes",
    ),
    case(
        "train-resume-checkpoint-changed",
        T,
        ["--config", "{run_changed}/config.toml", "--out", "{run_changed}", "--resume"],
        "{run_changed}/checkpoint.pt: changed since it was written",
    ),
    case(
        "sweep-resume-other-grid",
        W,
        ["eigenmodes", "--grid", "eta=0:0.3:13", "--out", "{sweep}/s.nc", "--resume"],
        "grid: eta = 12 values from 0 to 0.3 stored, eta = 13 values from 0 to 0.3 now",
    ),
    # ------------------------------------------ messages that named no value (issue 24)
    case(
        "phase-alignment-dim",
        P,
        ["alignment", "--dim", "100000", "--out", "ph"],
        "--dim 100000 (alignment runs of 100000 x 100000)",
    ),
    case("audit-claims-empty", A, ["--claims", ","], "--claims ',': names no claim id"),
    case("demo-epochs-0", M, ["--epochs", "0", "--out", "rep"], "--epochs 0 is not allowed"),
    case(
        "demo-train-subset",
        M,
        ["--train-subset", "10", "--out", "rep"],
        "--train-subset 10 is not allowed: an integer >= 128",
    ),
    # ---------------------------------------------------------------- reports.build
    case("build-out-file", B, ["--audit", "none", "--out", "{file}"], "{file}"),
    case("build-out-read-only", B, ["--audit", "none", "--out", f"{READ_ONLY}/rep"], READ_ONLY),
    case(
        "build-timeout-nan", B, ["--audit", "none", "--audit-timeout", "nan", "--out", "r"], "nan"
    ),
    case("build-timeout-negative", B, ["--audit-timeout", "-1", "--out", "r"], "-1"),
    case("build-sim-missing", B, ["--audit", "none", "--sim", "none.nc", "--out", "r"], "none.nc"),
    case("build-audit-bad", B, ["--audit", "{file}", "--sim", "none.nc", "--out", "r"], "none.nc"),
    # ---------------------------------------------------------------- reports.demo
    case("demo-methods", M, ["--methods", "nosuch", "--out", "rep"], "'nosuch'"),
    case("demo-audit", M, ["--audit", "none.json", "--out", "rep"], "none.json"),
    case("demo-out-file", M, ["--out", "{file}"], "{file}"),
    case("demo-out-read-only", M, ["--out", f"{READ_ONLY}/rep"], READ_ONLY),
    case("demo-work-file", M, ["--out", "rep", "--work", "{file}"], "{file}"),
    case("demo-seed", M, ["--seed", "-1", "--out", "rep"], "--seed -1"),
    case("demo-epochs", M, ["--epochs", "100000000", "--out", "rep"], "epochs=100000000"),
    # ---------------------------------------------------------------- reports.bridge
    case("bridge-seeds", L, ["--seeds", "1", "--out", "rep"], "--seeds 1"),
    case("bridge-rung", L, ["--rungs", "1,9", "--out", "rep"], "'9'"),
    case("bridge-jobs", L, ["--jobs", "0", "--out", "rep"], "--jobs 0"),
    case("bridge-out-file", L, ["--out", "{file}"], "{file}"),
    case("bridge-out-read-only", L, ["--out", f"{READ_ONLY}/rep"], READ_ONLY),
    case("bridge-work-file", L, ["--out", "rep", "--work", "{file}"], "{file}"),
    # ------------------------------------------- reports.reproduce (--plan: nothing would train)
    case("reproduce-seeds", R, ["--plan", "--seeds", "2", "--out", "rep"], "--seeds 2"),
    case("reproduce-claim", R, ["--plan", "--claim", "nosuch", "--out", "rep"], "'nosuch'"),
    case("reproduce-scale", R, ["--plan", "--scale", "tpu", "--out", "rep"], "'tpu'"),
    case("reproduce-jobs", R, ["--plan", "--jobs", "0", "--out", "rep"], "--jobs 0"),
    case("reproduce-out-file", R, ["--plan", "--out", "{file}"], "{file}"),
    case("reproduce-out-read-only", R, ["--plan", "--out", f"{READ_ONLY}/rep"], READ_ONLY),
    case(
        "reproduce-data-missing",
        R,
        ["--plan", "--data", "fashion-mnist:{dir}/none", "--out", "rep"],
        "{dir}/none",
    ),
]


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, Path]:
    """The fixtures the cases name: folders and files, data, broken checkpoints."""
    root = tmp_path_factory.mktemp("places")
    paths = {"dir": root / "folder", "file": root / "plain.txt"}
    paths["dir"].mkdir()
    paths["file"].write_text("not a folder\n")
    rng = np.random.default_rng(0)
    fashion = paths["fashion"] = root / "fashion"
    fashion.mkdir()
    for prefix, n in (("train", 320), ("t10k", 100)):
        write_idx(fashion / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(fashion / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    truncated = paths["truncated"] = root / "truncated"
    truncated.mkdir()
    for source in fashion.iterdir():
        data = source.read_bytes()
        (truncated / source.name).write_bytes(
            data[: len(data) // 2] if "train-images" in source.name else data
        )
    unreadable = paths["unreadable"] = root / "unreadable"
    for label in ("a", "b"):
        (unreadable / label).mkdir(parents=True)
        for i in range(6):
            (unreadable / label / f"{i}.jpg").write_bytes(b"not an image")
    for kind, content in (
        ("empty", None),
        ("list", [1, 2]),
        ("keys", {"format": checkpoint.FORMAT, "epoch": 1}),
        ("junk", b"junk" * 100),
    ):
        folder = paths[f"ck_{kind}"] = root / f"ck_{kind}"
        folder.mkdir()
        if content is None:
            (folder / "checkpoint.pt").write_bytes(b"")
        elif isinstance(content, bytes):
            (folder / "checkpoint.pt").write_bytes(content)
        else:
            torch.save(content, folder / "checkpoint.pt")
    configs = {
        "cfg_dim_bool": "dim = true\n",
        "cfg_seed_huge": f"seed = {2**70}\n",
        "cfg_from_run_int": "from_run = 5\n",
        "cfg_moments_int": "moments_file = 5\n",
        "cfg_eigenmodes": 'scenario = "eigenmodes"\n',
        "cfg_initial": 'from_run = "x"\nfrom_run_initial = "both"\n',
        "cfg_epochs_bool": 'method = "byol"\nepochs = true\n',
        "cfg_loss_params": 'method = "byol"\nloss_params = "x"\n',
        "cfg_method_int": "method = 5\n",
        "cfg_out_int": 'method = "byol"\nout = 5\n',
    }
    for name, text in configs.items():
        paths[name] = root / f"{name}.toml"
        paths[name].write_text(text)
    paths["cfg_non_utf8"] = root / "non_utf8.toml"
    paths["cfg_non_utf8"].write_bytes(b"dim = 3\n\xff\n")
    paths["netcdf"] = root / "data.nc"
    xr.Dataset({"x": ("t", np.zeros(3))}).to_netcdf(paths["netcdf"], engine="netcdf4")
    paths["fifo"] = root / "pipe.toml"
    os.mkfifo(paths["fifo"])
    return paths


#: a tiny linear run (W on PCA coordinates, a linear predictor): what --from-run derives from
LINEAR_RUN = (
    "--backbone linear --input-dim 6 --projector none --predictor linear --loss linear_byol "
    "--optimizer sgd --momentum 0 --lr-schedule constant --no-probes --train-subset 256 "
    "--moments-images 128 --batch-size 64 --val-size 50 --eval-size 64 --workers 0 --quiet "
    "--epochs 1"
).split()


def _rewrite(path: Path, change) -> None:
    """Rewrite the netCDF file ``path`` as ``change(dataset)`` returns it (a damaged copy)."""
    with xr.open_dataset(path) as ds:
        changed = change(ds.load())
    path.unlink()
    changed.to_netcdf(path, engine="netcdf4")


@pytest.fixture(scope="module")
def runs(places) -> dict[str, Path]:
    """A tiny linear training run, its damaged and foreign copies, an interrupted sweep."""
    from dynamics.sweep.run import run_sweep
    from empirical.train import main as train_main

    root = places["dir"].parent / "runs"
    run = root / "run"
    argv = ["byol", "--data", f"fashion-mnist:{places['fashion']}", "--out", str(run)]
    assert run_main(train_main, [*argv, *LINEAR_RUN]) == 0
    copies = {"run": run}

    def copy(name: str, file: str | None = None, change=None) -> Path:
        folder = copies[name] = root / name
        shutil.copytree(run, folder)
        if change is not None:
            _rewrite(folder / file, change)
        return folder

    copy("run_no_eta_step", "measurements.nc", lambda ds: ds.drop_vars("eta_step"))
    copy("run_no_flow_time", "measurements.nc", lambda ds: ds.drop_vars("flow_time_step"))
    copy("run_no_x_corr", "moments.nc", lambda ds: ds.drop_vars("x_corr"))
    copy("run_other_dim", "moments.nc", lambda ds: ds.isel(input=slice(4), input_col=slice(4)))
    copy("run_bad_json", "measurements.nc", lambda ds: ds.assign_attrs(params_json="{not json"))
    copy(
        "run_mlp_predictor",
        "measurements.nc",
        lambda ds: ds.assign_attrs(
            matched_scenario="none", predictor_kind="mlp", predictor_linear=0
        ),
    )  # what a run with the default MLP predictor records (the rest is never read)
    truncated = copy("run_truncated") / "checkpoint.pt"  # the only one: a 1-epoch run
    truncated.write_bytes(truncated.read_bytes()[:5000])
    changed = copy("run_changed") / "checkpoint.pt"
    data = bytearray(changed.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte flipped: the size is as recorded, the hash is not
    changed.write_bytes(bytes(data))

    copies["sweep"] = root / "sweep"

    def stop_after_two(unit, seen=[]):  # noqa: B006 (a counter kept across calls)
        seen.append(unit)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep("eigenmodes", ["eta=0:0.3:12"], out=copies["sweep"] / "s.nc", chunk=2,
                  on_unit=stop_after_two)  # fmt: skip
    return copies


def listing(folder: Path) -> dict[str, int]:
    """Every file and folder below ``folder`` (dot files included) with its size."""
    return {
        str(p.relative_to(folder)): p.stat().st_size if p.is_file() else -1
        for p in folder.rglob("*")
    }


def run_command(command: str, argv: list[str], capsys) -> tuple[int, str]:
    """(exit status, stderr) of ``python -m COMMAND ARGV`` run in this process."""
    module, name = MAINS[command]
    main = getattr(importlib.import_module(module), name)
    capsys.readouterr()
    try:
        code = run_main(main, argv, prog=f"python -m {command}")
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    return code, capsys.readouterr().err


def test_the_table_covers_every_command():
    per_command = {c: sum(case.command == c for case in CASES) for c in MAINS}
    assert len(CASES) >= 60 and min(per_command.values()) >= 5, per_command
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input(bad: Case, places, tmp_path, monkeypatch, capsys, request):
    monkeypatch.chdir(tmp_path)
    fill = {k: str(v) for k, v in places.items()}
    if any("{run" in a or "{sweep}" in a for a in bad.argv):  # the training run costs seconds
        fill.update({k: str(v) for k, v in request.getfixturevalue("runs").items()})
    argv = [a.format(**fill) for a in bad.argv]
    root = places["dir"].parent
    before = listing(root)
    code, err = run_command(bad.command, argv, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == bad.code, err
    assert len(lines) == 1, err
    assert bad.value.format(**fill) in lines[0]
    assert lines[0].startswith(f"python -m {bad.command}"), lines[0]
    assert "Traceback" not in err
    assert listing(tmp_path) == {}, "a file was written in the working folder"
    assert listing(root) == before, "a file was written or left beside the inputs"


def test_a_truncated_idx_file_is_named(places):
    """The damaged download is reported with its path, as the case above expects; the intact
    copy it was cut from reads (so the case tests truncation, not a bad fixture)."""
    from empirical.data import read_idx

    name = "train-images-idx3-ubyte.gz"
    assert read_idx(places["fashion"] / name).shape == (320, 28, 28)
    with gzip.open(places["truncated"] / name) as fh, pytest.raises(EOFError):
        fh.read()


def test_the_read_only_stand_in_cannot_be_written():
    """``/sys`` refuses a new file even to root: the read-only cases test a real refusal."""
    with pytest.raises(OSError):
        fd = os.open(f"{READ_ONLY}/ssl-dynamics-write-test", os.O_CREAT | os.O_WRONLY, 0o644)
        os.close(fd)
