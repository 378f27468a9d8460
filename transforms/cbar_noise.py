"""ImageNet-C-bar's noise and pattern corruptions: blue_noise_sample, brownish_noise, perlin_noise,
plasma_noise, single_frequency_greyscale and cocentric_sine_waves (the release's names and recipes,
`imagenet_c_bar/corrupt.py` of facebookresearch/augmentation-corruption, MIT; see _cbar_kit.py).

Each is `draw_NAME(rng, x, level)` (every random choice, per photo) and `render_NAME(x, level, **draws)`
(pure), so the goldens can render the release's own draws.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from robustbench_lite import PhotoRNG
from transforms._cbar_kit import (cbar, draw_phases, finish, float_parameter, grid, pixel_scale, radius_from_centre,
                                  spectral_noise)

# ------------------------------------------------------------------ spectral noise


def draw_blue_noise_sample(rng: PhotoRNG, x: Tensor, level: float) -> dict:
    h, w = x.shape[-2:]
    phases, centre = draw_phases(rng, h, w)
    return {"phases": phases, "centre": centre}


def render_blue_noise_sample(x: Tensor, level: float, phases: Tensor, centre: Tensor | None = None) -> Tensor:
    h, w = x.shape[-2:]
    power = radius_from_centre(h, w, x.device)
    noise = spectral_noise(phases.to(x.device), power, None if centre is None else centre.to(x.device))
    keep = noise > float_parameter(level, 3.0) - 2.5
    return finish(x * keep[:, None].to(x.dtype))


@cbar("blue_noise_sample", threshold="pixels where blue noise (power ~ frequency) exceeds level * 0.3 - 2.5 stdev "
      "are kept, the rest black")
def blue_noise_sample(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Black out the pixels where a blue-noise field falls below a threshold (a sparse sampling)."""
    return render_blue_noise_sample(x, level, **draw_blue_noise_sample(rng, x, level))


def draw_brownish_noise(rng: PhotoRNG, x: Tensor, level: float) -> dict:
    h, w = x.shape[-2:]
    fields = [draw_phases(rng, h, w) for _ in range(3)]  # one field per channel, drawn in order
    return {"phases": torch.stack([p for p, _ in fields], 1),
            "centre": torch.stack([c for _, c in fields], 1) if w % 2 else None}


def render_brownish_noise(x: Tensor, level: float, phases: Tensor, centre: Tensor | None = None) -> Tensor:
    n, c, h, w = x.shape
    rows, cols = grid(h, w, x.device)
    power = 1.0 / ((cols - w / 2) ** 2 + (rows - h / 2) ** 2 + 1.0)[0]
    flat = phases.to(x.device).flatten(0, 1)
    noise = spectral_noise(flat, power, None if centre is None else centre.to(x.device).flatten(0, 1))
    return finish(x + float_parameter(level, 64.0) / 255.0 * noise.view(n, c, h, w))


@cbar("brownish_noise", intensity="added noise of power ~ 1 / (frequency^2 + 1), stdev level * 6.4 / 255, "
      "independent per channel")
def brownish_noise(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Add low-frequency (brownish) noise, a field per channel."""
    return render_brownish_noise(x, level, **draw_brownish_noise(rng, x, level))


# ------------------------------------------------------------------ Perlin noise

PERLIN_B, PERLIN_N = 256, 16 * 256


def draw_perlin_noise(rng: PhotoRNG, x: Tensor, level: float) -> dict:
    """The generator's tables as the release's PerlinNoiseGenerator builds them: 514 gradients from
    integer draws, normalised, and a permutation of 0..255 by 256 swaps, both repeated past B."""
    b = PERLIN_B
    raw = rng.randint(0, 2**31, 2 * b + 2, 2).cpu().numpy()
    swaps = rng.randint(0, 2**31, b).cpu().numpy()
    perms, grads = [], []
    for photo_raw, photo_swaps in zip(raw, swaps):  # drawing a permutation: a short loop per photo
        g = (photo_raw % (2 * b) - b) / b
        norm = np.linalg.norm(g, axis=1, keepdims=True)  # 0 for a (0, 0) draw (1 in 262,144): the release
        g = np.divide(g, norm, out=np.zeros_like(g), where=norm > 0)  # divides by it and gets NaN; ours keeps 0
        p = np.arange(2 * b + 2)
        for i, draw in zip(range(b - 1, -1, -1), photo_swaps):
            j = draw % b
            p[i], p[j] = p[j], p[i]
        for i in range(b + 2):  # in order, as the release repeats them (its last two read repeated values)
            p[b + i], g[b + i] = p[i], g[i]
        perms.append(p)
        grads.append(g)
    return {"perm": torch.from_numpy(np.stack(perms)), "grad": torch.from_numpy(np.stack(grads))}


def _perlin(px: Tensor, py: Tensor, perm: Tensor, grad: Tensor) -> Tensor:
    """The release's 2-D `noise(x, y)` for coordinates px, py (N, H, W) and each photo's tables."""
    def lookup(table: Tensor, index: Tensor) -> Tensor:
        return torch.gather(table, 1, index.flatten(1)).view_as(index)

    b = PERLIN_B
    tx, ty = px + PERLIN_N, py + PERLIN_N
    bx0, by0 = torch.remainder(tx.trunc().long(), b), torch.remainder(ty.trunc().long(), b)
    bx1, by1 = torch.remainder(bx0 + 1, b), torch.remainder(by0 + 1, b)
    rx0, ry0 = torch.remainder(tx, 1.0), torch.remainder(ty, 1.0)
    rx1, ry1 = rx0 - 1.0, ry0 - 1.0
    i, j = lookup(perm, bx0), lookup(perm, bx1)
    b00, b10, b01, b11 = lookup(perm, i + by0), lookup(perm, j + by0), lookup(perm, i + by1), lookup(perm, j + by1)
    gx, gy = grad[..., 0], grad[..., 1]

    def dot(corner: Tensor, rx: Tensor, ry: Tensor) -> Tensor:
        return rx * lookup(gx, corner) + ry * lookup(gy, corner)

    sx, sy = rx0 * rx0 * (3.0 - 2.0 * rx0), ry0 * ry0 * (3.0 - 2.0 * ry0)
    u, v = dot(b00, rx0, ry0), dot(b10, rx1, ry0)
    a = u + sx * (v - u)
    u, v = dot(b01, rx0, ry1), dot(b11, rx1, ry1)
    bottom = u + sx * (v - u)
    return 1.5 * (a + sy * (bottom - a))


def render_perlin_noise(x: Tensor, level: float, perm: Tensor, grad: Tensor) -> Tensor:
    n, _, h, w = x.shape
    perm, grad = perm.to(x.device).long(), grad.to(x.device).double()
    rows, cols = grid(h, w, x.device)
    period = 32 * min(h, w) / 224  # the release's m = I / (32 * side / 224)
    # the release feeds the point [row, col] to noise(x, y): x is the row
    px, py = (rows / period).expand(n, h, w), (cols / period).expand(n, h, w)
    total, octave = torch.zeros_like(px), 1.0
    while octave <= 16.0:  # turbulence 16: octaves 1, 2, 4, 8, 16
        total += _perlin(octave * px, octave * py, perm, grad).abs() / octave
        octave *= 2
    field = (0.5 * total + 0.5).clamp(0.0, 1.0)[:, None]
    alpha = float_parameter(level, 0.5)
    return finish((1 - alpha) * x + alpha * field)


@cbar("perlin_noise", alpha="blend weight towards a Perlin turbulence field (5 octaves, period 32 px at 224): "
      "level * 0.05")
def perlin_noise(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Blend the photo with a grey Perlin turbulence field."""
    return render_perlin_noise(x, level, **draw_perlin_noise(rng, x, level))


# ------------------------------------------------------------------ plasma


def draw_plasma_noise(rng: PhotoRNG, x: Tensor, level: float) -> dict:
    n = x.shape[0]
    return {"time": rng.uniform(0.0, 6 * math.pi).double().view(n),
            "iterations": rng.randint(4, 7).view(n),
            "sharpness": rng.uniform(0.5, 1.0).double().view(n),
            "scale": rng.uniform(0.075, 0.2).double().view(n) * min(x.shape[-2:])}


def render_plasma_noise(x: Tensor, level: float, time: Tensor, iterations: Tensor, sharpness: Tensor,
                        scale: Tensor) -> Tensor:
    n, _, h, w = x.shape
    rows, cols = grid(h, w, x.device)
    view = lambda t: t.to(x.device).double().view(n, 1, 1)  # noqa: E731
    t, sharp, scale = view(time), view(sharpness), view(scale)
    px, py = (cols / scale).expand(n, h, w).clone(), (rows / scale).expand(n, h, w).clone()
    i0, i1, i2, i3 = (torch.full((n, 1, 1), v, dtype=torch.float64, device=x.device) for v in (1.0, 1.0, 1.0, 0.0))
    steps = iterations.to(x.device).view(n, 1, 1)
    for s in range(int(iterations.max())):
        active = steps > s  # photos with fewer iterations stop here
        r0 = torch.cos(py * i0 - i3 + t / i1) / i2
        r1 = torch.sin(px * i0 - i3 + t / i1) / i2
        r0, r1 = r0 - 0.3 * r1, r1 + 0.3 * r0
        px, py = torch.where(active, px + r0, px), torch.where(active, py + r1, py)
        new = (i0 * 1.93, i1 * 1.15, i2 * (2.25 - sharp), i3 * t * i1)
        i0, i1, i2, i3 = (torch.where(active, a, b) for a, b in zip(new, (i0, i1, i2, i3)))
    red, blue = torch.sin(px - t), torch.sin(py + t)
    green = torch.sin((px + py + torch.sin(t)) * 0.5)
    noise = torch.stack([red, green, blue], 1)
    intensity = float_parameter(level, 64.0)
    return finish((1 - intensity / 255.0) * x + intensity / 255.0 * noise)


@cbar("plasma_noise", intensity="a swirling colour plasma (4-6 iterations) added at level * 6.4 / 255, "
      "the photo faded by as much")
def plasma_noise(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Mix a swirling colour plasma into the photo."""
    return render_plasma_noise(x, level, **draw_plasma_noise(rng, x, level))


# ------------------------------------------------------------------ periodic patterns


def draw_single_frequency_greyscale(rng: PhotoRNG, x: Tensor, level: float) -> dict:
    n = x.shape[0]
    magnitude = rng.uniform(-math.pi, math.pi).double().view(n)
    other = (rng.uniform(-1.0, 1.0).double().view(n)) * magnitude.abs()
    swap = rng.rand().view(n) < 0.5  # the release's permutation of the two frequencies
    freq = torch.stack([torch.where(swap, other, magnitude), torch.where(swap, magnitude, other)], 1)
    return {"freq": freq, "phase": rng.uniform(0.0, 2 * math.pi).double().view(n)}


def render_single_frequency_greyscale(x: Tensor, level: float, freq: Tensor, phase: Tensor) -> Tensor:
    n, _, h, w = x.shape
    rows, cols = grid(h, w, x.device)
    freq = freq.to(x.device).double() / (min(h, w) / 224)  # radians per pixel at 224: the same waves at any size
    wave = torch.sin(cols * freq[:, 0, None, None] + rows * freq[:, 1, None, None] + phase.to(x.device).view(n, 1, 1))
    return finish(x + float_parameter(level, 196.0) / 255.0 * wave[:, None])


@cbar("single_frequency_greyscale", intensity="one plane sine wave of random direction, frequency and phase, "
      "amplitude level * 19.6 / 255")
def single_frequency_greyscale(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Add a single grey plane wave (one spatial frequency)."""
    return render_single_frequency_greyscale(x, level, **draw_single_frequency_greyscale(rng, x, level))


def draw_cocentric_sine_waves(rng: PhotoRNG, x: Tensor, level: float) -> dict:
    n, s = x.shape[0], min(x.shape[-2:])
    return {"offset": rng.uniform(0.0, 1.0, 2).double() * s, "freq": rng.uniform(0.0, 10.0).double().view(n),
            "amplitude": rng.uniform(0.0, 0.1).double().view(n) * s,
            "ring_width": rng.uniform(0.0, 0.1).double().view(n) * s}


def render_cocentric_sine_waves(x: Tensor, level: float, offset: Tensor, freq: Tensor, amplitude: Tensor,
                                ring_width: Tensor) -> Tensor:
    n, _, h, w = x.shape
    rows, cols = grid(h, w, x.device)
    view = lambda t: t.to(x.device).double().view(n, 1, 1)  # noqa: E731
    offset = offset.to(x.device).double()
    dx, dy = cols - offset[:, 0, None, None], rows - offset[:, 1, None, None]  # x is the column, as in the release
    angle = torch.atan2(dx, dy) * view(freq)
    width = view(ring_width)
    rings = torch.remainder(torch.sqrt(dx * dx + dy * dy) + torch.sin(angle) * view(amplitude), width) / width - 0.5
    return finish(x + float_parameter(level, 128.0) / 255.0 * rings[:, None])


@cbar("cocentric_sine_waves", intensity="wobbly concentric sawtooth rings around a random centre, amplitude "
      "level * 12.8 / 255 (the release's spelling)")
def cocentric_sine_waves(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Add wobbly concentric rings around a random centre."""
    return render_cocentric_sine_waves(x, level, **draw_cocentric_sine_waves(rng, x, level))
