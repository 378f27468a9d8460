"""ImageNet-1k classes: synset <-> canonical index (timm's class list), and class subsets."""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

from .errors import UserError

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
