"""Greyscale family: take colour away (all of it, some of it, or its gradations)."""
from __future__ import annotations

from torch import Tensor

from robustbench_lite import PhotoRNG, register_transform
from transforms._common import blend, grey3

FRACTIONS = (0.2, 0.4, 0.6, 0.8, 1.0)


@register_transform(
    "greyscale",
    family="greyscale",
    severities=FRACTIONS,
    params={
        "level": "fraction desaturated: blend weight towards greyscale (1.0 = fully grey)",
        "luma": "ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B, copied to all three channels",
    },
)
def greyscale(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Desaturate towards BT.601 greyscale (level 5 = fully grey, like PIL's convert("L"))."""
    return blend(x, grey3(x), level)


@register_transform(
    "greyscale_contrast",
    family="greyscale",
    severities=(0.5, 0.3, 0.15, 0.1, 0.05),
    params={
        "level": "contrast kept, as a fraction of the original (model-vs-human's contrast levels)",
        "greyscale": "full BT.601 greyscale first",
        "mid_grey": "0.5: pixels move linearly towards mid-grey, (1 - level) / 2 + level * grey",
    },
)
def greyscale_contrast(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Greyscale at reduced contrast, faded towards mid-grey (model-vs-human's contrast test)."""
    return blend(grey3(x), 0.5, 1.0 - level)


@register_transform(
    "posterise",
    family="greyscale",
    severities=(16, 8, 5, 3, 2),
    params={
        "level": "intensity levels kept per colour channel (2 = eight colours in all)",
        "rounding": "to the nearest level: round(x * (level - 1)) / (level - 1)",
    },
)
def posterise(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Quantise each colour channel to a few levels, removing smooth shading and hue detail."""
    steps = float(level) - 1.0
    return (x * steps).round_().div_(steps)
