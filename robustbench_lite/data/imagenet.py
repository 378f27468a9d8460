"""ImageNet-1k classes: synset <-> canonical index (timm's class list), and class subsets."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

from ..errors import UserError

N_CLASSES = 1000


@lru_cache(maxsize=1)
def synset_to_index() -> dict[str, int]:
    """ImageNet-1k synset (e.g. 'n01440764') -> canonical class index, from timm."""
    from timm.data import ImageNetInfo

    return {name: i for i, name in enumerate(ImageNetInfo().label_names())}


def parse_classes(text: str | Sequence[str] | None) -> set[int] | None:
    """`--classes n01440764,n01484850` or `0,2,4` or `0-99` -> set of class indices."""
    if text is None or text == "":
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    index = synset_to_index()
    chosen: set[int] = set()
    for item in (i.strip() for i in items):
        if not item:
            continue
        if item in index:
            chosen.add(index[item])
        elif "-" in item and item.replace("-", "").isdigit():
            lo, hi = (int(v) for v in item.split("-", 1))
            if not lo <= hi < N_CLASSES:
                raise UserError(f"--classes {item}: a range of class indices within 0-{N_CLASSES - 1}")
            chosen.update(range(lo, hi + 1))
        elif item.isdigit() and int(item) < 1000:
            chosen.add(int(item))
        else:
            raise UserError(f"--classes: {item!r} is neither an ImageNet synset nor a class index 0-999")
    return chosen


VAL_NAME = re.compile(r"ILSVRC2012_val_(\d{8})")


def val_index(image_id: str) -> int | None:
    """The 0-based position of an ImageNet val photo from its file name (ILSVRC2012_val_00000001 -> 0)."""
    match = VAL_NAME.search(image_id)
    return int(match.group(1)) - 1 if match else None


def read_real_labels(spec: str) -> list[list[int]]:
    """ImageNet ReaL labels (Beyer et al. 2020): `real` (timm's bundled imagenet_real_labels.json) or a JSON
    file of the same form, one list of class indices per val photo in val order (empty: left out)."""
    import json
    from pathlib import Path

    if spec == "real":
        from importlib.resources import files

        text = (files("timm") / "data" / "_info" / "imagenet_real_labels.json").read_text()
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise UserError(f"--labels {spec}: no such file (use real, or a JSON list of label lists in val order)")
        text = path.read_text()
    try:
        labels = json.loads(text)
        if not isinstance(labels, list) or not all(isinstance(x, list) for x in labels):
            raise ValueError("not a list of lists")
        return [[int(c) for c in x] for x in labels]
    except (ValueError, TypeError) as exc:
        raise UserError(f"--labels {spec}: not a JSON list of label lists ({exc})") from None
