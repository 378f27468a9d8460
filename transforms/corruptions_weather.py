"""ImageNet-C weather corruptions: snow, frost and fog, and spatter (water or mud drops on the lens)
of the validation set, as the `native` protocol runs them: the imagenet-testbed's in-memory recipe
(transforms/_testbed.py), whose `_in-memory` columns are the lines native runs are placed on.

Published parameters and conventions: see transforms/_corruption_kit.py; pixel sizes scale with
side / 224, so at 224 px each is the testbed's to the bit (given the same random draws).

- snow: the testbed's: a Gaussian flake layer zoomed by its clipped_zoom, thresholded, streaked by
  its ImageMagick-like line kernel at an angle drawn uniform in [-135, -45) and used as radians
  (as the testbed passes it), edges replicated; the photo whitened towards 1.5 luma + 0.5; the
  layer and its half-turn added. imagecorruptions' snow is snow_ic.
- frost: one of the six frost photos ImageNet-C ships (transforms/_frost.py: from the imagecorruptions wheel),
  chosen uniformly, a random side x side window of it (the testbed's python randint: every start
  from 0 to the photo's size minus the side), photo weight x + frost weight x frost. As the
  testbed's code does, each frost photo is first cv2.resize'd (bicubic) to a size whose height
  and width are swapped (OpenCV reads dsize as (width, height)): transposed in shape and
  stretched, at 224 px too. Other sides: that resize is by side / 224, so the texture keeps its
  size relative to the photo.
- fog: the diamond-square plasma of the release and the testbed (256 px map at 224 px).
- spatter: the testbed's: Gaussian liquid layer blurred by its truncated kernel ('reflect'
  edges); water: the 8-bit layer's OpenCV Canny outlines, capped distance, box blur, equalised,
  then (in float, negatives cut) embossed and box-blurred; mud: drops blurred and cut below 0.8.
  imagecorruptions' (the release's) spatter is spatter_ic.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from robustbench_lite import PhotoRNG
from transforms._common import luma
from transforms._corruption_kit import EXTRA, SCALED_DOC, corruption, finish, in_chunks, pick, scale
from transforms._corruption_kit import table_doc, threaded_map
from transforms._frost import frost_file
from transforms._testbed import clipped_zoom, line_blur, line_taps, scaled_taps, testbed_blur

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
FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")


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
    version="2",  # 2: the imagenet-testbed's in-memory recipe (issue #21)
    params=(
        "flake noise mean, std, zoom (flake size px), threshold, streak radius px, streak sigma px, "
        f"photo weight ({SCALED_DOC}): {table_doc(SNOW_PARAMS)}"
    ),
    angle="uniform in [-135, -45) per photo from rng, used as radians by the line kernel (the testbed's)",
    method="the testbed's: clipped_zoom of the flake noise, its ImageMagick-like line kernel, replicated edges",
)
def snow(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Falling snow: streaked bright flakes over a whitened photo."""
    loc, spread, zoom, threshold, radius, sigma, weight = pick(SNOW_PARAMS, level)
    s = scale(x)
    if s != 1:
        zoom, radius, sigma = zoom * s, max(int(round(radius * s)), 1), sigma * s
    noise = rng.randn(1, *x.shape[-2:]).to(x.device).mul_(spread).add_(loc)
    kernels = [line_taps(radius, float(a), float(sigma)) for a in rng.uniform(-135.0, -45.0).reshape(-1).tolist()]

    def fall(photos: Tensor, noise: Tensor, which: Tensor) -> Tensor:
        flakes = clipped_zoom(noise, zoom)
        flakes = line_blur(flakes.masked_fill_(flakes < threshold, 0.0), [kernels[int(i)] for i in which])
        whitened = torch.maximum(photos, luma(photos).mul_(1.5).add_(0.5))
        return (photos * weight + whitened * (1 - weight)).add_(flakes).add_(flakes.flip(-2, -1))

    return finish(in_chunks(fall, x, noise, torch.arange(len(x))))  # on the host: int(i) is no device sync


@lru_cache(maxsize=None)
def frost_photo(index: int) -> Tensor:
    """Frost photo `index` (0..5, frost1..frost6) as float32 (3, H, W) in [0, 1], k / 255 as ToTensor gives it."""
    from PIL import Image

    with Image.open(frost_file(FROST_FILES[index])) as image:  # a PNG's alpha dropped, as cv2.imread drops it
        pixels = np.asarray(image.convert("RGB"))
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float().div(255)


@lru_cache(maxsize=64)
def frost_at(index: int, height: int, width: int, s: float) -> Tensor:
    """Frost photo `index` as the testbed's `get_frost_file` prepares it: cv2.resize (bicubic, 8 bits)
    to dsize (ceil(rows f), ceil(cols f)), which OpenCV reads as (width, height), so the photo comes
    out transposed in shape and stretched (at 224 px too: f = 1 there); f = max(s, what makes it
    cover height x width), s = side / 224."""
    import cv2

    photo = frost_photo(index)
    rows, cols = photo.shape[1:]
    factor = max(s, height / cols, width / rows)
    pixels = (photo.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    resized = cv2.resize(pixels, (math.ceil(rows * factor), math.ceil(cols * factor)), interpolation=cv2.INTER_CUBIC)
    return torch.from_numpy(resized).permute(2, 0, 1).float().div(255)


def frost_windows(x: Tensor, choices: Tensor, s: float, photos: int) -> Tensor:
    """Per photo a window of the size of x out of frost photo floor(u0 photos) at a start drawn from
    u1, u2 (every start equally likely); choices (N, 3) uniform [0, 1)."""
    h, w = x.shape[-2:]
    windows = []
    for u in choices.tolist():
        layer = frost_at(min(int(u[0] * photos), photos - 1), h, w, s)
        top = min(int(u[1] * (layer.shape[1] - h + 1)), layer.shape[1] - h)
        left = min(int(u[2] * (layer.shape[2] - w + 1)), layer.shape[2] - w)
        windows.append(layer[:, top : top + h, left : left + w])
    return torch.stack(windows).to(x.device)


@corruption(
    "frost",
    version="2",  # 2: the imagenet-testbed's in-memory recipe (issue #21)
    weights=f"photo weight, frost weight: {table_doc(FROST_WEIGHTS)}",
    method=(
        "the testbed's: one of ImageNet-C's six frost photos (from the imagecorruptions wheel), a random "
        "window of it (after the testbed's cv2.resize to swapped height and width) added with the frost weight; "
        "other sides: that resize is by side / 224"
    ),
)
def frost(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Frost on the lens: the photo dimmed and a frost photo added."""
    photo_weight, frost_weight = pick(FROST_WEIGHTS, level)
    layer = frost_windows(x, rng.rand(3), scale(x), len(FROST_FILES))
    return finish(x * photo_weight + layer * frost_weight)


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


def _equalised_distance(layer: np.ndarray, cap: float) -> np.ndarray:
    """The testbed's OpenCV part of the water shading for one 8-bit liquid layer (H, W): distance to
    the drops' Canny outlines, capped, box-blurred, cut to 8 bits, histogram-equalised."""
    import cv2  # OpenCV comes with albumentations; imported here to keep the family light to load

    distance = cv2.distanceTransform(255 - cv2.Canny(layer, 50, 150), cv2.DIST_L2, 5)
    distance[distance > cap] = cap
    return cv2.equalizeHist(cv2.blur(distance, (3, 3)).astype(np.uint8)).astype(np.float32)


@corruption(
    "spatter",
    version="2",  # 2: the imagenet-testbed's in-memory recipe (issue #21)
    benchmark=EXTRA,
    params=(
        "liquid noise mean, std, blur sigma px, threshold, water gain (severities 1-3) or mud blur "
        f"sigma px (4-5), mud ({SCALED_DOC}): {table_doc(SPATTER_PARAMS)}"
    ),
    method=(
        "the testbed's: a Gaussian noise layer blurred by its truncated kernel, thresholded into drops; water "
        "(1-3): the 8-bit layer's OpenCV shading (Canny outlines, capped distance, equalised), embossed and "
        "box-blurred in float, times the layer, normalised to its maximum, adds pale turquoise; mud (4-5): "
        "drops blurred and cut below 0.8 cover the photo in brown. A photo without any drop stays as it is"
    ),
    device="the water shading's OpenCV part runs per photo on the CPU; the rest on the device",
)
def spatter(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Spatter: water or mud drops on the lens."""
    loc, spread, sigma, threshold, gain_or_sigma, mud = pick(SPATTER_PARAMS, level)
    s = scale(x)
    liquid = rng.randn(1, *x.shape[-2:]).to(x.device).mul_(spread).add_(loc)
    liquid = testbed_blur(liquid, scaled_taps(4 * sigma - 1, sigma, s))
    liquid.masked_fill_(liquid < threshold, 0.0)
    if mud:
        cover = testbed_blur((liquid > threshold).float(), scaled_taps(math.ceil(gain_or_sigma * 4 - 1), gain_or_sigma, s))
        cover.masked_fill_(cover < 0.8, 0.0)
        colour = torch.tensor(SPATTER_MUD, device=x.device).view(1, 3, 1, 1)
        return finish(x * (1 - cover) + colour * cover)
    layers = list((liquid * 255).clamp_(0, 255).to(torch.uint8)[:, 0].cpu().numpy())  # torch's .byte(): truncation
    distance = threaded_map(lambda layer: _equalised_distance(layer, SPATTER_DISTANCE_CAP * s), layers)
    distance = torch.from_numpy(np.stack(distance)).to(x.device)[:, None]
    emboss = torch.tensor(SPATTER_EMBOSS, dtype=torch.float32, device=x.device).view(1, 1, 3, 3)
    shading = F.conv2d(F.pad(distance, (1, 1, 1, 1), mode="reflect"), emboss).clamp_(min=0)
    shading = F.conv2d(F.pad(shading, (1, 1, 1, 1), mode="reflect"), torch.full_like(emboss, 1 / 9))
    water = liquid * shading
    water = water / water.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12) * gain_or_sigma
    colour = torch.tensor(SPATTER_WATER, device=x.device).view(1, 3, 1, 1)
    return finish(x + water * colour)
