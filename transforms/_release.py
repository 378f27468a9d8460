"""The released ImageNet-C's own recipe, for the `imagenet-c` corruption protocol.

The published ImageNet-C numbers measure the files that hendrycks/robustness made with
`ImageNet-C/create_c/make_imagenet_c.py`: every photo torchvision Resize(256) (PIL bilinear, its
default then) + CenterCrop(224), corrupted at 224 x 224, the float result cut to 8 bits with
`np.uint8` (truncation, not rounding), saved as JPEG quality 85. The testbed's `_on-disk` columns
are those files. This module gives, for each of the 19 names, the release's recipe:

    release_corruption(name, x, severity, rng) -> (N, 3, H, W) float32, every value k / 255

x is (N, 3, 224, 224) float in [0, 1] (8-bit photos / 255), severity 1..5, rng the photos'
PhotoRNG. The result is already cut to 8 bits as the release cut it (so round(result * 255)
gives its uint8 exactly: `as_uint8`); the JPEG-85 round trip is the caller's. The release
hard-codes 224 px: here its absolute pixel constants are used at any size (its own behaviour).

Calling it, per batch of 224 px photos x (uint8 / 255) with their ids:

    rng = PhotoRNG([photo_seed(run_seed, name, severity, id) for id in ids], device=x.device)
    y = release_corruption(name, x, severity, rng)      # float32, k / 255, (N, 3, 224, 224)
    jpeg_85_round_trip(as_uint8(y))                      # the caller's: PIL quality 85, 4:2:0

A photo's result does not depend on its batch (per-photo draws; float round-off between batch
sizes can move a value across a level boundary on rare pixels). Random draws come from `rng`, not
the release's numpy generator: where a recipe is random, `release` means its code path and
parameters (tests check the draws' statistics, or inject the release's own draws).

Per corruption, the release against `native` (the imagenet-testbed's in-memory recipe, what the
native protocol runs) at 224 px (also in RELEASE_NOTES; RECIPES says which are placed):

- gaussian_noise, shot_noise, impulse_noise, speckle_noise, defocus_blur, glass_blur, fog,
  brightness, contrast, saturate: the same recipe as native (native is used).
- frost: the release's: one of the first five frost photos (np.random.randint(5); the testbed
  draws from all six), a random 224 px window (starts 0 .. size - 225), 8-bit photo x weight +
  frost x weight, clipped.
- elastic_transform: the release's random affine (shared with native), then alpha x
  scipy.ndimage.gaussian_filter(U(-1, 1), sigma, mode 'reflect', truncate 3) read by scipy
  map_coordinates (order 1, 'reflect' edges); native blurs with truncated scipy.signal taps and
  samples with grid_sample half a pixel up and left.
- gaussian_blur, spatter, jpeg_compression: imagecorruptions' (gaussian_blur_ic, spatter_ic,
  jpeg_compression_ic), which are the release's: skimage Gaussians to 4 sigma with repeated edges,
  OpenCV's saturating emboss, JPEG of the rounded RGB photo.
- pixelate: PIL BOX down, PIL BOX up (native: torch 'area' down, 'nearest' up).
- zoom_blur: scipy zoom (order 1, the corners aligned) of each centre, trimmed symmetrically.
- motion_blur, snow: not reproduced. The release streaked with ImageMagick's MotionBlurImage
  (through Wand), which is not a dependency here; imagecorruptions' numpy line kernel
  (motion_blur_ic, snow_ic) is used, so these conditions are not placed on the released lines.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from robustbench_lite import PhotoRNG
from transforms import corruptions_blur, corruptions_digital, corruptions_ic, corruptions_noise, corruptions_weather
from transforms._common import gaussian_kernel, mirror_index, truncated_radius
from transforms._corruption_kit import pick
from transforms._testbed import bilinear, warp_affine

ELASTIC_RELEASE = corruptions_digital.ELASTIC_TESTBED  # alpha, sigma, affine wobble px: the same table
GLASS_RELEASE = corruptions_blur.GLASS_SIGMA_DELTA_ITER  # sigma, delta, iterations
PIXELATE_RELEASE = corruptions_digital.PIXELATE_FACTOR
ZOOM_RELEASE = tuple(  # the release's np.arange(1, 1.11, .01) ... (those factors, to two places)
    tuple(round(f, 2) for f in factors) for factors in corruptions_blur.ZOOM_FACTORS
)
RELEASE_FROST_PHOTOS = 5  # np.random.randint(5): frost6.jpg is listed but never drawn
TRUNCATION_SLACK = 1e-3  # of a level: float results this close below an integer count as it

OURS = {  # the registered transform whose recipe is the release's, where one is
    "gaussian_noise": corruptions_noise.gaussian_noise,
    "shot_noise": corruptions_noise.shot_noise,
    "impulse_noise": corruptions_noise.impulse_noise,
    "speckle_noise": corruptions_noise.speckle_noise,
    "defocus_blur": corruptions_blur.defocus_blur,
    "glass_blur": corruptions_blur.glass_blur,
    "motion_blur": corruptions_ic.motion_blur_ic,
    "zoom_blur": corruptions_blur.zoom_blur,
    "gaussian_blur": corruptions_ic.gaussian_blur_ic,
    "snow": corruptions_ic.snow_ic,
    "frost": corruptions_weather.frost,
    "fog": corruptions_weather.fog,
    "spatter": corruptions_ic.spatter_ic,
    "brightness": corruptions_digital.brightness,
    "contrast": corruptions_digital.contrast,
    "elastic_transform": corruptions_digital.elastic_transform,
    "pixelate": corruptions_digital.pixelate,
    "jpeg_compression": corruptions_ic.jpeg_compression_ic,
    "saturate": corruptions_digital.saturate,
}
SAME = "same recipe as native (native used)"
NOT_REPRODUCED = "the release's ImageMagick motion blur is not reproduced (imagecorruptions' line kernel used)"
RELEASE_NOTES = {name: SAME for name in OURS} | {
    "elastic_transform": "release recipe: random affine, scipy gaussian_filter field, map_coordinates",
    "pixelate": "release recipe: PIL BOX down, PIL BOX up (native: area down, nearest up)",
    "zoom_blur": "release recipe: scipy zooms trimmed symmetrically (native: torch bilinear zooms)",
    "frost": "release recipe: one of the first five frost photos, a random 224 px window",
    "gaussian_blur": "release recipe: skimage Gaussian (gaussian_blur_ic; native: the testbed's truncated kernel)",
    "spatter": "release recipe: imagecorruptions' spatter (spatter_ic)",
    "jpeg_compression": "release recipe: rounded RGB JPEG (jpeg_compression_ic; native: truncated, as BGR)",
    "motion_blur": f"not placed: {NOT_REPRODUCED}",
    "snow": f"not placed: {NOT_REPRODUCED}",
}
RECIPES = {  # per protocol, per corruption: `release` (the lines' own recipe, golden-tested) or why not placed
    "native": {name: "release" for name in OURS},
    "imagenet-c": {name: "release" for name in OURS} | {"motion_blur": NOT_REPRODUCED, "snow": NOT_REPRODUCED},
}


def recipe(name: str, protocol: str) -> str:
    """`release` when the protocol's recipe of corruption `name` is its published line's, else why not."""
    return RECIPES[protocol].get(name, "release")


def release_corruption(name: str, x: Tensor, severity: int, rng: PhotoRNG) -> Tensor:
    """The released ImageNet-C's corruption `name` at `severity` (1..5) of the float batch x
    ((N, 3, H, W) in [0, 1]), cut to 8 bits as the release saved it: float32, values k / 255."""
    if name not in OURS:
        raise ValueError(f"unknown ImageNet-C corruption {name!r}; known: {', '.join(OURS)}")
    if int(severity) != severity or not 1 <= severity <= 5:
        raise ValueError(f"severity must be 1..5, got {severity!r}")
    release = {"elastic_transform": _elastic, "frost": _frost, "pixelate": _pixelate, "zoom_blur": _zoom}.get(name)
    out = release(x, int(severity), rng) if release else OURS[name](x, float(severity), rng)
    return truncate(out)


def truncate(x: Tensor) -> Tensor:
    """np.uint8 of x * 255 (clipped to [0, 1]) as the release did, back as k / 255 float32."""
    levels = torch.floor(x.to(torch.float32).clamp(0.0, 1.0) * 255 + TRUNCATION_SLACK)
    return levels.div_(255)


def as_uint8(x: Tensor) -> Tensor:
    """A result of release_corruption as the release's uint8 values (N, 3, H, W)."""
    return torch.round(x * 255).to(torch.uint8)


def _frost(x: Tensor, severity: int, rng: PhotoRNG) -> Tensor:
    """The release's frost: a window of one of its first five frost photos, starts 0 .. size - 225."""
    photo_weight, frost_weight = pick(corruptions_weather.FROST_WEIGHTS, severity)
    h, w = x.shape[-2:]
    choices = rng.rand(3)
    windows = []
    for u in choices.tolist():
        photo = corruptions_weather.frost_photo(min(int(u[0] * RELEASE_FROST_PHOTOS), RELEASE_FROST_PHOTOS - 1))
        top = min(int(u[1] * (photo.shape[1] - h)), photo.shape[1] - h - 1)
        left = min(int(u[2] * (photo.shape[2] - w)), photo.shape[2] - w - 1)
        windows.append(photo[:, top : top + h, left : left + w])
    frost = torch.round(torch.stack(windows).to(x.device, torch.float64) * 255)
    photo = torch.round(x.to(torch.float64) * 255)
    levels = (photo * photo_weight + frost * frost_weight).clamp_(0, 255)  # numpy's float64 sum of 8-bit values
    return (torch.floor(levels) / 255).to(torch.float32)  # np.uint8 of it, exactly (the release's cut)


# --------------------------------------------------------------------- elastic


def _smoothing_matrix(length: int, sigma: float, truncate: float, device) -> Tensor:
    """scipy.ndimage.gaussian_filter1d (mode 'reflect', any radius) along an axis as a matrix."""
    radius = truncated_radius(sigma, truncate)
    taps = torch.tensor(gaussian_kernel(sigma, radius), dtype=torch.float64, device=device)
    offsets = torch.arange(-radius, radius + 1, device=device)
    sources = mirror_index(torch.arange(length, device=device)[:, None] + offsets[None, :], length)
    matrix = torch.zeros(length, length, dtype=torch.float64, device=device)
    return matrix.scatter_add_(1, sources, taps.expand(length, -1).contiguous())


def elastic_draws(severity: int, rng: PhotoRNG, h: int, w: int, device=None) -> tuple[Tensor, Tensor]:
    """The release elastic's random affine moves (N, 3, 2) and displacement field (N, 2, H, W)
    (dx, dy in px, float64 of its float32), drawn in the release's order from `rng`."""
    alpha, sigma, wobble = pick(ELASTIC_RELEASE, severity)
    moves = rng.uniform(-wobble, wobble, 3, 2).to(device)
    noise = rng.uniform(-1.0, 1.0, 2, h, w).to(device, torch.float64)  # dx, then dy
    smooth_h = _smoothing_matrix(h, sigma, 3.0, device)
    smooth_w = _smoothing_matrix(w, sigma, 3.0, device)
    return moves, (smooth_h @ noise @ smooth_w.T * alpha).to(torch.float32).to(torch.float64)


def _elastic(x: Tensor, severity: int, rng: PhotoRNG) -> Tensor:
    n, _, h, w = x.shape
    moves, field = elastic_draws(severity, rng, h, w, x.device)
    warped = warp_affine(x.to(torch.float32), moves)
    rows = torch.arange(h, dtype=torch.float64, device=x.device)[:, None]
    cols = torch.arange(w, dtype=torch.float64, device=x.device)
    return bilinear(warped, rows + field[:, 1], cols + field[:, 0], mirror_index).clamp_(0.0, 1.0)


# ----------------------------------------------------------- pixelate and zoom


def _pil_box_coefficients(in_size: int, out_size: int) -> Tensor:
    """Pillow's BOX resampling along one axis as an (out, in) matrix of its 8-bit fixed-point
    weights (22 fractional bits), for any scale."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    matrix = torch.zeros(out_size, in_size, dtype=torch.float64)
    for out in range(out_size):
        centre = (out + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        last = min(int(centre + support + 0.5), in_size)
        weights = [1.0 if -0.5 < (i + first - centre + 0.5) / filterscale <= 0.5 else 0.0 for i in range(last - first)]
        total = sum(weights)
        for i, weight in enumerate(weights):
            matrix[out, first + i] = math.trunc(0.5 + weight / total * (1 << 22)) if total else 0.0
    return matrix


def _pil_box_resize(levels: Tensor, height: int, width: int) -> Tensor:
    """Pillow's Image.resize(BOX) of 8-bit levels (N, C, H, W): horizontal pass, then vertical,
    each rounded and clipped to 8 bits as Pillow does."""

    def one_pass(t: Tensor, matrix: Tensor) -> Tensor:
        sums = torch.einsum("...i,oi->...o", t.to(torch.float64), matrix.to(t.device))
        return torch.floor((sums + (1 << 21)) / (1 << 22)).clamp_(0, 255)

    if width != levels.shape[-1]:
        levels = one_pass(levels, _pil_box_coefficients(levels.shape[-1], width))
    if height != levels.shape[-2]:
        levels = one_pass(levels.transpose(-1, -2), _pil_box_coefficients(levels.shape[-2], height)).transpose(-1, -2)
    return levels


def _pixelate(x: Tensor, severity: int, rng: PhotoRNG) -> Tensor:
    factor = pick(PIXELATE_RELEASE, severity)
    h, w = x.shape[-2:]
    levels = torch.round(x.to(torch.float32) * 255)
    small = _pil_box_resize(levels, int(h * factor), int(w * factor))  # the release: int(224 * c)
    return (_pil_box_resize(small, h, w) / 255).to(torch.float32)


def _zoom(x: Tensor, severity: int, rng: PhotoRNG) -> Tensor:
    """The mean of the photo (counted twice) and its centre zooms, each trimmed symmetrically."""
    h, w = x.shape[-2:]
    x = x.to(torch.float32)
    total = x * 2
    for factor in pick(ZOOM_RELEASE, severity)[1:]:
        ch, cw = math.ceil(h / factor), math.ceil(w / factor)
        top, left = (h - ch) // 2, (w - cw) // 2
        size = (round(ch * factor), round(cw * factor))  # scipy.ndimage.zoom's output size
        zoomed = F.interpolate(x[..., top : top + ch, left : left + cw], size=size, mode="bilinear", align_corners=True)
        trim_top, trim_left = (size[0] - h) // 2, (size[1] - w) // 2
        total += zoomed[..., trim_top : trim_top + h, trim_left : trim_left + w]
    return total.div_(len(pick(ZOOM_RELEASE, severity)) + 1).clamp_(0.0, 1.0)
