"""Where the demo's photos are: the project's shared sample beside a checkout, else the named download."""
from __future__ import annotations

from pathlib import Path


def find_shared_sample() -> str:
    """The project's shared photos when this is a checkout beside ../shared, else the named dataset."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = base.parent / "shared" / "data" / "imagenet-sample"
        if candidate.is_dir():
            return str(candidate)
    return "imagenet-sample"
