"""Where the demo's photos are: the project's shared sample beside a checkout, else the named download."""
from __future__ import annotations

import os
from pathlib import Path


def find_shared_sample() -> str:
    """`$ROBUSTBENCH_LITE_SHARED/data/imagenet-sample`, else ../shared's beside this checkout or the
    working folder, else the named dataset (downloaded once)."""
    bases = [Path(os.environ["ROBUSTBENCH_LITE_SHARED"])] if os.environ.get("ROBUSTBENCH_LITE_SHARED") else []
    bases += [base.parent / "shared" for base in (Path.cwd(), Path(__file__).resolve().parents[2])]
    for base in bases:
        candidate = base / "data" / "imagenet-sample"
        if candidate.is_dir():
            return str(candidate)
    return "imagenet-sample"
