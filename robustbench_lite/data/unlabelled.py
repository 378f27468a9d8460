"""A folder of unlabelled photos (flat or nested to any depth): samples with no label, for label-free estimates.

Folder names are never read as labels: a synset-folder dataset given here is just photos.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .datasets import Dataset, Sample, walk_photos

NO_LABEL = -1


def unlabelled_dataset(root: str | Path, option: str = "--data") -> Dataset:
    """Every photo under `root` in sorted path order, label -1; other files are listed as ignored.

    Folder links are not followed (they could loop); hidden files and folders are skipped.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise UserError(f"{option} {root}: no such folder (give a folder of photos, flat or in sub-folders)")
    if not root.is_dir():
        raise UserError(f"{option} {root}: not a folder (give the folder that holds the photos)")
    photos, ignored = walk_photos(root, root)
    samples = [Sample(rel, path, NO_LABEL) for rel, path in photos]
    if not samples:
        raise UserError(f"{option} {root}: no photos found (looked for .jpg, .png, .webp and other image files "
                        "in it and its sub-folders)")
    return Dataset(root, sorted(samples, key=lambda s: s.id), ignored, layout="unlabelled")
