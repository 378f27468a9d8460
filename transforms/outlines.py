"""Outlines family: fade the photo's texture to white and keep only its lines, drawn in black.

Every transform here draws ink (1 = paper, 0 = black line) over the photo faded towards white
by `level`; level 5 (1.0) is the pure line drawing, like model-vs-human's edge stimuli.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from robustbench_lite import PhotoRNG, register_transform
from transforms._common import blend, luma, per_image_quantiles, side_blur, sobel

FADES = (0.2, 0.4, 0.6, 0.8, 1.0)
FADE_DOC = "texture removed: the photo is faded towards white by this fraction (1.0 = lines only)"

CANNY_SIGMA = 0.008  # of the side: 1.8 px at 224
CANNY_HIGH_QUANTILE = 0.8
CANNY_LOW_RATIO = 0.4
SOBEL_SIGMA = 0.004
SOBEL_WHITE_QUANTILE = 0.98
CONTOUR_SIGMA = 0.01
CONTOUR_BANDS = 6
MIN_GRADIENT = 1e-3  # flat photos draw no lines


def _ink_over_faded(x: Tensor, ink: Tensor, level: float) -> Tensor:
    """The photo faded towards white by `level`, multiplied by ink (N, 1, H, W) in [0, 1]."""
    return blend(x, 1.0, level).mul_(ink)


def _shifted(t: Tensor, dy: int, dx: int) -> Tensor:
    """t[..., y + dy, x + dx], edge-replicated, for |dy|, |dx| <= 1."""
    padded = F.pad(t, (1, 1, 1, 1), mode="replicate")
    h, w = t.shape[-2:]
    return padded[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]


def _thin_ridges(magnitude: Tensor, gx: Tensor, gy: Tensor) -> Tensor:
    """Non-maximum suppression: keep pixels at least as strong as both neighbours across the edge."""
    angle = torch.atan2(gy, gx).remainder_(torch.pi)
    sector = torch.round(angle / (torch.pi / 4)).long().remainder_(4)
    keep = torch.zeros_like(magnitude, dtype=torch.bool)
    for index, (dy, dx) in enumerate(((0, 1), (1, 1), (1, 0), (1, -1))):
        ridge = (magnitude >= _shifted(magnitude, dy, dx)) & (magnitude >= _shifted(magnitude, -dy, -dx))
        keep |= ridge & (sector == index)
    return keep


def _dilate(mask: Tensor) -> Tensor:
    """3 x 3 binary dilation of a bool mask (N, 1, H, W): cheap byte ORs, no pooling."""
    h, w = mask.shape[-2:]
    padded = F.pad(mask.view(torch.uint8), (1, 1, 1, 1)).bool()
    rows = padded[..., :, 0:w] | padded[..., :, 1 : w + 1] | padded[..., :, 2 : w + 2]
    return rows[..., 0:h, :] | rows[..., 1 : h + 1, :] | rows[..., 2 : h + 2, :]


def _pool_step(edges: Tensor, weak: Tensor) -> Tensor:
    """One growth step as one 3 x 3 max-pool and one product on 0/1 halves (CUDA: two kernels, not eight)."""
    return F.max_pool2d(edges, 3, 1, 1).mul_(weak)


def _or_step(edges: Tensor, weak: Tensor) -> Tensor:
    """One growth step as byte ORs (faster than pooling on the CPU)."""
    return _dilate(edges) & weak


def _hysteresis(strong: Tensor, weak: Tensor) -> Tensor:
    """Grow strong edge pixels along 8-connected weak ones until nothing changes (a fixed point).

    Photos that reach their fixed point leave the batch, so the work follows each photo's longest
    chain, not the batch's; the mask is the same whichever step (binary, exact) a device uses.
    """
    step, dtype = (_pool_step, torch.float16) if strong.is_cuda else (_or_step, torch.bool)
    out = torch.zeros_like(strong)
    active = torch.arange(strong.shape[0])  # on the host: one device sync per check, no more
    edges, weak = strong.to(dtype), weak.to(dtype)
    while active.numel():
        before = edges
        for _ in range(8):  # several steps per check: the check syncs a GPU
            edges = step(edges, weak)
        changed = (edges != before).flatten(1).any(1).cpu()
        if bool(changed.all()):
            continue
        done, keep = (~changed).nonzero().squeeze(1), changed.nonzero().squeeze(1)
        out[active[done].to(out.device)] = edges[done.to(edges.device)].bool()
        keep_here = keep.to(edges.device)
        active, edges, weak = active[keep], edges[keep_here], weak[keep_here]
    return out


def canny(x: Tensor) -> Tensor:
    """Canny edges of the photo's luma, a bool mask (N, 1, H, W); thresholds per photo."""
    grey = side_blur(luma(x), CANNY_SIGMA)
    gx, gy = sobel(grey)
    magnitude = torch.hypot(gx, gy)
    ridges = _thin_ridges(magnitude, gx, gy)
    high = per_image_quantiles(magnitude, (CANNY_HIGH_QUANTILE,)).clamp_(min=MIN_GRADIENT)
    strong = ridges & (magnitude >= high)
    weak = ridges & (magnitude >= CANNY_LOW_RATIO * high)
    return _hysteresis(strong, weak)


@register_transform(
    "edges",
    family="outlines",
    severities=FADES,
    params={
        "level": FADE_DOC,
        "lines": "Canny edges of BT.601 luma, 1 px wide, black",
        "blur_sigma": f"{CANNY_SIGMA} of the side (Gaussian before Sobel)",
        "high_threshold": f"the photo's {CANNY_HIGH_QUANTILE:.0%} quantile of gradient magnitude "
        f"(at least {MIN_GRADIENT})",
        "low_threshold": f"{CANNY_LOW_RATIO} x high; weak pixels count if 8-connected to strong ones",
    },
)
def edges(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Canny line drawing: thin black edges on a photo faded to white (level 5 = edges only)."""
    return _ink_over_faded(x, 1.0 - canny(x).to(x.dtype), level)


@register_transform(
    "sobel",
    family="outlines",
    severities=FADES,
    params={
        "level": FADE_DOC,
        "lines": "Sobel gradient magnitude of BT.601 luma as grey ink (stronger gradient = darker)",
        "blur_sigma": f"{SOBEL_SIGMA} of the side (Gaussian before Sobel)",
        "black_point": f"the photo's {SOBEL_WHITE_QUANTILE:.0%} quantile of gradient magnitude "
        f"(at least {MIN_GRADIENT}) is drawn fully black",
    },
)
def sobel_sketch(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Soft pencil sketch: Sobel gradient magnitude drawn dark on a photo faded to white."""
    gx, gy = sobel(side_blur(luma(x), SOBEL_SIGMA))
    magnitude = torch.hypot(gx, gy)
    black = per_image_quantiles(magnitude, (SOBEL_WHITE_QUANTILE,)).clamp_(min=MIN_GRADIENT)
    ink = 1.0 - (magnitude / black).clamp_(max=1.0)
    return _ink_over_faded(x, ink, level)


@register_transform(
    "contours",
    family="outlines",
    severities=FADES,
    params={
        "level": FADE_DOC,
        "lines": f"iso-brightness contours: blurred BT.601 luma cut into {CONTOUR_BANDS} bands of "
        "equal area (per-photo quantiles); 1 px black line where the band changes",
        "blur_sigma": f"{CONTOUR_SIGMA} of the side (Gaussian before banding)",
    },
)
def contours(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Contour map of brightness: posterised luma bands outlined in black on a faded photo."""
    grey = side_blur(luma(x), CONTOUR_SIGMA)
    cuts = per_image_quantiles(grey, tuple(k / CONTOUR_BANDS for k in range(1, CONTOUR_BANDS)))
    band = (grey > cuts).sum(dim=1, keepdim=True, dtype=x.dtype)  # (N, 1, H, W) band index
    changes = (band != _shifted(band, 0, 1)) | (band != _shifted(band, 1, 0))
    return _ink_over_faded(x, 1.0 - changes.to(x.dtype), level)
