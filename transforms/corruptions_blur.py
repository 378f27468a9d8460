"""ImageNet-C blur corruptions: defocus, glass, motion and zoom blur, and Gaussian blur of the
validation set, as the `native` protocol runs them: the imagenet-testbed's in-memory recipe
(transforms/_testbed.py), whose `_in-memory` columns are the lines native runs are placed on.

Published parameters and conventions: see transforms/_corruption_kit.py; pixel sizes scale with
side / 224, so at 224 px each is the testbed's (or, for glass_blur, the release's) to the bit.

- defocus_blur: the release's disk (as the testbed builds it): normalised on a grid of at least
  +-8 px, anti-aliased by cv2.GaussianBlur with mirrored edges and not normalised again (it sums
  to 1.0130 and 1.0108 at severities 4 and 5), convolved with F.pad 'reflect' edges.
- glass_blur: the testbed has no in-memory glass blur; its line is the on-disk (released JPEG)
  one, made by make_imagenet_c.py: skimage Gaussian, 8-bit cut, the sequential sweep (each pixel
  from the bottom right takes the current value of the pixel randint(-delta, delta) away, a copy,
  not a swap), skimage Gaussian again. The sweep is computed exactly by pointer jumping.
- motion_blur: the testbed's ImageMagick-like line kernel (`line_taps`) at an angle uniform in
  [-pi/4, pi/4) radians, edges replicated.
- zoom_blur: the mean of the photo and its centre zooms, each the testbed's `clipped_zoom`.
- gaussian_blur: the testbed's kernel, taps out to 2 sigma - 1 (size 4 sigma - 1), 'reflect'
  edges (the release's skimage blur, taps to 4 sigma with repeated edges, is gaussian_blur_ic).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from robustbench_lite import PhotoRNG
from transforms._common import gaussian_kernel, separable_filter
from transforms._corruption_kit import EXTRA, SCALED_DOC, correlate, corruption, finish, in_chunks, pick, scale
from transforms._corruption_kit import skimage_gaussian, table_doc
from transforms._testbed import clipped_zoom, line_blur, line_taps, scaled_taps, testbed_blur

# Published parameter tables, one entry per severity 1..5.
DEFOCUS_RADIUS_ALIAS = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))
GLASS_SIGMA_DELTA_ITER = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))
MOTION_RADIUS_SIGMA = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))
GAUSSIAN_BLUR_SIGMA = (1, 2, 3, 4, 6)
ZOOM_STEPS = ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03))
ZOOM_FACTORS = tuple(tuple(np.arange(1, stop, step).tolist()) for stop, step in ZOOM_STEPS)  # as numpy yields them


def defocus_kernel(radius: float, alias: float, s: float, device) -> Tensor:
    """The release's disk at scale `s`: a disk of radius `radius` s on a grid of at least +-8 s px,
    normalised, then blurred by a Gaussian of `alias` s (3 taps, 5 for radii over 8, times s) with
    mirrored edges (cv2.GaussianBlur's BORDER_REFLECT_101), not normalised again."""
    half = max(8, radius) if s == 1 else math.ceil(max(8 * s, radius * s) - 1e-9)
    t = torch.arange(-half, half + 1, device=device, dtype=torch.float32)
    disk = ((t[:, None] ** 2 + t[None, :] ** 2) <= (radius * s) ** 2).float()
    taps = 1 if radius <= 8 else 2
    smooth = gaussian_kernel(alias * s, taps if s == 1 else max(int(round(taps * s)), 1))
    return separable_filter((disk / disk.sum())[None, None], smooth, smooth, "reflect", rows_first=True)[0, 0]


@corruption(
    "defocus_blur",
    version="2",  # 2: the imagenet-testbed's in-memory recipe (issue #21)
    radius_alias=f"disk radius px, anti-alias sigma px ({SCALED_DOC}): {table_doc(DEFOCUS_RADIUS_ALIAS)}",
    method="the release's disk kernel (not normalised after its anti-aliasing), 'reflect' edges: the testbed's",
)
def defocus_blur(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Out-of-focus lens: convolution with an anti-aliased disk."""
    radius, alias = pick(DEFOCUS_RADIUS_ALIAS, level)
    kernel = defocus_kernel(radius, alias, scale(x), x.device)
    half = kernel.shape[-1] // 2
    t = torch.arange(-half, half + 1, device=x.device)
    dy, dx = t[:, None].expand_as(kernel).reshape(1, -1), t[None, :].expand_as(kernel).reshape(1, -1)
    weights = kernel.reshape(1, -1)
    return finish(in_chunks(lambda part: correlate(part, dy, dx, weights, "reflect"), x.to(torch.float32)))


def sweep_sources(draws: Tensor, h: int, w: int, delta: int) -> Tensor:
    """(N, H * W) flat index of the pixel whose value each pixel holds after the release's sweeps,
    from their draws (N, iterations, rows, cols, 2) (dx, dy of each visit in sweep order).

    A sweep visits the pixels delta < row, col <= side - delta from the bottom right; each takes
    the current value of its source: the source's new value if it was visited before (it comes
    later in raster order), else its value before the sweep. Those chains are followed by
    pointer jumping, so a sweep costs O(H W log(chain)) tensor work instead of a Python loop.
    """
    n, iterations = draws.shape[:2]
    device = draws.device
    rows = torch.arange(h - delta, delta, -1, device=device)
    cols = torch.arange(w - delta, delta, -1, device=device)
    targets = (rows[:, None] * w + cols[None, :]).reshape(-1)
    inside = torch.zeros(h * w, dtype=torch.bool, device=device)
    inside[targets] = True
    index = torch.arange(h * w, device=device).expand(n, -1).clone()
    for i in range(iterations):
        step = draws[:, i].long()
        moved = ((rows[:, None] + step[..., 1]) * w + (cols[None, :] + step[..., 0])).reshape(n, -1)
        source = torch.arange(h * w, device=device).expand(n, -1).clone()
        source[:, targets] = moved
        visited = inside[source] & (source > torch.arange(h * w, device=device))
        pointer = torch.where(visited, source, torch.arange(h * w, device=device).expand(n, -1))
        while True:  # pointer jumping: every chain ends at a pixel that read a value from before the sweep
            further = pointer.gather(1, pointer)
            if torch.equal(further, pointer):
                break
            pointer = further
        index = index.gather(1, source.gather(1, pointer))
    return index


@corruption(
    "glass_blur",
    version="2",  # 2: the imagenet-testbed's in-memory recipe (issue #21)
    sigma_delta_iterations=(
        f"blur sigma px, largest move px, sweeps ({SCALED_DOC}; sweeps as they are): {table_doc(GLASS_SIGMA_DELTA_ITER)}"
    ),
    method=(
        "the release's (make_imagenet_c.py; the testbed has no in-memory glass blur): skimage Gaussian, cut to "
        "8 bits, sweeps from the bottom right in which each pixel takes the current value of the pixel "
        "randint(-delta, delta) away, skimage Gaussian again"
    ),
)
def glass_blur(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Frosted glass: blur, locally shuffle pixels, blur again."""
    sigma, delta, iterations = pick(GLASS_SIGMA_DELTA_ITER, level)
    s = scale(x)
    if s != 1:
        sigma, delta = sigma * s, max(int(round(delta * s)), 1)
    n, c, h, w = x.shape
    levels = torch.floor(skimage_gaussian(x.to(torch.float32), sigma) * 255)  # np.uint8 of the blur
    draws = rng.randint(-delta, delta, iterations, max(h - 2 * delta, 0), max(w - 2 * delta, 0), 2)
    where = sweep_sources(draws.to(x.device), h, w, delta)[:, None, :].expand(n, c, h * w)
    shuffled = levels.reshape(n, c, h * w).gather(2, where).reshape(n, c, h, w)
    return finish(skimage_gaussian(shuffled / 255, sigma))


@corruption(
    "motion_blur",
    version="2",  # 2: the imagenet-testbed's in-memory recipe (issue #21)
    radius_sigma=(
        f"line of 2*radius+1 taps with Gaussian weights of this sigma ({SCALED_DOC}): {table_doc(MOTION_RADIUS_SIGMA)}"
    ),
    angle="uniform in [-pi/4, pi/4) radians per photo from rng",
    method="the testbed's ImageMagick-like line kernel, edges replicated (imagecorruptions' is motion_blur_ic)",
)
def motion_blur(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Camera shake: a blur along a line at a random angle."""
    radius, sigma = pick(MOTION_RADIUS_SIGMA, level)
    s = scale(x)
    radius, sigma = (radius, sigma) if s == 1 else (max(int(round(radius * s)), 1), sigma * s)
    angles = rng.uniform(-math.pi / 4, math.pi / 4).reshape(-1).tolist()
    kernels = [line_taps(radius, float(a), float(sigma)) for a in angles]
    return finish(in_chunks(lambda part, k: line_blur(part, [kernels[int(i)] for i in k]), x,
                            torch.arange(len(x))))  # on the host: int(i) below is no device sync


@corruption(
    "zoom_blur",
    version="2",  # 2: the imagenet-testbed's in-memory recipe (issue #21)
    zoom_factors="mean of the photo and its centre zooms by 1.00..1.10 step .01; 1.00..1.15 step .01; "
    "1.00..1.20 step .02; 1.00..1.24 step .02; 1.00..1.30 step .03",
    method="the testbed's clipped_zoom (bilinear, torch 1.5's sizes, trimmed symmetrically)",
)
def zoom_blur(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Zooming camera: the mean of the photo and its zoomed-in centres."""
    total = torch.zeros_like(x)
    for factor in pick(ZOOM_FACTORS, level):  # starts at 1.00: the photo itself, counted twice
        total += clipped_zoom(x, factor)
    return finish((x + total) / (len(pick(ZOOM_FACTORS, level)) + 1))


@corruption(
    "gaussian_blur",
    version="2",  # 2: the imagenet-testbed's in-memory recipe (issue #21)
    benchmark=EXTRA,
    sigma=f"Gaussian sigma px ({SCALED_DOC}): {table_doc(GAUSSIAN_BLUR_SIGMA)}",
    method="the testbed's: taps out to 2 sigma - 1 (kernel size 4 sigma - 1), 'reflect' edges",
)
def gaussian_blur(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Gaussian blur of every channel."""
    sigma = pick(GAUSSIAN_BLUR_SIGMA, level)
    return finish(testbed_blur(x, scaled_taps(4 * sigma - 1, sigma, scale(x))))
