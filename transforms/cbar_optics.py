"""ImageNet-C-bar's light and occlusion corruptions: caustic_refraction, sparkles, inverse_sparkles and
checkerboard_cutout (the release's names and recipes, `imagenet_c_bar/corrupt.py` of
facebookresearch/augmentation-corruption, MIT; see _cbar_kit.py). Each is `draw_NAME` (every random
choice, per photo) and a pure `render_NAME`, so the goldens can render the release's own draws.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from robustbench_lite import PhotoRNG
from transforms._cbar_kit import cbar, finish, float_parameter, grid, pixel_scale
from transforms._common import gaussian_kernel, separable_filter, truncated_radius

LUMA = (0.2126, 0.7152, 0.0722)  # the release's luma weights (Rec. 709)
GREY = 128 / 255  # what checkerboard_cutout paints

# ------------------------------------------------------------------ caustic refraction


def draw_caustic_refraction(rng: PhotoRNG, x: Tensor, level: float) -> dict:
    n = x.shape[0]
    return {"time": rng.uniform(0.5, 2.0).double().view(n),
            "size": rng.uniform(0.75, 1.25).double().view(n) * min(x.shape[-2:])}


def caustics(time: Tensor, size: Tensor, h: int, w: int, device: torch.device) -> Tensor:
    """The release's caustic_noise_kernel at every pixel: (N, H, W) float64 in [0, 1]."""
    n = time.shape[0]
    rows, cols = grid(h, w, device)
    size = size.to(device).double().view(n, 1, 1)
    p0 = torch.remainder(rows / size, 1.0) * 6.28318530718 - 250
    p1 = torch.remainder(cols / size, 1.0) * 6.28318530718 - 250
    i0, i1 = p0, p1
    c = torch.ones_like(p0)
    time = time.to(device).double().view(n, 1, 1)
    for k in range(5):
        t = time * (1.0 - 3.5 / (k + 1))
        i0, i1 = p0 + torch.cos(t - i0) + torch.sin(t + i1), p1 + torch.sin(t - i1) + torch.cos(t + i0)
        length = torch.sqrt((p0 / (torch.sin(i0 + t) / 0.005)) ** 2 + (p1 / (torch.cos(i1 + t) / 0.005)) ** 2)
        c = c + 1.0 / length
    c = 1.17 - (c / 5.0) ** 1.4
    return (c.abs() ** 8.0).clamp(0.0, 1.0)


def render_caustic_refraction(x: Tensor, level: float, time: Tensor, size: Tensor) -> Tensor:
    n, _, h, w = x.shape
    scale = pixel_scale(x)
    noise = caustics(time, size, h, w, x.device)[:, None]
    sigma = 1.0 * scale  # the release's softening: 1 px at 224
    noise = separable_filter(noise, *(gaussian_kernel(sigma, truncated_radius(sigma, 4.0)),) * 2, rows_first=True)
    luma = (noise * LUMA[0] + noise * LUMA[1] + noise * LUMA[2])[:, 0]  # its three equal channels, weighted
    padded = F.pad(luma, (1, 1, 1, 1))  # neighbours outside the photo are black
    north, south = padded[:, 1:-1, :-2], padded[:, 1:-1, 2:]  # the release's offsets (0, -1) and (0, 1)
    west, east = padded[:, :-2, 1:-1], padded[:, 2:, 1:-1]  # (-1, 0) and (1, 0)
    nx, ny = east - west, south - north
    norm = torch.sqrt(nx * nx + ny * ny + 1.0)
    nx, ny, nz = nx / norm, ny / norm, 1.0 / norm
    out_angle = torch.asin(torch.sin(torch.acos(nz)) / 4.0)  # eta 4
    radial = torch.sqrt(nx * nx + ny * ny).clamp_min(1e-300)
    # refract(e_z, n): cos(out) n + sin(out) o, o = n x (e_z x n) / |e_z x n|, in the release's frame
    lens_scale = float_parameter(level, 0.5 * min(h, w))
    d0 = (torch.cos(out_angle) * nx - torch.sin(out_angle) * nz * nx / radial) * lens_scale
    d1 = (torch.cos(out_angle) * ny - torch.sin(out_angle) * nz * ny / radial) * lens_scale
    flat = nz.abs() >= 1.0 - 1e-3  # the release's early return: no refraction
    d0 = torch.where(flat, torch.zeros_like(d0), torch.round(d0 * 1000) / 1000)
    d1 = torch.where(flat, torch.zeros_like(d1), torch.round(d1 * 1000) / 1000)
    rows, cols = grid(h, w, x.device)
    sample = torch.stack([(cols + d1) * 2 / max(w - 1, 1) - 1, (rows + d0) * 2 / max(h - 1, 1) - 1], -1)
    moved = F.grid_sample(x.double(), sample, mode="bilinear", padding_mode="zeros", align_corners=True)
    lighting = float_parameter(level, 2.0)
    light = ((north - south) * lighting + (east - west) * lighting)[:, None]
    return finish((moved + light).clamp(0.0, 1.0))


@cbar("caustic_refraction", lens="the photo seen through rippled water: a caustic pattern (softened by "
      "1 px at 224) bends each pixel by up to level * side / 20 and lights it by level * 0.2 times its slope")
def caustic_refraction(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Refract the photo through a caustic water surface, with its light pattern."""
    return render_caustic_refraction(x, level, **draw_caustic_refraction(rng, x, level))


# ------------------------------------------------------------------ sparkles

MAX_RAYS = 200  # the release draws 50..199 rays a sparkle


def _ray_gain(rows: Tensor, cols: Tensor, centre: Tensor, lengths: Tensor, rays: Tensor, exponent: float) -> Tensor:
    """The release's sparkle kernel's weight f at every pixel for one sparkle a photo: (N, H, W).

    `centre` (N, 2) is (row, col); `lengths` (N, MAX_RAYS), the first `rays` (N,) of them used."""
    n = centre.shape[0]
    dy, dx = rows - centre[:, 0, None, None], cols - centre[:, 1, None, None]
    dist2 = dy * dy + dx * dx
    angle = torch.atan2(dx, dy)  # arctan2(dp[1], dp[0]) with dp = (row, col) - centre
    count = rays.view(n, 1, 1).to(torch.float64)
    d = (angle + math.pi) / (2 * math.pi) * count
    i = d.floor()
    frac = d - i
    lo = torch.remainder(i.long(), rays.view(n, 1, 1))
    hi = torch.remainder(i.long() + 1, rays.view(n, 1, 1))
    a = torch.gather(lengths, 1, lo.flatten(1)).view_as(d)
    b = torch.gather(lengths, 1, hi.flatten(1)).view_as(d)
    length = a + frac * (b - a)
    gain = (length * length / (dist2 + 1e-4)) ** exponent
    return ((1.0 - (frac - 0.5) ** 2) * gain).clamp(0.0, 1.0)


def draw_sparkles(rng: PhotoRNG, x: Tensor, level: float) -> dict:
    h, w = x.shape[-2:]
    radius = float_parameter(level, 0.1) * min(h, w)
    centres = rng.uniform(0.0, 1.0, 5, 2).double() * torch.tensor([h, w], dtype=torch.float64, device=rng.device)
    rays = rng.randint(50, 200, 5)
    lengths = (radius + 0.25 * radius * rng.randn(5, MAX_RAYS).double()).clamp_min(1.0)
    return {"centres": centres, "rays": rays, "lengths": lengths}


def render_sparkles(x: Tensor, level: float, centres: Tensor, rays: Tensor, lengths: Tensor) -> Tensor:
    h, w = x.shape[-2:]
    rows, cols = grid(h, w, x.device)
    out = x.double()
    centres, rays, lengths = centres.to(x.device).double(), rays.to(x.device).long(), lengths.to(x.device).double()
    for k in range(centres.shape[1]):  # five sparkles, each drawn over the last (amount 50: exponent 1)
        f = _ray_gain(rows, cols, centres[:, k], lengths[:, k], rays[:, k], 1.0)[:, None]
        out = (out + f * (1.0 - out)).float().double()  # the release reads each pass back as float32
    return finish(out)


@cbar("sparkles", radius="five white star bursts of 50-199 rays, radius level * side / 100")
def sparkles(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Five white star-burst sparkles at random places."""
    return render_sparkles(x, level, **draw_sparkles(rng, x, level))


def draw_inverse_sparkles(rng: PhotoRNG, x: Tensor, level: float) -> dict:
    h, w = x.shape[-2:]
    radius = 0.25 * min(h, w)
    centre = rng.uniform(0.25, 0.75, 2).double() * torch.tensor([h, w], dtype=torch.float64, device=rng.device)
    rays = rng.randint(50, 200)
    lengths = radius + 0.25 * radius * rng.randn(MAX_RAYS).double()
    return {"centre": centre, "rays": rays, "lengths": lengths}


def render_inverse_sparkles(x: Tensor, level: float, centre: Tensor, rays: Tensor, lengths: Tensor) -> Tensor:
    h, w = x.shape[-2:]
    rows, cols = grid(h, w, x.device)
    exponent = float_parameter(level, 65.0) / 50.0  # (100 - amount) / 50, amount = 100 - level * 6.5
    f = _ray_gain(rows, cols, centre.to(x.device).double(), lengths.to(x.device).double(),
                  rays.to(x.device).long().view(-1), exponent)[:, None]
    return finish(1.0 + f * (x.double() - 1.0))


@cbar("inverse_sparkles", amount="the photo seen only through one star burst (radius side / 4) in a white "
      "field; its edge falls off with exponent level * 0.13")
def inverse_sparkles(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """White out the photo but for a star-shaped opening near its centre."""
    return render_inverse_sparkles(x, level, **draw_inverse_sparkles(rng, x, level))


# ------------------------------------------------------------------ checkerboard cutout

MAX_CELLS = 41  # int(4 * side // (0.1 * side)) is 39 or 40: the largest grid the release draws


def draw_checkerboard_cutout(rng: PhotoRNG, x: Tensor, level: float) -> dict:
    n, side = x.shape[0], min(x.shape[-2:])
    return {"angle": rng.uniform(0.0, 2 * math.pi).double().view(n),
            "scale": (rng.uniform(0.1, 0.25).double().view(n) * side).clamp_min(1.0),
            "cells": rng.rand(MAX_CELLS, MAX_CELLS).double()}


def render_checkerboard_cutout(x: Tensor, level: float, angle: Tensor, scale: Tensor, cells: Tensor) -> Tensor:
    """`cells` (N, M, M): the top-left G x G are the release's grid draws, G = int(4 * side // scale)."""
    n, _, h, w = x.shape
    rows, cols = grid(h, w, x.device)
    angle, scale = angle.to(x.device).double().view(n, 1, 1), scale.to(x.device).double().view(n, 1, 1)
    size = torch.floor(4 * min(h, w) / scale).long()  # G per photo
    nx = (torch.cos(angle) * rows + torch.sin(angle) * cols) / scale
    ny = (-torch.sin(angle) * rows + torch.cos(angle) * cols) / scale
    odd = torch.remainder(nx, 2.0).floor() != torch.remainder(ny, 2.0).floor()
    ix, iy = nx.trunc().long(), ny.trunc().long()
    ix, iy = torch.where(ix < 0, ix + size, ix), torch.where(iy < 0, iy + size, iy)  # numpy's negative indices
    flat = cells.to(x.device).flatten(1)
    cut = torch.gather(flat, 1, (ix * cells.shape[-1] + iy).flatten(1)).view(n, h, w) < float_parameter(level, 1.0)
    keep = odd | ~cut
    return finish(torch.where(keep[:, None], x, torch.full_like(x, GREY)))


@cbar("checkerboard_cutout", fraction="a rotated checkerboard (cells 10-25 % of the side) whose squares "
      "each turn grey with probability level / 10")
def checkerboard_cutout(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Grey out random squares of a rotated checkerboard."""
    return render_checkerboard_cutout(x, level, **draw_checkerboard_cutout(rng, x, level))
