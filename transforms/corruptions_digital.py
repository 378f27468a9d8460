"""ImageNet-C digital corruptions: brightness, contrast, elastic transform, pixelate and JPEG, and
saturation of the validation set, as the `native` protocol runs them: the imagenet-testbed's
in-memory recipe (transforms/_testbed.py), whose `_in-memory` columns are the lines native runs are
placed on.

Published parameters and conventions: see transforms/_corruption_kit.py.

- brightness, contrast, saturate: the testbed's HSV and channel-mean arithmetic (written in closed form).
- elastic_transform: the testbed's: the release's random affine (three control points at the centre
  +- side // 3 moved by U(-244 a, 244 a) px, OpenCV 4.2's warpAffine, bilinear on its 1/32 px grid,
  BORDER_REFLECT_101), then U(-1, 1) noise blurred by scipy.signal.gaussian taps of size
  2 min(int(3 sigma + 0.5), side) - 1 with 'reflect' edges, times alpha, sampled by grid_sample
  (bilinear, reflection padding, align_corners=False: the field is read half a pixel up and left,
  as the testbed's normalisation makes it). (alpha, sigma, a) = 244 x (2, 0.7, 0.1), (2, 0.08, 0.2),
  (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02) px at 224 (244: the release's typo,
  kept), scaled by side / 224 at other sides. imagecorruptions' warp is elastic_transform_ic; the
  release's (scipy gaussian_filter and map_coordinates) is in transforms/_release.py.
- pixelate: the testbed's F.interpolate 'area' down to int(side * factor), 'nearest' back up.
- jpeg_compression: the testbed's: cut to 8 bits by truncation, the RGB array handed to OpenCV as
  if it were BGR (so libjpeg's luma weights R and B the other way round), encoded and decoded.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from robustbench_lite import PhotoRNG
from transforms._corruption_kit import EXTRA, SCALED_DOC, corruption, finish, pick, scale, table_doc, threaded_map
from transforms._testbed import warp_affine

# Published parameter tables, one entry per severity 1..5.
BRIGHTNESS_SHIFT = (0.1, 0.2, 0.3, 0.4, 0.5)
CONTRAST_FACTOR = (0.4, 0.3, 0.2, 0.1, 0.05)
ELASTIC_TESTBED = tuple(  # alpha, sigma, affine wobble, all px at 224; 244 as the release and the testbed have it
    (244 * a, 244 * s, 244 * f)
    for a, s, f in ((2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02))
)
PIXELATE_FACTOR = (0.6, 0.5, 0.4, 0.3, 0.25)
JPEG_QUALITY = (25, 18, 15, 10, 7)
SATURATE_GAIN_SHIFT = ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))


@corruption("brightness", shift=f"added to HSV value, clipped at 1: {table_doc(BRIGHTNESS_SHIFT)}")
def brightness(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Brighter: HSV value raised with hue and saturation kept."""
    shift = pick(BRIGHTNESS_SHIFT, level)
    value = x.amax(dim=1, keepdim=True)
    raised = (value + shift).clamp(max=1.0)
    # With hue and saturation fixed, RGB is proportional to V (black stays grey).
    scaled = x * (raised / value.clamp_min(1e-12))
    return finish(torch.where(value > 0, scaled, raised.expand_as(x)))


@corruption("contrast", factor=f"distance to each channel's mean times: {table_doc(CONTRAST_FACTOR)}")
def contrast(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Lower contrast: every channel pulled towards its mean."""
    factor = pick(CONTRAST_FACTOR, level)
    means = x.mean(dim=(2, 3), keepdim=True)
    return finish((x * factor).add_(means * (1 - factor)))


@corruption(
    "saturate",
    benchmark=EXTRA,
    gain_shift=f"HSV saturation becomes clip(saturation * gain + shift, 0, 1): {table_doc(SATURATE_GAIN_SHIFT)}",
    grey=(
        "a grey pixel has no hue; as in scikit-image's rgb2hsv it takes hue 0, so a shift turns it "
        "red: (V, V (1 - S'), V (1 - S'))"
    ),
)
def saturate(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Saturation changed in HSV with hue and value kept."""
    gain, shift = pick(SATURATE_GAIN_SHIFT, level)
    value = x.amax(dim=1, keepdim=True)
    chroma = value - x.amin(dim=1, keepdim=True)
    saturation = chroma / value.clamp_min(1e-12)  # 0 where black (chroma is 0 there)
    new_saturation = (saturation * gain + shift).clamp_(0.0, 1.0)
    # With hue and value fixed, each channel's distance below the value scales with saturation.
    coloured = value - (x - value).neg_().mul_(new_saturation * value / chroma.clamp_min(1e-12))
    grey = value * (1 - new_saturation)
    grey = torch.cat((value, grey, grey), dim=1)
    return finish(torch.where(chroma > 0, coloured, grey))


def signal_gaussian(size: int, sigma: float) -> tuple[float, ...]:
    """scipy.signal.gaussian(size, sigma) normalised to sum 1 (the testbed's `gaussian_blur_separated`)."""
    taps = [math.exp(-((i - (size - 1) / 2) ** 2) / (2 * sigma**2)) for i in range(size)]
    return tuple(t / sum(taps) for t in taps)


def elastic_field(noise: Tensor, sigma: float, alpha: float) -> Tensor:
    """The testbed's smoothed displacement field of U(-1, 1) noise (N, 2, H, W): conv2d along H then
    W with 'reflect' padding by size // 2, times alpha (float32)."""
    h, w = noise.shape[-2:]
    radius = min(int(3 * sigma + 0.5), h, w)
    size = 2 * radius - 1
    if size < 3:
        return noise * alpha
    taps = torch.tensor(signal_gaussian(size, sigma), dtype=torch.float32, device=noise.device)
    n = noise.shape[0]
    flat = F.pad(noise.reshape(n * 2, 1, h, w), [size // 2] * 4, mode="reflect")
    flat = F.conv2d(F.conv2d(flat, taps.view(1, 1, size, 1)), taps.view(1, 1, 1, size))
    return flat.reshape(n, 2, h, w) * alpha


@corruption(
    "elastic_transform",
    version="2",  # 2: the imagenet-testbed's in-memory recipe (issue #21)
    alpha_sigma_affine=(
        f"displacement gain px, its smoothing sigma px, random affine px ({SCALED_DOC}): "
        f"{table_doc(tuple(tuple(round(v, 2) for v in row) for row in ELASTIC_TESTBED))}"
    ),
    method="the testbed's: the release's random affine (OpenCV 4.2 warpAffine), then a smooth U(-1, 1) field, grid_sample",
)
def elastic_transform(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Elastic warp: a random affine, then pixels moved along a smooth random displacement field."""
    alpha, sigma, wobble = pick(ELASTIC_TESTBED, level)
    s = scale(x)
    if s != 1:
        alpha, sigma, wobble = alpha * s, sigma * s, wobble * s
    n, _, h, w = x.shape
    moves = rng.uniform(-wobble, wobble, 3, 2)
    field = elastic_field(rng.uniform(-1.0, 1.0, 2, h, w).to(x.device), sigma, alpha)
    warped = warp_affine(x.to(torch.float32), moves)
    rows = torch.arange(h, device=x.device, dtype=torch.float32)[:, None].expand(h, w)
    cols = torch.arange(w, device=x.device, dtype=torch.float32)[None, :].expand(h, w)
    grid = torch.stack((((cols + field[:, 0]) / w - 0.5) * 2, ((rows + field[:, 1]) / h - 0.5) * 2), dim=-1)
    out = F.grid_sample(warped, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return finish(out)


@corruption(
    "pixelate",
    version="2",  # 2: the imagenet-testbed's in-memory recipe (issue #21)
    factor=f"'area'-downscaled to int(side * factor), 'nearest' back (torch, the testbed's): {table_doc(PIXELATE_FACTOR)}",
)
def pixelate(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Pixelation: area downscale, nearest upscale."""
    factor = pick(PIXELATE_FACTOR, level)
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(int(h * factor), 1), max(int(w * factor), 1)), mode="area")
    return finish(F.interpolate(small, size=(h, w), mode="nearest"))


def _testbed_jpeg(photo: np.ndarray, out: np.ndarray, quality: int) -> None:
    """Write into `out` the testbed's JPEG round trip of one (H, W, 3) uint8 RGB photo, handed to
    OpenCV as it is (as BGR), as float32 (3, H, W) / 255."""
    import cv2  # OpenCV comes with albumentations; imported here to keep the family light to load

    _, encoded = cv2.imencode(".jpg", photo, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    np.divide(decoded.transpose(2, 0, 1), np.float32(255), out=out, dtype=np.float32)


@corruption(
    "jpeg_compression",
    version="2",  # 2: the imagenet-testbed's in-memory recipe (issue #21)
    quality=f"JPEG quality: {table_doc(JPEG_QUALITY)}",
    method="the testbed's: truncated to 8 bits, the RGB array encoded by OpenCV as if it were BGR, decoded",
    device="the codec runs on the CPU (libjpeg via OpenCV): the batch leaves the device and comes back",
)
def jpeg_compression(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """JPEG artefacts: a real encode/decode round trip of every photo at a low quality."""
    quality = pick(JPEG_QUALITY, level)
    photos = (x.to(torch.float32) * 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
    out = np.empty((len(photos), 3, *photos.shape[1:3]), np.float32)
    threaded_map(lambda photo, result: _testbed_jpeg(photo, result, quality), photos, out)
    return torch.from_numpy(out).to(x.device)
