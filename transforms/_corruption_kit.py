"""Shared machinery of the 19 ImageNet-C corruptions (Hendrycks & Dietterich 2019), which are
batched, seeded torch transforms in `corruptions_noise`, `corruptions_blur`, `corruptions_weather`
and `corruptions_digital`: the benchmark's 15 (params "benchmark": "imagenet-c", the named set
`imagenet-c`) and the 4 of its validation set, speckle_noise, gaussian_blur, spatter and saturate
("benchmark": "imagenet-c-extra").

Per-severity parameters are the published ones of the reference code (`imagecorruptions`
1.1.2, `imagecorruptions/corruptions.py`), written for 224 px photos; parameters that are
pixel sizes (kernel radii, blur sigmas, displacements, flake sizes) are scaled by side/224,
side = the shorter image side, so a severity means the same at 224 and 260 px. The level
is the severity number 1..5. Every random draw comes from `rng` (one generator per photo),
so a photo's result never depends on the batch it is in.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F
from torch import Tensor

from robustbench_lite import register_transform
from transforms._common import gaussian_blur, gaussian_kernel, side, truncated_radius

SEVERITIES = (1, 2, 3, 4, 5)
REFERENCE_SIDE = 224
CPU_CHUNK = 8  # photos per chunk of CPU pixel work in the heavier corruptions (see in_chunks)
LEVEL_DOC = "ImageNet-C severity 1..5 (published imagecorruptions 1.1.2 parameters)"
SCALED_DOC = "pixel sizes are given at 224 px and scaled by side/224"


def table_doc(values) -> str:
    return "; ".join(f"{i}: {v}" for i, v in enumerate(values, start=1))


BENCHMARK = "imagenet-c"  # the 15 corruptions that ImageNet-C's mCE averages
EXTRA = "imagenet-c-extra"  # the 4 of its validation set (speckle, gaussian blur, spatter, saturate)


def corruption(name: str, benchmark: str = BENCHMARK, version: str = "1", **params: str):
    """Register `name` in the corruptions family with the common level documentation; params
    "benchmark" says which ImageNet-C set it belongs to (BENCHMARK or EXTRA). `version` changes when
    the recipe's output does (runs of two versions never resume or merge into one another)."""
    if benchmark not in (BENCHMARK, EXTRA):
        raise ValueError(f"benchmark must be {BENCHMARK!r} or {EXTRA!r}, got {benchmark!r}")
    params = {"level": LEVEL_DOC, "benchmark": benchmark, **params}
    return register_transform(name, family="corruptions", severities=SEVERITIES, params=params, version=version)


def pick(table, level: float):
    """The table entry of severity `level` (1..5)."""
    index = int(round(level)) - 1
    if not 0 <= index < len(table):
        raise ValueError(f"severity must be 1..{len(table)}, got {level}")
    return table[index]


def scale(x: Tensor) -> float:
    """How much bigger the photo is than the reference's 224 px."""
    return side(x) / REFERENCE_SIDE


def finish(result: Tensor) -> Tensor:
    """Clamp a freshly computed result to [0, 1] in place (float32 as the input)."""
    return result.to(torch.float32).clamp_(0.0, 1.0)


def in_chunks(fn, *batched: Tensor) -> Tensor:
    """fn(*parts) over chunks of CPU_CHUNK photos on the CPU, where fresh big temporaries cost
    page faults that outweigh the arithmetic; the whole batch at once elsewhere."""
    if batched[0].device.type != "cpu" or len(batched[0]) <= CPU_CHUNK:
        return fn(*batched)
    return torch.cat([fn(*parts) for parts in zip(*(t.split(CPU_CHUNK) for t in batched))])


def threaded_map(fn, *columns) -> list:
    """map(fn, *columns) over torch's CPU threads, for per-photo work that releases the GIL
    (a serial sampler, a codec); results in order, so they never depend on scheduling."""
    threads = min(torch.get_num_threads(), len(columns[0]))
    if threads < 2:
        return list(map(fn, *columns))
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, *columns))


# ----------------------------------------------------------------- filtering


def scipy_taps(sigma: float, truncate: float = 4.0) -> tuple[float, ...]:
    """scipy.ndimage's Gaussian taps: radius int(truncate * sigma + 0.5)."""
    return gaussian_kernel(sigma, truncated_radius(sigma, truncate))


def skimage_gaussian(x: Tensor, sigma: float, truncate: float = 4.0) -> Tensor:
    """skimage.filters.gaussian (scipy taps, nearest edges) on every channel of every photo."""
    return gaussian_blur(x, sigma, truncated_radius(sigma, truncate), "replicate", rows_first=True)


def _fft_size(n: int) -> int:
    """The smallest size >= n with no prime factor above 5 (fast FFT)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def correlate(x: Tensor, dy: Tensor, dx: Tensor, weights: Tensor, mode: str) -> Tensor:
    """out[n, :, y, x] = sum_t weights[k, t] * x[n, :, y + dy[k, t], x + dx[k, t]] by FFT.

    Offsets are integers of shape (K, T) with K = N (a kernel per photo) or 1 (shared);
    edges follow `mode` ('replicate', 'reflect').
    """
    n, c, h, w = x.shape
    top, bottom = max(0, -int(dy.min())), max(0, int(dy.max()))
    left, right = max(0, -int(dx.min())), max(0, int(dx.max()))
    padded = F.pad(x, (left, right, top, bottom), mode=mode)
    size = (_fft_size(h + top + bottom), _fft_size(w + left + right))
    kernels = torch.zeros(dy.shape[0], *size, device=x.device)
    which = torch.arange(dy.shape[0], device=x.device)[:, None].expand_as(dy)
    kernels.index_put_(
        (which, (-dy) % size[0], (-dx) % size[1]), weights.expand_as(dy).contiguous(), accumulate=True
    )
    spectrum = torch.fft.rfft2(padded, s=size) * torch.fft.rfft2(kernels)[:, None]
    return torch.fft.irfft2(spectrum, s=size)[..., top : top + h, left : left + w]


def motion_kernel(radius: float, sigma: float) -> list[float]:
    """The reference's one-sided Gaussian tap weights, 2*radius+1 taps."""
    weights = [math.exp(-(t**2) / (2 * sigma**2)) for t in range(2 * max(int(round(radius)), 1) + 1)]
    return [wt / sum(weights) for wt in weights]


def line_blur(x: Tensor, taps: list[float], angles_deg: Tensor) -> Tensor:
    """The reference's `_motion_blur`: tap i samples the pixel ceil(i sin - .5), ceil(i cos - .5)
    away along each photo's angle, weighted taps[i], edges replicated."""
    theta = torch.deg2rad(angles_deg.to(x.device, torch.float32))[:, None]
    steps = torch.arange(len(taps), device=x.device, dtype=torch.float32)[None, :]
    dy = torch.ceil(steps * torch.sin(theta) - 0.5).long()
    dx = torch.ceil(steps * torch.cos(theta) - 0.5).long()
    weights = torch.tensor(taps, device=x.device)[None, :]
    return correlate(x, dy, dx, weights, "replicate")


def zoom_to(crop: Tensor, factor: float, h: int, w: int) -> Tensor:
    """scipy.ndimage.zoom (order 1) of `crop` by `factor`, top-left h x w kept."""
    size = (max(round(crop.shape[-2] * factor), h), max(round(crop.shape[-1] * factor), w))
    return F.interpolate(crop, size=size, mode="bilinear", align_corners=True)[..., :h, :w]
