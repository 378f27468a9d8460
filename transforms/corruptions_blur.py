"""ImageNet-C blur corruptions: defocus, glass, motion and zoom blur, and Gaussian blur of the
validation set.

Published parameters and conventions: see transforms/_corruption_kit.py.

Against the released ImageNet-C (hendrycks/robustness `make_imagenet_c.py`, what the published
numbers measure; the `imagenet-c` protocol follows it through transforms/_release.py), at 224 px:

- glass_blur differs: ours resamples once with rounded Gaussian offsets (std 1.5, 1.5, 3.75,
  3.5, 4.5 px, matched to imagecorruptions' mean SSIM). The release sweeps from the bottom
  right; each pixel takes the current value of the one randint(-delta, delta) away (at most
  delta - 1; its numpy "swap" is a copy), so values travel in chains. Spread (std per axis) of
  where a pixel's value comes from, ours / release, 50 shared photos: 1.53 / 0.71, 1.53 / 1.20,
  3.76 / 2.09, 3.51 / 2.80, 4.51 / 3.91 px (1.15-2.2x); mean SSIM to clean within 0.008 at every
  severity, yet EfficientNet-Lite0 keeps 8 % at severity 3 on ours against 20 % on the release.
- defocus_blur differs at severities 4 and 5: ours normalises the anti-aliased disk to sum 1;
  the release (and imagecorruptions) blurs it with cv2.GaussianBlur's mirrored edges and keeps
  the sum, 1.0130 and 1.0108 where the disk reaches its grid's edge, about 1 % brighter.
- zoom_blur differs by up to 1 px: ours keeps the top left 224 px of each zoom
  (imagecorruptions), the release trims symmetrically.
- motion_blur differs: ours is imagecorruptions' sum of shifted copies, the release used
  ImageMagick's MotionBlurImage.
- gaussian_blur: the release's recipe.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from robustbench_lite import PhotoRNG
from transforms._common import gaussian_kernel, separable_filter
from transforms._corruption_kit import EXTRA, SCALED_DOC, correlate, corruption, finish, in_chunks, line_blur
from transforms._corruption_kit import motion_kernel, pick, scale, skimage_gaussian, table_doc, zoom_to

# Published parameter tables, one entry per severity 1..5.
DEFOCUS_RADIUS_ALIAS = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))
GLASS_SIGMA_DELTA_ITER = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))
GLASS_SHUFFLE_STD = (1.5, 1.5, 3.75, 3.5, 4.5)  # matched to the reference: see glass_blur
MOTION_RADIUS_SIGMA = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))
GAUSSIAN_BLUR_SIGMA = (1, 2, 3, 4, 6)
ZOOM_FACTORS = tuple(  # the reference's np.arange(1, 1.11, .01) ... as numpy yields them
    tuple(round(1 + step * i, 2) for i in range(count))
    for step, count in ((0.01, 12), (0.01, 16), (0.02, 11), (0.02, 13), (0.03, 11))
)


def _defocus_kernel(radius: float, alias_sigma: float, s: float, device: torch.device) -> Tensor:
    """The reference's disk: an aliased disk on a grid of at least 8 px, smoothed by a
    Gaussian of 3 (5 for radii over 8) taps, sum 1; every size scaled by `s`."""
    half = math.ceil(max(8 * s, radius * s) - 1e-9)
    t = torch.arange(-half, half + 1, device=device, dtype=torch.float32)
    disk = ((t[:, None] ** 2 + t[None, :] ** 2) <= (radius * s) ** 2).float()
    smooth = gaussian_kernel(alias_sigma * s, max(round((1 if radius <= 8 else 2) * s), 1))
    disk = separable_filter(disk[None, None], smooth, smooth, "constant", rows_first=True)[0, 0]
    return disk / disk.sum()


@corruption(
    "defocus_blur",
    radius_alias=f"disk radius px, anti-alias sigma px ({SCALED_DOC}): {table_doc(DEFOCUS_RADIUS_ALIAS)}",
)
def defocus_blur(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Out-of-focus lens: convolution with an anti-aliased disk."""
    radius, alias = pick(DEFOCUS_RADIUS_ALIAS, level)
    s = scale(x)
    kernel = _defocus_kernel(radius, alias, s, x.device)
    half = kernel.shape[-1] // 2
    t = torch.arange(-half, half + 1, device=x.device)
    dy, dx = t[:, None].expand_as(kernel), t[None, :].expand_as(kernel)
    dy, dx, weights = dy.reshape(1, -1), dx.reshape(1, -1), kernel.reshape(1, -1)
    return finish(in_chunks(lambda part: correlate(part, dy, dx, weights, "reflect"), x))


@corruption(
    "glass_blur",
    sigma_delta_iterations=(
        f"blur sigma px, largest swap px, sweeps ({SCALED_DOC}): {table_doc(GLASS_SIGMA_DELTA_ITER)}"
    ),
    shuffle_std=(
        "std px (at 224) of each pixel's random source offset, set so mean SSIM to the clean photo "
        "matches the reference's (its sweeps run with scikit-image's channel_axis fix) on 12 shared "
        f"photos: {table_doc(GLASS_SHUFFLE_STD)}"
    ),
    method=(
        "blur, quantise to 8 bits, every pixel farther than `delta` from the border takes the value of "
        "the pixel round(N(0, shuffle_std)) away (one vectorised random resampling; the reference swaps "
        "pixels one by one in a sweep, a permutation whose moves chain), blur again"
    ),
)
def glass_blur(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Frosted glass: blur, locally shuffle pixels, blur again."""
    sigma, delta, _sweeps = pick(GLASS_SIGMA_DELTA_ITER, level)
    s = scale(x)
    spread, sigma, delta = pick(GLASS_SHUFFLE_STD, level) * s, sigma * s, max(int(round(delta * s)), 1)
    x = torch.floor(skimage_gaussian(x, sigma) * 255) / 255
    n, c, h, w = x.shape
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    inside_rows, inside_cols = (rows > delta) & (rows <= h - delta), (cols > delta) & (cols <= w - delta)
    move = (rng.randn(2, h, w).to(x.device) * spread).round_().long()
    move *= inside_rows[:, None] & inside_cols[None, :]
    source = (rows[:, None] + move[:, 0]).clamp_(0, h - 1) * w + (cols[None, :] + move[:, 1]).clamp_(0, w - 1)
    source = source.reshape(n, 1, h * w).expand(n, c, h * w)
    x = x.reshape(n, c, h * w).gather(2, source).reshape(n, c, h, w)
    return finish(skimage_gaussian(x, sigma))


@corruption(
    "motion_blur",
    radius_sigma=(
        f"line of 2*radius+1 taps with one-sided Gaussian weights of this sigma ({SCALED_DOC}): "
        f"{table_doc(MOTION_RADIUS_SIGMA)}"
    ),
    angle="uniform in [-45, 45) degrees per photo from rng",
    method="the reference's shifted-copy sum (not ImageMagick's), done as one FFT convolution per photo",
)
def motion_blur(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Camera shake: a one-sided blur along a line at a random angle."""
    radius, sigma = pick(MOTION_RADIUS_SIGMA, level)
    s = scale(x)
    taps, angles = motion_kernel(radius * s, sigma * s), rng.uniform(-45.0, 45.0)
    return finish(in_chunks(lambda part, part_angles: line_blur(part, taps, part_angles), x, angles))


def _clipped_zoom(x: Tensor, factor: float) -> Tensor:
    """Centre crop of 1/factor of the side, zoomed back (scipy zoom, order 1) and cut to size."""
    h, w = x.shape[-2:]
    ch, cw = math.ceil(h / factor), math.ceil(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    return zoom_to(x[..., top : top + ch, left : left + cw], factor, h, w)


@corruption(
    "zoom_blur",
    zoom_factors="mean of the photo and its centre zooms by 1.00..1.11 step .01; 1.00..1.15 step .01; "
    "1.00..1.20 step .02; 1.00..1.24 step .02; 1.00..1.30 step .03",
)
def zoom_blur(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Zooming camera: the mean of the photo and its zoomed-in centres."""
    factors = pick(ZOOM_FACTORS, level)
    x = x.contiguous(memory_format=torch.channels_last)  # bilinear zooms run twice as fast
    total = x * 2  # the reference's list starts at zoom 1.00: the photo itself, counted twice
    for factor in factors[1:]:
        total += _clipped_zoom(x, factor)
    return finish(total.div_(len(factors) + 1)).contiguous()


@corruption(
    "gaussian_blur",
    benchmark=EXTRA,
    sigma=f"Gaussian sigma px ({SCALED_DOC}): {table_doc(GAUSSIAN_BLUR_SIGMA)}",
    method="skimage.filters.gaussian per channel: scipy taps out to 4 sigma, edges repeated",
)
def gaussian_blur(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Gaussian blur of every channel."""
    return finish(skimage_gaussian(x, pick(GAUSSIAN_BLUR_SIGMA, level) * scale(x)))
