"""A folder of unlabelled photos (flat or nested to any depth): samples with no label, for label-free estimates.

Folder names are never read as labels: a synset-folder dataset given here is just photos.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError
from .datasets import Dataset, Sample, is_image_file

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
    samples, ignored = [], []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            ignored.append({"path": rel, "reason": "symbolic link to a folder, not followed (it could loop)"})
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if is_image_file(path):
                samples.append(Sample(rel, path, NO_LABEL))
            elif not name.startswith("."):
                ignored.append({"path": rel, "reason": "not an image file type"})
    if not samples:
        raise UserError(f"{option} {root}: no photos found (looked for .jpg, .png, .webp and other image files "
                        "in it and its sub-folders)")
    return Dataset(root, sorted(samples, key=lambda s: s.id), ignored, layout="unlabelled")
