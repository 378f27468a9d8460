"""Borders family: shrink the photo and frame it (flat, noisy, mirrored, or off-centre).

The level is the border width on each side as a fraction of that side, so the photo keeps
1 - 2 * level of its height and width (0.40 leaves a fifth of the side).
"""
from __future__ import annotations

import torch
from torch import Tensor

from robustbench_lite import PhotoRNG, register_transform
from transforms._common import mirror_index, resize

WIDTHS = (0.05, 0.10, 0.20, 0.30, 0.40)
WIDTH_DOC = "border width on each side as a fraction of the side (photo keeps 1 - 2 * level)"
SHRINK_DOC = "antialiased bilinear"


def _inner_size(length: int, width: float) -> int:
    return max(1, round(length * (1.0 - 2.0 * width)))


def _source_rows(length: int, inner: int, start: Tensor, mirror: bool) -> tuple[Tensor, Tensor]:
    """For each output position, the shrunk photo's row (N, length) and whether it is inside."""
    positions = torch.arange(length, device=start.device) - start[:, None]
    inside = (positions >= 0) & (positions < inner)
    if mirror:
        return mirror_index(positions, inner), torch.ones_like(inside)
    return positions.clamp(0, inner - 1), inside


def _frame(x: Tensor, width: float, canvas: Tensor | float, top: Tensor | None = None,
           left: Tensor | None = None, mirror: bool = False) -> Tensor:
    """Shrink `x` by `width` per side and place it at (top, left) (default: centred) on `canvas`.

    With `mirror` the canvas is ignored and the shrunk photo is mirrored outwards instead.
    """
    n, c, h, w = x.shape
    inner_h, inner_w = _inner_size(h, width), _inner_size(w, width)
    photo = resize(x, inner_h, inner_w)
    if top is None:
        top = torch.full((n,), (h - inner_h) // 2, device=x.device)
    if left is None:
        left = torch.full((n,), (w - inner_w) // 2, device=x.device)
    rows, rows_in = _source_rows(h, inner_h, top, mirror)
    cols, cols_in = _source_rows(w, inner_w, left, mirror)
    picked = photo.gather(2, rows[:, None, :, None].expand(n, c, h, inner_w))
    picked = picked.gather(3, cols[:, None, None, :].expand(n, c, h, w))
    if mirror:
        return picked
    inside = (rows_in[:, :, None] & cols_in[:, None, :]).unsqueeze(1)
    return torch.where(inside, picked, torch.as_tensor(canvas, dtype=x.dtype, device=x.device))


@register_transform(
    "border_black",
    family="borders",
    severities=WIDTHS,
    params={"level": WIDTH_DOC, "fill": "black (0)", "placement": "centred", "shrink": SHRINK_DOC},
)
def border_black(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Shrink the photo and frame it in a black border `level` of the side wide."""
    return _frame(x, level, 0.0)


@register_transform(
    "border_white",
    family="borders",
    severities=WIDTHS,
    params={"level": WIDTH_DOC, "fill": "white (1)", "placement": "centred", "shrink": SHRINK_DOC},
)
def border_white(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Shrink the photo and frame it in a white border `level` of the side wide."""
    return _frame(x, level, 1.0)


@register_transform(
    "border_noise",
    family="borders",
    severities=WIDTHS,
    params={
        "level": WIDTH_DOC,
        "fill": "uniform [0, 1) colour noise, independent per pixel and channel",
        "random": "the noise, drawn per photo",
        "placement": "centred",
        "shrink": SHRINK_DOC,
    },
)
def border_noise(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Shrink the photo and frame it in a border of random colour noise."""
    noise = rng.rand(*x.shape[1:]).to(device=x.device, dtype=x.dtype)
    return _frame(x, level, noise)


@register_transform(
    "border_shift",
    family="borders",
    severities=WIDTHS,
    params={
        "level": "the photo is shrunk as for the other borders (1 - 2 * level of the side)",
        "fill": "black (0)",
        "placement": "uniformly random whole-pixel position inside the frame (Azulay & Weiss 2019)",
        "random": "the top-left position, drawn per photo",
        "shrink": SHRINK_DOC,
    },
)
def border_shift(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Shrink the photo and place it at a random position on a black canvas."""
    h, w = x.shape[-2:]
    spare_h, spare_w = h - _inner_size(h, level), w - _inner_size(w, level)
    top = (rng.rand() * (spare_h + 1)).floor().long().to(x.device)
    left = (rng.rand() * (spare_w + 1)).floor().long().to(x.device)
    return _frame(x, level, 0.0, top, left)


@register_transform(
    "border_reflect",
    family="borders",
    severities=WIDTHS,
    params={
        "level": WIDTH_DOC,
        "fill": "the shrunk photo mirrored outwards (repeatedly, where the border is wider than it)",
        "placement": "centred",
        "shrink": SHRINK_DOC,
    },
)
def border_reflect(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Shrink the photo and fill the border with its mirror images."""
    return _frame(x, level, 0.0, mirror=True)
