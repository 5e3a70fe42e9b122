"""Image files to uint8 batches: decoding, the canvas that keeps each whole image, loaders.

Decoding: JPEGs with ``torchvision.io.decode_jpeg`` (libjpeg-turbo; grayscale and CMYK converted
to RGB), any other file (PNG, a PNG named .JPEG, ...) with PIL. Where CUDA is present the loader
workers only read the files and the batch is decoded on the GPU (nvJPEG, ``decode_jpeg(...,
device="cuda")``); a file nvJPEG refuses is decoded on the CPU. An image that cannot be read is
skipped: its slot is filled by the next readable image of the same folder, and the skipped file
is counted and reported, so a corrupt file never stops an epoch and batches keep their size
(which DDP's gathers need).

The canvas: each image is resized (bilinear, antialiased) so that its shorter side is
``load_size``, its longer side cut centrally to at most ``MAX_SIDE_RATIO`` times that, and placed at
the top left of a square uint8 canvas of side ``canvas_side(load_size)``; the batch carries the
images' heights and widths as ``images.image_sizes`` (n, 2). The random resized crop then draws
from the whole image, as torchvision's RandomResizedCrop does (:mod:`empirical.augment`), and the
evaluation view is the central square (Resize 256 + CenterCrop 224).

Loaders are made once per folder and purpose ("train", "eval") and kept with their worker
processes (``persistent_workers``): a new epoch only hands them a new list of batches.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from symbolic.common.cli import UsageError

#: the longest side kept, relative to the shorter (4:3, the usual photograph; wider images lose
#: the ends of their longer side)
MAX_SIDE_RATIO = 4 / 3
UNREADABLE = (
    OSError,
    UnidentifiedImageError,
    ValueError,
    SyntaxError,
    RuntimeError,
    Image.DecompressionBombError,
)


def canvas_side(load_size: int) -> int:
    return round(load_size * MAX_SIDE_RATIO)


def auto_workers(processes: int) -> int:
    """Decoding workers per training process: the usable cores over the processes of this
    machine, less one for the process itself (at least 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, processes) - 1)


def jpeg_decoded(data, device="cpu"):
    """``torchvision.io.decode_jpeg`` to RGB. torchvision 0.29 marks its decoders deprecated in
    favour of TorchCodec, not a dependency here; decode_jpeg is still libjpeg-turbo / nvJPEG.
    Imported here: torchvision's import costs about 2 s of CPU, which a run on Fashion-MNIST
    (the bridge's runs) never needs."""
    from torchvision.io import ImageReadMode, decode_jpeg

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities")
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)


def decode_bytes(data: torch.Tensor) -> torch.Tensor:
    """RGB uint8 (3, H, W) of an encoded image (a uint8 tensor of the file's bytes)."""
    try:
        return jpeg_decoded(data)
    except RuntimeError:  # not a JPEG libjpeg reads: PIL (raises one of UNREADABLE)
        with Image.open(io.BytesIO(data.numpy().tobytes())) as img:
            rgb = torch.from_numpy(np.asarray(img.convert("RGB")).copy())
        return rgb.permute(2, 0, 1).contiguous()


def read_bytes(path: Path) -> torch.Tensor:
    return torch.frombuffer(bytearray(Path(path).read_bytes()), dtype=torch.uint8)


def fit(image: torch.Tensor, load_size: int) -> torch.Tensor:
    """The image resized so that its shorter side is ``load_size`` (bilinear, antialiased), its
    longer side cut centrally to at most ``canvas_side(load_size)``; uint8 in, uint8 out."""
    _, h, w = image.shape
    scale = load_size / min(h, w)
    nh, nw = max(load_size, round(h * scale)), max(load_size, round(w * scale))
    if (nh, nw) != (h, w):
        x = F.interpolate(image[None].float(), (nh, nw), mode="bilinear", antialias=True)
        image = x[0].round_().clamp_(0, 255).to(torch.uint8)
    side = canvas_side(load_size)
    top, left = max(0, (nh - side) // 2), max(0, (nw - side) // 2)
    return image[:, top : top + min(nh, side), left : left + min(nw, side)]


def place(image: torch.Tensor, side: int) -> torch.Tensor:
    """``image`` at the top left of a zero (C, side, side) canvas."""
    canvas = image.new_zeros(image.shape[0], side, side)
    canvas[:, : image.shape[1], : image.shape[2]] = image
    return canvas


def decode_image(path: Path, load_size: int) -> torch.Tensor:
    """RGB uint8 (3, h, w) of the file, fitted to ``load_size`` (:func:`fit`)."""
    return fit(decode_bytes(read_bytes(path)), load_size)


class FolderImages(torch.utils.data.Dataset):
    """Images of folder trees (one or more ``segments`` of ``files``: a train and a val folder);
    an unreadable file is replaced by the next readable one of its segment.

    Item: (canvas, label, (h, w), skipped indices); with ``encoded``, the file's bytes instead of
    the canvas (decoded by :meth:`decode_batch` on the device).
    """

    def __init__(
        self,
        files: list[Path],
        labels: list[int],
        load_size: int,
        segments: list[tuple[int, int]] | None = None,
        workers: int = 0,
        encoded: bool = False,
    ) -> None:
        self.files, self.labels, self.load_size = files, labels, load_size
        self.segments = segments or [(0, len(files))]
        self.workers, self.encoded = workers, encoded
        self.loaders: dict[str, tuple[torch.utils.data.DataLoader, BatchList]] = {}

    def __len__(self) -> int:
        return len(self.files)

    def __getstate__(self) -> dict:  # workers get the files, not the loaders
        return {**self.__dict__, "loaders": {}}

    def segment(self, index: int) -> tuple[int, int]:
        return next((a, b) for a, b in self.segments if a <= index < b)

    def __getitem__(self, index: int):
        return self.read(index, self.encoded)

    def read(self, index: int, encoded: bool):
        """The item at ``index`` (see the class), the next readable file's if it is unreadable."""
        start, stop = self.segment(index)
        skipped = []
        for k in range(stop - start):
            i = start + (index - start + k) % (stop - start)
            try:
                if encoded:
                    return read_bytes(self.files[i]), self.labels[i], i, skipped
                image = decode_image(self.files[i], self.load_size)
            except UNREADABLE:
                skipped.append(i)
                continue
            size = (image.shape[1], image.shape[2])
            return place(image, canvas_side(self.load_size)), self.labels[i], size, skipped
        raise UsageError(f"no readable image among the {stop - start} files of {self.files[start]}")

    def loader(self, stream: str, pin: bool) -> tuple[torch.utils.data.DataLoader, BatchList]:
        """The loader of ``stream`` ("train" or "eval"), made on first use and kept."""
        if stream not in self.loaders:
            batches = BatchList()
            loader = torch.utils.data.DataLoader(
                self,
                batch_sampler=batches,
                num_workers=self.workers,
                collate_fn=collate,
                pin_memory=pin,
                persistent_workers=self.workers > 0,
                prefetch_factor=4 if self.workers > 0 else None,
            )
            self.loaders[stream] = (loader, batches)
        return self.loaders[stream]

    def decode_batch(self, items: list, device) -> tuple:
        """Canvases (on ``device``), labels, sizes and skipped indices of encoded items; a file
        the device decoder refuses is decoded on the CPU, an unreadable one replaced as in
        :meth:`__getitem__`."""
        data = [it[0] for it in items]
        try:
            images = jpeg_decoded(data, device)
        except RuntimeError:
            images = [None] * len(items)
        side, canvases, sizes, skipped = canvas_side(self.load_size), [], [], []
        labels = [it[1] for it in items]
        for k, (image, (raw, _, index, _)) in enumerate(zip(images, items, strict=True)):
            if image is None:
                try:
                    image = decode_bytes(raw).to(device)
                except UNREADABLE:
                    canvas, labels[k], size, missed = self.read(index, encoded=False)
                    canvases.append(canvas.to(device))
                    sizes.append(size)
                    skipped += [index, *missed]
                    continue
            image = fit(image, self.load_size)
            canvases.append(place(image, side))
            sizes.append(tuple(image.shape[1:]))
        sizes = torch.tensor(sizes, device=device)
        return torch.stack(canvases), torch.tensor(labels), sizes, skipped


class BatchList(torch.utils.data.Sampler):
    """The batches (lists of dataset indices) a persistent loader serves next."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def collate(items):
    labels = torch.tensor([it[1] for it in items], dtype=torch.long)
    skipped = sorted({i for it in items for i in it[3]})
    if isinstance(items[0][2], int):  # encoded: decoded in the main process
        return items, labels, None, skipped
    images = torch.stack([it[0] for it in items])
    return images, labels, torch.tensor([it[2] for it in items]), skipped


def folder_batches(folder: FolderImages, indices, batch_size: int, device, stream: str):
    """uint8 canvases (``.image_sizes`` attached) and labels of ``indices``, in batches."""
    loader, batches = folder.loader(stream, pin=device.type == "cuda")
    batches.batches = [
        [int(i) for i in indices[s : s + batch_size]] for s in range(0, len(indices), batch_size)
    ]
    for images, labels, sizes, skipped in loader:
        if sizes is None:
            images, labels, sizes, missed = folder.decode_batch(images, device)
            skipped = [*skipped, *missed]
        images = images.to(device, non_blocking=True)
        images.image_sizes = sizes.to(device, non_blocking=True)
        yield images, labels.to(device, non_blocking=True), skipped
