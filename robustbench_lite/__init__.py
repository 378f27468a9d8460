"""robustbench-lite: how fickle is an ImageNet classifier under simple, human-harmless transforms.

This face is the plug-in side (what a transform author imports: `register_transform`, `PhotoRNG`)
plus `__version__`; `robustbench_lite.run(...)` is the Python API (the run stage's package, which is
callable). Each loads on first use, so importing the package (for `--help`, say) costs nothing.

The stages, top to bottom (each imports only its own layer and those below): cli, run, report,
analysis, results, models, data, conditions; then this base (version, errors, hashing).
"""
from __future__ import annotations

from .version import __version__

_LAZY = {"register_transform": "conditions.registry", "PhotoRNG": "conditions.rng",
         "register_sequence": "conditions.sequences", "run": None}


def __getattr__(name: str):
    """Load `register_transform`, `register_sequence`, `PhotoRNG` or `run` (the callable run stage) when first asked for."""
    if name not in _LAZY:
        raise AttributeError(f"module 'robustbench_lite' has no attribute {name!r}")
    import importlib

    if _LAZY[name] is None:  # importing the stage sets it on this package
        return importlib.import_module(f".{name}", __name__)
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = ["register_transform", "register_sequence", "PhotoRNG", "run", "__version__"]
