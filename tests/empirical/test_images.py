"""Folder images: whole images on a canvas, crops from the whole image, decoding in the main
process (the GPU path) equal to decoding in the workers, loaders kept across epochs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from empirical import augment
from empirical.data import scan_folder
from empirical.images import FolderImages, canvas_side, folder_batches
from tests.empirical.conftest import run_inprocess
from tests.empirical.test_data import make_tree

CPU = torch.device("cpu")


def test_crops_come_from_the_whole_image_and_stay_inside_it():
    """A 40 x 53 landscape and a 53 x 40 portrait image on one 53-px canvas: every crop box lies
    inside its own image, and crops reach the ends of the longer side, outside the central
    square (which is all the loader used to keep)."""
    n = 4000
    sizes = torch.tensor([[40.0, 53.0], [53.0, 40.0]]).repeat(n // 2, 1)
    g = torch.Generator().manual_seed(0)
    boxes = augment.sample_crop_boxes(
        n, sizes[:, 0], sizes[:, 1], (0.08, 1.0), (3 / 4, 4 / 3), g, CPU
    )
    x0, y0, w, h = boxes.unbind(1)
    assert torch.all((x0 >= 0) & (y0 >= 0) & (w >= 1) & (h >= 1))
    assert torch.all((x0 + w <= sizes[:, 1]) & (y0 + h <= sizes[:, 0]))
    landscape = sizes[:, 1] > sizes[:, 0]
    centre = (53 - 40) // 2
    assert bool((x0[landscape] < centre).any()) and bool((x0 + w)[landscape].gt(centre + 40).any())
    assert bool((y0[~landscape] < centre).any()) and bool(
        (y0 + h)[~landscape].gt(centre + 40).any()
    )
    # the views hold no canvas padding: images of ones on a zero canvas stay ones
    canvas = torch.zeros(2, 3, 53, 53)
    canvas[0, :, :40, :] = 1
    canvas[1, :, :, :40] = 1
    plain = augment.ViewParams(jitter_prob=0, grayscale_prob=0, blur_prob=0, solarize_prob=0)
    for seed in range(20):
        view = augment.augment_view(
            canvas, plain, 16, torch.Generator().manual_seed(seed), sizes[:2]
        )
        assert torch.allclose(view, torch.ones_like(view))


def batches_of(folder, indices, stream="eval"):
    return list(folder_batches(folder, np.asarray(indices), 5, CPU, stream))


def test_decoding_in_the_main_process_equals_decoding_in_the_workers(tmp_path):
    """The GPU path (workers read bytes, the batch is decoded where the model is) run on the
    CPU: the same canvases, sizes and skipped files as the worker path, the garbage file
    replaced by the next readable one."""
    make_tree(tmp_path)
    files, labels, _ = scan_folder(tmp_path)
    indices = list(range(len(files)))
    decoded = batches_of(FolderImages(files, labels, 40), indices)
    encoded = batches_of(FolderImages(files, labels, 40, encoded=True), indices)
    skipped = set()
    for (a, la, sa), (b, lb, sb) in zip(decoded, encoded, strict=True):
        assert a.shape[1:] == (3, canvas_side(40), canvas_side(40))
        assert torch.equal(a, b) and torch.equal(a.image_sizes, b.image_sizes)
        assert torch.equal(la, lb) and set(sa) == set(sb)
        skipped |= set(sa)
    assert {files[i].name for i in skipped} == {"garbage.jpg", "truncated.jpg"}


def test_the_loader_and_its_workers_are_kept_from_one_epoch_to_the_next(tmp_path):
    make_tree(tmp_path)
    files, labels, _ = scan_folder(tmp_path)
    folder = FolderImages(files, labels, 40, workers=1)
    first = batches_of(folder, [3, 1, 2, 0, 5], "train")
    loader = folder.loaders["train"][0]
    pids = [w.pid for w in loader._iterator._workers]
    second = batches_of(folder, [0, 1, 2, 3, 5], "train")
    assert folder.loaders["train"][0] is loader
    assert [w.pid for w in loader._iterator._workers] == pids
    # a new order is served: the same images, permuted
    assert torch.equal(first[0][0][[3, 1, 2, 0, 4]], second[0][0])


@pytest.mark.parametrize("value", ["many", "-1", "300"])
def test_workers_is_a_number_or_auto(tmp_path, capsys, value):
    code, err = run_inprocess(capsys, "byol", "--workers", value, "--out", str(tmp_path / "o"))
    assert code == 2 and "auto or a whole number" in err and len(err.strip().splitlines()) == 1
