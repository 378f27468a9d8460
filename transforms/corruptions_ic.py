"""The `imagecorruptions` 1.1.2 variants (Michaelis et al.; ImageNet-C's code re-parameterised for
any size) of the corruptions whose native recipe (the imagenet-testbed's, see transforms/_testbed.py)
differs: registered as NAME_ic in the family `imagecorruptions`, with no published line. The
`imagenet-c` protocol (transforms/_release.py) uses some of them where the release and
imagecorruptions agree (gaussian_blur_ic, spatter_ic, jpeg_compression_ic; motion_blur_ic and
snow_ic stand in for the release's ImageMagick motion blur, which is not reproduced).

Published parameters and conventions: see transforms/_corruption_kit.py; goldens against
imagecorruptions in tests/test_corruption_goldens.py.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from robustbench_lite import PhotoRNG, register_transform
from transforms._common import luma, separable_filter, warp
from transforms._corruption_kit import LEVEL_DOC, SCALED_DOC, SEVERITIES, finish, in_chunks, line_blur
from transforms._corruption_kit import motion_kernel, pick, scale, scipy_taps, skimage_gaussian, table_doc
from transforms._corruption_kit import threaded_map, zoom_to
from transforms.corruptions_blur import GAUSSIAN_BLUR_SIGMA, MOTION_RADIUS_SIGMA, ZOOM_FACTORS
from transforms.corruptions_digital import JPEG_QUALITY, PIXELATE_FACTOR
from transforms.corruptions_weather import SNOW_PARAMS, SPATTER_DISTANCE_CAP, SPATTER_EMBOSS, SPATTER_MUD
from transforms.corruptions_weather import SPATTER_PARAMS, SPATTER_WATER

FAMILY = "imagecorruptions"
ELASTIC_ALPHA = (250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12)


def variant(name: str, **params: str):
    """Register NAME_ic, imagecorruptions' version of the native corruption NAME."""
    params = {"level": LEVEL_DOC, "variant_of": name, "published_line": "none (imagecorruptions recipe)", **params}
    return register_transform(f"{name}_ic", family=FAMILY, severities=SEVERITIES, params=params)


@variant(
    "elastic_transform",
    alpha=(
        "gain on uniform(-0.005 H, 0.005 H) noise smoothed by a Gaussian of sigma 0.01 of each side "
        f"(displacements in px at 224, {SCALED_DOC}): {table_doc(ELASTIC_ALPHA)}"
    ),
    method="no random affine (the release's and the testbed's have one); edges mirrored about the edge pixel",
)
def elastic_transform_ic(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Elastic warp, imagecorruptions' re-parameterisation: a smooth random displacement field."""
    alpha = pick(ELASTIC_ALPHA, level)
    n, _, h, w = x.shape
    most = 0.005 * h
    noise = rng.uniform(-most, most, 2, h, w).to(x.device)
    taps_h, taps_w = scipy_taps(0.01 * h, 3.0), scipy_taps(0.01 * w, 3.0)
    cols = torch.arange(w, device=x.device, dtype=torch.float32)
    rows = torch.arange(h, device=x.device, dtype=torch.float32)[:, None]

    def displace(photos: Tensor, noise: Tensor) -> Tensor:
        field = separable_filter(noise, taps_h, taps_w, "reflect", rows_first=True).mul_(alpha * scale(x))
        grid_x = (cols + field[:, 0]).mul_(2 / max(w - 1, 1)).sub_(1)
        grid_y = (rows + field[:, 1]).mul_(2 / max(h - 1, 1)).sub_(1)
        return warp(photos, torch.stack((grid_x, grid_y), dim=-1), "reflection", align_corners=True)

    return finish(in_chunks(displace, x, noise))


@variant(
    "motion_blur",
    radius_sigma=f"line of 2*radius+1 taps, one-sided Gaussian weights ({SCALED_DOC}): {table_doc(MOTION_RADIUS_SIGMA)}",
    angle="uniform in [-45, 45) degrees per photo from rng",
    method="imagecorruptions' shifted-copy sum (not ImageMagick's), done as one FFT convolution per photo",
)
def motion_blur_ic(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Camera shake: a one-sided blur along a line at a random angle."""
    radius, sigma = pick(MOTION_RADIUS_SIGMA, level)
    s = scale(x)
    taps, angles = motion_kernel(radius * s, sigma * s), rng.uniform(-45.0, 45.0)
    return finish(in_chunks(lambda part, part_angles: line_blur(part, taps, part_angles), x, angles))


def _clipped_zoom(x: Tensor, factor: float) -> Tensor:
    """Centre crop of 1/factor of the side, zoomed back (scipy zoom, order 1), top left kept."""
    h, w = x.shape[-2:]
    ch, cw = math.ceil(h / factor), math.ceil(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    return zoom_to(x[..., top : top + ch, left : left + cw], factor, h, w)


@variant("zoom_blur", method="scipy zoom (order 1) of each centre, the top-left side kept (the testbed trims symmetrically)")
def zoom_blur_ic(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Zooming camera: the mean of the photo and its zoomed-in centres."""
    factors = pick(ZOOM_FACTORS, level)
    x = x.contiguous(memory_format=torch.channels_last)  # bilinear zooms run twice as fast
    total = x * 2  # the reference's list starts at zoom 1.00: the photo itself, counted twice
    for factor in factors[1:]:
        total += _clipped_zoom(x, factor)
    return finish(total.div_(len(factors) + 1)).contiguous()


@variant(
    "gaussian_blur",
    sigma=f"Gaussian sigma px ({SCALED_DOC}): {table_doc(GAUSSIAN_BLUR_SIGMA)}",
    method="skimage.filters.gaussian per channel: scipy taps out to 4 sigma, edges repeated (the release's)",
)
def gaussian_blur_ic(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Gaussian blur of every channel."""
    return finish(skimage_gaussian(x, pick(GAUSSIAN_BLUR_SIGMA, level) * scale(x)))


@variant(
    "snow",
    angle="streak angle uniform in [-135, -45) degrees per photo from rng",
    method="flakes streaked by imagecorruptions' line kernel (the release used ImageMagick's motion blur)",
)
def snow_ic(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
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


def _water_shading(layer: np.ndarray, s: float) -> np.ndarray:
    """The reference's shading of one photo's 8-bit liquid layer (H, W): Canny outlines, capped
    distance, box blur, 8 bits, equalised, embossed (OpenCV, saturating) and box-blurred again."""
    import cv2  # OpenCV comes with albumentations; imported here to keep the family light to load

    distance = cv2.distanceTransform(255 - cv2.Canny(layer, 50, 150), cv2.DIST_L2, 5)
    _, distance = cv2.threshold(distance, SPATTER_DISTANCE_CAP * s, SPATTER_DISTANCE_CAP * s, cv2.THRESH_TRUNC)
    shading = cv2.equalizeHist(cv2.blur(distance, (3, 3)).astype(np.uint8))
    shading = cv2.filter2D(shading, cv2.CV_8U, np.array(SPATTER_EMBOSS, np.float32))
    return cv2.blur(shading, (3, 3)).astype(np.float32)


@variant(
    "spatter",
    method="imagecorruptions' (the release's): skimage Gaussian blurs, OpenCV shading; a photo without any "
    "drop stays as it is (the reference gives NaN)",
    device="the water shading runs per photo on the CPU (OpenCV); noise, blurs and blending on the device",
)
def spatter_ic(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
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


def _box_bins(in_size: int, out_size: int) -> Tensor:
    """PIL's BOX downscale: the output pixel whose box holds each input pixel's centre (on the host)."""
    centres = torch.arange(in_size, dtype=torch.float64) + 0.5
    return (torch.ceil(centres * out_size / in_size) - 1).clamp(0, out_size - 1).long()


def _box_downscale(x: Tensor, dim: int, out_size: int) -> Tensor:
    """Mean of the input pixels in each output box along `dim`.

    Each box's pixels are added one after another in input order (what the CPU's index_add_ does),
    as at most ceil(in / out) + 1 gathered slices: CUDA's index_add_ adds with atomics, in an order
    that changes from run to run.
    """
    bins = _box_bins(x.shape[dim], out_size)  # boxes are contiguous runs of bins
    counts = torch.bincount(bins, minlength=out_size)
    starts = torch.cumsum(counts, 0) - counts
    view = [1] * x.dim()
    view[dim] = out_size
    sums = None
    for j in range(int(counts.max())):
        take = (starts + j).clamp_(max=x.shape[dim] - 1).to(x.device)
        member = (counts > j).to(x.device).view(view)
        part = torch.where(member, x.index_select(dim, take), 0.0)
        sums = part if sums is None else sums + part
    return sums / counts.to(device=x.device, dtype=x.dtype).view(view)


@variant("pixelate", factor=f"PIL BOX-downscaled to this fraction of the side, NEAREST back: {table_doc(PIXELATE_FACTOR)}")
def pixelate_ic(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Pixelation: PIL BOX downscale, NEAREST upscale."""
    factor = pick(PIXELATE_FACTOR, level)
    h, w = x.shape[-2:]
    small = _box_downscale(x, -2, max(int(h * factor), 1))
    small = finish(_box_downscale(small, -1, max(int(w * factor), 1)))
    return F.interpolate(small, size=(h, w), mode="nearest-exact")


def _jpeg_round_trip(photo: np.ndarray, out: np.ndarray, quality: int) -> None:
    """Write into `out` the (3, H, W) float photo after 8-bit rounding and a JPEG round trip
    (OpenCV's libjpeg: the reference's Pillow bytes and pixels, and it lets other threads run)."""
    import cv2

    bgr = np.multiply(photo[::-1].transpose(1, 2, 0), 255, dtype=np.float32)
    np.clip(bgr + 0.5, 0, 255, out=bgr)
    _, encoded = cv2.imencode(".jpg", bgr.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)  # BGR
    np.multiply(decoded[..., ::-1].transpose(2, 0, 1), np.float32(1 / 255), out=out)


@variant(
    "jpeg_compression",
    quality=f"JPEG quality: {table_doc(JPEG_QUALITY)}",
    method="8-bit rounding, then a Pillow-identical JPEG round trip of the RGB photo (the release's)",
)
def jpeg_compression_ic(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """JPEG artefacts: a real encode/decode round trip of every photo at a low quality."""
    quality = pick(JPEG_QUALITY, level)
    photos = x.detach().cpu().numpy()
    out = np.empty(photos.shape, np.float32)
    threaded_map(lambda photo, result: _jpeg_round_trip(photo, result, quality), photos, out)
    return torch.from_numpy(out).to(x.device)
