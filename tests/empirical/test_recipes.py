"""Each method's augmentation recipe: the papers' numbers, and the frequencies of the sampled
operations within binomial tolerance.

The expected values are typed here from the papers (SimCLR, Chen et al. 2020, Appendix A; MoCo
v2, Chen et al. 2020 and facebookresearch/moco --aug-plus; BYOL, Grill et al. 2020, Table 6).
The frequencies are counted on the output of ``augment_view``: on a constant colour image (crop,
flip and blur leave it unchanged) grayscale makes the channels equal and colour jitter changes
the colour; blur and solarisation are replaced by markers (+10, +100) that survive to the output;
on a one-channel horizontal ramp a flip makes the ramp decrease.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from empirical import augment, recipes
from empirical.config import config_class
from empirical.methods import get

N = 4000
COLOUR = (0.6, 0.4, 0.2)

#: the papers' probabilities and ranges per recipe and view:
#: (crop min, flip, jitter p, (brightness, contrast, saturation, hue), grayscale, blur, solarise)
PAPERS = {
    "simclr": [(0.08, 0.5, 0.8, (0.8, 0.8, 0.8, 0.2), 0.2, 0.5, 0.0)] * 2,
    "moco_v2": [(0.2, 0.5, 0.8, (0.4, 0.4, 0.4, 0.1), 0.2, 0.5, 0.0)] * 2,
    "byol": [
        (0.08, 0.5, 0.8, (0.4, 0.4, 0.2, 0.1), 0.2, 1.0, 0.0),
        (0.08, 0.5, 0.8, (0.4, 0.4, 0.2, 0.1), 0.2, 0.1, 0.2),
    ],
}
CASES = [(name, view) for name in PAPERS for view in (0, 1)]


def gen(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def within_binomial(count: int, n: int, p: float) -> bool:
    """count/n is p within 4.5 standard errors (exact for p = 0 or 1)."""
    if p in (0.0, 1.0):
        return count == round(p * n)
    return abs(count / n - p) <= 4.5 * math.sqrt(p * (1 - p) / n)


@pytest.fixture
def markers(monkeypatch):
    """Blur adds 10 and solarisation 100 to the samples they are applied to (no other change)."""
    monkeypatch.setattr(augment, "gaussian_blur", lambda v, sigma, kernel: v + 10.0)
    monkeypatch.setattr(augment, "solarize", lambda v, threshold=0.5: v + 100.0)


@pytest.mark.parametrize(("name", "view"), CASES)
def test_recipe_has_the_papers_parameters(name, view):
    crop, flip, jitter, strengths, gray, blur, solarise = PAPERS[name][view]
    p = recipes.views(name)[view]
    assert p.crop_scale == (crop, 1.0) and p.crop_ratio == pytest.approx((3 / 4, 4 / 3))
    assert (p.flip_prob, p.jitter_prob, p.grayscale_prob) == (flip, jitter, gray)
    assert (p.brightness, p.contrast, p.saturation, p.hue) == strengths
    assert (p.blur_prob, p.blur_sigma, p.solarize_prob) == (blur, (0.1, 2.0), solarise)


@pytest.mark.parametrize(("name", "view"), CASES)
def test_sampled_operations_follow_the_recipe(name, view, markers):
    _, _, jitter, _, gray, blur, solarise = PAPERS[name][view]
    params = recipes.views(name)[view]
    image = torch.tensor(COLOUR).view(1, 3, 1, 1).expand(N, 3, 8, 8).contiguous()
    out = augment.augment_view(image, params, 8, gen(CASES.index((name, view))))
    solarised = out.amax(dim=(1, 2, 3)) > 50
    out = out - 100.0 * solarised.view(-1, 1, 1, 1)
    blurred = out.amax(dim=(1, 2, 3)) > 5
    out = out - 10.0 * blurred.view(-1, 1, 1, 1)
    pixel = out[:, :, 4, 4]
    grey = (pixel.amax(1) - pixel.amin(1)) < 1e-6
    luma = sum(w * c for w, c in zip(augment.GRAY_WEIGHTS, COLOUR, strict=True))
    untouched = (pixel - torch.tensor(COLOUR)).abs().amax(1) < 1e-5
    only_grey = grey & ((pixel - luma).abs().amax(1) < 1e-5)
    jittered = ~(untouched | only_grey)
    for what, events, p in [
        ("solarise", solarised, solarise),
        ("blur", blurred, blur),
        ("grayscale", grey, gray),
        ("colour jitter", jittered, jitter),
    ]:
        count = int(events.sum())
        assert within_binomial(count, N, p), f"{name} view {view + 1} {what}: {count}/{N} vs {p}"


@pytest.mark.parametrize(("name", "view"), CASES)
def test_flips_and_crop_areas_follow_the_recipe(name, view, markers):
    crop, flip, *_ = PAPERS[name][view]
    params = recipes.views(name)[view]
    ramp = torch.linspace(0.2, 0.4, 16).expand(N, 1, 16, 16).contiguous()
    out = augment.augment_view(ramp, params, 16, gen(7))
    out = torch.remainder(out, 10.0)  # the markers off (values stay in [0, 1])
    flipped = out[..., 8:].mean(dim=(1, 2, 3)) < out[..., :8].mean(dim=(1, 2, 3))
    assert within_binomial(int(flipped.sum()), N, flip)
    boxes = augment.sample_crop_boxes(
        N, 64, 64, params.crop_scale, params.crop_ratio, gen(8), "cpu"
    )
    area = boxes[:, 2] * boxes[:, 3] / 64**2
    assert crop - 0.02 <= float(area.min()) <= crop + 0.02 and float(area.max()) > 0.95


@pytest.mark.parametrize(
    ("method", "recipe"), [("simclr", "simclr"), ("moco_v2", "moco_v2"), ("byol", "byol")]
)
def test_each_method_names_its_recipe_and_the_help_shows_it(method, recipe):
    cls = get(method)
    assert cls.augmentation == recipe
    field = {f.name: f for f in dataclasses.fields(config_class(cls))}["augment"]
    assert f"default: auto: '{recipe}'" in field.metadata["help"]


def test_unknown_recipe_is_named():
    with pytest.raises(ValueError, match="unknown augmentation 'nope'; known recipes: byol"):
        recipes.views("nope")
