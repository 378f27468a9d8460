"""Model entries: what `--models` names, resolved before any weights load."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from ..errors import UserError
from .packaged import PACKAGED_MODELS

SOURCES = ("packaged", "timm", "checkpoint")


@dataclass(frozen=True)
class ModelEntry:
    """A model as the user named it: `name`, the timm `arch`, and where its weights come from."""

    name: str
    arch: str
    source: str  # one of SOURCES
    path: str | None = None  # the checkpoint file of source "checkpoint"


def _is_pattern(text: str) -> bool:
    return any(c in text for c in "*?[")


def _timm_names(pattern: str) -> list[str]:
    import timm

    return timm.list_models(pattern)


def _entries_of(token: str) -> list[ModelEntry]:
    if "@" in token:
        arch, path = token.split("@", 1)
        return [ModelEntry(token, arch.strip(), "checkpoint", path.strip())]
    if token.startswith("timm:"):
        pattern = token[5:]
        if not _is_pattern(pattern):
            return [ModelEntry(token, pattern, "timm")]
        names = _timm_names(pattern)
        if not names:
            raise UserError(f"--models {token}: no timm model matches (see `robustbench-lite models --timm PATTERN`)")
        return [ModelEntry(f"timm:{n}", n, "timm") for n in names]
    if _is_pattern(token):
        names = fnmatch.filter(PACKAGED_MODELS, token)
        if not names:
            raise UserError(f"--models {token}: no packaged model matches (packaged: {', '.join(PACKAGED_MODELS)}; "
                            "use timm:PATTERN for timm's)")
        return [ModelEntry(n, PACKAGED_MODELS[n].arch, "packaged") for n in names]
    if token in PACKAGED_MODELS:
        return [ModelEntry(token, PACKAGED_MODELS[token].arch, "packaged")]
    return [ModelEntry(token, token, "timm")]


def resolve_models(text: str | list[str]) -> list[ModelEntry]:
    """Parse `--models`: packaged names and wildcards, `timm:NAME`/`timm:PATTERN`, `ARCH@PATH`."""
    tokens = text.split(",") if isinstance(text, str) else list(text)
    entries = [e for token in tokens if token.strip() for e in _entries_of(token.strip())]
    if not entries:
        raise UserError("--models: no model given")
    return list(dict.fromkeys(entries))
