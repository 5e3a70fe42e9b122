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
grayscale are the identity; crops come from the image the loader delivers (for folder data, the
central square resized to ``load_size``, see :mod:`empirical.data`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

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
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    gen: torch.Generator,
    device,
    attempts: int = 10,
) -> torch.Tensor:
    """Integer crop boxes (x0, y0, w, h), one per sample, as torchvision's RandomResizedCrop.

    Area fraction ~ U(scale), log aspect ~ U(log ratio); the first of ``attempts`` draws that fits
    is kept, otherwise the central crop with the aspect clamped to ``ratio``. Offsets are uniform
    over the positions where the box fits.
    """
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
    x0 = torch.floor(u[0] * (width - w + 1)).clamp(max=width - w)
    y0 = torch.floor(u[1] * (height - h + 1)).clamp(max=height - h)
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


def _apply(x: torch.Tensor, mask: torch.Tensor, fn, *args) -> torch.Tensor:
    """Apply ``fn`` to the samples where ``mask`` holds, leave the others untouched."""
    idx = torch.nonzero(mask, as_tuple=True)[0]
    if idx.numel() == 0:
        return x
    x = x.clone()
    x[idx] = fn(x[idx], *(a[idx] for a in args))
    return x


def augment_view(
    x: torch.Tensor, params: ViewParams, size: int, gen: torch.Generator
) -> torch.Tensor:
    """One augmented view of a batch ``x`` (float in [0, 1], (n, C, H, W)), before normalisation."""
    n, _, height, width = x.shape
    dev = x.device
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
    ops = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
    order = torch.argsort(torch.rand(n, 4, generator=gen, device=dev), dim=1)
    for position in range(4):
        for k, op in enumerate(ops):
            out = _apply(out, jitter & (order[:, position] == k), op, factors[k])

    gray = torch.rand(n, generator=gen, device=dev) < params.grayscale_prob
    out = _apply(out, gray, lambda v: grayscale(v).expand_as(v))

    blur = torch.rand(n, generator=gen, device=dev) < params.blur_prob
    sigma = _uniform(n, *params.blur_sigma, gen, dev)
    out = _apply(out, blur, lambda v, s: gaussian_blur(v, s, blur_kernel_size(size)), sigma)

    sol = torch.rand(n, generator=gen, device=dev) < params.solarize_prob
    return _apply(out, sol, solarize)


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
        x = to_unit(x)
        v1 = augment_view(x, self.views[0], self.size, self.gen)
        v2 = augment_view(x, self.views[1], self.size, self.gen)
        return self.normalize(v1), self.normalize(v2)

    def view(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalize(augment_view(to_unit(x), self.views[0], self.size, self.gen))


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Each image moved by its own integer offset in [-max_shift, max_shift]^2, zero-filled."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    pad = F.pad(x, (max_shift,) * 4)
    dx, dy = (
        torch.randint(0, 2 * max_shift + 1, (n,), generator=gen, device=x.device) for _ in range(2)
    )
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return pad[batch, channel, rows, cols]


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
        x = random_shift(to_unit(x), self.shift, self.gen)
        if self.flip:
            flipped = torch.rand(x.shape[0], generator=self.gen, device=x.device) < 0.5
            x = torch.where(flipped[:, None, None, None], x.flip(-1), x)
        x = self.normalize(x)
        if self.noise > 0:
            x = x + self.noise * torch.randn(x.shape, generator=self.gen, device=x.device)
        return x

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.view(x), self.view(x)


def center_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Un-augmented evaluation view: resize the whole (square) image to size x size if needed."""
    x = to_unit(x)
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
