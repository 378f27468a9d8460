"""Distortions family: geometric warps, all through one sampling-grid mechanism.

Each transform builds a grid of source positions, (N or 1, H, W, 2) in grid_sample's
normalised coordinates, and `_common.warp` samples it bilinearly (align_corners=False,
reflection padding). Static grids are cached per (level, shape, device).
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from robustbench_lite import PhotoRNG, register_transform
from transforms._common import WARP_PADDING, aspect_scale, identity_grid, warp

PADDING_DOC = f"grid_sample bilinear, align_corners=False, padding_mode={WARP_PADDING!r}"
ELASTIC_CONTROL = 8
GRID_STEPS = 5
SWIRL_FALLOFF = 0.25


def _grid_for(x: Tensor, grid_of, *key) -> Tensor:
    """The cached static grid `grid_of(*key, height, width, device)` for the batch `x`."""
    return grid_of(*key, x.shape[-2], x.shape[-1], x.device)


def _base(x: Tensor) -> Tensor:
    return _grid_for(x, identity_grid)


def _per_axis(x: Tensor, dtype: torch.dtype) -> Tensor:
    """aspect_scale of the batch as a tensor (x then y)."""
    return torch.tensor(aspect_scale(x.shape[-2], x.shape[-1]), device=x.device, dtype=dtype)


def _random_sign(rng: PhotoRNG, x: Tensor) -> Tensor:
    """+1 or -1 per photo, shape (N,)."""
    return torch.where(rng.rand() < 0.5, -1.0, 1.0).to(device=x.device, dtype=x.dtype)


def _linear_warp(x: Tensor, matrices: Tensor) -> Tensor:
    """Warp by (N, 2, 2) output->source matrices acting on square (aspect-corrected) coordinates."""
    scale = _per_axis(x, x.dtype)
    square = _base(x) * scale
    source = torch.einsum("nij,nhwj->nhwi", matrices, square.expand(x.shape[0], -1, -1, -1))
    return warp(x, source / scale)


@register_transform(
    "rotate",
    family="distortions",
    severities=(10, 20, 30, 45, 60),
    params={
        "level": "rotation angle in degrees about the centre",
        "random": "direction (clockwise or anticlockwise), per photo",
        "sampling": PADDING_DOC,
    },
)
def rotate(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Rotate about the centre by `level` degrees, in a random direction; corners mirrored."""
    angle = math.radians(level) * _random_sign(rng, x)
    cos, sin = angle.cos(), angle.sin()
    matrices = torch.stack((torch.stack((cos, -sin), -1), torch.stack((sin, cos), -1)), -2)
    return _linear_warp(x, matrices)


@register_transform(
    "shear",
    family="distortions",
    severities=(0.1, 0.2, 0.3, 0.45, 0.6),
    params={
        "level": "horizontal shear factor: x moves by level * y (y = distance from the centre)",
        "random": "direction of the shear, per photo",
        "sampling": PADDING_DOC,
    },
)
def shear(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Shear horizontally about the centre, in a random direction; corners mirrored."""
    factor = level * _random_sign(rng, x)
    one, zero = torch.ones_like(factor), torch.zeros_like(factor)
    matrices = torch.stack((torch.stack((one, factor), -1), torch.stack((zero, one), -1)), -2)
    return _linear_warp(x, matrices)


@lru_cache(maxsize=64)
def _radial_grid(kind: str, strength: float, height: int, width: int, device: torch.device) -> Tensor:
    """Static lens grid; both kinds map the frame inside itself, so no padding is ever sampled."""
    grid = identity_grid(height, width, device)
    radius2 = grid.square().sum(-1, keepdim=True)  # per-axis normalised, so corners are at 2
    if kind == "barrel":  # centre magnified, corners kept: r' = r (1 + k r^2) / (1 + 2k)
        factor = (1 + strength * radius2) / (1 + 2 * strength)
    else:  # pincushion, edge midpoints kept: r' = r (1 + k) / (1 + k r^2)
        factor = (1 + strength) / (1 + strength * radius2)
    return grid * factor


@register_transform(
    "barrel",
    family="distortions",
    severities=(0.1, 0.2, 0.35, 0.5, 0.75),
    params={
        "level": "k in r_src = r (1 + k r^2) / (1 + 2k), r per-axis normalised (corners at sqrt 2)",
        "effect": "straight lines bow outwards; centre magnified, corners stay at the corners",
        "sampling": PADDING_DOC + " (never reached: the frame maps inside itself)",
    },
)
def barrel(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Barrel lens distortion: the centre bulges towards the viewer."""
    return warp(x, _grid_for(x, _radial_grid, "barrel", float(level)))


@register_transform(
    "pincushion",
    family="distortions",
    severities=(0.1, 0.2, 0.3, 0.4, 0.5),
    params={
        "level": "k in r_src = r (1 + k) / (1 + k r^2), r per-axis normalised (edge midpoints at 1)",
        "effect": "straight lines bow inwards; corners stretched, edge midpoints stay put",
        "sampling": PADDING_DOC + " (never reached: the frame maps inside itself)",
    },
)
def pincushion(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Pincushion lens distortion: the corners are pulled outwards."""
    return warp(x, _grid_for(x, _radial_grid, "pincushion", float(level)))


@lru_cache(maxsize=64)
def _swirl_grid(strength: float, height: int, width: int, device: torch.device) -> Tensor:
    scale = torch.tensor(aspect_scale(height, width), device=device)
    square = identity_grid(height, width, device) * scale
    radius = square.norm(dim=-1) / 2  # in units of the side
    angle = strength * torch.exp(-radius / SWIRL_FALLOFF)
    cos, sin = angle.cos(), angle.sin()
    sx, sy = square.unbind(-1)
    turned = torch.stack((cos * sx - sin * sy, sin * sx + cos * sy), -1)
    return turned / scale


@register_transform(
    "swirl",
    family="distortions",
    severities=(0.5, 1.0, 1.5, 2.0, 3.0),
    params={
        "level": "rotation at the centre in radians, falling off as exp(-r / falloff)",
        "falloff": f"{SWIRL_FALLOFF} of the side",
        "direction": "anticlockwise in the output (fixed)",
        "sampling": PADDING_DOC,
    },
)
def swirl(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Swirl about the centre: rotation strongest in the middle, fading towards the edges."""
    return warp(x, _grid_for(x, _swirl_grid, float(level)))


@register_transform(
    "elastic",
    family="distortions",
    severities=(0.005, 0.01, 0.015, 0.02, 0.03),
    params={
        "level": "standard deviation of the control displacements (x and y), as a fraction of the side",
        "smoothness": f"{ELASTIC_CONTROL} x {ELASTIC_CONTROL} Gaussian control displacements, "
        "bicubic-upsampled to every pixel",
        "random": "the control displacements, per photo",
        "sampling": PADDING_DOC,
    },
)
def elastic(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Elastic deformation: a smooth random displacement field, like a rubber sheet."""
    height, width = x.shape[-2:]
    control = rng.randn(2, ELASTIC_CONTROL, ELASTIC_CONTROL).to(device=x.device, dtype=x.dtype)
    field = F.interpolate(control, size=(height, width), mode="bicubic", align_corners=False)
    per_axis = _per_axis(x, x.dtype)
    shift = field.permute(0, 2, 3, 1) * (2 * level) / per_axis  # side fraction -> normalised units
    return warp(x, _base(x) + shift)


def _grid_axis(steps: Tensor, positions: Tensor) -> Tensor:
    """Piecewise-linear map of normalised positions (L,) through random step widths (N, S) -> (N, L)."""
    count = steps.shape[1]
    edges = [torch.zeros_like(steps[:, 0])]
    for i in range(count):  # a running sum by elementwise adds: cumsum's order varies with batch size
        edges.append(edges[-1] + steps[:, i])
    knots = torch.stack(edges, 1) / edges[-1][:, None] * 2 - 1  # (N, S + 1) cell edges in [-1, 1]
    where = ((positions + 1) / 2 * count).clamp(0, count - 1e-6)
    cell = where.floor().long()
    frac = where - cell
    left = knots[:, cell]
    right = knots[:, cell + 1]
    return left + frac * (right - left)


@register_transform(
    "grid",
    family="distortions",
    severities=(0.1, 0.2, 0.3, 0.45, 0.6),
    params={
        "level": "distort limit: each of the grid's cells is resized by a factor in [1 - level, 1 + level]",
        "cells": f"{GRID_STEPS} x {GRID_STEPS}, piecewise-linear between cell edges "
        "(albumentations' GridDistortion)",
        "random": "the cell widths and heights, per photo",
        "sampling": PADDING_DOC + " (never reached: the frame maps onto itself)",
    },
)
def grid(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Grid distortion: rows and columns of cells randomly stretched and squeezed."""
    height, width = x.shape[-2:]
    steps = (1 + rng.uniform(-level, level, 2, GRID_STEPS)).to(device=x.device, dtype=x.dtype)
    base = _base(x)
    xs = _grid_axis(steps[:, 0], base[0, 0, :, 0])  # (N, W)
    ys = _grid_axis(steps[:, 1], base[0, :, 0, 1])  # (N, H)
    n = x.shape[0]
    source = torch.stack((xs[:, None, :].expand(n, height, width), ys[:, :, None].expand(n, height, width)), -1)
    return warp(x, source)


def _homographies(source: Tensor, target: Tensor) -> Tensor:
    """(N, 3, 3) homographies taking the 4 `source` points (N, 4, 2) onto `target`, in float64."""
    u, v = source.unbind(-1)
    x, y = target.unbind(-1)
    one, zero = torch.ones_like(u), torch.zeros_like(u)
    rows_x = torch.stack((u, v, one, zero, zero, zero, -u * x, -v * x), -1)
    rows_y = torch.stack((zero, zero, zero, u, v, one, -u * y, -v * y), -1)
    system = torch.cat((rows_x, rows_y), 1)
    solution = torch.linalg.solve(system, torch.cat((x, y), 1))
    return torch.cat((solution, torch.ones_like(solution[:, :1])), 1).view(-1, 3, 3)


CORNERS = ((-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0))


@register_transform(
    "perspective",
    family="distortions",
    severities=(0.04, 0.08, 0.12, 0.16, 0.2),
    params={
        "level": "how far each of the four source corners moves, as a fraction of the side",
        "corners": "each moves by exactly `level` in a uniformly random direction; the photo is "
        "resampled so that quadrilateral fills the frame (no zoom on average)",
        "random": "the four directions, per photo",
        "sampling": PADDING_DOC + " (reached where a corner moves outwards)",
    },
)
def perspective(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Perspective warp: the photo's corners move a fixed distance in random directions."""
    corners = torch.tensor(CORNERS, device=x.device, dtype=torch.float64).expand(x.shape[0], -1, -1)
    direction = rng.uniform(0.0, 2 * math.pi, 4).to(device=x.device, dtype=torch.float64)
    moves = torch.stack((direction.cos(), direction.sin()), -1) * (2 * level) / _per_axis(x, torch.float64)
    matrices = _homographies(corners, corners + moves)
    base = _base(x).to(torch.float64)
    points = torch.cat((base, torch.ones_like(base[..., :1])), -1)[0]  # (H, W, 3)
    mapped = torch.einsum("nij,hwj->nhwi", matrices, points)
    return warp(x, (mapped[..., :2] / mapped[..., 2:]).to(x.dtype))
