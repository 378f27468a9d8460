"""ImageNet-C weather corruptions: snow, frost and fog, and spatter (water or mud drops on the lens)
of the validation set.

Published parameters and conventions: see transforms/_corruption_kit.py.

Against the released ImageNet-C (hendrycks/robustness `make_imagenet_c.py`, what the published
numbers measure; the `imagenet-c` protocol follows it through transforms/_release.py), at 224 px:

- snow differs: the release streaks the flakes with ImageMagick's MotionBlurImage, ours with
  imagecorruptions' line kernel; against imagecorruptions ours also cuts the zoomed flake layer
  to size before streaking (the reference after), so streaks differ within a streak length of
  the edges, and leaves out its 8-bit rounding of the flake layer.
- frost differs: ours is procedural; the release blends a random crop of one of five frost photos.
- fog, spatter: the release's recipe (spatter's drop shading is OpenCV's, as the release's).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from robustbench_lite import PhotoRNG
from transforms._common import luma
from transforms._corruption_kit import EXTRA, SCALED_DOC, corruption, finish, in_chunks, line_blur, motion_kernel
from transforms._corruption_kit import pick, scale, skimage_gaussian, table_doc, threaded_map, zoom_to

# Published parameter tables, one entry per severity 1..5.
SNOW_PARAMS = (  # loc, scale, zoom, threshold, blur radius, blur sigma, photo weight
    (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
    (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
    (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
    (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
    (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
)
FROST_WEIGHTS = ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))
FOG_STRENGTH_DECAY = ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))
SPATTER_PARAMS = (  # noise mean, noise std, blur sigma px, threshold, water gain or mud sigma px, mud
    (0.65, 0.3, 4, 0.69, 0.6, 0),
    (0.65, 0.3, 3, 0.68, 0.6, 0),
    (0.65, 0.3, 2, 0.68, 0.5, 0),
    (0.65, 0.3, 1, 0.65, 1.5, 1),
    (0.67, 0.4, 1, 0.65, 1.5, 1),
)
SPATTER_WATER = (175 / 255, 238 / 255, 238 / 255)  # pale turquoise, RGB
SPATTER_MUD = (63 / 255, 42 / 255, 20 / 255)  # brown, RGB
SPATTER_EMBOSS = ((-2, -1, 0), (-1, 1, 1), (0, 1, 2))
SPATTER_DISTANCE_CAP = 20  # px at 224: distance to the drops' outlines is capped here

# Procedural frost (the reference blends one of five frost photos; see `frost`).
FROST_TINT = (0.82, 0.94, 1.0)
FROST_NEEDLES_PER_PX = 0.025  # needles per px at 224
FROST_NEEDLE_LENGTH = 24  # longest needle, px at 224
FROST_NEEDLE_TWIST = 0.35  # radians of random deviation from the local flow
FROST_NEEDLE_SOFTNESS = 1.2  # blur sigma px at 224
FROST_FLOW_DECAY, FROST_FLOW_TURNS = 2.0, 2.0  # the smooth field that orients the needles
FROST_CLOUD_DECAY = 2.0
FROST_BASE, FROST_CLOUD_GAIN, FROST_NEEDLE_GAIN = 0.42, 0.35, 0.5


def _plasma_fractal(rng: PhotoRNG, mapsize: int, decay: float) -> Tensor:
    """Diamond-square height maps in [0, 1], shape (N, mapsize, mapsize), as the reference's."""
    maps = torch.zeros(len(rng), mapsize, mapsize, device=rng.device)
    step, wibble = mapsize, 100.0

    def wibbled_mean(total: Tensor) -> Tensor:
        return total / 4 + wibble * rng.uniform(-wibble, wibble, *total.shape[1:])

    while step >= 2:
        half = step // 2
        corners = maps[:, 0::step, 0::step]
        squares = corners + corners.roll(-1, 1)
        squares = squares + squares.roll(-1, 2)
        maps[:, half::step, half::step] = wibbled_mean(squares)
        centres, corners = maps[:, half::step, half::step], maps[:, 0::step, 0::step]
        maps[:, 0::step, half::step] = wibbled_mean(
            centres + centres.roll(1, 1) + corners + corners.roll(-1, 2)
        )
        maps[:, half::step, 0::step] = wibbled_mean(
            centres + centres.roll(1, 2) + corners + corners.roll(-1, 1)
        )
        step //= 2
        wibble /= decay
    low = maps.amin(dim=(1, 2), keepdim=True)
    high = maps.amax(dim=(1, 2), keepdim=True)
    return (maps - low) / (high - low).clamp_min(1e-12)


def _plasma_like(x: Tensor, rng: PhotoRNG, decay: float, detail: float = 1.0) -> Tensor:
    """(N, 1, H, W) plasma maps whose features keep the size they have at 224 px.

    At 224 px this is the reference: a 256-map cropped to the photo. Larger photos get a
    finer map (2**k points per reference pixel) of the same reference-pixel extent, resized;
    `detail` 1/2**k asks for a coarser one (the finest levels left out).
    """
    h, w = x.shape[-2:]
    s = scale(x)
    fineness = 2.0 ** math.ceil(math.log2(max(s, 1.0) * detail) - 1e-9)
    extent_h, extent_w = math.ceil(h / s * fineness - 1e-6), math.ceil(w / s * fineness - 1e-6)
    mapsize = 2 ** math.ceil(math.log2(max(extent_h, extent_w, 2)))
    maps = _plasma_fractal(rng, mapsize, decay).to(x.device)[:, None, :extent_h, :extent_w]
    if maps.shape[-2:] == (h, w):
        return maps
    return F.interpolate(maps, size=(h, w), mode="bilinear", align_corners=False)


@corruption(
    "snow",
    params=(
        "flake noise mean, std, zoom (flake size px), threshold, streak radius px, streak sigma px, "
        f"photo weight ({SCALED_DOC}): {table_doc(SNOW_PARAMS)}"
    ),
    angle="streak angle uniform in [-135, -45) degrees per photo from rng",
    method=(
        "flakes streaked by the motion-blur line kernel, as imagecorruptions does in numpy "
        "(the original ImageNet-C code used ImageMagick's motion blur); the reference's rounding "
        "of the flake layer to 8 bits is left out (it would make results hinge on FFT round-off)"
    ),
)
def snow(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Falling snow: streaked bright flakes over a whitened photo."""
    loc, spread, zoom, threshold, radius, sigma, weight = pick(SNOW_PARAMS, level)
    s = scale(x)
    h, w = x.shape[-2:]
    noise = loc + spread * rng.randn(1, math.ceil(h / (zoom * s)), math.ceil(w / (zoom * s))).to(x.device)
    angles = rng.uniform(-135.0, -45.0)
    taps = motion_kernel(radius * s, sigma * s)

    def fall(photos: Tensor, noise: Tensor, angles: Tensor) -> Tensor:
        flakes = zoom_to(noise, zoom * s, h, w)  # the reference's clipped zoom of the noise
        flakes = line_blur(flakes.masked_fill_(flakes < threshold, 0.0).clamp_(max=1.0), taps, angles)
        whitened = torch.maximum(photos, luma(photos).mul_(1.5).add_(0.5))  # OpenCV's RGB2GRAY luma
        return whitened.mul_(1 - weight).add_(photos, alpha=weight).add_(flakes + flakes.flip(-2, -1))

    return finish(in_chunks(fall, x, noise, angles))


def _frost_needles(x: Tensor, rng: PhotoRNG, flow: Tensor) -> Tensor:
    """(N, 1, H, W) ice needles: short bright segments of random place, length and glow, their
    angles following the smooth field `flow` (N, 1, H, W) so that neighbours grow alike."""
    n, _, h, w = x.shape
    s = scale(x)
    count = max(int(FROST_NEEDLES_PER_PX * h * w / s**2), 1)
    longest = max(int(round(FROST_NEEDLE_LENGTH * s)), 2)
    start, twist, length, glow = rng.rand(4, count).to(x.device).unbind(1)
    start = (start * (h * w)).long().clamp_(max=h * w - 1)
    angle = flow.reshape(n, h * w).gather(1, start) * (FROST_FLOW_TURNS * 2 * math.pi)
    angle += (2 * twist - 1) * FROST_NEEDLE_TWIST
    steps = torch.arange(longest, device=x.device, dtype=torch.float32)
    ys = (start // w)[..., None] + (steps * torch.sin(angle)[..., None]).round_().long()
    xs = (start % w)[..., None] + (steps * torch.cos(angle)[..., None]).round_().long()
    where = ys.remainder_(h).mul_(w).add_(xs.remainder_(w))  # needles wrap round the edges
    shown = steps < ((0.3 + 0.7 * length) * longest)[..., None]
    values = (0.4 + 0.6 * glow)[..., None] * shown
    needles = torch.zeros(n, h * w, device=x.device)
    needles.scatter_add_(1, where.reshape(n, -1), values.reshape(n, -1))
    return needles.view(n, 1, h, w).clamp_(max=1.0)


def _frost_texture(x: Tensor, rng: PhotoRNG) -> Tensor:
    """Procedural ice: soft bright needles over cloudy plasma, tinted blue-white."""
    s = scale(x)
    clouds = _plasma_like(x, rng, FROST_CLOUD_DECAY, detail=0.5)
    flow = _plasma_like(x, rng, FROST_FLOW_DECAY, detail=0.125)
    needles = skimage_gaussian(_frost_needles(x, rng, flow), FROST_NEEDLE_SOFTNESS * s, truncate=2.0)
    value = FROST_BASE + FROST_CLOUD_GAIN * clouds + FROST_NEEDLE_GAIN * needles
    tint = torch.tensor(FROST_TINT, device=x.device).view(1, 3, 1, 1)
    return (value * tint).clamp(0.0, 1.0)


@corruption(
    "frost",
    weights=f"photo weight, frost weight: {table_doc(FROST_WEIGHTS)}",
    method=(
        "procedural frost: soft needles oriented by a smooth random field over plasma clouds, tinted "
        "blue-white; mean colour, mean SSIM and EfficientNet-Lite0 top-1 matched to the reference's "
        "on 50 shared photos. The reference blends a crop of one of five frost photos, which are "
        "not part of this package"
    ),
)
def frost(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Frost on the lens: the photo dimmed and a frost layer added."""
    photo_weight, frost_weight = pick(FROST_WEIGHTS, level)
    return finish(_frost_texture(x, rng).mul_(frost_weight).add_(x, alpha=photo_weight))


@corruption(
    "fog",
    strength_decay=(
        "plasma-fractal weight, diamond-square roughness decay (smaller = rougher): "
        f"{table_doc(FOG_STRENGTH_DECAY)}"
    ),
)
def fog(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Fog: a diamond-square plasma added, the result rescaled to the photo's maximum."""
    strength, decay = pick(FOG_STRENGTH_DECAY, level)
    peak = x.amax(dim=(1, 2, 3), keepdim=True)
    fogged = x + strength * _plasma_like(x, rng, decay)
    return finish(fogged * peak / (peak + strength))


def _water_shading(layer: np.ndarray, s: float) -> np.ndarray:
    """The reference's shading of one photo's 8-bit liquid layer (H, W): OpenCV's Canny outlines
    of the drops, the distance to them capped at SPATTER_DISTANCE_CAP px, box-blurred, cut to 8
    bits, histogram-equalised, embossed and box-blurred again (float32, H x W)."""
    import cv2  # OpenCV comes with albumentations; imported here to keep the family light to load

    distance = cv2.distanceTransform(255 - cv2.Canny(layer, 50, 150), cv2.DIST_L2, 5)
    _, distance = cv2.threshold(distance, SPATTER_DISTANCE_CAP * s, SPATTER_DISTANCE_CAP * s, cv2.THRESH_TRUNC)
    shading = cv2.equalizeHist(cv2.blur(distance, (3, 3)).astype(np.uint8))
    shading = cv2.filter2D(shading, cv2.CV_8U, np.array(SPATTER_EMBOSS, np.float32))
    return cv2.blur(shading, (3, 3)).astype(np.float32)


@corruption(
    "spatter",
    benchmark=EXTRA,
    params=(
        "liquid noise mean, std, blur sigma px, threshold, water gain (severities 1-3) or mud blur "
        f"sigma px (4-5), mud ({SCALED_DOC}): {table_doc(SPATTER_PARAMS)}"
    ),
    method=(
        "a blurred Gaussian noise layer thresholded into drops; water (severities 1-3): the 8-bit "
        "layer times its OpenCV shading (Canny outlines, capped distance, equalised, embossed), "
        "normalised to its maximum, adds pale turquoise; mud (4-5): drops blurred and cut below 0.8 "
        "cover the photo in brown. A photo without any drop stays as it is (the reference gives NaN)"
    ),
    device="the water shading runs per photo on the CPU (OpenCV); noise, blurs and blending on the device",
)
def spatter(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Spatter: water or mud drops on the lens."""
    loc, spread, sigma, threshold, gain_or_sigma, mud = pick(SPATTER_PARAMS, level)
    s = scale(x)
    liquid = rng.randn(1, *x.shape[-2:]).to(x.device, torch.float64).mul_(spread).add_(loc)
    liquid = skimage_gaussian(liquid, sigma * s)
    liquid.masked_fill_(liquid < threshold, 0.0)
    if mud:
        cover = skimage_gaussian((liquid > threshold).to(torch.float32), gain_or_sigma * s)
        cover.masked_fill_(cover < 0.8, 0.0)
        colour = torch.tensor(SPATTER_MUD, device=x.device).view(1, 3, 1, 1)
        return finish(x * (1 - cover) + colour * cover)
    layer = liquid.mul_(255).clamp_(0, 255).to(torch.uint8)  # the reference's cut to 8 bits
    shading = threaded_map(lambda photo: _water_shading(photo, s), list(layer[:, 0].cpu().numpy()))
    water = layer.to(torch.float32) * torch.from_numpy(np.stack(shading)).to(x.device)[:, None]
    water = water / water.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12) * gain_or_sigma
    colour = torch.tensor(SPATTER_WATER, device=x.device).view(1, 3, 1, 1)
    return finish(x + water * colour)
