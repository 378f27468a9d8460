"""Shared machinery of the ten ImageNet-C-bar corruptions (Mintun, Kirillov and Xie, NeurIPS 2021,
"On Interaction Between Augmentations and Corruptions in Natural Corruption Robustness"; the release
facebookresearch/augmentation-corruption, MIT licence, `imagenet_c_bar/`): family `cbar`, named set
`imagenet-c-bar`, in `cbar_noise` and `cbar_optics`.

The level of each severity is the release's own severity value on its 0-10 scale, from its
`imagenet_c_bar.csv` (the file `make_imagenet_c_bar.py` and `test_c_bar.py` read), e.g.
caustic_refraction 2.35, 3.2, 4.9, 6.6, 9.15; the release turns it into parameters with
`float_parameter(level, maxval) = level * maxval / 10`, as here. The release draws at 224 px; its
sizes are fractions of the image side already (or, for the few given in pixels, scaled by side/224
here), so a level means the same at any input size. Each transform is split into a draw (every random
choice, from `rng`, one generator per photo) and a pure render from those draws, so the goldens
(tests/test_cbar_goldens.py) can render the release's own draws and compare pixel for pixel.

The release computes in 8 bits and cuts its result with `astype(np.uint8)` (truncation); ours stays
float in [0, 1], at most one level above the release's value.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from robustbench_lite import register_transform

FAMILY = "cbar"
BENCHMARK = "imagenet-c-bar"
REFERENCE_SIDE = 224

# The release's imagenet_c_bar.csv, verbatim: the five severities of each of the ten corruptions.
RELEASE_TABLE = {
    "caustic_refraction": (2.35, 3.2, 4.9, 6.6, 9.15),
    "inverse_sparkles": (1.0, 2.0, 4.0, 9.0, 10.0),
    "sparkles": (1.0, 2.0, 3.0, 5.0, 6.0),
    "perlin_noise": (4.6, 5.2, 5.8, 7.6, 8.8),
    "blue_noise_sample": (0.8, 1.6, 2.4, 4.0, 5.6),
    "plasma_noise": (4.75, 7.0, 8.5, 9.25, 10.0),
    "checkerboard_cutout": (2.0, 3.0, 4.0, 5.0, 6.0),
    "cocentric_sine_waves": (3.0, 5.0, 8.0, 9.0, 10.0),
    "single_frequency_greyscale": (1.0, 1.5, 2.0, 4.5, 5.0),
    "brownish_noise": (1.0, 2.0, 3.0, 4.0, 5.0),
}
LEVEL_DOC = "the release's severity on its 0-10 scale (imagenet_c_bar.csv); parameters = level * max / 10"


def cbar(name: str, **params: str):
    """Register `name` in the cbar family with the release's five levels and the common documentation."""
    params = {"level": LEVEL_DOC, "benchmark": BENCHMARK,
              "source": "facebookresearch/augmentation-corruption imagenet_c_bar/corrupt.py (MIT)", **params}
    return register_transform(name, family=FAMILY, severities=RELEASE_TABLE[name], params=params)


def float_parameter(level: float, maxval: float) -> float:
    """The release's `float_parameter`: `level` on the 0-10 scale as a fraction of `maxval`."""
    return float(level) * maxval / 10.0


def pixel_scale(x: Tensor) -> float:
    """How much bigger the photo is than the release's 224 px (for the few sizes it gives in pixels)."""
    return min(x.shape[-2:]) / REFERENCE_SIDE


def finish(result: Tensor) -> Tensor:
    """Float32 in [0, 1] (the release clips to 0..255 before its uint8 cut)."""
    return result.to(torch.float32).clamp_(0.0, 1.0)


def grid(h: int, w: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Row and column index of every pixel, float64, shapes (1, h, 1) and (1, 1, w)."""
    rows = torch.arange(h, device=device, dtype=torch.float64).view(1, h, 1)
    cols = torch.arange(w, device=device, dtype=torch.float64).view(1, 1, w)
    return rows, cols


def spectral_noise(phases: Tensor, power: Tensor, centre_phases: Tensor | None = None) -> Tensor:
    """The release's `gen_noise`: a random-phase spectrum of amplitude `power`, inverse-FFT'd, real
    part, divided by its standard deviation (numpy's, ddof 0). `phases` (N, H, W // 2) are mirrored
    to the right half (`phases[::-1, ::-1]`); for odd W, `centre_phases` (N, H // 2) fill the middle
    column as the release builds it. Returns (N, H, W) float64."""
    mirrored = torch.flip(phases, dims=(-2, -1))
    if centre_phases is None:
        full = torch.cat([phases, mirrored], dim=-1)
    else:
        zero = torch.zeros_like(centre_phases[:, :1])
        column = torch.cat([centre_phases, zero, torch.flip(centre_phases, dims=(-1,))], dim=-1)
        full = torch.cat([phases, column[..., None], mirrored], dim=-1)
    h, w = full.shape[-2:]
    spectrum = power.to(torch.float64) * torch.polar(torch.ones_like(full, dtype=torch.float64), full.double())
    spectrum = torch.roll(spectrum, shifts=(h // 2, w // 2), dims=(-2, -1))
    noise = torch.fft.ifft2(spectrum).real
    return noise / noise.std(dim=(-2, -1), correction=0, keepdim=True)


def radius_from_centre(h: int, w: int, device: torch.device) -> Tensor:
    """||(x, y) - side / 2|| per pixel, the release's spectral radius (side = H here, as its square)."""
    rows, cols = grid(h, w, device)
    return torch.sqrt((cols - w / 2) ** 2 + (rows - h / 2) ** 2)[0]


def draw_phases(rng, h: int, w: int) -> tuple[Tensor, Tensor | None]:
    """One noise field's phases, drawn as the release draws them: U(0, 2 pi) of (H, W // 2), then
    for odd W the centre column's (H // 2, 1)."""
    phases = rng.uniform(0.0, 2 * math.pi, h, w // 2).double()
    centre = rng.uniform(0.0, 2 * math.pi, h // 2).double() if w % 2 else None
    return phases, centre
