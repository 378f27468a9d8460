"""Natural-shift datasets as run conditions (`--shifts NAME[=DIR],...`): their photos and class protocols.

A shift is one condition of its own (its photos, no transform, severity 0) named after the dataset.
ImageNet-R and -A are scored on their fixed 200 classes (timm's lists), logits restricted to them,
and compared with the run's val photos of those classes scored the same way (`clean@r-classes`,
`clean@a-classes`); every other shift is scored on all 1,000 classes against `clean`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from ..conditions.keys import SHIFT_COUNTERPART, counterpart_of  # noqa: F401  (the analysis's names, re-exported)
from ..errors import UserError
from .datasets import Dataset, Sample, fingerprint_samples, open_dataset, select_samples

RESTRICTED_CLASSES = {"imagenet-r": "imagenet_r_synsets.txt", "imagenet-a": "imagenet_a_synsets.txt"}
"""Shifts with a fixed 200-class protocol: timm's list of their synsets (timm/data/_info/)."""


def shift_names() -> list[str]:
    """The named shift datasets `--shifts` accepts (download.py's, but the clean sample)."""
    from .download import NAMED_DATASETS

    return [name for name in NAMED_DATASETS if name != "imagenet-sample"] + ["objectnet"]  # objectnet: =DIR only


@lru_cache(maxsize=None)
def shift_classes(name: str) -> frozenset[int] | None:
    """The ImageNet-1k indices a shift is scored on: ImageNet-R/A's 200 (timm's lists), None for all 1,000."""
    if name not in RESTRICTED_CLASSES:
        return None
    from importlib.resources import files

    from .imagenet import synset_to_index

    index = synset_to_index()
    synsets = (files("timm") / "data" / "_info" / RESTRICTED_CLASSES[name]).read_text().split()
    return frozenset(index[s] for s in synsets)


def parse_shift_specs(value: str | Sequence[str] | None, option: str = "--shifts") -> list[str]:
    """`a,b=DIR` (or a list of such items) -> ["a", "b=DIR"]; an unknown or repeated name is a one-line UserError."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    specs, seen, names = [], set(), shift_names()
    for item in (i.strip() for i in items):
        if not item:
            continue
        name, eq, folder = item.partition("=")
        name = name.strip()
        if name not in names:
            raise UserError(f"{option}: unknown shift dataset {name!r}; use NAME or NAME=DIR, NAME one of: {', '.join(names)}")
        if eq and not folder.strip():
            raise UserError(f"{option} {item}: give the folder after '=' ({name}=DIR), or the name alone to download it")
        if name in seen:
            raise UserError(f"{option}: {name} is named twice")
        seen.add(name)
        specs.append(f"{name}={folder.strip()}" if eq else name)
    return specs


def split_spec(spec: str) -> tuple[str, str | None]:
    """`NAME=DIR` -> (NAME, DIR); `NAME` -> (NAME, None)."""
    name, eq, folder = spec.partition("=")
    return name, (folder if eq else None)


def absolute_spec(spec: str) -> str:
    """A spec with its folder made absolute (the manifest reproduces the run from anywhere)."""
    name, folder = split_spec(spec)
    return spec if folder is None else f"{name}={Path(folder).expanduser().resolve()}"


@dataclass
class Shift:
    """One shift dataset of a run: its photos (ids prefixed by its name) and its class protocol."""

    name: str
    root: Path
    samples: list[Sample]
    classes: frozenset[int] | None  # the 200 classes scored (ImageNet-R/A), None for all 1,000
    ignored: list[dict] = field(default_factory=list)
    merged: tuple[tuple[int, ...], ...] | None = None  # ObjectNet: ImageNet classes scored as one (objectnet.py)

    @property
    def counterpart(self) -> str:
        return counterpart_of(self.name)

    def describe(self) -> dict:
        """The manifest's entry for this shift."""
        return {"root": str(self.root), "n_samples": len(self.samples), "n_classes": len({s.label for s in self.samples}),
                "fingerprint": fingerprint_samples(self.samples), "counterpart": self.counterpart,
                "classes": len(self.classes) if self.classes is not None else 1000}


def open_shift(spec: str, limit: int | None = None, classes: set[int] | None = None) -> Shift:
    """A shift's photos: NAME from the cache (downloaded on first use), NAME=DIR from a folder in the
    release layout (synset folders, or V2's class-index folders 0-999); --limit and --classes apply."""
    name, folder = split_spec(spec)
    if name == "objectnet":
        return _open_objectnet(spec, folder, limit, classes)
    if folder is not None:
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise UserError(f"--shifts {spec}: {'not a folder' if path.exists() else 'no such folder'} "
                            f"(give a folder of class folders, or {name} alone to download it)")
    source = name if folder is None else folder
    try:
        dataset = open_dataset(source)
    except UserError as exc:
        raise UserError(f"--shifts {spec}: {str(exc).removeprefix(f'--data {source}: ')}") from None
    fixed = shift_classes(name)
    if fixed is not None:
        outside = sorted({s.id.split("/")[0] for s in dataset.samples if s.label not in fixed})
        if outside:
            raise UserError(f"--shifts {spec}: folders outside {name}'s 200 classes: {', '.join(outside[:3])}"
                            f"{' and more' if len(outside) > 3 else ''}")
    samples = [Sample(f"{name}/{s.id}", s.path, s.label) for s in dataset.samples
               if classes is None or s.label in classes]
    if not samples:
        raise UserError(f"--shifts {spec}: none of the run's classes (--classes, --protocol) has a photo in {dataset.root}")
    chosen = select_samples(Dataset(dataset.root, samples), limit)
    ignored = [{**item, "path": f"{name}/{item['path']}"} for item in dataset.ignored]
    return Shift(name, dataset.root, chosen, fixed, ignored)


def counterpart_samples(samples: Sequence[Sample], classes: frozenset[int], shift: str = "") -> list[Sample]:
    """The run's val photos a class-restricted shift is compared with: those whose label is one of its classes
    (for ObjectNet with the label of their ObjectNet class)."""
    if shift == "objectnet":
        from .objectnet import relabel

        return relabel(samples)
    return [s for s in samples if s.label in classes]


def _open_objectnet(spec: str, folder: str | None, limit: int | None, classes: set[int] | None) -> Shift:
    """ObjectNet from a local copy (never downloaded: its licence forbids redistribution)."""
    from . import objectnet

    if folder is None:
        raise UserError(f"--shifts objectnet: {objectnet.WHERE}")
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise UserError(f"--shifts {spec}: no such folder; {objectnet.WHERE}")
    found, ignored = objectnet.objectnet_samples(root)
    members = {g[0]: set(g) for g in objectnet.groups()}  # --classes: any ImageNet class of the ObjectNet class
    chosen = [s for s in found if classes is None or members[s.label] & set(classes)]
    if not chosen:
        raise UserError(f"--shifts {spec}: none of the run's classes (--classes, --protocol) has a photo in {root}")
    return Shift("objectnet", root, select_samples(Dataset(root, chosen), limit), objectnet.label_classes(), ignored,
                 objectnet.groups())
