"""Regenerate the README's preview figures from scikit-image sample photos (never ImageNet).

    python docs/make_previews.py                    # docs/img/preview_core.png
    python docs/make_previews.py --families -o DIR  # also one grid per built-in family in DIR
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data

from robustbench_lite.report.preview import preview_grid
from robustbench_lite.conditions.registry import all_transforms

PHOTOS = ("chelsea", "astronaut", "coffee")
CORE = ("greyscale", "edges", "border_shift", "elastic")
MAX_BYTES = 400_000


def sample_photo(name: str, size: int = 224) -> torch.Tensor:
    """A skimage sample photo as the models see it: Resize(size * 8/7, bicubic) + CenterCrop(size)."""
    picture = Image.fromarray(getattr(data, name)()).convert("RGB")
    short = round(size * 256 / 224)
    scale = short / min(picture.size)
    picture = picture.resize((round(picture.width * scale), round(picture.height * scale)), Image.BICUBIC)
    left, top = (picture.width - size) // 2, (picture.height - size) // 2
    picture = picture.crop((left, top, left + size, top + size))
    return torch.from_numpy(np.asarray(picture).copy()).permute(2, 0, 1).float().div(255)


def save_small_png(image: Image.Image, path: Path, max_bytes: int = MAX_BYTES) -> None:
    """Save as PNG, falling back to a 256-colour palette when the full-colour file is too big."""
    image.save(path, optimize=True)
    if path.stat().st_size > max_bytes:
        image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=Path(__file__).parent / "img")
    parser.add_argument("--families", action="store_true", help="one grid per family, three photos")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    chelsea = sample_photo("chelsea")[None]
    core = preview_grid(chelsea, list(CORE), image_ids=["chelsea"], tile=128)
    save_small_png(core, args.out / "preview_core.png")
    if args.families:
        photos = torch.stack([sample_photo(name) for name in PHOTOS])
        for family in sorted({spec.family for spec in all_transforms()}):
            specs = [spec for spec in all_transforms() if spec.family == family]
            grid = preview_grid(photos, specs, image_ids=list(PHOTOS))
            grid.save(args.out / f"{family}.png")
            print(args.out / f"{family}.png")


if __name__ == "__main__":
    main()
