"""Shared machinery of the native ImageNet-C recipe: the imagenet-testbed's in-memory corruptions.

The testbed (Taori et al. 2020; modestyachts/imagenet-testbed, `src/eval_settings/image_utils.py`,
MIT) made its `imagenet-c.NAME.S_in-memory` columns, the lines a `native` run is placed on, by
corrupting each val photo after the model's own Resize + CenterCrop + ToTensor (float32 k / 255,
before normalisation), with torch ports of ImageNet-C's functions; its results were computed
with torch 1.5.0 and OpenCV 4.2 (its requirements.txt of 2020). What that code does and this
module reproduces, batched and seeded per photo:

- `testbed_taps`: its `gaussian_kernel(size, sigma)` (taps at -(size // 2) .. size // 2, the 2-D
  kernel normalised; separable here) used with F.pad 'reflect' (edges mirrored about the edge
  pixel): gaussian_blur (size 4 sigma - 1), spatter, glass's blur (not in memory: see glass_blur);
- `line_taps`: its `motion_blur_generate_kernel`, the ImageMagick-like line of Gaussian weights
  (a later tap on the same cell replaces the earlier one, then the kernel is normalised), used
  by motion_blur and snow with edges replicated;
- `clipped_zoom`: its bilinear zoom of the centre, as torch 1.5.0 ran F.interpolate with a scale
  factor (output floor(side * factor), the scale recomputed from the sizes), trimmed symmetrically.

Scaling to other input sides: the testbed used its pixel constants at every model's size; here
a pixel size p at 224 px becomes p * side / 224 (radii rounded), so at 224 px every number is the
testbed's own and the result is the testbed's.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from transforms._common import separable_filter
from transforms._corruption_kit import correlate

AFFINE_BITS, AFFINE_TABLE = 10, 32  # OpenCV warpAffine: coordinates in 1/1024, then the 1/32 px grid


@lru_cache(maxsize=64)
def testbed_taps(size: int, sigma: float) -> tuple[float, ...]:
    """The testbed's `gaussian_kernel(size, sigma)` as 1-D taps at -(size // 2) .. size // 2."""
    half = size // 2
    taps = [math.exp(-(t**2) / (2 * sigma**2)) for t in range(-half, half + 1)]
    return tuple(t / sum(taps) for t in taps)


def scaled_taps(size: int, sigma: float, s: float) -> tuple[float, ...]:
    """testbed_taps of a kernel given at 224 px, its half-width and sigma scaled by `s`."""
    if s == 1:
        return testbed_taps(size, sigma)
    return testbed_taps(2 * max(int(round((size // 2) * s)), 1) + 1, sigma * s)


def testbed_blur(x: Tensor, taps: tuple[float, ...]) -> Tensor:
    """The testbed's Gaussian conv2d on every channel: F.pad 'reflect' by the half-width, separable."""
    return separable_filter(x, taps, taps, "reflect", rows_first=True)


@lru_cache(maxsize=4096)
def line_taps(radius: int, angle: float, sigma: float) -> tuple[tuple[int, int, float], ...]:
    """The testbed's `motion_blur_generate_kernel(radius, angle, sigma)` as (dy, dx, weight) image
    offsets of its correlation (the padding recentres its corner-anchored kernel at 0, 0)."""
    angle = 2 * math.pi - angle
    if angle < 0:
        angle += math.ceil(angle / (2 * math.pi)) * 2 * math.pi
    if angle > 2 * math.pi:
        angle = angle % (2 * math.pi)
    size = 2 * radius + 1
    dx, dy = math.cos(angle), -math.sin(angle)
    cells: dict[tuple[int, int], float] = {}
    for i in range(size):  # scipy.signal.gaussian(2 size - 1, sigma)[size - 1:]
        cells[(round(dy * i), round(dx * i))] = math.exp(-(i**2) / (2 * sigma**2))
    total = sum(cells.values())
    return tuple((y, x, w / total) for (y, x), w in cells.items())


def line_blur(x: Tensor, kernels: list[tuple[tuple[int, int, float], ...]]) -> Tensor:
    """Each photo (or, with one kernel, all) correlated with its line kernel, edges replicated."""
    taps = max(len(k) for k in kernels)
    rows = [list(k) + [(0, 0, 0.0)] * (taps - len(k)) for k in kernels]
    dy = torch.tensor([[t[0] for t in r] for r in rows], device=x.device)
    dx = torch.tensor([[t[1] for t in r] for r in rows], device=x.device)
    weights = torch.tensor([[t[2] for t in r] for r in rows], device=x.device, dtype=torch.float32)
    return correlate(x, dy, dx, weights, "replicate")


def clipped_zoom(x: Tensor, factor: float) -> Tensor:
    """The testbed's `clipped_zoom`: the centre ceil(side / factor) zoomed by `factor` (bilinear,
    output floor(crop * factor) as torch 1.5.0 sized it) and trimmed symmetrically to the side."""
    h, w = x.shape[-2:]
    ch, cw = math.ceil(h / float(factor)), math.ceil(w / float(factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    size = (int(math.floor(ch * factor)), int(math.floor(cw * factor)))
    zoomed = F.interpolate(x[..., top : top + ch, left : left + cw], size=size, mode="bilinear", align_corners=False)
    trim_top, trim_left = (size[0] - h) // 2, (size[1] - w) // 2
    return zoomed[..., trim_top : trim_top + h, trim_left : trim_left + w]


# ------------------------------------------- OpenCV 4.2 warpAffine (the release's and the testbed's)


def fold_101(index: Tensor, length: int) -> Tensor:
    """Integer positions mirrored about the edge pixels (OpenCV BORDER_REFLECT_101)."""
    if length == 1:
        return torch.zeros_like(index)
    period = 2 * length - 2
    folded = torch.remainder(index, period)
    return torch.where(folded < length, folded, period - folded)


def bilinear(x: Tensor, ys: Tensor, xs: Tensor, fold, weights_dtype=torch.float64) -> Tensor:
    """x sampled bilinearly at source positions ys, xs ((N, H, W), pixel units), each of the
    four taps' integer position folded into the image by `fold(index, length)`."""
    n, c, h, w = x.shape
    y0, x0 = torch.floor(ys), torch.floor(xs)
    ty, tx = (ys - y0).to(weights_dtype), (xs - x0).to(weights_dtype)
    y0, x0 = y0.long(), x0.long()
    flat = x.reshape(n, c, h * w).to(weights_dtype)
    out = torch.zeros(n, c, h * w, dtype=weights_dtype, device=x.device)
    for dy, wy in ((0, 1 - ty), (1, ty)):
        for dx, wx in ((0, 1 - tx), (1, tx)):
            where = (fold(y0 + dy, h) * w + fold(x0 + dx, w)).reshape(n, 1, h * w).expand(n, c, h * w)
            out += (wy * wx).reshape(n, 1, h * w) * flat.gather(2, where)
    return out.reshape(n, c, h, w).to(torch.float32)


def affine_inverse(moves: Tensor, h: int, w: int) -> Tensor:
    """(N, 2, 3) maps from output to source pixel (x, y) of the release's random affine: the one
    that takes its three control points to themselves + moves ((N, 3, 2), x then y)."""
    centre = torch.tensor([float(h // 2), float(w // 2)], dtype=torch.float64)  # sic: (H, W) as (x, y)
    half = float(min(h, w) // 3)
    points = torch.stack([centre + half, centre + torch.tensor([half, -half]), centre - half])  # (x, y)
    moved = points[None] + moves.detach().cpu().to(torch.float32).to(torch.float64)
    ones = torch.ones(3, 1, dtype=torch.float64)
    forward = torch.linalg.solve(torch.cat([points, ones], 1)[None], moved).transpose(1, 2)  # (N, 2, 3)
    linear = torch.linalg.inv(forward[:, :, :2])
    return torch.cat([linear, -linear @ forward[:, :, 2:]], 2)


def warp_affine(x: Tensor, moves: Tensor) -> Tensor:
    """OpenCV warpAffine (bilinear, BORDER_REFLECT_101) by the release's random affine, as the
    OpenCV of the release computed it: source positions on a 1/32 px grid."""
    n, _, h, w = x.shape
    inverse = affine_inverse(moves, h, w).to(x.device)
    scale, step = 1 << AFFINE_BITS, (1 << AFFINE_BITS) // AFFINE_TABLE
    cols = torch.arange(w, dtype=torch.float64, device=x.device)
    rows = torch.arange(h, dtype=torch.float64, device=x.device)

    def fixed(axis: int) -> Tensor:  # the source coordinate in 1/32 px, as OpenCV rounds it
        along = torch.round(inverse[:, axis, 0, None] * cols * scale)[:, None, :]
        across = torch.round((inverse[:, axis, 1, None] * rows + inverse[:, axis, 2, None]) * scale)
        return torch.floor((along + across[:, :, None] + step // 2) / step)

    return bilinear(x, fixed(1) / AFFINE_TABLE, fixed(0) / AFFINE_TABLE, fold_101, torch.float32)
