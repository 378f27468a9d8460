"""Decoding photos into uint8 tensors at a model group's input geometry, exactly as timm does."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .datasets import Sample


@dataclass(frozen=True)
class Geometry:
    """What decoding depends on: models sharing it share decoded (and transformed) batches."""

    input_size: tuple[int, int]
    crop_pct: float
    interpolation: str
    crop_mode: str = "center"

    @property
    def key(self) -> str:
        h, w = self.input_size
        return f"{h}x{w}-crop{self.crop_pct:g}-{self.interpolation}-{self.crop_mode}"

    def pil_ops(self):
        """timm's eval transform for this geometry, minus ToTensor/Normalize (those act on tensors)."""
        from timm.data import create_transform

        pipeline = create_transform(
            input_size=(3, *self.input_size),
            interpolation=self.interpolation,
            crop_pct=self.crop_pct,
            crop_mode=self.crop_mode,
        )
        return [t for t in pipeline.transforms if type(t).__name__ not in ("ToTensor", "MaybeToTensor", "Normalize")]


RELEASE_GEOMETRY = Geometry((224, 224), 0.875, "bilinear")
"""ImageNet-C's release: PIL Resize(256) + CenterCrop(224), bilinear, before corrupting at 224 px."""

HIGH_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
ALPHA_MODES = ("RGBA", "LA", "PA")


class UndecodablePhoto(Exception):
    """A file that cannot be decoded whole: it is skipped with this reason, never grey-filled."""


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Composite transparent photos over white (a transparent pixel's hidden colour is arbitrary)."""
    rgba = img.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def _high_depth_to_rgb(img: Image.Image) -> Image.Image:
    """16/32-bit or float greyscale: scale the value range to 8 bits instead of PIL's clipping.

    Floats at most 1 are read as [0, 1]; larger values as 8- or 16-bit ranges; NaN becomes black.
    """
    with np.errstate(invalid="ignore"):
        array = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=np.inf, neginf=0.0)
    peak = float(array.max()) if array.size else 0.0
    if img.mode == "F" and peak <= 1.0:
        top = 1.0
    else:
        top = 65535.0 if img.mode.startswith("I;16") or peak > 255 else 255.0
    eight = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(eight).convert("RGB")


def not_a_file_reason(path: Path) -> str | None:
    """Why `path` cannot be read as a photo without opening it (a FIFO would block forever), or None."""
    if path.is_file():
        return "empty file" if path.stat().st_size == 0 else None
    if path.is_symlink() and not path.exists():
        return "broken symbolic link or symbolic-link loop"
    if path.is_dir():
        return "a folder, not a file"
    if path.exists():
        return "not a regular file (a FIFO, socket or device)"
    return "no such file"


def _to_rgb(img: Image.Image) -> Image.Image:
    """A loaded image upright and in RGB."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ALPHA_MODES or (img.mode == "P" and "transparency" in img.info):
        return _flatten_alpha(img)
    if img.mode in HIGH_DEPTH_MODES:
        return _high_depth_to_rgb(img)
    return img.convert("RGB")


def load_rgb(path: Path | str) -> Image.Image:
    """Open a photo as RGB: EXIF orientation applied; greyscale, CMYK, palette, alpha and 16-bit handled.

    Raises UndecodablePhoto, with the reason, for anything else: truncated, empty or non-image files,
    folders, FIFOs and broken links (never opened: they could block), and photos over Pillow's
    decompression-bomb limit (`PIL.Image.MAX_IMAGE_PIXELS`, about 89 megapixels).
    """
    path = Path(path)
    try:
        reason = not_a_file_reason(path)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    if reason:
        raise UndecodablePhoto(reason)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module="PIL")  # damaged metadata, pixels fine
            # from a file object, not a path: Pillow memory-maps raw TIFFs opened by path and then
            # returns those with EXIF orientation 5-8 unrotated and scrambled (Pillow 13)
            with open(path, "rb") as f, Image.open(f) as img:
                img.load()
                return _to_rgb(img)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise UndecodablePhoto(f"refused: {exc}") from None
    except UnidentifiedImageError:
        raise UndecodablePhoto("not an image Pillow can read") from None
    except MemoryError:
        raise UndecodablePhoto("too large to decode in the memory available") from None
    except Exception as exc:  # truncated data, corrupt headers or EXIF: Pillow raises many types
        message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise UndecodablePhoto(f"{type(exc).__name__}: {message}" if message else type(exc).__name__) from None


def to_uint8_chw(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> uint8 tensor (3, H, W), the exact bytes timm's ToTensor would divide by 255."""
    return torch.from_numpy(np.array(img, dtype=np.uint8, copy=True)).permute(2, 0, 1).contiguous()


class DecodeDataset(torch.utils.data.Dataset):
    """Samples decoded at one geometry; an undecodable photo yields its reason instead of pixels."""

    def __init__(self, samples: Sequence[Sample], geometry: Geometry):
        self.samples = list(samples)
        self.geometry = geometry
        self._ops = None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        if self._ops is None:
            self._ops = self.geometry.pil_ops()
        try:
            img = load_rgb(self.samples[i].path)
            if self.samples[i].border:  # a release's frame around the photo (ObjectNet)
                img = ImageOps.crop(img, border=self.samples[i].border)
            for op in self._ops:
                img = op(img)
            return i, to_uint8_chw(img), None
        except UndecodablePhoto as exc:
            return i, None, str(exc)
        except Exception as exc:  # a photo PIL opens but cannot resize: still one photo's problem
            return i, None, f"{type(exc).__name__}: {exc}"


def collate_decoded(items):
    """Stack decoded photos; keep undecodable ones aside as (index, reason)."""
    ok = [(i, t) for i, t, err in items if t is not None]
    failed = [(i, err) for i, t, err in items if t is None]
    indices = torch.tensor([i for i, _ in ok], dtype=torch.long)
    pixels = torch.stack([t for _, t in ok]) if ok else torch.empty(0, dtype=torch.uint8)
    return indices, pixels, failed
