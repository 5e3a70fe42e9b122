"""Datasets: Fashion-MNIST from its IDX files, and ImageFolder trees of JPEGs (ImageNet layout).

``--data`` values:
  ``fashion-mnist[:PATH]``  the four IDX files (``.gz`` or not); default folder
                            /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist)
  ``imagenet:PATH``         PATH/train and PATH/val, class folders of images
  ``folder:PATH``           one tree of class folders, split 80/10/10 (train/val/test) by seed

Splits (never mixed): the self-supervised *train* pool; a labelled *validation* split held out of
the training images (probe hyperparameters are selected on it); the *test* split (Fashion-MNIST's
10k test images, ImageNet's val folder) on which probe accuracies are reported; the *eval* subset,
the first ``eval_size`` test images, un-augmented, on which the per-epoch measurements are taken.
Probe-train images are the first ``probe_train`` images of the train pool.

Folder images are decoded and batched by :mod:`empirical.images` (the whole image, its shorter
side resized to ``load_size``, on a canvas; unreadable files skipped, counted and reported), by
loaders that keep their worker processes from one epoch to the next.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from empirical.images import UNREADABLE, FolderImages, auto_workers, decode_image, folder_batches
from symbolic.common.cli import UsageError

FASHION_DEFAULT = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_STATS = ((0.2860,), (0.3530,))  # mean, std of the 60k training images
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".gif")
DATA_KINDS = ("fashion-mnist", "imagenet", "folder")


# ----------------------------------------------------------------------------- parsing
def parse_data(value: str) -> tuple[str, Path | None]:
    """'fashion-mnist', 'fashion-mnist:PATH', 'imagenet:PATH' or 'folder:PATH' -> (kind, path)."""
    kind, _, path = value.partition(":")
    if kind not in DATA_KINDS:
        raise UsageError(
            f"--data {value!r}: unknown dataset {kind!r}; use fashion-mnist[:PATH], "
            "imagenet:PATH or folder:PATH"
        )
    if kind != "fashion-mnist" and not path:
        raise UsageError(f"--data {value!r}: {kind} needs a folder, as {kind}:PATH")
    return kind, Path(path) if path else None


# ----------------------------------------------------------------------------- IDX files
def read_idx(path: Path) -> np.ndarray:
    """An IDX array (LeCun's MNIST format): magic 0 0 type ndim, big-endian int32 sizes, data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:  # a truncated or damaged download
        reason = str(err) or type(err).__name__
        raise UsageError(f"{path}: damaged file ({reason}); download it again") from None
    except OSError as err:
        raise UsageError(f"{path}: cannot read ({err.strerror or err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise UsageError(f"{path}: not an IDX file (bad magic number)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise UsageError(f"{path}: unknown IDX data type 0x{raw[2]:02x}")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=dtypes[raw[2]], offset=4 + 4 * ndim)
    if data.size != math.prod(shape):
        raise UsageError(f"{path}: truncated IDX file ({data.size} values for shape {shape})")
    return data.reshape(shape)


def _find_idx(root: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    return None


def load_fashion_mnist(root: Path | None) -> dict[str, np.ndarray]:
    """The four Fashion-MNIST arrays; UsageError naming the Debian package when missing."""
    root = FASHION_DEFAULT if root is None else root
    out = {}
    for key, stem in FASHION_FILES.items():
        path = _find_idx(root, stem)
        if path is None:
            raise UsageError(
                f"Fashion-MNIST not found: {root}/{stem}[.gz] is missing; install the Debian "
                "package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass "
                "--data fashion-mnist:PATH with the four IDX files"
            )
        out[key] = read_idx(path)
    return out


# ----------------------------------------------------------------------------- folders
def scan_folder(root: Path) -> tuple[list[Path], list[int], list[str]]:
    """(files, labels, class names) of an ImageFolder tree (class = first-level folder)."""
    if not root.is_dir():
        raise UsageError(f"image folder {root} does not exist")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((root / name).rglob("*")):
            if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(path)
                labels.append(label)
    if not files:
        raise UsageError(
            f"image folder {root} holds no images in class sub-folders "
            f"(extensions {', '.join(IMAGE_EXTENSIONS)})"
        )
    return files, labels, classes


# ----------------------------------------------------------------------------- splits
@dataclass
class Split:
    """A labelled split: in-memory uint8 arrays, or a folder dataset read in batches."""

    images: torch.Tensor | None = None  # (N, C, H, W) uint8, for in-memory data
    labels: torch.Tensor | None = None
    folder: FolderImages | None = None
    indices: np.ndarray | None = None  # positions in ``folder``
    skipped: set = field(default_factory=set)  # unreadable files met so far (folder indices)

    def __len__(self) -> int:
        return len(self.images) if self.images is not None else len(self.indices)

    def head(self, n: int) -> Split:
        """The first ``n`` samples (all when n <= 0 or n > len)."""
        n = len(self) if n <= 0 else min(n, len(self))
        if self.images is not None:
            return Split(images=self.images[:n], labels=self.labels[:n])
        return Split(folder=self.folder, indices=self.indices[:n], skipped=self.skipped)

    def batches(
        self, positions: np.ndarray, batch_size: int, device, stream: str = "eval"
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """uint8 images and labels of ``positions`` (rows of this split), in batches; folder
        images come from the folder's persistent loader of ``stream`` ("train" or "eval")."""
        if self.images is not None:
            for start in range(0, len(positions), batch_size):
                sel = torch.as_tensor(positions[start : start + batch_size], device=device)
                yield self.images[sel], self.labels[sel]
            return
        indices = self.indices[positions]
        for images, labels, skipped in folder_batches(
            self.folder, indices, batch_size, device, stream
        ):
            self.skipped.update(skipped)
            yield images, labels

    def all_batches(self, batch_size: int, device):
        return self.batches(np.arange(len(self)), batch_size, device)


@dataclass
class Dataset:
    """Every split of one dataset plus what the model needs to know about its images."""

    name: str
    train: Split
    val: Split
    test: Split
    channels: int
    native_size: int  # side of the stored (or loaded) square images
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int

    def skipped_files(self) -> list[Path]:
        """Unreadable files met so far (empty for in-memory data)."""
        out = set()
        for split in (self.train, self.val, self.test):
            if split.folder is not None:
                out.update(split.folder.files[i] for i in split.skipped)
        return sorted(out)


def _array_split(images: np.ndarray, labels: np.ndarray, rows: np.ndarray, device) -> Split:
    x = torch.from_numpy(np.ascontiguousarray(images[rows]))[:, None].to(device)
    y = torch.from_numpy(labels[rows].astype(np.int64)).to(device)
    return Split(images=x, labels=y)


def check_readable(files: list[Path], load_size: int, root: Path) -> None:
    """UsageError unless at least one of ``files`` decodes (then every read of the split finds
    an image: an unreadable file is replaced by the next readable one). Decodes files until the
    first readable one: one image for a sound folder."""
    for path in files:
        try:
            decode_image(path, load_size)
        except UNREADABLE:
            continue
        return
    raise UsageError(
        f"image folder {root}: none of its {len(files)} image files can be read (first: {files[0]})"
    )


def open_dataset(
    spec: str, val_size: int, load_size: int | None, seed: int, device, workers: str | int = 0
) -> Dataset:
    """Open ``--data`` and cut its splits (see the module docstring); folder images are decoded
    by ``workers`` processes ("auto": :func:`empirical.images.auto_workers`), on the GPU where
    ``device`` is CUDA."""
    kind, path = parse_data(spec)
    rng = np.random.default_rng(seed)
    if kind == "fashion-mnist":
        arrays = load_fashion_mnist(path)
        n = len(arrays["train_images"])
        if not 0 < val_size < n:
            raise UsageError(f"--val-size {val_size}: must be between 1 and {n - 1}")
        order = rng.permutation(n)
        train_rows, val_rows = order[val_size:], order[:val_size]
        timg, tlab = arrays["train_images"], arrays["train_labels"]
        test_rows = np.arange(len(arrays["test_images"]))
        return Dataset(
            "fashion-mnist",
            _array_split(timg, tlab, train_rows, device),
            _array_split(timg, tlab, val_rows, device),
            _array_split(arrays["test_images"], arrays["test_labels"], test_rows, device),
            channels=1,
            native_size=timg.shape[-1],
            mean=FASHION_STATS[0],
            std=FASHION_STATS[1],
            num_classes=int(tlab.max()) + 1,
        )
    load = load_size or 256
    if kind == "imagenet":
        for sub in ("train", "val"):
            if not (path / sub).is_dir():
                raise UsageError(f"--data imagenet:{path}: missing the folder {path / sub}")
        files, labels, classes = scan_folder(path / "train")
        test_files, test_labels, test_classes = scan_folder(path / "val")
        if test_classes != classes:
            raise UsageError(f"{path}/val has other class folders than {path}/train")
        check_readable(files, load, path / "train")
        check_readable(test_files, load, path / "val")
        order = rng.permutation(len(files))
        n_val = min(val_size, len(files) // 5)
        if n_val < 1:
            raise UsageError(
                f"{path}/train has too few images ({len(files)}) for a validation split"
            )
        n = len(files)
        segments = [(0, n), (n, n + len(test_files))]
        folder = FolderImages(files + test_files, labels + test_labels, load, segments)
        rows = {
            "train": order[n_val:],
            "val": order[:n_val],
            "test": n + np.arange(len(test_files)),
        }
    else:
        files, labels, classes = scan_folder(path)
        check_readable(files, load, path)
        order = rng.permutation(len(files))
        n_hold = max(1, len(files) // 10)
        if len(files) < 3 * n_hold or len(files) < 3:
            raise UsageError(f"{path} has too few images ({len(files)}) to split train/val/test")
        folder = FolderImages(files, labels, load)
        rows = {
            "train": order[2 * n_hold :],
            "val": order[:n_hold],
            "test": order[n_hold : 2 * n_hold],
        }
    folder.workers = auto_workers(local_processes()) if workers == "auto" else int(workers)
    folder.encoded = torch.device(device).type == "cuda"
    splits = {k: Split(folder=folder, indices=np.asarray(v)) for k, v in rows.items()}
    return Dataset(
        f"{kind}:{path}",
        splits["train"],
        splits["val"],
        splits["test"],
        channels=3,
        native_size=load,
        mean=IMAGENET_STATS[0],
        std=IMAGENET_STATS[1],
        num_classes=len(classes),
    )


def local_processes() -> int:
    """Training processes on this machine (torchrun's LOCAL_WORLD_SIZE; 1 without torchrun)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The training order of epoch ``epoch``: a permutation fixed by (seed, epoch) alone.

    Resuming at an epoch boundary therefore replays exactly the order of an uninterrupted run.
    """
    return np.random.default_rng([seed, epoch, 0x5EED]).permutation(n)


def rank_batches(order: np.ndarray, global_batch: int, rank: int, world: int) -> list[np.ndarray]:
    """This rank's slice of every full global batch (the last incomplete batch is dropped)."""
    per_rank = global_batch // world
    steps = len(order) // global_batch
    return [
        order[s * global_batch + rank * per_rank : s * global_batch + (rank + 1) * per_rank]
        for s in range(steps)
    ]
