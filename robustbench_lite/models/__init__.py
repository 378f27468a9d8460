"""Models: entries (name, architecture, weights source, preprocessing) and the loaded, ready model.
Takes `--models` text; gives ModelEntry objects (`resolve_models("efficientnet_lite*,timm:resnet50")`)
and, by `load_model(entry, device)`, a LoadedModel that owns its preprocessing and normalisation.
The names below load their module on first use, so importing the package costs nothing.
"""
from __future__ import annotations

_FROM = {"ModelEntry": "entries", "parse_resolutions": "entries", "resolve_models": "entries",
         "LoadedModel": "loaded", "load_model": "loaded", "load_models": "loaded",
         "PACKAGED_MODELS": "packaged", "list_packaged": "packaged", "packaged_weights_path": "packaged",
         "Preprocessing": "preprocessing", "resolve_preprocessing": "preprocessing"}


def __getattr__(name: str):
    """Load one of the names above from its module when first asked for."""
    if name not in _FROM:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_FROM[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = list(_FROM)
