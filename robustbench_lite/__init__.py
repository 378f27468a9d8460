"""robustbench-lite: how fickle is an ImageNet classifier under simple, human-harmless transforms.

This face is the plug-in side (what a transform author imports: `register_transform`, `PhotoRNG`)
plus `__version__`; `robustbench_lite.run(...)` is the Python API. Each loads on first use, so
importing the package (for `--help`, say) costs nothing.
"""
from __future__ import annotations

from .version import __version__

_LAZY = {"register_transform": "registry", "PhotoRNG": "rng", "run": "api"}


def __getattr__(name: str):
    """Load `register_transform` (registry), `PhotoRNG` (rng) or `run` (api) when first asked for."""
    if name not in _LAZY:
        raise AttributeError(f"module 'robustbench_lite' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = ["register_transform", "PhotoRNG", "run", "__version__"]
