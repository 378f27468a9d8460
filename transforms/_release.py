"""The released ImageNet-C's own recipe, for the `imagenet-c` corruption protocol.

The published ImageNet-C numbers measure the files that hendrycks/robustness made with
`ImageNet-C/create_c/make_imagenet_c.py`: every photo torchvision Resize(256) (PIL bilinear, its
default then) + CenterCrop(224), corrupted
at 224 x 224, the float result cut to 8 bits with `np.uint8` (truncation, not rounding), saved as
JPEG quality 85. Our registered corruptions follow the later package `imagecorruptions` 1.1.2
(re-parameterised for any size, some steps rewritten); this module gives, for each of the 19
names, the release's recipe where it differs and ours where the two agree:

    release_corruption(name, x, severity, rng) -> (N, 3, H, W) float32, every value k / 255

x is (N, 3, 224, 224) float in [0, 1] (8-bit photos / 255), severity 1..5, rng the photos'
PhotoRNG. The result is already cut to 8 bits as the release cut it (so round(result * 255)
gives its uint8 exactly: `as_uint8`); the JPEG-85 round trip is the caller's. The release
hard-codes 224 px: here its absolute pixel constants are used at any size (its own behaviour).

Calling it, per batch of 224 px photos x (uint8 / 255) with their ids:

    rng = PhotoRNG([photo_seed(run_seed, name, severity, id) for id in ids], device=x.device)
    y = release_corruption(name, x, severity, rng)      # float32, k / 255, (N, 3, 224, 224)
    jpeg_85_round_trip(as_uint8(y))                      # the caller's: PIL quality 85, 4:2:0

A photo's result does not depend on its batch (per-photo draws; float round-off between batch
sizes can move a value across a level boundary on rare pixels). Where the release equals ours,
the same rng gives truncate(ours).

Per corruption, the release compared with ours (`native`) at 224 px (also in RELEASE_NOTES):

- gaussian_noise, shot_noise, impulse_noise, speckle_noise, gaussian_blur, fog, spatter,
  brightness, contrast, saturate, jpeg_compression: the same recipe as ours (ours is used;
  random draws come from `rng`, so they are not the release's own numpy draws).
- defocus_blur: differs at severities 4 and 5. The release (and imagecorruptions) anti-aliases
  the normalised disk with cv2.GaussianBlur, whose edges are mirrored, and does not normalise
  again: where the disk reaches its grid's edge (radius 8 and 10) the kernel sums to 1.0130 and
  1.0108, so the photo also brightens by about 1 %. Ours blurs the disk with zero edges and
  normalises it to 1. Here the release's kernel.
- elastic_transform: differs. The release warps first by a random affine (three control points
  at the centre +- 74 px, each moved by U(-244 a, 244 a) px, OpenCV warpAffine, bilinear with its
  1/32 px coordinate grid, edges reflected about the edge pixel), then displaces every pixel by
  alpha * Gaussian(sigma)-smoothed U(-1, 1) noise, (alpha, sigma, a) = 244 x (2, 0.7, 0.1),
  (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02) (244 is the release's
  typo for 224, kept: it is what was published), scipy map_coordinates order 1, edges mirrored
  about the image edge. Ours (imagecorruptions'): no affine, alpha = 250 x (0.05 .. 0.12) on
  U(-0.005 H, 0.005 H) noise smoothed at 0.01 of the side, edges of the smoothing and the
  warp mirrored about the edge pixel. See benchmarks/README.md for the measured displacements.
- glass_blur: differs. The release sweeps the pixels from the bottom right, row by row, and
  each pixel (h, w) with delta < h, w <= 224 - delta takes the current value of the pixel
  (h + dy, w + dx), dx, dy = randint(-delta, delta) (delta - 1 at most; its "swap" assigns
  through numpy views, so only the one pixel changes), `iterations` times. Ours: one
  vectorised resampling with Gaussian offsets whose std was matched to imagecorruptions' SSIM.
- pixelate: differs. The release upscales with PIL BOX (ours and imagecorruptions: NEAREST);
  both are PIL's exact 8-bit resampling here.
- zoom_blur: differs slightly. The release trims each zoomed centre symmetrically
  ((zoomed - 224) // 2 from the top left), imagecorruptions and ours keep the top-left 224 px,
  a shift of up to 1 px for the zooms whose size is 226 px or more.
- motion_blur, snow: differ, not reproduced. The release used ImageMagick's MotionBlurImage
  (through Wand) for the streak; imagecorruptions replaced it by a numpy sum of shifted copies,
  which ours follows. ImageMagick is not a dependency here: ours is used.
- frost: differs, not reproduced. The release blends a random 224 px crop of one of five frost
  photos; those photos are not part of this package: our procedural frost is used.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from robustbench_lite import PhotoRNG
from transforms import corruptions_blur, corruptions_digital, corruptions_noise, corruptions_weather
from transforms._common import gaussian_kernel, mirror_index, separable_filter, truncated_radius
from transforms._corruption_kit import correlate, in_chunks, pick, skimage_gaussian

ELASTIC_RELEASE = tuple(  # alpha, sigma, affine wobble, all px; 244 as the release has it
    (244 * a, 244 * s, 244 * f)
    for a, s, f in ((2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02))
)
GLASS_RELEASE = corruptions_blur.GLASS_SIGMA_DELTA_ITER  # sigma, delta, iterations (the same table)
PIXELATE_RELEASE = corruptions_digital.PIXELATE_FACTOR
ZOOM_RELEASE = corruptions_blur.ZOOM_FACTORS
AFFINE_BITS, AFFINE_TABLE = 10, 32  # OpenCV warpAffine: coordinates in 1/1024, then the 1/32 px grid
TRUNCATION_SLACK = 1e-3  # of a level: float results this close below an integer count as it

OURS = {
    "gaussian_noise": corruptions_noise.gaussian_noise,
    "shot_noise": corruptions_noise.shot_noise,
    "impulse_noise": corruptions_noise.impulse_noise,
    "speckle_noise": corruptions_noise.speckle_noise,
    "defocus_blur": corruptions_blur.defocus_blur,
    "glass_blur": corruptions_blur.glass_blur,
    "motion_blur": corruptions_blur.motion_blur,
    "zoom_blur": corruptions_blur.zoom_blur,
    "gaussian_blur": corruptions_blur.gaussian_blur,
    "snow": corruptions_weather.snow,
    "frost": corruptions_weather.frost,
    "fog": corruptions_weather.fog,
    "spatter": corruptions_weather.spatter,
    "brightness": corruptions_digital.brightness,
    "contrast": corruptions_digital.contrast,
    "elastic_transform": corruptions_digital.elastic_transform,
    "pixelate": corruptions_digital.pixelate,
    "jpeg_compression": corruptions_digital.jpeg_compression,
    "saturate": corruptions_digital.saturate,
}
SAME = "same recipe as native (ours used)"
RELEASE_NOTES = {name: SAME for name in OURS} | {
    "elastic_transform": "release recipe: random affine + 244 x (alpha, sigma) on U(-1, 1) noise",
    "glass_blur": "release recipe: sequential sweep, randint(-delta, delta) offsets, copy not swap",
    "pixelate": "release recipe: PIL BOX down, PIL BOX up (native: NEAREST up)",
    "defocus_blur": "release recipe: its disk kernel, not normalised after anti-aliasing (sums 1.013, 1.011 at 4, 5)",
    "zoom_blur": "release recipe: zoomed centres trimmed symmetrically (native: top left)",
    "motion_blur": "native used: the release's ImageMagick motion blur is not reproduced",
    "snow": "native used: the release's ImageMagick motion blur is not reproduced",
    "frost": "native used (procedural): the release's frost photos are not packaged",
}


def release_corruption(name: str, x: Tensor, severity: int, rng: PhotoRNG) -> Tensor:
    """The released ImageNet-C's corruption `name` at `severity` (1..5) of the float batch x
    ((N, 3, H, W) in [0, 1]), cut to 8 bits as the release saved it: float32, values k / 255."""
    if name not in OURS:
        raise ValueError(f"unknown ImageNet-C corruption {name!r}; known: {', '.join(OURS)}")
    if int(severity) != severity or not 1 <= severity <= 5:
        raise ValueError(f"severity must be 1..5, got {severity!r}")
    release = {
        "defocus_blur": _defocus,
        "elastic_transform": _elastic,
        "glass_blur": _glass,
        "pixelate": _pixelate,
        "zoom_blur": _zoom,
    }.get(name)
    out = release(x, int(severity), rng) if release else OURS[name](x, float(severity), rng)
    return truncate(out)


def truncate(x: Tensor) -> Tensor:
    """np.uint8 of x * 255 (clipped to [0, 1]) as the release did, back as k / 255 float32."""
    levels = torch.floor(x.to(torch.float32).clamp(0.0, 1.0) * 255 + TRUNCATION_SLACK)
    return levels.div_(255)


def as_uint8(x: Tensor) -> Tensor:
    """A result of release_corruption as the release's uint8 values (N, 3, H, W)."""
    return torch.round(x * 255).to(torch.uint8)


# ------------------------------------------------------------------------- sampling


def _fold_101(index: Tensor, length: int) -> Tensor:
    """Integer positions mirrored about the edge pixels (OpenCV BORDER_REFLECT_101)."""
    if length == 1:
        return torch.zeros_like(index)
    period = 2 * length - 2
    folded = torch.remainder(index, period)
    return torch.where(folded < length, folded, period - folded)


def _bilinear(x: Tensor, ys: Tensor, xs: Tensor, fold, weights_dtype=torch.float64) -> Tensor:
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


# --------------------------------------------------------------------- elastic


def _smoothing_matrix(length: int, sigma: float, truncate: float, device) -> Tensor:
    """scipy.ndimage.gaussian_filter1d (mode 'reflect', any radius) along an axis as a matrix."""
    radius = truncated_radius(sigma, truncate)
    taps = torch.tensor(gaussian_kernel(sigma, radius), dtype=torch.float64, device=device)
    offsets = torch.arange(-radius, radius + 1, device=device)
    sources = mirror_index(torch.arange(length, device=device)[:, None] + offsets[None, :], length)
    matrix = torch.zeros(length, length, dtype=torch.float64, device=device)
    return matrix.scatter_add_(1, sources, taps.expand(length, -1).contiguous())


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


def _affine(x: Tensor, moves: Tensor) -> Tensor:
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

    return _bilinear(x, fixed(1) / AFFINE_TABLE, fixed(0) / AFFINE_TABLE, _fold_101, torch.float32)


def elastic_draws(severity: int, rng: PhotoRNG, h: int, w: int, device=None) -> tuple[Tensor, Tensor]:
    """The release elastic's random affine moves (N, 3, 2) and displacement field (N, 2, H, W)
    (dx, dy in px, float64 of its float32), drawn in the release's order from `rng`."""
    alpha, sigma, wobble = pick(ELASTIC_RELEASE, severity)
    moves = rng.uniform(-wobble, wobble, 3, 2).to(device)
    noise = rng.uniform(-1.0, 1.0, 2, h, w).to(device, torch.float64)  # dx, then dy
    smooth_h = _smoothing_matrix(h, sigma, 3.0, device)
    smooth_w = _smoothing_matrix(w, sigma, 3.0, device)
    return moves, (smooth_h @ noise @ smooth_w.T * alpha).to(torch.float32).to(torch.float64)


def _elastic(x: Tensor, severity: int, rng: PhotoRNG) -> Tensor:
    n, _, h, w = x.shape
    moves, field = elastic_draws(severity, rng, h, w, x.device)
    warped = _affine(x.to(torch.float32), moves)
    rows = torch.arange(h, dtype=torch.float64, device=x.device)[:, None]
    cols = torch.arange(w, dtype=torch.float64, device=x.device)
    return _bilinear(warped, rows + field[:, 1], cols + field[:, 0], mirror_index).clamp_(0.0, 1.0)


# ---------------------------------------------------------------- defocus and glass


def _defocus(x: Tensor, severity: int, rng: PhotoRNG) -> Tensor:
    """The release's disk: normalised on a grid of at least +-8 px, then cv2.GaussianBlur (edges
    mirrored about the edge value, BORDER_REFLECT_101) and used as it is; cv2.filter2D."""
    radius, alias = pick(corruptions_blur.DEFOCUS_RADIUS_ALIAS, severity)
    half = max(8, radius)
    t = torch.arange(-half, half + 1, device=x.device, dtype=torch.float32)
    disk = ((t[:, None] ** 2 + t[None, :] ** 2) <= radius**2).float()
    smooth = gaussian_kernel(alias, 1 if radius <= 8 else 2)
    kernel = separable_filter((disk / disk.sum())[None, None], smooth, smooth, "reflect", rows_first=True)[0, 0]
    offsets = torch.arange(-half, half + 1, device=x.device)
    dy, dx = offsets[:, None].expand_as(kernel).reshape(1, -1), offsets[None, :].expand_as(kernel).reshape(1, -1)
    weights = kernel.reshape(1, -1)
    return in_chunks(lambda part: correlate(part, dy, dx, weights, "reflect"), x.to(torch.float32)).clamp_(0.0, 1.0)



def _glass(x: Tensor, severity: int, rng: PhotoRNG) -> Tensor:
    sigma, delta, iterations = pick(GLASS_RELEASE, severity)
    n, c, h, w = x.shape
    levels = torch.floor(skimage_gaussian(x.to(torch.float32), sigma) * 255)  # np.uint8 of the blur
    rows = torch.arange(h - delta, delta, -1)
    cols = torch.arange(w - delta, delta, -1)
    draws = rng.randint(-delta, delta, iterations, len(rows), len(cols), 2).cpu()  # dx, dy per pixel
    sources = glass_sources(draws, h, w, delta)
    where = sources.to(x.device)[:, None, :].expand(n, c, h * w)
    shuffled = levels.reshape(n, c, h * w).gather(2, where).reshape(n, c, h, w)
    return skimage_gaussian(shuffled / 255, sigma).clamp_(0.0, 1.0)


def glass_sources(draws: Tensor, h: int, w: int, delta: int) -> Tensor:
    """(N, H * W) flat index of the blurred pixel that each pixel holds after the release's
    sweeps, from its draws (N, iterations, rows, cols, 2) (dx, dy of each visit in sweep order)."""
    rows = torch.arange(h - delta, delta, -1)
    cols = torch.arange(w - delta, delta, -1)
    targets = (rows[:, None] * w + cols[None, :]).expand(draws.shape[1], -1, -1).reshape(-1).tolist()
    sources = []
    for photo in draws:
        moved = (rows[:, None] + photo[..., 1]) * w + (cols[None, :] + photo[..., 0])
        index = list(range(h * w))
        for target, source in zip(targets, moved.reshape(-1).tolist()):
            index[target] = index[source]  # the pixel takes its neighbour's current value
        sources.append(index)
    return torch.tensor(sources)


# ----------------------------------------------------------- pixelate and zoom


def _pil_box_coefficients(in_size: int, out_size: int) -> Tensor:
    """Pillow's BOX resampling along one axis as an (out, in) matrix of its 8-bit fixed-point
    weights (22 fractional bits), for any scale."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    matrix = torch.zeros(out_size, in_size, dtype=torch.float64)
    for out in range(out_size):
        centre = (out + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        last = min(int(centre + support + 0.5), in_size)
        weights = [1.0 if -0.5 < (i + first - centre + 0.5) / filterscale <= 0.5 else 0.0 for i in range(last - first)]
        total = sum(weights)
        for i, weight in enumerate(weights):
            matrix[out, first + i] = math.trunc(0.5 + weight / total * (1 << 22)) if total else 0.0
    return matrix


def _pil_box_resize(levels: Tensor, height: int, width: int) -> Tensor:
    """Pillow's Image.resize(BOX) of 8-bit levels (N, C, H, W): horizontal pass, then vertical,
    each rounded and clipped to 8 bits as Pillow does."""

    def one_pass(t: Tensor, matrix: Tensor) -> Tensor:
        sums = torch.einsum("...i,oi->...o", t.to(torch.float64), matrix.to(t.device))
        return torch.floor((sums + (1 << 21)) / (1 << 22)).clamp_(0, 255)

    if width != levels.shape[-1]:
        levels = one_pass(levels, _pil_box_coefficients(levels.shape[-1], width))
    if height != levels.shape[-2]:
        levels = one_pass(levels.transpose(-1, -2), _pil_box_coefficients(levels.shape[-2], height)).transpose(-1, -2)
    return levels


def _pixelate(x: Tensor, severity: int, rng: PhotoRNG) -> Tensor:
    factor = pick(PIXELATE_RELEASE, severity)
    h, w = x.shape[-2:]
    levels = torch.round(x.to(torch.float32) * 255)
    small = _pil_box_resize(levels, int(h * factor), int(w * factor))  # the release: int(224 * c)
    return (_pil_box_resize(small, h, w) / 255).to(torch.float32)


def _zoom(x: Tensor, severity: int, rng: PhotoRNG) -> Tensor:
    """The mean of the photo (counted twice) and its centre zooms, each trimmed symmetrically."""
    h, w = x.shape[-2:]
    x = x.to(torch.float32)
    total = x * 2
    for factor in pick(ZOOM_RELEASE, severity)[1:]:
        ch, cw = math.ceil(h / factor), math.ceil(w / factor)
        top, left = (h - ch) // 2, (w - cw) // 2
        size = (round(ch * factor), round(cw * factor))  # scipy.ndimage.zoom's output size
        zoomed = F.interpolate(x[..., top : top + ch, left : left + cw], size=size, mode="bilinear", align_corners=True)
        trim_top, trim_left = (size[0] - h) // 2, (size[1] - w) // 2
        total += zoomed[..., trim_top : trim_top + h, trim_left : trim_left + w]
    return total.div_(len(pick(ZOOM_RELEASE, severity)) + 1).clamp_(0.0, 1.0)
