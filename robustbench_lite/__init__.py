"""robustbench-lite: how fickle is an ImageNet classifier under simple, human-harmless transforms."""
from __future__ import annotations

__version__ = "0.1.0"

from .registry import register_transform  # noqa: E402  (light: no torch model code)


def run(**options):
    """Run a benchmark from Python; returns the summary as a pandas DataFrame.

    Takes the same options as `robustbench-lite run` (e.g. `data=`, `models=`, `transforms=`).
    """
    from .api import run as _run

    return _run(**options)


__all__ = ["register_transform", "run", "__version__"]
