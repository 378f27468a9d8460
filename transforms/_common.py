"""Shared helpers for the built-in transforms: colour, exact separable filters, sampling grids.

Everything is batched torch on the input's own device. Filters are computed as weighted sums of
shifted slices (not conv2d), so each output pixel is the same arithmetic whatever the batch
size or device library: a photo's result never depends on the photos batched with it.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

LUMA_BT601 = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights (what PIL's convert("L") uses)."""

WARP_PADDING = "reflection"
"""grid_sample padding for warps: mirror the photo at its edges, so a distortion never adds
black corners (that would be a border transform) and never invents content."""


# --- colour -------------------------------------------------------------------------------


def luma(x: Tensor) -> Tensor:
    """BT.601 luma of an (N, 3, H, W) batch, shape (N, 1, H, W)."""
    r, g, b = x.unbind(1)
    return (LUMA_BT601[0] * r + LUMA_BT601[1] * g + LUMA_BT601[2] * b).unsqueeze(1)


def grey3(x: Tensor) -> Tensor:
    """The batch as BT.601 greyscale on all three channels."""
    return luma(x).expand_as(x)


def blend(a: Tensor, b: Tensor | float, t: float) -> Tensor:
    """(1 - t) * a + t * b: t = 0 gives a, t = 1 gives b."""
    end = b if isinstance(b, Tensor) else a.new_tensor(b)
    return torch.lerp(a, end, float(t))


def side(x: Tensor) -> int:
    """The image side that size fractions refer to: min(H, W)."""
    return min(x.shape[-2], x.shape[-1])


# --- per-image statistics -----------------------------------------------------------------


def per_image_quantiles(t: Tensor, qs: tuple[float, ...]) -> Tensor:
    """Quantiles of each photo's values (any trailing shape), shape (N, len(qs), 1, 1).

    Nearest rank by selection, so it works for any batch size (torch.quantile caps the size).
    """
    flat = t.reshape(t.shape[0], -1)
    last = flat.shape[1] - 1
    picks = [flat.kthvalue(round(q * last) + 1, dim=1).values for q in qs]
    return torch.stack(picks, dim=1)[:, :, None, None]


# --- exact separable filtering ------------------------------------------------------------


def mirror_index(index: Tensor, length: int) -> Tensor:
    """Fold any integer positions into [0, length) by half-sample mirroring (..., 1, 0 | 0, 1, ...)."""
    period = 2 * length
    folded = torch.remainder(index, period)
    return torch.where(folded < length, folded, period - 1 - folded)


EDGE_MODES = ("symmetric", "reflect", "replicate", "constant")
"""How filters extend an image past its edges: "symmetric" mirrors about the edge itself
(..., 1, 0 | 0, 1, ...; any image size), the others are F.pad's: "reflect" mirrors about the
edge pixel (..., 2, 1 | 0, 1, ...), "replicate" repeats it, "constant" pads with zeros."""


@lru_cache(maxsize=256)
def _padded_positions(length: int, radius: int, device: torch.device) -> Tensor:
    return mirror_index(torch.arange(-radius, length + radius, device=device), length)


def pad_axis(x: Tensor, radius: int, dim: int, mode: str = "symmetric") -> Tensor:
    """`x` extended by `radius` values at both ends of `dim`, edges by `mode` (see EDGE_MODES)."""
    if mode == "symmetric":
        return x.index_select(dim, _padded_positions(x.shape[dim], radius, x.device))
    if mode not in EDGE_MODES:
        raise ValueError(f"edge mode must be one of {EDGE_MODES}, got {mode!r}")
    # F.pad lists (before, after) pairs from the last dim on; its edge modes pad a 4-D batch only
    # in its last two dims, so padding W alone is written (r, r, 0, 0).
    after = x.dim() - 1 - dim % x.dim()  # how many dims follow `dim`
    widths = [0, 0] * max(after + 1, min(2, x.dim() - 1))
    widths[2 * after : 2 * after + 2] = radius, radius
    return F.pad(x, tuple(widths), mode=mode)


def filter_axis(x: Tensor, kernel: Sequence[float], dim: int, mode: str = "symmetric") -> Tensor:
    """Correlate `x` along `dim` with an odd-length 1-D kernel, edges by `mode` (see EDGE_MODES)."""
    radius = len(kernel) // 2
    length = x.shape[dim]
    padded = pad_axis(x, radius, dim, mode)
    out = padded.narrow(dim, 0, length) * kernel[0]
    for tap, weight in enumerate(kernel[1:], start=1):
        if weight != 0.0:
            out.add_(padded.narrow(dim, tap, length), alpha=weight)
    return out


def separable_filter(
    x: Tensor, rows: Sequence[float], cols: Sequence[float], mode: str = "symmetric", rows_first: bool = False
) -> Tensor:
    """Filter the last two dims: `rows` runs down the columns (H), `cols` along the rows (W).

    Along W first unless `rows_first` (the two orders differ in float round-off only).
    """
    if rows_first:
        return filter_axis(filter_axis(x, rows, -2, mode), cols, -1, mode)
    return filter_axis(filter_axis(x, cols, -1, mode), rows, -2, mode)


@lru_cache(maxsize=256)
def gaussian_kernel(sigma: float, radius: int | None = None) -> tuple[float, ...]:
    """Normalised 1-D Gaussian taps from -radius to radius (default: out to 3 sigma)."""
    if radius is None:
        radius = max(1, math.ceil(3.0 * sigma))
    taps = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-radius, radius + 1)]
    total = sum(taps)
    return tuple(t / total for t in taps)


def truncated_radius(sigma: float, truncate: float) -> int:
    """scipy.ndimage's Gaussian radius for `truncate` standard deviations: int(truncate * sigma + 0.5)."""
    return max(int(truncate * sigma + 0.5), 1)


def gaussian_blur(
    x: Tensor, sigma: float, radius: int | None = None, mode: str = "symmetric", rows_first: bool = False
) -> Tensor:
    """Gaussian blur with standard deviation `sigma` in pixels (no-op for sigma <= 0).

    `radius` as for gaussian_kernel; `mode` and `rows_first` as for separable_filter.
    """
    if sigma <= 0:
        return x
    kernel = gaussian_kernel(float(sigma), radius)
    return separable_filter(x, kernel, kernel, mode, rows_first)


def side_blur(x: Tensor, fraction: float) -> Tensor:
    """Gaussian blur with sigma `fraction` of the side (min(H, W)), so it looks alike at any size."""
    return gaussian_blur(x, fraction * side(x))


SOBEL_SMOOTH = (0.25, 0.5, 0.25)
SOBEL_DIFF = (-0.5, 0.0, 0.5)


def sobel(x: Tensor) -> tuple[Tensor, Tensor]:
    """Horizontal and vertical Sobel derivatives (per unit of intensity per pixel)."""
    gx = separable_filter(x, SOBEL_SMOOTH, SOBEL_DIFF)
    gy = separable_filter(x, SOBEL_DIFF, SOBEL_SMOOTH)
    return gx, gy


# --- resizing and sampling grids ----------------------------------------------------------


def resize(x: Tensor, height: int, width: int) -> Tensor:
    """Antialiased bilinear resize, clamped to [0, 1]."""
    out = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return out.clamp_(0.0, 1.0)


@lru_cache(maxsize=64)
def identity_grid(height: int, width: int, device: torch.device) -> Tensor:
    """Pixel centres in grid_sample's normalised coordinates (align_corners=False), (1, H, W, 2)."""
    ys = (torch.arange(height, device=device, dtype=torch.float32) * 2 + 1) / height - 1
    xs = (torch.arange(width, device=device, dtype=torch.float32) * 2 + 1) / width - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), dim=-1).unsqueeze(0)


def aspect_scale(height: int, width: int) -> tuple[float, float]:
    """Half-widths of the normalised x and y axes in units of the side, so angles stay square."""
    short = min(height, width)
    return width / short, height / short


def warp(x: Tensor, grid: Tensor, padding_mode: str = WARP_PADDING, align_corners: bool = False) -> Tensor:
    """Sample `x` at `grid` ((N or 1, H, W, 2), x then y in [-1, 1]) bilinearly, clamped to [0, 1].

    align_corners=False by default, so the identity grid above reproduces the photo exactly.
    """
    grid = grid.to(dtype=x.dtype).expand(x.shape[0], -1, -1, -1)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=align_corners)
    return out.clamp_(0.0, 1.0)
