"""The 15 ImageNet-C corruptions (Hendrycks & Dietterich 2019) as batched, seeded torch transforms.

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

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from robustbench_lite.registry import register_transform
from robustbench_lite.rng import PhotoRNG

SEVERITIES = (1, 2, 3, 4, 5)
REFERENCE_SIDE = 224
CPU_CHUNK = 8  # photos per chunk of CPU pixel work in the heavier corruptions (see _in_chunks)
_LEVEL_DOC = "ImageNet-C severity 1..5 (published imagecorruptions 1.1.2 parameters)"
_SCALED_DOC = "pixel sizes are given at 224 px and scaled by side/224"

# Published parameter tables, one entry per severity 1..5.
GAUSSIAN_NOISE_STD = (0.08, 0.12, 0.18, 0.26, 0.38)
SHOT_NOISE_PHOTONS = (60, 25, 12, 5, 3)
IMPULSE_NOISE_AMOUNT = (0.03, 0.06, 0.09, 0.17, 0.27)
DEFOCUS_RADIUS_ALIAS = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))
GLASS_SIGMA_DELTA_ITER = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))
GLASS_SHUFFLE_STD = (1.5, 1.5, 3.75, 3.5, 4.5)  # matched to the reference: see glass_blur
MOTION_RADIUS_SIGMA = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))
ZOOM_FACTORS = tuple(  # the reference's np.arange(1, 1.11, .01) ... as numpy yields them
    tuple(round(1 + step * i, 2) for i in range(count))
    for step, count in ((0.01, 12), (0.01, 16), (0.02, 11), (0.02, 13), (0.03, 11))
)
SNOW_PARAMS = (  # loc, scale, zoom, threshold, blur radius, blur sigma, photo weight
    (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
    (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
    (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
    (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
    (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
)
FROST_WEIGHTS = ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))
FOG_STRENGTH_DECAY = ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))
BRIGHTNESS_SHIFT = (0.1, 0.2, 0.3, 0.4, 0.5)
CONTRAST_FACTOR = (0.4, 0.3, 0.2, 0.1, 0.05)
ELASTIC_ALPHA = (250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12)
PIXELATE_FACTOR = (0.6, 0.5, 0.4, 0.3, 0.25)
JPEG_QUALITY = (25, 18, 15, 10, 7)

# Procedural frost (the reference blends one of five frost photos; see `frost`).
FROST_TINT = (0.82, 0.94, 1.0)
FROST_NEEDLES_PER_PX = 0.025  # needles per px at 224
FROST_NEEDLE_LENGTH = 24  # longest needle, px at 224
FROST_NEEDLE_TWIST = 0.35  # radians of random deviation from the local flow
FROST_NEEDLE_SOFTNESS = 1.2  # blur sigma px at 224
FROST_FLOW_DECAY, FROST_FLOW_TURNS = 2.0, 2.0  # the smooth field that orients the needles
FROST_CLOUD_DECAY = 2.0
FROST_BASE, FROST_CLOUD_GAIN, FROST_NEEDLE_GAIN = 0.42, 0.35, 0.5


def _table_doc(values) -> str:
    return "; ".join(f"{i}: {v}" for i, v in enumerate(values, start=1))


def _corruption(name: str, **params: str):
    """Register `name` in the corruptions family with the common level documentation."""
    return register_transform(
        name, family="corruptions", severities=SEVERITIES, params={"level": _LEVEL_DOC, **params}
    )


def _pick(table, level: float):
    """The table entry of severity `level` (1..5)."""
    index = int(round(level)) - 1
    if not 0 <= index < len(table):
        raise ValueError(f"severity must be 1..{len(table)}, got {level}")
    return table[index]


def _scale(x: Tensor) -> float:
    """How much bigger the photo is than the reference's 224 px."""
    return min(x.shape[-2:]) / REFERENCE_SIDE


def _finish(result: Tensor) -> Tensor:
    """Clamp a freshly computed result to [0, 1] in place (float32 as the input)."""
    return result.to(torch.float32).clamp_(0.0, 1.0)


def _in_chunks(fn, *batched: Tensor) -> Tensor:
    """fn(*parts) over chunks of CPU_CHUNK photos on the CPU, where fresh big temporaries cost
    page faults that outweigh the arithmetic; the whole batch at once elsewhere."""
    if batched[0].device.type != "cpu" or len(batched[0]) <= CPU_CHUNK:
        return fn(*batched)
    return torch.cat([fn(*parts) for parts in zip(*(t.split(CPU_CHUNK) for t in batched))])


def _threaded_map(fn, *columns) -> list:
    """map(fn, *columns) over torch's CPU threads, for per-photo work that releases the GIL
    (a serial sampler, a codec); results in order, so they never depend on scheduling."""
    threads = min(torch.get_num_threads(), len(columns[0]))
    if threads < 2:
        return list(map(fn, *columns))
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, *columns))


# ----------------------------------------------------------------- filtering helpers


def _gaussian_taps(sigma: float, radius: int) -> list[float]:
    weights = [math.exp(-0.5 * (t / sigma) ** 2) for t in range(-radius, radius + 1)]
    return [wt / sum(weights) for wt in weights]


def _gaussian_kernel(sigma: float, truncate: float = 4.0) -> list[float]:
    """scipy's Gaussian taps: radius int(truncate * sigma + 0.5)."""
    return _gaussian_taps(sigma, max(int(truncate * sigma + 0.5), 1))


def _filter_axis(x: Tensor, taps: list[float], dim: int, mode: str) -> Tensor:
    """Centred 1-D filter along `dim` (-2 or -1) as a sum of shifted slices (conv2d is slow here)."""
    radius, size = len(taps) // 2, x.shape[dim]
    padded = F.pad(x, (0, 0, radius, radius) if dim == -2 else (radius, radius, 0, 0), mode=mode)
    out = padded.narrow(dim, 0, size) * taps[0]
    for i, weight in enumerate(taps[1:], start=1):
        out.add_(padded.narrow(dim, i, size), alpha=weight)
    return out


def _blur_separable(x: Tensor, taps_h: list[float], taps_w: list[float], mode: str) -> Tensor:
    """Separable filtering of every channel of (N, C, H, W), edges by `mode`."""
    return _filter_axis(_filter_axis(x, taps_h, -2, mode), taps_w, -1, mode)


def _gaussian_blur(x: Tensor, sigma: float, truncate: float = 4.0, mode: str = "replicate") -> Tensor:
    """skimage.filters.gaussian (scipy taps, nearest edges) on every channel of every photo."""
    taps = _gaussian_kernel(sigma, truncate)
    return _blur_separable(x, taps, taps, mode)


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


def _correlate(x: Tensor, dy: Tensor, dx: Tensor, weights: Tensor, mode: str) -> Tensor:
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


def _motion_kernel(radius: float, sigma: float) -> list[float]:
    """The reference's one-sided Gaussian tap weights, 2*radius+1 taps."""
    weights = [math.exp(-(t**2) / (2 * sigma**2)) for t in range(2 * max(int(round(radius)), 1) + 1)]
    return [wt / sum(weights) for wt in weights]


def _line_blur(x: Tensor, taps: list[float], angles_deg: Tensor) -> Tensor:
    """The reference's `_motion_blur`: tap i samples the pixel ceil(i sin - .5), ceil(i cos - .5)
    away along each photo's angle, weighted taps[i], edges replicated."""
    theta = torch.deg2rad(angles_deg.to(x.device, torch.float32))[:, None]
    steps = torch.arange(len(taps), device=x.device, dtype=torch.float32)[None, :]
    dy = torch.ceil(steps * torch.sin(theta) - 0.5).long()
    dx = torch.ceil(steps * torch.cos(theta) - 0.5).long()
    weights = torch.tensor(taps, device=x.device)[None, :]
    return _correlate(x, dy, dx, weights, "replicate")


def _clipped_zoom(x: Tensor, factor: float) -> Tensor:
    """Centre crop of 1/factor of the side, zoomed back (scipy zoom, order 1) and cut to size."""
    h, w = x.shape[-2:]
    ch, cw = math.ceil(h / factor), math.ceil(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    return _zoom_to(x[..., top : top + ch, left : left + cw], factor, h, w)


def _zoom_to(crop: Tensor, factor: float, h: int, w: int) -> Tensor:
    """scipy.ndimage.zoom (order 1) of `crop` by `factor`, top-left h x w kept."""
    size = (max(round(crop.shape[-2] * factor), h), max(round(crop.shape[-1] * factor), w))
    return F.interpolate(crop, size=size, mode="bilinear", align_corners=True)[..., :h, :w]


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
    s = _scale(x)
    fineness = 2.0 ** math.ceil(math.log2(max(s, 1.0) * detail) - 1e-9)
    extent_h, extent_w = math.ceil(h / s * fineness - 1e-6), math.ceil(w / s * fineness - 1e-6)
    mapsize = 2 ** math.ceil(math.log2(max(extent_h, extent_w, 2)))
    maps = _plasma_fractal(rng, mapsize, decay).to(x.device)[:, None, :extent_h, :extent_w]
    if maps.shape[-2:] == (h, w):
        return maps
    return F.interpolate(maps, size=(h, w), mode="bilinear", align_corners=False)


def _box_bins(in_size: int, out_size: int, device: torch.device) -> Tensor:
    """PIL's BOX downscale: the output pixel whose box holds each input pixel's centre."""
    centres = torch.arange(in_size, device=device, dtype=torch.float64) + 0.5
    return (torch.ceil(centres * out_size / in_size) - 1).clamp(0, out_size - 1).long()


def _box_downscale(x: Tensor, dim: int, out_size: int) -> Tensor:
    """Mean of the input pixels in each output box along `dim`."""
    bins = _box_bins(x.shape[dim], out_size, x.device)
    shape = list(x.shape)
    shape[dim] = out_size
    sums = torch.zeros(shape, device=x.device, dtype=x.dtype).index_add_(dim, bins, x)
    counts = torch.bincount(bins, minlength=out_size).to(x.dtype)
    view = [1] * x.dim()
    view[dim] = out_size
    return sums / counts.view(view)


# ----------------------------------------------------------------------- noise


@_corruption("gaussian_noise", std=f"std of additive Gaussian noise: {_table_doc(GAUSSIAN_NOISE_STD)}")
def gaussian_noise(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Additive Gaussian noise, independent per pixel and channel."""
    std = _pick(GAUSSIAN_NOISE_STD, level)
    return _finish(rng.randn(*x.shape[1:]).to(x.device).mul_(std).add_(x))


def _poisson(rng: PhotoRNG, rates: Tensor) -> Tensor:
    """rng.poisson, the photos' draws spread over torch's CPU threads (the CPU sampler is serial)."""
    if rates.device.type != "cpu":
        return rng.poisson(rates)
    return torch.stack(_threaded_map(lambda rate, g: torch.poisson(rate, generator=g), rates, rng.generators))


@_corruption(
    "shot_noise",
    photons=f"Poisson rate per unit intensity (fewer = noisier): {_table_doc(SHOT_NOISE_PHOTONS)}",
)
def shot_noise(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Poisson photon noise: each value becomes Poisson(x * photons) / photons."""
    photons = _pick(SHOT_NOISE_PHOTONS, level)
    return _finish(_poisson(rng, (x * photons).to(rng.device)).to(x.device) / photons)


@_corruption(
    "impulse_noise",
    amount=f"fraction of values set to 0 or 1 (half each): {_table_doc(IMPULSE_NOISE_AMOUNT)}",
    method=(
        "-ln(1 - amount) * values positions drawn with replacement, so each value is hit with "
        "probability `amount`; a hit value is 1 if any draw on it was salt, with the salt share "
        "set so that half the hit values end as 1 (skimage random_noise 's&p' in distribution)"
    ),
)
def impulse_noise(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Salt-and-pepper noise on independent channel values."""
    amount = _pick(IMPULSE_NOISE_AMOUNT, level)
    n, values = x.shape[0], x[0].numel()
    hits = -math.log1p(-amount)  # mean draws per value
    count = max(int(round(hits * values)), 1)
    salt_share = -math.log((1 + math.exp(-hits)) / 2) / hits
    where = rng.randint(0, values, count).to(x.device)
    salt = (rng.rand(count).to(x.device) < salt_share).to(x.dtype)
    out = x.reshape(n, values).clone().scatter_(1, where, 0.0)
    return out.scatter_reduce_(1, where, salt, reduce="amax").view_as(x)


# ------------------------------------------------------------------------ blur


def _defocus_kernel(radius: float, alias_sigma: float, s: float, device: torch.device) -> Tensor:
    """The reference's disk: an aliased disk on a grid of at least 8 px, smoothed by a
    Gaussian of 3 (5 for radii over 8) taps, sum 1; every size scaled by `s`."""
    half = math.ceil(max(8 * s, radius * s) - 1e-9)
    t = torch.arange(-half, half + 1, device=device, dtype=torch.float32)
    disk = ((t[:, None] ** 2 + t[None, :] ** 2) <= (radius * s) ** 2).float()
    smooth = _gaussian_taps(alias_sigma * s, max(round((1 if radius <= 8 else 2) * s), 1))
    disk = _blur_separable(disk[None, None], smooth, smooth, "constant")[0, 0]
    return disk / disk.sum()


@_corruption(
    "defocus_blur",
    radius_alias=f"disk radius px, anti-alias sigma px ({_SCALED_DOC}): {_table_doc(DEFOCUS_RADIUS_ALIAS)}",
)
def defocus_blur(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Out-of-focus lens: convolution with an anti-aliased disk."""
    radius, alias = _pick(DEFOCUS_RADIUS_ALIAS, level)
    s = _scale(x)
    kernel = _defocus_kernel(radius, alias, s, x.device)
    half = kernel.shape[-1] // 2
    t = torch.arange(-half, half + 1, device=x.device)
    dy, dx = t[:, None].expand_as(kernel), t[None, :].expand_as(kernel)
    dy, dx, weights = dy.reshape(1, -1), dx.reshape(1, -1), kernel.reshape(1, -1)
    return _finish(_in_chunks(lambda part: _correlate(part, dy, dx, weights, "reflect"), x))


@_corruption(
    "glass_blur",
    sigma_delta_iterations=(
        f"blur sigma px, largest swap px, sweeps ({_SCALED_DOC}): {_table_doc(GLASS_SIGMA_DELTA_ITER)}"
    ),
    shuffle_std=(
        "std px (at 224) of each pixel's random source offset, set so mean SSIM to the clean photo "
        "matches the reference's (its sweeps run with scikit-image's channel_axis fix) on 12 shared "
        f"photos: {_table_doc(GLASS_SHUFFLE_STD)}"
    ),
    method=(
        "blur, quantise to 8 bits, every pixel farther than `delta` from the border takes the value of "
        "the pixel round(N(0, shuffle_std)) away (one vectorised random resampling; the reference swaps "
        "pixels one by one in a sweep, a permutation whose moves chain), blur again"
    ),
)
def glass_blur(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Frosted glass: blur, locally shuffle pixels, blur again."""
    sigma, delta, _sweeps = _pick(GLASS_SIGMA_DELTA_ITER, level)
    s = _scale(x)
    spread, sigma, delta = _pick(GLASS_SHUFFLE_STD, level) * s, sigma * s, max(int(round(delta * s)), 1)
    x = torch.floor(_gaussian_blur(x, sigma) * 255) / 255
    n, c, h, w = x.shape
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    inside_rows, inside_cols = (rows > delta) & (rows <= h - delta), (cols > delta) & (cols <= w - delta)
    move = (rng.randn(2, h, w).to(x.device) * spread).round_().long()
    move *= inside_rows[:, None] & inside_cols[None, :]
    source = (rows[:, None] + move[:, 0]).clamp_(0, h - 1) * w + (cols[None, :] + move[:, 1]).clamp_(0, w - 1)
    source = source.reshape(n, 1, h * w).expand(n, c, h * w)
    x = x.reshape(n, c, h * w).gather(2, source).reshape(n, c, h, w)
    return _finish(_gaussian_blur(x, sigma))


@_corruption(
    "motion_blur",
    radius_sigma=(
        f"line of 2*radius+1 taps with one-sided Gaussian weights of this sigma ({_SCALED_DOC}): "
        f"{_table_doc(MOTION_RADIUS_SIGMA)}"
    ),
    angle="uniform in [-45, 45) degrees per photo from rng",
    method="the reference's shifted-copy sum (not ImageMagick's), done as one FFT convolution per photo",
)
def motion_blur(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Camera shake: a one-sided blur along a line at a random angle."""
    radius, sigma = _pick(MOTION_RADIUS_SIGMA, level)
    s = _scale(x)
    taps, angles = _motion_kernel(radius * s, sigma * s), rng.uniform(-45.0, 45.0)
    return _finish(_in_chunks(lambda part, part_angles: _line_blur(part, taps, part_angles), x, angles))


@_corruption(
    "zoom_blur",
    zoom_factors="mean of the photo and its centre zooms by 1.00..1.11 step .01; 1.00..1.15 step .01; "
    "1.00..1.20 step .02; 1.00..1.24 step .02; 1.00..1.30 step .03",
)
def zoom_blur(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Zooming camera: the mean of the photo and its zoomed-in centres."""
    factors = _pick(ZOOM_FACTORS, level)
    x = x.contiguous(memory_format=torch.channels_last)  # bilinear zooms run twice as fast
    total = x * 2  # the reference's list starts at zoom 1.00: the photo itself, counted twice
    for factor in factors[1:]:
        total += _clipped_zoom(x, factor)
    return _finish(total.div_(len(factors) + 1)).contiguous()


def _grey(x: Tensor) -> Tensor:
    """OpenCV's RGB2GRAY luma, (N, 1, H, W)."""
    n, c, h, w = x.shape
    luma = torch.tensor([[0.299, 0.587, 0.114]], device=x.device, dtype=x.dtype)
    return torch.matmul(luma, x.reshape(n, c, h * w)).view(n, 1, h, w)


@_corruption(
    "snow",
    params=(
        "flake noise mean, std, zoom (flake size px), threshold, streak radius px, streak sigma px, "
        f"photo weight ({_SCALED_DOC}): {_table_doc(SNOW_PARAMS)}"
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
    loc, spread, zoom, threshold, radius, sigma, weight = _pick(SNOW_PARAMS, level)
    s = _scale(x)
    h, w = x.shape[-2:]
    noise = loc + spread * rng.randn(1, math.ceil(h / (zoom * s)), math.ceil(w / (zoom * s))).to(x.device)
    angles = rng.uniform(-135.0, -45.0)
    taps = _motion_kernel(radius * s, sigma * s)

    def fall(photos: Tensor, noise: Tensor, angles: Tensor) -> Tensor:
        flakes = _zoom_to(noise, zoom * s, h, w)  # the reference's clipped zoom of the noise
        flakes = _line_blur(flakes.masked_fill_(flakes < threshold, 0.0).clamp_(max=1.0), taps, angles)
        whitened = torch.maximum(photos, _grey(photos).mul_(1.5).add_(0.5))
        return whitened.mul_(1 - weight).add_(photos, alpha=weight).add_(flakes + flakes.flip(-2, -1))

    return _finish(_in_chunks(fall, x, noise, angles))


def _frost_needles(x: Tensor, rng: PhotoRNG, flow: Tensor) -> Tensor:
    """(N, 1, H, W) ice needles: short bright segments of random place, length and glow, their
    angles following the smooth field `flow` (N, 1, H, W) so that neighbours grow alike."""
    n, _, h, w = x.shape
    s = _scale(x)
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
    s = _scale(x)
    clouds = _plasma_like(x, rng, FROST_CLOUD_DECAY, detail=0.5)
    flow = _plasma_like(x, rng, FROST_FLOW_DECAY, detail=0.125)
    needles = _gaussian_blur(_frost_needles(x, rng, flow), FROST_NEEDLE_SOFTNESS * s, truncate=2.0)
    value = FROST_BASE + FROST_CLOUD_GAIN * clouds + FROST_NEEDLE_GAIN * needles
    tint = torch.tensor(FROST_TINT, device=x.device).view(1, 3, 1, 1)
    return (value * tint).clamp(0.0, 1.0)


@_corruption(
    "frost",
    weights=f"photo weight, frost weight: {_table_doc(FROST_WEIGHTS)}",
    method=(
        "procedural frost: soft needles oriented by a smooth random field over plasma clouds, tinted "
        "blue-white; mean colour, mean SSIM and EfficientNet-Lite0 top-1 matched to the reference's "
        "on 50 shared photos. The reference blends a crop of one of five frost photos, which are "
        "not part of this package"
    ),
)
def frost(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Frost on the lens: the photo dimmed and a frost layer added."""
    photo_weight, frost_weight = _pick(FROST_WEIGHTS, level)
    return _finish(_frost_texture(x, rng).mul_(frost_weight).add_(x, alpha=photo_weight))


@_corruption(
    "fog",
    strength_decay=(
        "plasma-fractal weight, diamond-square roughness decay (smaller = rougher): "
        f"{_table_doc(FOG_STRENGTH_DECAY)}"
    ),
)
def fog(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Fog: a diamond-square plasma added, the result rescaled to the photo's maximum."""
    strength, decay = _pick(FOG_STRENGTH_DECAY, level)
    peak = x.amax(dim=(1, 2, 3), keepdim=True)
    fogged = x + strength * _plasma_like(x, rng, decay)
    return _finish(fogged * peak / (peak + strength))


# --------------------------------------------------------------------- digital


@_corruption("brightness", shift=f"added to HSV value, clipped at 1: {_table_doc(BRIGHTNESS_SHIFT)}")
def brightness(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Brighter: HSV value raised with hue and saturation kept."""
    shift = _pick(BRIGHTNESS_SHIFT, level)
    value = x.amax(dim=1, keepdim=True)
    raised = (value + shift).clamp(max=1.0)
    # With hue and saturation fixed, RGB is proportional to V (black stays grey).
    scaled = x * (raised / value.clamp_min(1e-12))
    return _finish(torch.where(value > 0, scaled, raised.expand_as(x)))


@_corruption("contrast", factor=f"distance to each channel's mean times: {_table_doc(CONTRAST_FACTOR)}")
def contrast(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Lower contrast: every channel pulled towards its mean."""
    factor = _pick(CONTRAST_FACTOR, level)
    means = x.mean(dim=(2, 3), keepdim=True)
    return _finish((x * factor).add_(means * (1 - factor)))


@_corruption(
    "elastic_transform",
    alpha=(
        "gain on uniform(-0.005 H, 0.005 H) noise smoothed by a Gaussian of sigma 0.01 of each side "
        f"(displacements in px at 224, {_SCALED_DOC}): {_table_doc(ELASTIC_ALPHA)}"
    ),
)
def elastic_transform(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Elastic warp: pixels moved along a smooth random displacement field."""
    alpha = _pick(ELASTIC_ALPHA, level)
    n, _, h, w = x.shape
    most = 0.005 * h
    noise = rng.uniform(-most, most, 2, h, w).to(x.device)
    taps_h, taps_w = _gaussian_kernel(0.01 * h, 3.0), _gaussian_kernel(0.01 * w, 3.0)
    cols = torch.arange(w, device=x.device, dtype=torch.float32)
    rows = torch.arange(h, device=x.device, dtype=torch.float32)[:, None]

    def warp(photos: Tensor, noise: Tensor) -> Tensor:
        field = _blur_separable(noise, taps_h, taps_w, "reflect").mul_(alpha * _scale(x))
        grid_x = (cols + field[:, 0]).mul_(2 / max(w - 1, 1)).sub_(1)
        grid_y = (rows + field[:, 1]).mul_(2 / max(h - 1, 1)).sub_(1)
        grid = torch.stack((grid_x, grid_y), dim=-1)
        return F.grid_sample(photos, grid, mode="bilinear", padding_mode="reflection", align_corners=True)

    return _finish(_in_chunks(warp, x, noise))


@_corruption(
    "pixelate",
    factor=f"BOX-downscaled to this fraction of the side, NEAREST back: {_table_doc(PIXELATE_FACTOR)}",
)
def pixelate(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Pixelation: PIL BOX downscale, NEAREST upscale."""
    factor = _pick(PIXELATE_FACTOR, level)
    h, w = x.shape[-2:]
    small = _box_downscale(x, -2, max(int(h * factor), 1))
    small = _finish(_box_downscale(small, -1, max(int(w * factor), 1)))
    return F.interpolate(small, size=(h, w), mode="nearest-exact")


def _jpeg_round_trip(photo: np.ndarray, out: np.ndarray, quality: int) -> None:
    """Write into `out` the (3, H, W) float photo after 8-bit rounding and a JPEG round trip.

    OpenCV's libjpeg gives the reference's Pillow bytes and pixels; with numpy around it, the
    whole round trip lets other threads run, so photos go through in parallel.
    """
    import cv2  # OpenCV comes with albumentations; imported here to keep the family light to load

    bgr = np.multiply(photo[::-1].transpose(1, 2, 0), 255, dtype=np.float32)
    np.clip(bgr + 0.5, 0, 255, out=bgr)
    _, encoded = cv2.imencode(".jpg", bgr.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)  # BGR
    np.multiply(decoded[..., ::-1].transpose(2, 0, 1), np.float32(1 / 255), out=out)


@_corruption(
    "jpeg_compression",
    quality=f"JPEG quality: {_table_doc(JPEG_QUALITY)}",
    device=(
        "the codec runs on the CPU (libjpeg via OpenCV, byte-identical to the reference's Pillow "
        "round trip): the batch leaves the device and comes back"
    ),
)
def jpeg_compression(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """JPEG artefacts: a real encode/decode round trip of every photo at a low quality."""
    quality = _pick(JPEG_QUALITY, level)
    photos = x.detach().cpu().numpy()
    out = np.empty(photos.shape, np.float32)
    _threaded_map(lambda photo, result: _jpeg_round_trip(photo, result, quality), photos, out)
    return torch.from_numpy(out).to(x.device)
