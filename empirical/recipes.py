"""Each method's own two-view augmentation, from its paper: the recipes table.

A method names its recipe (``Method.augmentation``); ``--augment NAME`` overrides it. Every recipe
is a pair of :class:`~empirical.augment.ViewParams` (view 1, view 2) applied by
:func:`empirical.augment.augment_view`; colour jitter is applied with probability ``jitter_prob``,
its four operations in a random order (torchvision's ColorJitter), Gaussian blur with sigma
U(0.1, 2) and a kernel of 10% of the image side.

- ``byol``: Grill et al. 2020, Appendix B Table 6 (:func:`empirical.augment.byol_views`): crop
  0.08-1, flip 0.5, jitter 0.8 (0.4, 0.4, 0.2, 0.1), grayscale 0.2, blur 1.0 / 0.1, solarisation
  0 / 0.2 (asymmetric). Also Barlow Twins' and VICReg's recipe.
- ``simclr``: Chen, Kornblith, Norouzi, Hinton 2020 (arXiv 2002.05709), Appendix A: crop 0.08-1,
  flip 0.5, colour distortion of strength s = 1, jitter 0.8 (0.8 s, 0.8 s, 0.8 s, 0.2 s),
  grayscale 0.2, blur 0.5 (ImageNet), no solarisation; the two views alike.
- ``moco_v2``: Chen, Fan, Girshick, He 2020 (arXiv 2003.04297) and facebookresearch/moco
  main_moco.py ``--aug-plus``: crop 0.2-1, jitter 0.8 (0.4, 0.4, 0.4, 0.1), grayscale 0.2,
  blur 0.5, flip 0.5, no solarisation; the two views alike. SimSiam trains with it
  (facebookresearch/simsiam main_simsiam.py, "MoCo v2's aug").

``--crop-min-scale`` replaces the recipe's smallest crop area in both views.
"""

from __future__ import annotations

import dataclasses

from empirical.augment import ViewParams, byol_views

_SIMCLR = ViewParams(
    crop_scale=(0.08, 1.0),
    flip_prob=0.5,
    jitter_prob=0.8,
    brightness=0.8,
    contrast=0.8,
    saturation=0.8,
    hue=0.2,
    grayscale_prob=0.2,
    blur_prob=0.5,
    solarize_prob=0.0,
)
_MOCO_V2 = ViewParams(
    crop_scale=(0.2, 1.0),
    flip_prob=0.5,
    jitter_prob=0.8,
    brightness=0.4,
    contrast=0.4,
    saturation=0.4,
    hue=0.1,
    grayscale_prob=0.2,
    blur_prob=0.5,
    solarize_prob=0.0,
)

#: recipe name -> (view 1, view 2) at the paper's crop scale
RECIPES: dict[str, tuple[ViewParams, ViewParams]] = {
    "byol": byol_views(),
    "simclr": (_SIMCLR, _SIMCLR),
    "moco_v2": (_MOCO_V2, _MOCO_V2),
}

#: one line per recipe, for the help of ``--augment``
SUMMARY = {
    "byol": "BYOL's asymmetric pair (blur 1/0.1, solarise 0/0.2)",
    "simclr": "SimCLR's (jitter strength 1, blur 0.5, symmetric)",
    "moco_v2": "MoCo v2's (crop 0.2-1, blur 0.5, symmetric)",
}


def views(name: str, crop_min_scale: float | None = None) -> tuple[ViewParams, ViewParams]:
    """The two views' parameters of recipe ``name``; ``crop_min_scale`` replaces its smallest
    crop area when given. ValueError naming the known recipes otherwise."""
    if name not in RECIPES:
        raise ValueError(f"unknown augmentation {name!r}; known recipes: {', '.join(RECIPES)}")
    pair = RECIPES[name]
    if crop_min_scale is None:
        return pair
    return tuple(dataclasses.replace(v, crop_scale=(crop_min_scale, 1.0)) for v in pair)


def crop_min_scale(name: str) -> float:
    """The smallest crop area of recipe ``name`` (0.08 BYOL and SimCLR, 0.2 MoCo v2)."""
    return views(name)[0].crop_scale[0]
