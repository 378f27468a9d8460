"""ImageNet-P's 14 perturbation sequences (Hendrycks & Dietterich, ICLR 2019), made in memory:
the recipes, frame counts and step sizes of hendrycks/robustness `ImageNet-P/create_p/make_imagenet_p.py`
(Apache-2.0), difficulty 1. Its 10 test perturbations (gaussian_noise, shot_noise, motion_blur, zoom_blur,
snow, brightness, translate, rotate, tilt, scale) and 4 validation ones (speckle_noise, gaussian_blur,
spatter, shear).

`x` is the photo at Resize(256) + CenterCrop(256) (the release perturbs the Resize(256) photo and cuts
CenterCrop(224) from it; our context is that photo's central 256 px square, so geometric frames show
black, not the rest of the photo, beyond it on the long side); each frame keeps that size and the run
scores its centre 224 px. The release then stores the frames as an H.264 video; in memory there is no
codec (frames are cut to 8 bits as its PNGs were).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from robustbench_lite import PhotoRNG, register_sequence
from transforms._common import luma
from transforms._corruption_kit import line_blur, motion_kernel, skimage_gaussian, threaded_map, zoom_to

SUITE = "imagenet-p"


def affine(x: Tensor, matrix: Tensor) -> Tensor:
    """Sample x at matrix @ p (p: output position about the centre, in normalised coordinates), bilinear, black outside."""
    n = x.shape[0]
    theta = torch.cat([matrix, torch.zeros(2, 1, dtype=matrix.dtype)], 1).to(x.device, torch.float32)
    grid = F.affine_grid(theta.expand(n, 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _inverse_similarity(angle_deg: float = 0.0, scale: float = 1.0, shear_deg: float = 0.0) -> Tensor:
    """The input position of an output position for torchvision's affine(angle, scale, shear) about the centre."""
    a, s = math.radians(angle_deg), math.radians(shear_deg)
    forward = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
    forward = scale * forward @ torch.tensor([[1.0, -math.tan(s)], [0.0, 1.0]], dtype=torch.float64)
    return torch.linalg.inv(forward)


def _noise_sequence(x: Tensor, frames: int, draw):
    yield x
    for _ in range(frames - 1):
        yield draw(x).clamp_(0.0, 1.0)


@register_sequence("gaussian_noise", SUITE, 31, noise=True, params={"std": "0.03, fresh draws each frame"})
def gaussian_noise(x: Tensor, rng: PhotoRNG):
    """The clean photo, then 30 independent draws of Gaussian noise (std 0.03)."""
    yield from _noise_sequence(x, 31, lambda p: p + 0.03 * rng.randn(*p.shape[1:]).to(p.device))


@register_sequence("shot_noise", SUITE, 31, noise=True, params={"photons": "300 per unit intensity"})
def shot_noise(x: Tensor, rng: PhotoRNG):
    """The clean photo, then 30 independent draws of Poisson noise (300 photons per unit)."""
    yield from _noise_sequence(x, 31, lambda p: rng.poisson((p * 300).to(rng.device)).to(p.device) / 300)


@register_sequence("speckle_noise", SUITE, 31, noise=True, validation=True, params={"std": "0.05, multiplicative"})
def speckle_noise(x: Tensor, rng: PhotoRNG):
    """The clean photo, then 30 independent draws of speckle noise (x + x N(0, 0.05))."""
    yield from _noise_sequence(x, 31, lambda p: p + p * 0.05 * rng.randn(*p.shape[1:]).to(p.device))


@register_sequence("motion_blur", SUITE, 31, params={"angle": "(i - 30) * 4 degrees, i = 0..30; radius 10, sigma 3"})
def motion_blur(x: Tensor, rng: PhotoRNG):
    """ImageMagick-style motion blur (radius 10, sigma 3) whose direction turns 4 degrees a frame."""
    taps = motion_kernel(10, 3)
    for i in range(31):
        yield line_blur(x, taps, torch.full((x.shape[0],), float((i - 30) * 4))).clamp_(0.0, 1.0)


@register_sequence("zoom_blur", SUITE, 31, params={"zoom": "running mean of zooms 1 + 0.004 k, k = 0..i"})
def zoom_blur(x: Tensor, rng: PhotoRNG):
    """A zoom blur that grows: frame i averages the photo zoomed by 1, 1.004, ..., 1 + 0.004 i."""
    total = x.clone()
    yield x
    for i in range(1, 31):
        total += affine(x, _inverse_similarity(scale=1 + 0.004 * i))
        yield total / (i + 1)


@register_sequence("snow", SUITE, 31, params={"streaks": "one snow layer, streaked at i * 4 - 150 degrees (radius 14, sigma 4)"})
def snow(x: Tensor, rng: PhotoRNG):
    """One layer of snow whose streaks turn 4 degrees a frame over the whitened photo."""
    h, w = x.shape[-2:]
    noise = 0.05 + 0.3 * rng.randn(1, math.ceil(h / 3), math.ceil(w / 3)).to(x.device)
    layer = zoom_to(noise, 3, h, w)
    layer = torch.floor(layer.masked_fill(layer < 0.5, 0.0).clamp(0.0, 1.0) * 255) / 255  # its 8-bit PNG
    base = 0.85 * x + 0.15 * torch.maximum(x, luma(x) * 1.5 + 0.5)
    taps = motion_kernel(14, 4)
    for i in range(31):
        streaks = line_blur(layer, taps, torch.full((x.shape[0],), float(i * 4 - 150)))
        yield (base + streaks + streaks.flip(-2, -1)).clamp_(0.0, 1.0)


@register_sequence("brightness", SUITE, 31, params={"shift": "HSV value + (i - 15) * 0.02, i = 0..30"})
def brightness(x: Tensor, rng: PhotoRNG):
    """HSV value shifted from -0.30 to +0.30 in steps of 0.02."""
    value = x.amax(dim=1, keepdim=True)
    for i in range(31):
        shifted = (value + (i - 15) * 0.02).clamp(0.0, 1.0)
        yield torch.where(value > 0, x * (shifted / value.clamp_min(1e-12)), shifted.expand_as(x))


@register_sequence("translate", SUITE, 41, params={"shift": "(i - 20) px to the right, i = 0..40"})
def translate(x: Tensor, rng: PhotoRNG):
    """The photo slid sideways one pixel a frame, from 20 px left to 20 px right."""
    w = x.shape[-1]
    for i in range(41):
        shift = i - 20
        out = torch.zeros_like(x)
        if shift >= 0:
            out[..., shift:] = x[..., : w - shift]
        else:
            out[..., :shift] = x[..., -shift:]
        yield out


@register_sequence("rotate", SUITE, 31, params={"angle": "(i - 15) degrees, i = 0..30, bilinear"})
def rotate(x: Tensor, rng: PhotoRNG):
    """The photo rotated one degree a frame, from -15 to 15 degrees."""
    for i in range(31):
        yield affine(x, _inverse_similarity(angle_deg=i - 15))


@register_sequence("scale", SUITE, 31, params={"scale": "(i * 2.5 + 40) / 100, i = 0..30, bilinear"})
def scale(x: Tensor, rng: PhotoRNG):
    """The photo scaled from 0.40 to 1.15 in steps of 0.025."""
    for i in range(31):
        yield affine(x, _inverse_similarity(scale=(i * 2.5 + 40) / 100))


@register_sequence("shear", SUITE, 31, validation=True, params={"shear": "(i - 15) degrees, i = 0..30, bilinear"})
def shear(x: Tensor, rng: PhotoRNG):
    """The photo sheared one degree a frame, from -15 to 15 degrees."""
    for i in range(31):
        yield affine(x, _inverse_similarity(shear_deg=i - 15))


def _tilt_inverse(h: int, w: int, degrees: float) -> np.ndarray:
    """The release's perspective matrix (phi = theta = degrees) for an h x w photo, inverted: dst -> src."""
    phi = theta = np.deg2rad(degrees)
    f = np.sqrt(w**2 + h**2)
    p1 = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1], [0, 0, 1]])
    rx = np.array([[1, 0, 0, 0], [0, np.cos(theta), -np.sin(theta), 0], [0, np.sin(theta), np.cos(theta), 0], [0, 0, 0, 1]])
    ry = np.array([[np.cos(phi), 0, -np.sin(phi), 0], [0, 1, 0, 0], [np.sin(phi), 0, np.cos(phi), 0], [0, 0, 0, 1]])
    t = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, f], [0, 0, 0, 1]])
    p2 = np.array([[f, 0, w / 2, 0], [0, f, h / 2, 0], [0, 0, 1, 0]])
    return np.linalg.inv(p2 @ t @ rx @ ry @ p1)


@register_sequence("tilt", SUITE, 31, params={"tilt": "perspective about both axes, (i - 15) degrees, i = 0..30"})
def tilt(x: Tensor, rng: PhotoRNG):
    """The photo tilted in perspective about both axes, one degree a frame, from -15 to 15."""
    n, _, h, w = x.shape
    cols, rows = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    points = np.stack([cols.ravel(), rows.ravel(), np.ones(h * w)])
    for i in range(31):
        src = _tilt_inverse(h, w, i - 15) @ points
        sx, sy = src[0] / src[2], src[1] / src[2]
        grid = torch.from_numpy(np.stack([sx * 2 / (w - 1) - 1, sy * 2 / (h - 1) - 1], -1).reshape(1, h, w, 2))
        grid = grid.to(x.device, torch.float32).expand(n, h, w, 2)
        yield F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


@register_sequence("gaussian_blur", SUITE, 31, validation=True, params={"sigma": "0.25 + 0.035 i px, i = 0..30"})
def gaussian_blur(x: Tensor, rng: PhotoRNG):
    """A Gaussian blur growing from sigma 0.25 to 1.30 px."""
    for i in range(31):
        yield skimage_gaussian(x, 0.25 + 0.035 * i, truncate=6.0).clamp_(0.0, 1.0)


def _drip(layer: Tensor) -> Tensor:
    """The release's np.convolve(column, [0.05, 0.1, 0.15, 0.7], 'same') down every column: drops run down."""
    padded = F.pad(layer, (0, 0, 2, 1))
    return 0.05 * padded[:, 3:] + 0.1 * padded[:, 2:-1] + 0.15 * padded[:, 1:-2] + 0.7 * padded[:, :-3]


@register_sequence("spatter", SUITE, 31, validation=True, params={"drops": "water drops running down a little a frame"})
def spatter(x: Tensor, rng: PhotoRNG):
    """Water drops on the lens that run down, a little each frame."""
    from transforms.corruptions_ic import _water_shading  # the release's 8-bit shading, as ImageNet-P made it
    from transforms.corruptions_weather import SPATTER_WATER

    layer = skimage_gaussian((0.65 + 0.27 * rng.randn(1, *x.shape[-2:]).double()).to(x.device), 3.7)[:, 0]
    layer = layer.masked_fill(layer < 0.69, 0.0)
    colour = torch.tensor(SPATTER_WATER, device=x.device).view(1, 3, 1, 1)
    for _ in range(31):
        eight = (layer * 255).clamp(0, 255).to(torch.uint8)
        shading = threaded_map(lambda photo: _water_shading(photo, 1.0), list(eight.cpu().numpy()))
        water = eight.float() * torch.from_numpy(np.stack(shading)).to(x.device)
        water = (water / water.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12) * 0.6)[:, None]
        yield (x + water * colour).clamp_(0.0, 1.0)
        layer = _drip(layer)
