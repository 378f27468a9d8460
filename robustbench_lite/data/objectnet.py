"""ObjectNet (Barbu et al., NeurIPS 2019) as a natural shift: `--shifts objectnet=DIR`, scored as the
imagenet-testbed scores it.

ObjectNet's licence forbids redistribution, so there is no download: get it from objectnet.dev (free, after
agreeing to its terms) and point DIR at its `images/` folder (class-name folders such as `alarm_clock/`),
or at the folder that holds `images/`. Only its 113 classes that overlap ImageNet-1k are scored
(`reference_data/objectnet_mapping.json`, built by tools/build_objectnet_mapping.py from the testbed's
copy of the release's mapping): logits restricted to their 125 ImageNet classes, and a prediction counts
when it falls in an ImageNet class mapped to the photo's ObjectNet class. So that records keep one label,
the logits of an ObjectNet class's ImageNet classes are merged (their maximum, the testbed's collapse for
`val-on-objectnet-classes`) into its first, which is also the photos' label, and only those 113 are scored. The release's 1-pixel border is
cropped (2 px, as the testbed crops) before the model's own preprocessing. The counterpart,
`clean@objectnet-classes`, is the run's val photos of those 125 classes scored the same way.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Sequence

from ..errors import UserError
from .datasets import Sample

NAME = "objectnet"
WHERE = ("ObjectNet's licence forbids redistribution: download it yourself from https://objectnet.dev "
         "and pass --shifts objectnet=DIR (its images/ folder of class-name folders)")


@lru_cache(maxsize=1)
def mapping() -> dict:
    """The bundled mapping: {"classes": {folder: {"label", "imagenet": [indices]}}, "border", "source"}."""
    return json.loads((resources.files("robustbench_lite") / "reference_data" / "objectnet_mapping.json").read_text())


def groups() -> tuple[tuple[int, ...], ...]:
    """The ImageNet indices of each ObjectNet class, in folder order (the first is the class's label)."""
    return tuple(tuple(c["imagenet"]) for c in mapping()["classes"].values())


def scored_classes() -> frozenset[int]:
    """The 125 ImageNet classes of ObjectNet's 113 (the counterpart's photos are theirs)."""
    return frozenset(i for g in groups() for i in g)


def label_classes() -> frozenset[int]:
    """The 113 labels (each ObjectNet class's first ImageNet class): the logits scored once merged."""
    return frozenset(g[0] for g in groups())


def canonical() -> dict[int, int]:
    """Each scored ImageNet class -> the label of its ObjectNet class (its group's first index)."""
    return {i: g[0] for g in groups() for i in g}


def merge_logits(logits, merged: tuple[tuple[int, ...], ...]):
    """Logits with each group's maximum in its first class; scored on `label_classes()` only, one answer a group."""
    import torch

    out = logits.clone()
    for group in merged:
        if len(group) > 1:
            out[:, group[0]] = logits.index_select(1, torch.tensor(group, device=logits.device)).amax(dim=1)
    return out


def image_folder(root: Path) -> Path:
    """DIR itself, or DIR/images when the release's top folder is given."""
    return root / "images" if (root / "images").is_dir() else root


def objectnet_samples(root: Path) -> tuple[list[Sample], list[dict]]:
    """The photos of the 113 overlapping classes (ids `objectnet/FOLDER/FILE`, labels canonical), and what
    was left out (folders of the other 200 classes, files that are not photos)."""
    from .datasets import is_image_file

    folder = image_folder(root)
    classes, labels = mapping()["classes"], canonical()
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    known = [n for n in names if n in classes]
    if not known:
        raise UserError(f"--shifts objectnet={root}: no ObjectNet class folders (such as alarm_clock/) in {folder}; "
                        f"{WHERE}")
    samples, ignored = [], []
    border = int(mapping()["border"])
    for name in known:
        label = labels[classes[name]["imagenet"][0]]
        for path in sorted((folder / name).iterdir()):
            if path.is_file() and is_image_file(path):
                samples.append(Sample(f"{NAME}/{name}/{path.name}", path, label, border=border))
            elif not path.name.startswith("."):
                ignored.append({"path": f"{NAME}/{name}/{path.name}", "reason": "not an image file type"})
    ignored += [{"path": f"{NAME}/{n}", "reason": "ObjectNet class without an ImageNet counterpart (not scored)"}
                for n in names if n not in classes]
    return samples, ignored


def relabel(samples: Sequence[Sample]) -> list[Sample]:
    """The run's val photos of the scored classes with their ObjectNet class's label (the counterpart)."""
    labels = canonical()
    return [Sample(s.id, s.path, labels[s.label], s.category, s.stimulus_condition) for s in samples if s.label in labels]
