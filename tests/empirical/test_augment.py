"""Batched augmentations: per-sample randomness, ranges, and each operation against a reference.

References: closed forms (a linear ramp is reproduced exactly by bilinear resampling), colorsys
(HSV), torchvision's per-image functional transforms (colour, blur, solarise).
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF

from empirical import augment
from empirical.augment import ViewParams


def gen(seed: int = 0) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def test_identical_images_get_independent_augmentations():
    """64 copies of one image: every copy gets its own crop, flip, jitter, blur (no shared draw)."""
    image = torch.rand(1, 3, 32, 32, generator=gen(1)).expand(64, -1, -1, -1).contiguous()
    params = augment.byol_views()[0]
    out = augment.augment_view(image, params, 32, gen(2))
    flat = out.reshape(64, -1)
    distinct = torch.cdist(flat, flat) + torch.eye(64) * 1e9
    assert float(distinct.min()) > 1e-3  # no two outputs coincide


def test_crop_boxes_lie_inside_and_respect_scale_and_ratio():
    height, width = 28, 36
    boxes = augment.sample_crop_boxes(
        20000, height, width, (0.08, 1.0), (3 / 4, 4 / 3), gen(), "cpu"
    )
    x0, y0, w, h = boxes.T
    assert torch.all(x0 >= 0) and torch.all(y0 >= 0)
    assert torch.all(x0 + w <= width) and torch.all(y0 + h <= height)
    area = w * h / (height * width)
    # integer sides: round() moves each side by at most 1/2 pixel
    slack_area = (w + h + 0.25) / (2 * height * width) * 2
    assert torch.all(area >= 0.08 - slack_area) and torch.all(area <= 1.0)
    ratio = w / h
    assert torch.all(ratio >= 3 / 4 * (1 - 1 / h) - 0.05) and torch.all(
        ratio <= 4 / 3 * (1 + 1 / h) + 0.05
    )
    # per-sample offsets: both ends of the allowed range are reached
    assert float(area.min()) < 0.1 and float(area.max()) > 0.9


def test_resized_crop_reproduces_a_linear_ramp_exactly():
    """Bilinear resampling of value = column gives x0 + (u + 1/2) w / S - 1/2 (closed form)."""
    width, height, size = 40, 30, 16
    ramp = torch.arange(width, dtype=torch.float64).expand(2, 1, height, width).contiguous()
    boxes = torch.tensor([[3.0, 2.0, 25.0, 20.0], [10.0, 5.0, 17.0, 24.0]], dtype=torch.float64)
    flip = torch.tensor([False, True])
    out = augment.resized_crop(ramp, boxes, size, flip)
    u = torch.arange(size, dtype=torch.float64)
    for i in range(2):
        x0, _, w, _ = boxes[i]
        expected = x0 + (u + 0.5) * w / size - 0.5
        if flip[i]:
            expected = expected.flip(0)
        assert torch.allclose(out[i, 0], expected.expand(size, size), atol=1e-9)


def test_flip_and_solarize_probabilities_per_sample():
    n = 2000
    ramp = torch.linspace(0.0, 0.49, 8).expand(n, 1, 8, 8).contiguous()
    params = ViewParams(
        crop_scale=(1.0, 1.0),
        crop_ratio=(1.0, 1.0),
        jitter_prob=0.0,
        grayscale_prob=0.0,
        blur_prob=0.0,
        solarize_prob=0.0,
    )
    out = augment.augment_view(ramp, params, 8, gen(3))
    flipped = (out[:, 0, 0, 0] > out[:, 0, 0, -1]).double().mean()
    assert abs(float(flipped) - 0.5) < 6 * math.sqrt(0.25 / n)
    bright = torch.full((n, 1, 8, 8), 0.75)
    params = ViewParams(
        crop_scale=(1.0, 1.0),
        crop_ratio=(1.0, 1.0),
        flip_prob=0.0,
        jitter_prob=0.0,
        grayscale_prob=0.0,
        blur_prob=0.0,
        solarize_prob=0.2,
    )
    out = augment.augment_view(bright, params, 8, gen(4))
    solarized = torch.isclose(out[:, 0, 0, 0], torch.tensor(0.25)).double().mean()
    assert abs(float(solarized) - 0.2) < 6 * math.sqrt(0.16 / n)


def test_outputs_stay_in_unit_range():
    x = torch.rand(128, 3, 24, 24, generator=gen(5))
    for params in augment.byol_views():
        out = augment.augment_view(x, params, 20, gen(6))
        assert out.shape == (128, 3, 20, 20)
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0 + 1e-6


def test_hsv_round_trip_matches_colorsys():
    rgb = torch.rand(1, 3, 16, 16, generator=gen(7), dtype=torch.float64)
    hsv = augment.rgb_to_hsv(rgb)
    pixels = rgb[0].reshape(3, -1).T.numpy()
    expected = np.array([colorsys.rgb_to_hsv(*p) for p in pixels])
    assert np.allclose(hsv[0].reshape(3, -1).T.numpy(), expected, atol=1e-12)
    assert torch.allclose(augment.hsv_to_rgb(hsv), rgb, atol=1e-12)


@pytest.mark.parametrize(
    "name, reference",
    [
        ("brightness", TF.adjust_brightness),
        ("contrast", TF.adjust_contrast),
        ("saturation", TF.adjust_saturation),
        ("hue", TF.adjust_hue),
    ],
)
def test_colour_jitter_ops_match_torchvision_per_image(name, reference):
    """Tolerance 2e-4: luma weight of red 0.299 (ITU-R 601-2, PIL) against torchvision's 0.2989."""
    x = torch.rand(5, 3, 12, 12, generator=gen(8))
    factors = (
        torch.tensor([0.6, 0.9, 1.0, 1.2, 1.4])
        if name != "hue"
        else torch.tensor([-0.1, -0.03, 0.0, 0.05, 0.1])
    )
    ours = getattr(augment, f"adjust_{name}")(x, factors)
    for i in range(5):
        assert torch.allclose(ours[i], reference(x[i], float(factors[i])), atol=2e-4), i


def test_blur_matches_torchvision_with_a_sigma_per_sample():
    x = torch.rand(4, 3, 20, 20, generator=gen(9))
    sigma = torch.tensor([0.1, 0.7, 1.3, 2.0])
    ours = augment.gaussian_blur(x, sigma, 7)
    for i in range(4):
        ref = TF.gaussian_blur(x[i], [7, 7], [float(sigma[i])] * 2)
        assert torch.allclose(ours[i], ref, atol=1e-5), i


def test_grayscale_and_solarize_match_torchvision():
    x = torch.rand(3, 3, 10, 10, generator=gen(10))
    assert torch.allclose(augment.grayscale(x), TF.rgb_to_grayscale(x), atol=2e-4)  # 0.299/0.2989
    assert torch.equal(augment.solarize(x, 0.5), TF.solarize(x, 0.5))


def test_one_channel_images_pass_colour_ops_that_need_three():
    x = torch.rand(4, 1, 8, 8, generator=gen(11))
    assert torch.equal(augment.adjust_hue(x, torch.full((4,), 0.1)), x)
    assert torch.equal(augment.grayscale(x), x)
    assert torch.allclose(augment.adjust_saturation(x, torch.full((4,), 0.5)), x)


def test_blur_kernel_is_ten_percent_of_the_image():
    assert augment.blur_kernel_size(224) == 23  # BYOL's 23 px at 224 px
    assert augment.blur_kernel_size(28) == 3


@pytest.mark.parametrize(("channels", "max_shift"), [(1, 2), (3, 1), (1, 4)])
def test_random_shift_moves_each_image_by_its_own_offset_zero_filled(channels, max_shift):
    """Each output image is its input moved by one offset (dy, dx) in [-s, s]^2, zero-filled
    (a per-image slice written by hand), the offsets drawn from the generator in the order
    dx, then dy; the offsets vary over the batch."""
    x = torch.rand(40, channels, 9, 7, generator=gen(3)) + 1.0  # no zeros in the input
    out = augment.shift_flip(x, max_shift, gen(4), flip=False)
    draws = gen(4)
    dx, dy = (torch.randint(0, 2 * max_shift + 1, (40,), generator=draws) for _ in range(2))
    for i in range(40):
        oy, ox = int(dy[i]) - max_shift, int(dx[i]) - max_shift  # content moves by (-oy, -ox)
        expected = torch.zeros_like(x[i])
        src_r = slice(max(0, oy), min(9, 9 + oy))
        src_c = slice(max(0, ox), min(7, 7 + ox))
        dst_r = slice(max(0, -oy), min(9, 9 - oy))
        dst_c = slice(max(0, -ox), min(7, 7 - ox))
        expected[:, dst_r, dst_c] = x[i][:, src_r, src_c]
        assert torch.equal(out[i], expected), i
    assert len(set(zip(dx.tolist(), dy.tolist(), strict=True))) > 5


@pytest.mark.parametrize("max_shift", [0, 2])
def test_shift_flip_mirrors_the_shifted_image_with_the_next_draws(max_shift):
    """With ``flip`` each image is the shifted one (the same draws) mirrored left to right where
    the next uniform draw of the generator is below 1/2, else left as it is."""
    x = torch.rand(40, 1, 9, 7, generator=gen(3)) + 1.0
    out = augment.shift_flip(x, max_shift, gen(5), flip=True)
    draws = gen(5)
    shifted = augment.shift_flip(x, max_shift, draws, flip=False)
    flipped = torch.rand(40, generator=draws) < 0.5
    for i in range(40):
        assert torch.equal(out[i], shifted[i].flip(-1) if flipped[i] else shifted[i]), i
    assert 5 < int(flipped.sum()) < 35
