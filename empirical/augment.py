"""Two-view BYOL augmentation on batched tensors, with an independent random draw per sample.

Grill et al. 2020 (BYOL), Appendix B, Table 6: random resized crop (scale 0.08-1, aspect 3/4-4/3),
horizontal flip p=0.5, colour jitter p=0.8 (brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1,
applied in a random order), grayscale p=0.2, Gaussian blur (sigma 0.1-2, kernel 10% of the image)
with p=1.0 on view 1 and p=0.1 on view 2, solarisation (threshold 0.5) with p=0 on view 1 and p=0.2
on view 2. Everything runs on the training device from one ``torch.Generator``; every sample draws
its own crop box, flip, jitter factors and order, and blur sigma (torchvision.transforms.v2 on a
batched tensor would share one draw across the batch).

Conventions and deviations, stated: crops are resampled bilinearly with ``grid_sample`` (no
antialiasing when a crop is shrunk); for one-channel images (Fashion-MNIST) saturation, hue and
grayscale are the identity; crops come from the whole image the loader delivers (for folder data,
its shorter side resized to ``load_size``, on a canvas, see :mod:`empirical.images`). No operation
synchronises with the host: each runs on the whole batch and is kept where the sample drew it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from empirical.images import MAX_SIDE_RATIO

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601-2 luma, as PIL and torchvision


@dataclass(frozen=True)
class ViewParams:
    """Probabilities and ranges of one view's augmentation (BYOL Table 6 defaults)."""

    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_prob: float = 0.5
    jitter_prob: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    grayscale_prob: float = 0.2
    blur_prob: float = 1.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_prob: float = 0.0


def byol_views(crop_min_scale: float = 0.08) -> tuple[ViewParams, ViewParams]:
    """The asymmetric pair of BYOL: blur always / rarely, solarisation never / sometimes."""
    scale = (crop_min_scale, 1.0)
    return (
        ViewParams(crop_scale=scale, blur_prob=1.0, solarize_prob=0.0),
        ViewParams(crop_scale=scale, blur_prob=0.1, solarize_prob=0.2),
    )


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen, device=device)


def sample_crop_boxes(
    n: int,
    height: int | torch.Tensor,
    width: int | torch.Tensor,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    gen: torch.Generator,
    device,
    attempts: int = 10,
) -> torch.Tensor:
    """Integer crop boxes (x0, y0, w, h), one per sample, as torchvision's RandomResizedCrop.

    Area fraction ~ U(scale), log aspect ~ U(log ratio); the first of ``attempts`` draws that fits
    is kept, otherwise the central crop with the aspect clamped to ``ratio``. Offsets are uniform
    over the positions where the box fits. ``height`` and ``width`` are the image's, or one per
    sample (float tensors, for images of different sizes on one canvas, :mod:`empirical.data`).
    """
    per_sample = isinstance(height, torch.Tensor)
    if per_sample:
        height, width = height.view(n, 1), width.view(n, 1)
    area = height * width
    target = area * _uniform(n * attempts, *scale, gen, device).view(n, attempts)
    log_r = _uniform(n * attempts, math.log(ratio[0]), math.log(ratio[1]), gen, device)
    aspect = torch.exp(log_r).view(n, attempts)
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.argmax(fits.int(), dim=1)
    rows = torch.arange(n, device=device)
    w, h, ok = w[rows, first], h[rows, first], fits.any(dim=1)
    # Fallback: whole image, aspect clamped to the ratio range (torchvision's rule).
    if per_sample:
        height, width = height.view(n), width.view(n)
        in_ratio = width / height
        fw = torch.where(in_ratio > ratio[1], torch.round(height * ratio[1]), width)
        fh = torch.where(in_ratio < ratio[0], torch.round(width / ratio[0]), height)
        w, h = torch.where(ok, w, fw), torch.where(ok, h, fh)
    else:
        in_ratio = width / height
        if in_ratio < ratio[0]:
            fw, fh = width, round(width / ratio[0])
        elif in_ratio > ratio[1]:
            fw, fh = round(height * ratio[1]), height
        else:
            fw, fh = width, height
        w = torch.where(ok, w, torch.full_like(w, fw))
        h = torch.where(ok, h, torch.full_like(h, fh))
    u = torch.rand(2, n, generator=gen, device=device)
    x0 = torch.minimum(torch.floor(u[0] * (width - w + 1)), width - w)
    y0 = torch.minimum(torch.floor(u[1] * (height - h + 1)), height - h)
    return torch.stack([x0, y0, w, h], dim=1)


def resized_crop(
    x: torch.Tensor, boxes: torch.Tensor, size: int, flip: torch.Tensor | None = None
) -> torch.Tensor:
    """Crop each sample to its box (x0, y0, w, h) and resize to size x size, bilinear.

    The affine map sends output pixel centres to input pixel centres of the box
    (``align_corners=False`` convention); ``flip`` (bool per sample) mirrors the crop horizontally.
    """
    n, _, height, width = x.shape
    x0, y0, w, h = boxes.to(x.dtype).unbind(1)
    sx = w / width
    if flip is not None:
        sx = torch.where(flip, -sx, sx)
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = sx
    theta[:, 0, 2] = (2 * x0 + w) / width - 1
    theta[:, 1, 1] = h / height
    theta[:, 1, 2] = (2 * y0 + h) / height - 1
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma 0.299 R + 0.587 G + 0.114 B, kept with one channel (identity for one channel)."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(GRAY_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def adjust_brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """x * f, clipped to [0, 1] (torchvision's adjust_brightness)."""
    return (x * factor.view(-1, 1, 1, 1)).clamp(0, 1)


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """f x + (1 - f) mean(gray(x)), clipped (mean over the whole image, per sample)."""
    mean = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    f = factor.view(-1, 1, 1, 1)
    return (f * x + (1 - f) * mean).clamp(0, 1)


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """f x + (1 - f) gray(x), clipped."""
    f = factor.view(-1, 1, 1, 1)
    return (f * x + (1 - f) * grayscale(x)).clamp(0, 1)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] to HSV in [0, 1] (hue as a fraction of a turn), channel dim 1."""
    r, g, b = x.unbind(1)
    maxc, _ = x.max(dim=1)
    minc, _ = x.min(dim=1)
    delta = maxc - minc
    v = maxc
    s = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), 0.0)
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, torch.remainder(h / 6.0, 1.0), torch.zeros_like(h))
    return torch.stack([h, s, v], dim=1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv`."""
    h, s, v = x.unbind(1)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = torch.stack(
        [
            torch.stack([v, q, p, p, t, v], dim=1),
            torch.stack([t, v, v, q, p, p], dim=1),
            torch.stack([p, p, t, v, v, q], dim=1),
        ],
        dim=1,
    )  # (n, 3, 6, H, W)
    index = i.unsqueeze(1).unsqueeze(2).expand(-1, 3, 1, -1, -1)
    return torch.gather(table, 2, index).squeeze(2)


def adjust_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue by ``shift`` turns (in [-0.5, 0.5]); identity for one channel."""
    if x.shape[1] == 1:
        return x
    hsv = rgb_to_hsv(x)
    hue = torch.remainder(hsv[:, 0] + shift.view(-1, 1, 1), 1.0)
    return hsv_to_rgb(torch.stack([hue, hsv[:, 1], hsv[:, 2]], dim=1)).clamp(0, 1)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Separable Gaussian blur with a sigma per sample, reflect padding (torchvision's border)."""
    n, c, height, width = x.shape
    half = kernel_size // 2
    pos = torch.arange(kernel_size, dtype=x.dtype, device=x.device) - half
    kernel = torch.exp(-(pos[None, :] ** 2) / (2 * sigma[:, None].to(x.dtype) ** 2))
    kernel = kernel / kernel.sum(dim=1, keepdim=True)  # (n, k)
    kernel = kernel.repeat_interleave(c, dim=0)  # (n*c, k)
    flat = x.reshape(1, n * c, height, width)
    flat = F.pad(flat, (half, half, half, half), mode="reflect")
    flat = F.conv2d(flat, kernel.view(n * c, 1, 1, kernel_size), groups=n * c)
    flat = F.conv2d(flat, kernel.view(n * c, 1, kernel_size, 1), groups=n * c)
    return flat.view(n, c, height, width)


def solarize(x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Pixels >= threshold become 1 - x (torchvision's solarize on [0, 1] images)."""
    return torch.where(x >= threshold, 1.0 - x, x)


def blur_kernel_size(size: int) -> int:
    """Odd kernel of about 10% of the image side (23 at 224 px as in BYOL; 3 at 28-32 px)."""
    return max(3, 2 * int(0.05 * size) + 1)


def _where(mask: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """``new`` for the samples where ``mask`` holds, ``old`` for the others (no host sync)."""
    return torch.where(mask.view(-1, 1, 1, 1), new, old)


def _affine_jitter(x, op, active, factor) -> torch.Tensor:
    """Brightness (op 0), contrast (1) or saturation (2) with each sample's own ``op`` and
    ``factor`` where ``active``, the identity elsewhere, as one expression:
    clip(a x + b gray(x) + c mean(gray(x))) with (a, b, c) = (f, 0, 0), (f, 0, 1 - f),
    (f, 1 - f, 0), or (1, 0, 0) -- each the same arithmetic as the operation alone."""
    view = (-1, 1, 1, 1)
    f = torch.where(active, factor, 1.0)
    b = torch.where(active & (op == 2), 1 - factor, 0.0)
    c = torch.where(active & (op == 1), 1 - factor, 0.0)
    gray = grayscale(x)
    mean = gray.mean(dim=(1, 2, 3), keepdim=True)
    return (f.view(view) * x + b.view(view) * gray + c.view(view) * mean).clamp(0, 1)


def color_jitter(x: torch.Tensor, jitter: torch.Tensor, factors, order) -> torch.Tensor:
    """Brightness, contrast, saturation and hue in each sample's own random ``order`` (n, 4:
    position -> op 0-3), on the samples where ``jitter`` holds; ``factors``: the four per-sample
    draws. Without a host sync: the ops before each sample's hue, the hue on every sample, the
    ops after it (the hue, the costly op, runs once per sample)."""
    hue_at = torch.argmax((order == 3).int(), dim=1)
    gathered = torch.stack(factors[:3], dim=1)  # (n, 3)

    def at_position(x, p, active):
        op = order[:, p]
        return _affine_jitter(x, op, active, gathered.gather(1, op.clamp(max=2)[:, None])[:, 0])

    for p in range(3):  # the ops before each sample's hue
        x = at_position(x, p, jitter & (p < hue_at))
    x = _where(jitter, adjust_hue(x, factors[3]), x)
    for p in range(1, 4):  # the ops after it
        x = at_position(x, p, jitter & (p > hue_at))
    return x


def augment_view(
    x: torch.Tensor,
    params: ViewParams,
    size: int,
    gen: torch.Generator,
    sizes: torch.Tensor | None = None,
) -> torch.Tensor:
    """One augmented view of a batch ``x`` (float in [0, 1], (n, C, H, W)), before normalisation.

    ``sizes`` (n, 2): each image's height and width at the top left of ``x`` (images of
    different sizes, :mod:`empirical.data`); none: every image fills ``x``. Every operation runs
    on the whole batch and is kept where the sample drew it (no host synchronisation).
    """
    n, _, height, width = x.shape
    dev = x.device
    if sizes is not None:
        height, width = sizes[:, 0].to(x.dtype), sizes[:, 1].to(x.dtype)
    boxes = sample_crop_boxes(n, height, width, params.crop_scale, params.crop_ratio, gen, dev)
    flip = torch.rand(n, generator=gen, device=dev) < params.flip_prob
    out = resized_crop(x, boxes, size, flip)

    jitter = torch.rand(n, generator=gen, device=dev) < params.jitter_prob
    factors = [
        _uniform(n, max(0.0, 1 - params.brightness), 1 + params.brightness, gen, dev),
        _uniform(n, max(0.0, 1 - params.contrast), 1 + params.contrast, gen, dev),
        _uniform(n, max(0.0, 1 - params.saturation), 1 + params.saturation, gen, dev),
        _uniform(n, -params.hue, params.hue, gen, dev),
    ]
    order = torch.argsort(torch.rand(n, 4, generator=gen, device=dev), dim=1)
    out = color_jitter(out, jitter, factors, order)

    gray = torch.rand(n, generator=gen, device=dev) < params.grayscale_prob
    out = _where(gray, grayscale(out).expand_as(out), out)

    blur = torch.rand(n, generator=gen, device=dev) < params.blur_prob
    sigma = _uniform(n, *params.blur_sigma, gen, dev)
    out = _where(blur, gaussian_blur(out, sigma, blur_kernel_size(size)), out)

    sol = torch.rand(n, generator=gen, device=dev) < params.solarize_prob
    return _where(sol, solarize(out), out)


class Normalize:
    """(x - mean) / std per channel, on the device."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], device) -> None:
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 images to float32 in [0, 1]."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


class TwoViewAugment:
    """Callable turning a uint8 batch into two normalised augmented views (BYOL pipeline).

    ``view(x)`` draws one view (of the first view's distribution) of a uint8 batch.
    """

    def __init__(
        self,
        size: int,
        normalize: Normalize,
        gen: torch.Generator,
        views: tuple[ViewParams, ViewParams] | None = None,
    ) -> None:
        self.size = size
        self.normalize = normalize
        self.gen = gen
        self.views = views or byol_views()

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sizes = image_sizes(x)
        x = to_unit(x)
        v1 = augment_view(x, self.views[0], self.size, self.gen, sizes)
        v2 = augment_view(x, self.views[1], self.size, self.gen, sizes)
        return self.normalize(v1), self.normalize(v2)

    def view(self, x: torch.Tensor) -> torch.Tensor:
        view = augment_view(to_unit(x), self.views[0], self.size, self.gen, image_sizes(x))
        return self.normalize(view)


def shift_flip(x: torch.Tensor, max_shift: int, gen: torch.Generator, flip: bool) -> torch.Tensor:
    """Each image moved by its own integer offset in [-max_shift, max_shift]^2, zero-filled, then
    mirrored left to right with probability 1/2 when ``flip``; the draws in the order dx, dy
    (none for ``max_shift`` 0), then the flips.

    One gather on the flattened padded planes, the mirror in its column index: advanced
    indexing with four index tensors took ten times longer on a CPU batch of 256 images, and a
    mirror of the shifted batch (``torch.where`` over a flipped copy) a third as long again as
    the shift (cProfile of a full-size Barlow Twins run, 2026-12-07)."""
    n, c, h, w = x.shape
    if max_shift == 0 and not flip:
        return x
    dx, dy = (
        torch.randint(0, 2 * max_shift + 1, (n,), generator=gen, device=x.device)
        if max_shift
        else torch.zeros(n, dtype=torch.long, device=x.device)
        for _ in range(2)
    )
    cols = dx[:, None] + torch.arange(w, device=x.device)  # (n, w)
    if flip:
        flipped = torch.rand(n, generator=gen, device=x.device) < 0.5
        cols = torch.where(flipped[:, None], cols.flip(-1), cols)
    pad = F.pad(x, (max_shift,) * 4)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None] * (w + 2 * max_shift)
    index = (rows + cols[:, None, :]).reshape(n, 1, h * w).expand(n, c, h * w)
    return pad.flatten(2).gather(2, index).view(n, c, h, w)


class ShiftFlipNoise:
    """The augmentation of the linear-theory experiments: x' = N(shift(flip(x))) + noise.

    Per sample and view: an integer shift of up to ``shift`` pixels in each direction
    (zero-filled), a horizontal flip with probability 1/2 when ``flip``, the normalisation, then
    Gaussian noise of std ``noise`` on every normalised pixel (noise alone gives the augmentation
    covariance X' = noise^2 I in pixel space, noise^2 c^2 I in the linear backbone's scaled PCA
    coordinates).
    """

    def __init__(
        self, normalize: Normalize, gen: torch.Generator, shift: int, flip: bool, noise: float
    ) -> None:
        self.normalize, self.gen = normalize, gen
        self.shift, self.flip, self.noise = shift, flip, noise

    def view(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalize(shift_flip(central_square(x), self.shift, self.gen, self.flip))
        if self.noise > 0:
            x = x + self.noise * torch.randn(x.shape, generator=self.gen, device=x.device)
        return x

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.view(x), self.view(x)


def image_sizes(x: torch.Tensor) -> torch.Tensor | None:
    """(n, 2) heights and widths of the images on a canvas batch (:mod:`empirical.images`);
    None for a batch of whole images."""
    return getattr(x, "image_sizes", None)


def central_square(x: torch.Tensor, side: int | None = None) -> torch.Tensor:
    """Float [0, 1] central ``side`` squares of the images (default and at most: their shorter
    side), per sample on a canvas batch, of the whole batch otherwise."""
    sizes = image_sizes(x)
    x = to_unit(x)
    if sizes is None:
        height, width = x.shape[-2:]
        side = min(side or height, height, width)
        top, left = (height - side) // 2, (width - side) // 2
        return x[..., top : top + side, left : left + side]
    shortest = round(x.shape[-1] / MAX_SIDE_RATIO)  # every image's shorter side: load_size
    side = min(side or shortest, shortest)
    top, left = (sizes[:, 0] - side) // 2, (sizes[:, 1] - side) // 2
    steps = torch.arange(side, device=x.device)
    rows = (top[:, None] + steps)[:, None, :, None]
    cols = (left[:, None] + steps)[:, None, None, :]
    batch = torch.arange(len(x), device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return x[batch, channel, rows, cols]


def center_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Un-augmented evaluation view: resize the whole (square) image to size x size if needed."""
    x = to_unit(x)
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
