"""model-vs-human family: Geirhos et al.'s parametric stimuli with their exact parameters and levels.

After rgeirhos/generalisation-humans-DNNs code/image_manipulation.py (the stimuli of
model-vs-human): every level equals the condition_value of model-vs-human's human table, so each
condition meets one row of human data (robustbench_lite.analysis.humans). Greyscale is skimage's rgb2gray
(BT.709: 0.2125 R + 0.7154 G + 0.0721 B); all but mvh_greyscale at level 0 and false_colour act
on it and return it on three channels. Filter sigmas are pixels at 224 px and scale with the side.
Eidolon I-III are left out: the Eidolon toolbox's partially coherent disarray is not reproduced.
"""
from __future__ import annotations

import math
from functools import lru_cache
from importlib.resources import files

import numpy as np
import torch
from torch import Tensor

from robustbench_lite import PhotoRNG, register_transform
from transforms._common import aspect_scale, identity_grid, side, warp

FAMILY = "modelvshuman"
REFERENCE_SIDE = 224
BG_GREY = 0.4423  # mean pixel value of their photos: the filters' constant padding
LUMA_BT709 = (0.2125, 0.7154, 0.0721)
NOISE_CONTRAST = 0.3
TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter's default
GREY_NOTE = "skimage rgb2gray (BT.709) first, result on all three channels"

# get_opponent_colours: RGB -> LMS cones (M), cones -> DKL opponent axes (N), white point.
CONES = np.array([[0.1619982647, 0.208049264, 0.0389347448],
                  [0.0330275785, 0.2496504557, 0.0618343518],
                  [0.0015524055, 0.0198861001, 0.1890224274]])
OPPONENT = np.array([[9.27590805, 9.27590805, 0.0],
                     [7.86421647, -9.33587662, 0.0],
                     [-3.39709047, -3.39709047, 12.16230246]])
WHITE_CONES = np.array([0.20449114, 0.17225619, 0.10523047])


# --- helpers (not transforms) -------------------------------------------------------------


def grey(x: Tensor) -> Tensor:
    """skimage rgb2gray of an (N, 3, H, W) batch, shape (N, 1, H, W)."""
    r, g, b = x.unbind(1)
    return (LUMA_BT709[0] * r + LUMA_BT709[1] * g + LUMA_BT709[2] * b).unsqueeze(1)


def _three(g: Tensor) -> Tensor:
    return g.expand(-1, 3, -1, -1).contiguous()


def scaled_sigma(x: Tensor, sigma_224: float) -> float:
    """A sigma given in pixels at 224 px, for this batch's side."""
    return float(sigma_224) * side(x) / REFERENCE_SIDE


def _wide(x: Tensor) -> torch.dtype:
    return torch.float32 if x.device.type == "mps" else torch.float64


@lru_cache(maxsize=64)
def _gaussian_operator(length: int, sigma: float, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """scipy's truncated Gaussian as a (length, length) matrix, and the weight falling off the edge."""
    radius = int(TRUNCATE * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    offset = np.arange(length)[None, :] - np.arange(length)[:, None]
    matrix = np.where(np.abs(offset) <= radius, taps[np.clip(offset + radius, 0, 2 * radius)], 0.0)
    outside = 1.0 - matrix.sum(axis=1)
    return (torch.as_tensor(matrix, dtype=dtype, device=device),
            torch.as_tensor(outside, dtype=dtype, device=device))


def gaussian_constant(g: Tensor, sigma: float, cval: float = BG_GREY) -> Tensor:
    """scipy.ndimage.gaussian_filter(g, sigma, mode='constant', cval=cval) over the last two dims.

    Two matrix products in float64 (float32 on MPS), so TF32 settings cannot blur the result.
    """
    dtype = _wide(g)
    rows, off_rows = _gaussian_operator(g.shape[-2], sigma, g.device, dtype)
    cols, off_cols = _gaussian_operator(g.shape[-1], sigma, g.device, dtype)
    out = rows @ g.to(dtype) @ cols.T
    edge = off_rows[:, None] + off_cols[None, :] - off_rows[:, None] * off_cols[None, :]
    return out.add_(edge, alpha=cval).to(g.dtype)


def _centred_fft(g: Tensor) -> Tensor:
    return torch.fft.fftshift(torch.fft.fft2(g), dim=(-2, -1))


def _real_ifft(centred: Tensor) -> Tensor:
    return torch.fft.ifft2(torch.fft.ifftshift(centred, dim=(-2, -1))).real.clamp_(0.0, 1.0)


@lru_cache(maxsize=1)
def _spectrum_224() -> np.ndarray:
    with (files("robustbench_lite") / "human_data" / "mean_amplitude_spectrum.npy").open("rb") as f:
        return np.load(f, allow_pickle=False).astype(np.float64)


@lru_cache(maxsize=16)
def mean_spectrum(height: int, width: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """The bundled centred 224 x 224 mean amplitude spectrum on an (H, W) grid.

    Same frequencies in cycles per image (the centre cut out, or zeros around it), amplitudes
    scaled by H * W / 224^2: what the spectrum of the same photos upsampled would be.
    """
    base = _spectrum_224()
    out = np.zeros((height, width))
    rows = np.arange(height) - height // 2 + REFERENCE_SIDE // 2
    cols = np.arange(width) - width // 2 + REFERENCE_SIDE // 2
    keep_r, keep_c = (rows >= 0) & (rows < REFERENCE_SIDE), (cols >= 0) & (cols < REFERENCE_SIDE)
    out[np.ix_(keep_r, keep_c)] = base[np.ix_(rows[keep_r], cols[keep_c])]
    out *= height * width / REFERENCE_SIDE**2
    return torch.as_tensor(out, dtype=dtype, device=device)


@lru_cache(maxsize=1)
def _gamma_table() -> np.ndarray:
    with (files("robustbench_lite") / "human_data" / "monitor_gamma.npy").open("rb") as f:
        return np.load(f, allow_pickle=False).astype(np.float64).reshape(-1)


@lru_cache(maxsize=1)
def _opponent_affine() -> tuple[np.ndarray, np.ndarray]:
    """RGB (linear) -> RGB with L-M and S-(L+M) negated: a matrix and an offset."""
    flip = np.diag([1.0, -1.0, -1.0])
    back = np.linalg.inv(CONES) @ np.linalg.inv(OPPONENT) @ flip @ OPPONENT
    matrix = back @ CONES
    offset = np.linalg.inv(CONES) @ WHITE_CONES - back @ WHITE_CONES
    return matrix, offset


def opponent_colours(x: Tensor) -> Tensor:
    """false_colour(img, x_gamma_function): gamma in, opponent axes negated, nearest gamma out."""
    dtype = _wide(x)
    table = torch.as_tensor(_gamma_table(), dtype=dtype, device=x.device)
    position = x.to(dtype).mul(255.0)
    nearest = position.round()
    position = torch.where((position - nearest).abs() < 1e-3, nearest, position).clamp_(0, 255)
    low = position.floor().long().clamp_(max=254)
    frac = position - low
    linear = table[low] * (1 - frac) + table[low + 1] * frac  # exact on the 256 8-bit values
    matrix, offset = (torch.as_tensor(a, dtype=dtype, device=x.device) for a in _opponent_affine())
    mixed = torch.einsum("ij,njhw->nihw", matrix, linear) + offset[None, :, None, None]
    mixed = mixed.clamp_(0.0, 1.0)
    above = torch.searchsorted(table, mixed.contiguous()).clamp_(1, 255)
    below = above - 1
    pick_below = (mixed - table[below]) <= (table[above] - mixed)  # argmin takes the first of ties
    return torch.where(pick_below, below, above).to(x.dtype) / 255.0


def rotate_quarter(g: Tensor, turns: int) -> Tensor:
    """np.rot90 by `turns` (counter-clockwise); non-square images turn about the centre, mirrored."""
    turns %= 4
    height, width = g.shape[-2:]
    if turns % 2 == 0 or height == width:
        return torch.rot90(g, turns, dims=(-2, -1))
    grid = identity_grid(height, width, g.device)
    sx, sy = aspect_scale(height, width)
    u, v = grid[..., 0] * sx, grid[..., 1] * sy
    src_u, src_v = (-v, u) if turns == 1 else (v, -u)
    return warp(g, torch.stack((src_u / sx, src_v / sy), dim=-1))


# --- the transforms -----------------------------------------------------------------------


@register_transform(
    "mvh_greyscale",
    family=FAMILY,
    severities=(0, 1),
    params={"level": "0 = the colour photo (colour/cr), 1 = skimage rgb2gray, BT.709 (colour/bw)"},
)
def mvh_greyscale(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """model-vs-human's colour experiment: the photo, or its BT.709 greyscale (rgb2gray)."""
    return x.clone() if level == 0 else _three(grey(x))


@register_transform(
    "mvh_contrast",
    family=FAMILY,
    severities=(100, 50, 30, 15, 10, 5, 3, 1),
    params={"level": "contrast c in percent: (1 - c) / 2 + c * grey (grayscale_contrast)", "grey": GREY_NOTE},
)
def mvh_contrast(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Greyscale at reduced contrast around mid-grey 0.5 (model-vs-human's contrast)."""
    c = float(level) / 100.0
    return _three(grey(x).mul_(c).add_((1.0 - c) / 2.0))


@register_transform(
    "low_pass",
    family=FAMILY,
    severities=(0, 1, 3, 5, 7, 10, 15, 40),
    params={
        "level": "Gaussian sigma in px at 224 px (scales with the side); 0 = unfiltered greyscale",
        "filter": "scipy gaussian_filter, truncate 4, mode constant, cval 0.4423; clipped to [0, 1]",
        "grey": GREY_NOTE,
    },
)
def low_pass(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Gaussian low-pass of the greyscale photo, padded with their mean grey (low_pass_filter)."""
    g, sigma = grey(x), scaled_sigma(x, level)
    return _three(g if sigma <= 0 else gaussian_constant(g, sigma).clamp_(0.0, 1.0))


@register_transform(
    "high_pass",
    family=FAMILY,
    severities=(math.inf, 3, 1.5, 1, 0.7, 0.55, 0.45, 0.4),
    params={
        "level": "sigma in px at 224 px of the low-pass subtracted (scales with the side); inf = unfiltered greyscale",
        "formula": "grey - gaussian_filter(grey, constant, cval 0.4423), mean moved to 0.4423, clipped",
        "grey": GREY_NOTE,
    },
)
def high_pass(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Greyscale minus its Gaussian low-pass, re-centred on mean grey 0.4423 (high_pass_filter)."""
    g = grey(x)
    if math.isinf(level):
        return _three(g)
    detail = g - gaussian_constant(g, scaled_sigma(x, level))
    detail.add_(BG_GREY - detail.mean(dim=(-2, -1), keepdim=True))
    return _three(detail.clamp_(0.0, 1.0))


@register_transform(
    "phase_scramble",
    family=FAMILY,
    severities=(0, 30, 60, 90, 120, 150, 180),
    params={
        "level": "width w in degrees: phase shifts uniform in [-w, w)",
        "recipe": "scramble_phases: fftshift(fft2(grey)); (H-1)(W-1)//2 shifts added to the first half of "
        "the flattened [1:, 1:] block, subtracted from the second half in the same order, centre "
        "kept; inverse FFT, real part, clipped",
        "grey": GREY_NOTE,
        "random": "the phase shifts, per photo (theirs: unseeded np.random)",
    },
)
def phase_scramble(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Phase noise on the greyscale photo's Fourier spectrum, amplitudes kept (scramble_phases)."""
    height, width = x.shape[-2:]
    length = (height - 1) * (width - 1)
    half = length // 2
    shifts = (rng.rand(half).to(device=x.device, dtype=x.dtype) - 0.5) * (2.0 * float(level) / 180.0 * math.pi)
    field = x.new_zeros(x.shape[0], length)
    field[:, :half] = shifts
    field[:, half + 1 :] = -shifts[:, : length - half - 1]
    phase = x.new_zeros(x.shape[0], 1, height, width)
    phase[:, 0, 1:, 1:] = field.view(-1, height - 1, width - 1)
    spectrum = _centred_fft(grey(x)) * torch.polar(torch.ones_like(phase), phase)
    return _three(_real_ifft(spectrum))


@register_transform(
    "uniform_noise",
    family=FAMILY,
    severities=(0.0, 0.03, 0.05, 0.1, 0.2, 0.35, 0.6, 0.9),
    params={
        "level": "noise width w: per-pixel uniform noise in [-w, w), added at 30 % contrast, clipped",
        "contrast": "0.3 first: 0.35 + 0.3 * grey (so level 0 is a 30 %-contrast greyscale photo)",
        "grey": GREY_NOTE,
        "random": "the noise, one field per photo (theirs: np.random.RandomState(42) over the set)",
    },
)
def uniform_noise(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Greyscale at 30 % contrast plus uniform pixel noise (model-vs-human's uniform_noise)."""
    g = grey(x).mul_(NOISE_CONTRAST).add_((1.0 - NOISE_CONTRAST) / 2.0)
    noise = rng.uniform(-float(level), float(level), *x.shape[-2:]).to(device=x.device, dtype=x.dtype)
    return _three(g.add_(noise.unsqueeze(1)).clamp_(0.0, 1.0))


@register_transform(
    "power_equalisation",
    family=FAMILY,
    severities=(0, 1),
    params={
        "level": "0 = greyscale photo (condition 0), 1 = amplitude spectrum replaced by the mean (pow)",
        "spectrum": "bundled mean amplitude spectrum of the shared photos at 224 px (human_data); "
        "other sizes keep its cycles per image",
        "grey": GREY_NOTE,
    },
)
def power_equalisation(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Keep each frequency's phase, give it the mean amplitude of natural photos (equalise_power_spectrum)."""
    g = grey(x)
    if level == 0:
        return _three(g)
    spectrum = _centred_fft(g)
    amplitude = mean_spectrum(*x.shape[-2:], x.device, x.dtype)
    return _three(_real_ifft(torch.polar(amplitude.expand_as(g), torch.angle(spectrum))))


@register_transform(
    "false_colour",
    family=FAMILY,
    severities=(0, 1),
    params={
        "level": "0 = true colour (condition true), 1 = opponent colours (false)",
        "recipe": "their monitor gamma in, RGB -> LMS -> DKL, L-M and S-(L+M) negated, back, "
        "nearest gamma value out (8-bit steps)",
        "colour": "stays in colour: no greyscale",
    },
)
def false_colour(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Opponent colours: invert the two chromatic DKL axes, keep luminance (model-vs-human's false-colour)."""
    return x.clone() if level == 0 else opponent_colours(x)


@register_transform(
    "mvh_rotation",
    family=FAMILY,
    severities=(0, 90, 180, 270),
    params={"level": "degrees counter-clockwise (np.rot90; 270 = 90 clockwise) of the greyscale photo",
            "grey": GREY_NOTE},
)
def mvh_rotation(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """The greyscale photo turned by a multiple of 90 degrees (rotate90/180/270)."""
    return _three(rotate_quarter(grey(x), round(float(level) / 90.0)))
