"""Fixtures: a small Fashion-MNIST folder in IDX format and a tiny training configuration."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from symbolic.common.cli import run_main

REPO = Path(__file__).resolve().parents[2]
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")

#: Small enough for a CPU epoch in about a second: 8-wide ConvNet, 64-d heads, 4 steps/epoch.
#: Options of one method only (a method's own options are refused by the others) are in
#: METHOD_TINY.
TINY = [
    "--train-subset",
    "256",
    "--batch-size",
    "64",
    "--val-size",
    "200",
    "--probe-train",
    "200",
    "--probe-test",
    "200",
    "--eval-size",
    "200",
    "--width",
    "8",
    "--proj-hidden",
    "64",
    "--proj-dim",
    "32",
    "--workers",
    "0",
    "--quiet",
]


METHOD_TINY = {
    "byol": ["--pred-hidden", "64"],
    "simsiam": ["--pred-hidden", "64"],
    "moco_v2": ["--queue-size", "256"],
}


def tiny(method: str) -> list[str]:
    """TINY plus the method's own small options."""
    return [*TINY, *METHOD_TINY.get(method, [])]


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX file (LeCun's format) written with struct: magic 0 0 0x08 ndim, big-endian sizes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def _fashion_arrays(n_train: int, n_test: int) -> dict[str, np.ndarray]:
    """Real Fashion-MNIST images when the Debian package is installed, else class patterns."""
    if (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").exists():
        from empirical.data import load_fashion_mnist

        full = load_fashion_mnist(DEBIAN_FASHION)
        return {
            "train-images-idx3-ubyte": full["train_images"][:n_train],
            "train-labels-idx1-ubyte": full["train_labels"][:n_train],
            "t10k-images-idx3-ubyte": full["test_images"][:n_test],
            "t10k-labels-idx1-ubyte": full["test_labels"][:n_test],
        }
    rng = np.random.default_rng(0)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        yy, xx = np.mgrid[:28, :28]
        images = np.stack(
            [(127 + 120 * np.sin((xx * (1 + c % 5) + yy * (c // 5)) / 3.0)) for c in labels]
        )
        images = np.clip(images + rng.normal(0, 20, images.shape), 0, 255)
        out[f"{prefix}-images-idx3-ubyte"] = images.astype(np.uint8)
        out[f"{prefix}-labels-idx1-ubyte"] = labels.astype(np.uint8)
    return out


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tests of tiny models run on one thread: on the shared 2-core machine, with other jobs
    running, two OpenMP threads made a tiny 2-epoch run 5x slower (57 s against 10 s)."""

    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def fashion_dir(tmp_path_factory) -> Path:
    """A folder with the four Fashion-MNIST IDX files (1000 train, 300 test images)."""
    root = tmp_path_factory.mktemp("fashion")
    for name, array in _fashion_arrays(1000, 300).items():
        write_idx(root / f"{name}.gz", array)
    return root


def train(method: str, out: Path, fashion: Path, *extra: str, epochs: int = 1) -> int:
    """Run ``python -m empirical.train`` in this process; returns the exit status."""
    from empirical.train import main

    argv = [
        method,
        "--data",
        f"fashion-mnist:{fashion}",
        "--epochs",
        str(epochs),
        "--out",
        str(out),
    ]
    return run_main(main, [*argv, *tiny(method), *extra])


def run_inprocess(capsys, *args: str) -> tuple[int, str]:
    """(exit status, stderr) of ``python -m empirical.train ARGS`` run in this process."""
    from empirical.train import main

    capsys.readouterr()
    try:
        code = run_main(main, list(args))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    return code, capsys.readouterr().err


def cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m empirical.train ARGS`` in a subprocess (for exit statuses and stderr)."""
    return subprocess.run(
        [sys.executable, "-m", "empirical.train", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
