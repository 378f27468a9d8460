"""Models: entries (name, architecture, weights source, preprocessing) and the loaded, ready model.

`resolve_models("efficientnet_lite*,timm:resnet50")` gives ModelEntry objects; `load_model(entry,
device)` a LoadedModel that owns its preprocessing and normalisation.
"""
from __future__ import annotations

from .entries import ModelEntry, parse_resolutions, resolve_models
from .loaded import LoadedModel, load_model, load_models
from .packaged import PACKAGED_MODELS, list_packaged, packaged_weights_path
from .preprocessing import Preprocessing, resolve_preprocessing

__all__ = ["ModelEntry", "parse_resolutions", "resolve_models", "LoadedModel", "load_model", "load_models", "PACKAGED_MODELS", "list_packaged",
           "packaged_weights_path", "Preprocessing", "resolve_preprocessing"]
