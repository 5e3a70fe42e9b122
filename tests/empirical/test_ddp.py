"""DDP on the CPU (gloo, 2 processes): the gradients equal those of one process on the global batch.

Each rank gets half of a fixed global batch of views; BatchNorm is synchronised
(:class:`empirical.distributed.GatheredBatchNorm`), cross-sample loss statistics are gathered with
gradients, DDP averages the gradients. The reference is the same model (same seed) in one process
with ordinary BatchNorm on the whole batch. float64 throughout, so agreement is to round-off.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import xarray as xr

from empirical.backbones import ConvNet
from empirical.config import build_method
from empirical.distributed import convert_sync_batchnorm
from empirical.methods import Method
from tests.empirical.conftest import REPO, tiny

METHODS = ("byol", "barlow_twins", "vicreg", "simclr", "simsiam", "liu", "moco_v2", "directpred")
N = 16  # global batch; 8 per rank (Liu's k = 8 parts of the global batch)


#: small heads for every method (and each method's own small options)
SMALL = {"proj_hidden": 32, "proj_dim": 16}
OWN = {"byol": {"pred_hidden": 32}, "simsiam": {"pred_hidden": 32}, "moco_v2": {"queue_size": 64}}


def build(name: str) -> Method:
    torch.manual_seed(0)
    return build_method(name, ConvNet(1, 4), **SMALL, **OWN.get(name, {})).double()


def global_views() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return (
        torch.randn(N, 1, 12, 12, generator=g, dtype=torch.float64),
        torch.randn(N, 1, 12, 12, generator=g, dtype=torch.float64),
    )


def gradients(model: Method, v1, v2) -> tuple[float, dict[str, torch.Tensor]]:
    loss, _, _ = model.training_loss(v1, v2)
    loss.backward()
    return float(loss.detach()), {k: p.grad.clone() for k, p in model.online.named_parameters()}


def worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        v1, v2 = global_views()
        mine = slice(rank * N // world, (rank + 1) * N // world)
        for name in METHODS:
            model = build(name)
            convert_sync_batchnorm(model, "cpu")
            model.set_forward(torch.nn.parallel.DistributedDataParallel(model.online))
            loss, grads = gradients(model, v1[mine], v2[mine])
            torch.save({"loss": loss, "grads": grads}, os.path.join(out, f"{name}_{rank}.pt"))
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(worker, args=(2, free_port(), str(out)), nprocs=2, join=True)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", METHODS)
def test_ddp_gradients_equal_one_process_on_the_global_batch(ddp_results, name):
    ref_loss, ref = gradients(build(name), *global_views())
    for rank in range(2):
        got = torch.load(ddp_results / f"{name}_{rank}.pt", weights_only=True)
        assert set(got["grads"]) == set(ref)
        for key, g in ref.items():
            assert torch.allclose(got["grads"][key], g, rtol=1e-9, atol=1e-12), (rank, key)
        if name in ("barlow_twins", "vicreg", "simclr", "liu"):  # global-batch loss on each rank
            assert got["loss"] == pytest.approx(ref_loss, rel=1e-12)


def torchrun(fashion_dir, out, *extra: str, epochs: int = 1) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node 2 -m empirical.train vicreg`` (gloo) on the tiny setting."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        str(free_port()),
        "-m",
        "empirical.train",
        "vicreg",
        "--data",
        f"fashion-mnist:{fashion_dir}",
        "--epochs",
        str(epochs),
        "--out",
        str(out),
        *tiny("vicreg"),
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_torchrun_trains_with_two_cpu_processes(fashion_dir, tmp_path):
    """``torchrun --nproc-per-node 2 -m empirical.train``: gloo, synchronised BN, one result."""
    out = tmp_path / "run"
    res = torchrun(fashion_dir, out)
    assert res.returncode == 0, res.stderr[-2000:]
    ds = xr.open_dataset(out / "measurements.nc")
    assert ds.attrs["param_world_size"] == 2 and list(ds["epoch"].values) == [0, 1]
    assert int(ds["step_at_measurement"][-1]) == 4  # 256 images / global batch 64


@pytest.mark.slow
def test_torchrun_resume_is_bit_identical_with_random_views(fashion_dir, tmp_path):
    """2 ranks, BYOL's random views: 2 epochs straight == 1 epoch, stop, --resume, 1 epoch
    (each rank resumes its own augmentation stream; with rank 0's on both, the weights differed
    by 2e-2 after 3 steps)."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    for out, extra in ((straight, ()), (split, ("--stop-after", "1")), (split, ("--resume",))):
        res = torchrun(fashion_dir, out, "--augment", "byol", *extra, epochs=2)
        assert res.returncode == 0, res.stderr[-2000:]
    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(split / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 8 and len(a["generator"]) == 2
    assert not torch.equal(a["generator"][0], a["generator"][1])  # one stream per rank
    for x, y in zip(a["generator"], b["generator"], strict=True):
        assert torch.equal(x, y)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
