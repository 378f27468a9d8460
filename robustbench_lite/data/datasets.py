"""Datasets: ordered samples whose label is always the canonical ImageNet-1k index (-1 where a photo has none)."""
from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import UserError
from .imagenet import synset_to_index

IMAGE_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .jfif .png .bmp .gif .tif .tiff .webp .ppm .pgm .pbm .pnm .avif .qoi .tga".split()
)
VAL_GROUND_TRUTH = ("LOC_val_solution.csv", "ILSVRC2012_validation_ground_truth.txt")


@dataclass(frozen=True)
class Sample:
    """One photo: `id` is its path relative to the data root; `label` its ImageNet-1k index.

    model-vs-human's stimuli (`mvh:`) are labelled by a 16-class `category`; their `label` is the ImageNet
    class in the file name where there is one (the 12 parametric sets), else -1 (no ImageNet label).
    """

    id: str
    path: Path
    label: int
    category: str | None = None
    stimulus_condition: str | None = None  # the condition a stimulus was made under (`low-pass` sigma `3`, ...)
    border: int = 0  # px cropped from every side before preprocessing (ObjectNet's frame)


@dataclass
class Dataset:
    """Ordered samples plus what discovery noticed (ignored strays, files that are not photos)."""

    root: Path
    samples: list[Sample]
    ignored: list[dict] = field(default_factory=list)
    layout: str = "synset-folders"

    def __len__(self) -> int:
        return len(self.samples)


def is_image_file(path: Path) -> bool:
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


def _synset_folder_samples(root: Path) -> Dataset:
    index = synset_to_index()
    entries = sorted(os.scandir(root), key=lambda e: e.name)
    folders = [e for e in entries if not e.name.startswith(".") and e.is_dir()]
    if folders and all(e.name.isdigit() and int(e.name) < len(index) for e in folders):
        index = {str(i): i for i in range(len(index))}  # ImageNetV2's layout: folders named by class index
    unknown = [e.name for e in folders if e.name not in index]
    if unknown:
        below = [Path(e.path) for e in folders if e.name in unknown and _holds_synset_folders(Path(e.path), index)]
        if below:
            raise UserError(f"--data {root}: the synset folders are one level down; pass --data {below[0]}")
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise UserError(f"{root}: folders that are not ImageNet synsets: {shown} (expected names like n01440764)")
    ignored = [
        {"path": e.name, "reason": "stray file beside the synset folders"}
        for e in entries
        if not e.name.startswith(".") and not e.is_dir()
    ]
    samples = []
    for folder in folders:
        photos, strays = walk_photos(root, Path(folder.path))
        samples += [Sample(rel, path, index[folder.name]) for rel, path in photos]
        ignored += strays
    return Dataset(root, samples, ignored)


def walk_photos(root: Path, folder: Path) -> tuple[list[tuple[str, Path]], list[dict]]:
    """Every photo below `folder` as (path relative to `root`, path), in sorted order, and the files left out
    with their reason; hidden files and folders are skipped, folder links not followed (they could loop)."""
    photos, ignored = [], []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            ignored.append({"path": rel, "reason": "symbolic link to a folder, not followed (it could loop)"})
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if is_image_file(path):
                photos.append((rel, path))
            elif not name.startswith("."):
                ignored.append({"path": rel, "reason": "not an image file type"})
    return photos, ignored


def _read_val_ground_truth(root: Path) -> dict[str, int] | None:
    """Map flat val file stem -> label from Kaggle's CSV or the devkit's ground-truth file."""
    kaggle = root / "LOC_val_solution.csv"
    if kaggle.exists():
        index = synset_to_index()
        with kaggle.open(newline="") as f:
            return {row["ImageId"]: index[row["PredictionString"].split()[0]] for row in csv.DictReader(f)}
    devkit = root / "ILSVRC2012_validation_ground_truth.txt"
    if not devkit.exists():
        return None
    id_to_index = _devkit_id_to_index(devkit.parent / "meta.mat")
    return {
        f"ILSVRC2012_val_{i:08d}": id_to_index[int(line)]
        for i, line in enumerate(devkit.read_text().split(), start=1)
    }


def _devkit_id_to_index(meta_path: Path) -> dict[int, int]:
    """The devkit numbers classes by ILSVRC2012_ID (not synset order); its meta.mat maps them."""
    if not meta_path.exists():
        raise UserError(
            f"{meta_path.parent}: ILSVRC2012_validation_ground_truth.txt needs the devkit's meta.mat beside it "
            "(it maps ILSVRC2012_IDs to synsets); or use Kaggle's LOC_val_solution.csv"
        )
    from scipy.io import loadmat

    synsets = loadmat(str(meta_path), squeeze_me=True)["synsets"]
    index = synset_to_index()
    return {int(row["ILSVRC2012_ID"]): index[str(row["WNID"])] for row in synsets if str(row["WNID"]) in index}


def _flat_val_samples(root: Path, truth: dict[str, int]) -> Dataset:
    samples, ignored = [], []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith(".") or entry.name in VAL_GROUND_TRUTH:
            continue
        path = Path(entry.path)
        stem = path.stem
        if entry.is_file() and is_image_file(path) and stem in truth:
            samples.append(Sample(entry.name, path, truth[stem]))
        else:
            ignored.append({"path": entry.name, "reason": "no ground-truth label" if is_image_file(path) else "not an image file type"})
    return Dataset(root, samples, ignored, layout="imagenet-val-flat")


def open_dataset(spec: str | Path) -> Dataset:
    """A dataset from a folder path or a named dataset (`imagenet-sample`, downloaded on first use)."""
    from .download import NAMED_DATASETS, fetch_named_dataset

    text = str(spec)
    if text in NAMED_DATASETS:
        root = fetch_named_dataset(text)
        if NAMED_DATASETS[text].class_folders == "stimuli":
            return stimulus_dataset(root, NAMED_DATASETS[text].top)
    else:
        root = Path(text).expanduser()
    if text.startswith("mvh:") and not root.exists():
        known = ", ".join(n for n in NAMED_DATASETS if n.startswith("mvh:"))
        raise UserError(f"--data {text}: not one of model-vs-human's stimulus sets ({known})")
    if not root.exists():
        named = ", ".join(n for n in NAMED_DATASETS if not n.startswith("mvh:"))
        raise UserError(f"--data {text}: no such folder (give a folder of synset subfolders, a flat ImageNet val folder, "
                        f"one of: {named}, or mvh:NAME for model-vs-human's stimuli)")
    if not root.is_dir():
        raise UserError(f"--data {text}: not a folder")
    truth = _read_val_ground_truth(root)
    dataset = _flat_val_samples(root, truth) if truth is not None else _synset_folder_samples(root)
    if not dataset.samples:
        raise UserError(f"--data {text}: {_why_no_photos(root)}")
    return dataset


def stimulus_dataset(root: Path, experiment: str) -> Dataset:
    """An installed model-vs-human set (`<category>/<stimulus name>`): every photo's category from its folder,
    its condition parsed from its name (mvh_stimuli.parse_stimulus), files that are no stimulus ignored."""
    from .mvh_stimuli import parse_stimulus
    from .mvh_trials import fetch_human_trials

    index = synset_to_index()
    samples, ignored = [], []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        stimulus = parse_stimulus(experiment, rel)
        if stimulus is None or len(Path(rel).parts) != 2:
            ignored.append({"path": rel, "reason": f"not a {experiment} stimulus"})
            continue
        samples.append(Sample(rel, path, index.get(stimulus.synset or "", -1), stimulus.category, stimulus.condition))
    if not samples:
        raise UserError(f"--data mvh:{experiment}: no stimulus in {root} (remove the folder to download it anew)")
    fetch_human_trials(experiment)  # the trials to pair photo for photo with, fetched with the photos
    return Dataset(root, samples, ignored, layout=f"mvh-stimuli:{experiment}")


def _holds_synset_folders(folder: Path, index: dict) -> bool:
    try:
        return any(c.is_dir() and c.name in index for c in folder.iterdir())
    except OSError:
        return False


def _why_no_photos(root: Path) -> str:
    """What to pass instead, for a folder with no labelled photos: its parent, a sub-folder, or a label file."""
    index = synset_to_index()
    photos = [p for p in root.iterdir() if p.is_file() and is_image_file(p)]
    if photos and root.name in index:
        return (f"holds the photos of one class ({root.name}); pass the folder above it, --data {root.parent}, "
                "whose synset folders give the labels")
    if photos:
        return (f"{len(photos)} photo{'s' if len(photos) > 1 else ''} but no labels: beside flat ImageNet val photos put LOC_val_solution.csv "
                "(Kaggle) or ILSVRC2012_validation_ground_truth.txt with meta.mat (devkit), or sort them into "
                "synset folders (n01440764/...)")
    below = sorted(str(p) for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                   and _holds_synset_folders(p, index))
    if below:
        return f"no photos here, but {below[0]} holds synset folders; pass --data {below[0]}"
    return "no photos found (expected <synset>/<photo>.JPEG files, e.g. n01440764/photo.JPEG)"


def spread_over_classes(samples: Iterable[Sample]) -> list[Sample]:
    """Round-robin over classes (by label, photos by id): the first N spread as evenly as possible."""
    by_class: dict[tuple[str, int], list[Sample]] = {}  # a stimulus's class is its 16-class category
    for s in sorted(samples, key=lambda s: (s.category or "", s.label, s.id)):
        by_class.setdefault((s.category or "", s.label), []).append(s)
    queues = [by_class[k] for k in sorted(by_class)]
    ordered = []
    for rank in range(max((len(q) for q in queues), default=0)):
        ordered.extend(q[rank] for q in queues if rank < len(q))
    return ordered


def select_samples(dataset: Dataset, limit: int | None = None, classes: set[int] | None = None) -> list[Sample]:
    """The photos a run evaluates, in a fixed order independent of the seed.

    Without `limit` the order is the dataset's; with it, the first `limit` of a class round-robin.
    """
    samples = [s for s in dataset.samples if classes is None or s.label in classes]
    if classes is not None and not samples:
        raise UserError("--classes: none of those classes has a photo in --data")
    if limit is not None:
        if limit < 1:
            raise UserError("--limit must be at least 1")
        samples = sorted(spread_over_classes(samples)[:limit], key=lambda s: s.id)
    return samples


def fingerprint_samples(samples: Sequence) -> str:
    """Hash of the selected photos (id, label, byte size): the dataset fingerprint of a run."""
    h = hashlib.sha256()
    for s in samples:
        try:
            size = s.path.stat().st_size
        except OSError:
            size = -1
        h.update(f"{s.id}\x1f{s.label}\x1f{size}\n".encode())
    return h.hexdigest()[:16]
