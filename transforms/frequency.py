"""Frequency family (after model-vs-human): blur, high-pass, phase noise, pixel noise, false colour.

model-vs-human applies most of these to greyscale photos; here they act on the colour photo,
so they do not overlap with the greyscale family.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from robustbench_lite import register_transform
from robustbench_lite.rng import PhotoRNG
from transforms._common import blend, luma, side_blur

SIGMA_DOC = "Gaussian standard deviation as a fraction of the side"


@register_transform(
    "low_pass",
    family="frequency",
    severities=(0.005, 0.01, 0.02, 0.03, 0.045),
    params={"level": SIGMA_DOC + " (0.045 is 10 px at 224)", "edges": "mirrored"},
)
def low_pass(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Gaussian blur (low-pass filter) with sigma `level` of the side."""
    return side_blur(x, level)


@register_transform(
    "high_pass",
    family="frequency",
    severities=(0.02, 0.01, 0.006, 0.004, 0.0025),
    params={
        "level": SIGMA_DOC + " of the low-pass that is subtracted (smaller keeps less)",
        "formula": "x - blur(x) + the photo's mean per channel, clipped to [0, 1]",
        "edges": "mirrored",
    },
)
def high_pass(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """High-pass filter: the photo minus its Gaussian blur, re-centred on its mean colour."""
    detail = x - side_blur(x, level)
    return detail.add_(x.mean(dim=(2, 3), keepdim=True)).clamp_(0.0, 1.0)


@register_transform(
    "phase_scramble",
    family="frequency",
    severities=(30, 60, 90, 120, 150),
    params={
        "level": "width w in degrees: every Fourier phase gets uniform noise in [-w, w]",
        "channels": "one noise field per photo, shared by the three channels (colours stay coherent)",
        "kept": "amplitude spectrum and the mean (DC term); output clipped to [0, 1]",
        "random": "the phase noise, per photo",
    },
)
def phase_scramble(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Phase noise: keep each frequency's amplitude, jitter its phase (model-vs-human)."""
    height, width = x.shape[-2:]
    spectrum = torch.fft.rfft2(x)
    width_rad = math.radians(level)
    noise = rng.uniform(-width_rad, width_rad, height, width // 2 + 1).to(device=x.device, dtype=x.dtype)
    noise[:, 0, 0] = 0.0
    scrambled = spectrum * torch.polar(torch.ones_like(noise), noise).unsqueeze(1)
    return torch.fft.irfft2(scrambled, s=(height, width)).clamp_(0.0, 1.0)


@register_transform(
    "uniform_noise",
    family="frequency",
    severities=(0.05, 0.1, 0.2, 0.35, 0.6),
    params={
        "level": "half-width w: uniform noise in [-w, w] added to every pixel and channel",
        "clipping": "to [0, 1] (model-vs-human first lowers contrast to 30%; not here)",
        "random": "the noise, per photo",
    },
)
def uniform_noise(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Additive uniform white noise, clipped to [0, 1]."""
    noise = rng.uniform(-level, level, *x.shape[1:]).to(device=x.device, dtype=x.dtype)
    return (x + noise).clamp_(0.0, 1.0)


@register_transform(
    "false_colour",
    family="frequency",
    severities=(0.2, 0.4, 0.6, 0.8, 1.0),
    params={
        "level": "blend weight towards the false-colour photo (0.5 is grey, 1.0 fully inverted)",
        "false_colour": "opponent colours inverted, luminance kept: 2 * luma - x (BT.601 luma), "
        "clipped to [0, 1]",
    },
)
def false_colour(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """False colour: invert the opponent-colour channels while keeping luminance (model-vs-human)."""
    inverted = (2.0 * luma(x) - x).clamp_(0.0, 1.0)
    return blend(x, inverted, level)
