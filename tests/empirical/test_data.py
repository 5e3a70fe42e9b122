"""Data: IDX reader against torchvision's, missing data, ImageFolder trees with corrupt files."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
import xarray as xr
from PIL import Image, ImageEnhance, ImageOps

from empirical.data import FolderImages, open_dataset, read_idx, scan_folder
from tests.empirical.conftest import DEBIAN_FASHION, TINY, cli, run_inprocess, write_idx

PHOTO = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


@pytest.mark.skipif(
    not (DEBIAN_FASHION / "t10k-images-idx3-ubyte.gz").exists(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_idx_reader_matches_torchvision_on_the_debian_files(tmp_path):
    import gzip
    import shutil

    from torchvision.datasets.mnist import read_sn3_pascalvincent_tensor

    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        raw = tmp_path / stem
        with gzip.open(DEBIAN_FASHION / f"{stem}.gz") as src, open(raw, "wb") as dst:
            shutil.copyfileobj(src, dst)
        ours = read_idx(DEBIAN_FASHION / f"{stem}.gz")
        ref = read_sn3_pascalvincent_tensor(str(raw)).numpy()
        assert ours.shape == ref.shape and np.array_equal(ours, ref)
    assert ours.shape == (10000,) and np.bincount(ours).tolist() == [1000] * 10


def test_idx_round_trip_and_splits(fashion_dir, tmp_path):
    array = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    write_idx(tmp_path / "x.gz", array)
    assert np.array_equal(read_idx(tmp_path / "x.gz"), array)
    data = open_dataset(f"fashion-mnist:{fashion_dir}", 200, None, 0, torch.device("cpu"))
    assert (len(data.train), len(data.val), len(data.test)) == (800, 200, 300)
    assert data.train.images.shape[1:] == (1, 28, 28) and data.num_classes == 10
    # validation images are held out of the training pool
    train = {bytes(x.numpy()) for x in data.train.images}
    assert not any(bytes(x.numpy()) in train for x in data.val.images)


def test_missing_fashion_mnist_names_the_debian_package(tmp_path):
    res = cli("byol", "--data", f"fashion-mnist:{tmp_path}/none", "--out", str(tmp_path / "o"))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "dataset-fashion-mnist" in lines[0] and "none" in lines[0]


def make_tree(root: Path) -> list[Path]:
    """3 classes x 8 real-photo variants (crops, flips, colour) + one garbage + one truncated."""
    photo = Image.open(PHOTO).convert("RGB")
    edits = [
        lambda im: im,
        ImageOps.mirror,
        ImageOps.grayscale,
        lambda im: ImageEnhance.Color(im).enhance(2.0),
        lambda im: im.rotate(90, expand=True),
        lambda im: ImageOps.posterize(im, 3),
        lambda im: ImageEnhance.Brightness(im).enhance(0.5),
        ImageOps.invert,
    ]
    w, h = photo.size
    boxes = [(0, 0, w // 2, h // 2), (w // 2, 0, w, h // 2), (w // 4, h // 2, 3 * w // 4, h)]
    for c, box in enumerate(boxes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True)
        crop = photo.crop(box)
        for i, edit in enumerate(edits):
            edit(crop).save(folder / f"img{i}.jpg", quality=90)
    bad = [root / "class0" / "garbage.jpg", root / "class1" / "truncated.jpg"]
    bad[0].write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    buf = io.BytesIO()
    photo.save(buf, format="JPEG")
    bad[1].write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    return bad


def test_unreadable_image_is_replaced_by_the_next_and_reported(tmp_path):
    bad = make_tree(tmp_path)
    files, labels, classes = scan_folder(tmp_path)
    assert classes == ["class0", "class1", "class2"] and len(files) == 26
    dataset = FolderImages(files, labels, 40)
    index = files.index(bad[0])
    image, label, size, skipped = dataset[index]
    assert skipped == [index] and image.shape == (3, 53, 53) and image.dtype == torch.uint8
    assert min(size) == 40 and max(size) <= 53  # shorter side 40, longer cut to 4:3 at most
    assert torch.equal(image, dataset[index + 1][0])


@pytest.mark.parametrize("layout", ["folder", "imagenet"])
def test_training_on_a_folder_skips_and_counts_corrupt_images(tmp_path, capsys, layout):
    """folder:PATH (one tree, split by seed) and imagenet:PATH (PATH/train, PATH/val)."""
    if layout == "folder":
        make_tree(tmp_path / "tree")
    else:
        make_tree(tmp_path / "tree" / "train")
        make_tree(tmp_path / "tree" / "val")
    out = tmp_path / "run"
    args = ["byol", "--data", f"{layout}:{tmp_path / 'tree'}", "--epochs", "1", "--out", str(out)]
    args += [*TINY, "--batch-size", "8", "--image-size", "32", "--load-size", "40"]
    code, err = run_inprocess(capsys, *args)
    assert code == 0, err
    ds = xr.open_dataset(out / "measurements.nc")
    assert ds.attrs["skipped_images"] == (2 if layout == "folder" else 4)
    assert ds.sizes["epoch"] == 2
    assert (
        f"skipped {ds.attrs['skipped_images']} unreadable images" in (out / "log.txt").read_text()
    )


@pytest.mark.parametrize(
    "data, message",
    [
        ("imagenet:{tmp}", "missing the folder"),
        ("folder:{tmp}/nowhere", "does not exist"),
        ("folder:{tmp}", "holds no images"),
        ("cifar10", "unknown dataset"),
    ],
)
def test_bad_data_arguments_exit_2(tmp_path, capsys, data, message):
    code, err = run_inprocess(
        capsys, "byol", "--data", data.format(tmp=tmp_path), "--out", str(tmp_path / "o")
    )
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
