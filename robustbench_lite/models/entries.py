"""Model entries: what `--models` names, resolved before any weights load."""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from ..errors import UserError
from .packaged import PACKAGED_MODELS

SOURCES = ("packaged", "timm", "checkpoint")
VARIANT = re.compile(r"^(?P<base>.+)@(?P<side>\d+)px$")
"""A trailing `@NNNpx` names a test-resolution variant (timm's results tables list (model, img_size) rows)."""


@dataclass(frozen=True)
class ModelEntry:
    """A model as the user named it: `name`, the timm `arch`, and where its weights come from."""

    name: str
    arch: str
    source: str  # one of SOURCES
    path: str | None = None  # the checkpoint file of source "checkpoint"
    input_size: int | None = None  # a test-resolution variant's side (crop_pct and interpolation kept)

    @property
    def base(self) -> str:
        """The model's name without its variant suffix: variants of one base share its loaded weights."""
        match = VARIANT.match(self.name)
        return match["base"] if match and self.input_size is not None else self.name

    def at_resolution(self, side: int) -> "ModelEntry":
        """This model evaluated at input side `side`, named `BASE@{side}px`."""
        if side < 16 or side > 2048:
            raise UserError(f"resolution {side} px: use a side between 16 and 2048")
        return replace(self, name=f"{self.base}@{side}px", input_size=int(side))


def _is_pattern(text: str) -> bool:
    return any(c in text for c in "*?[")


def timm_classifier_names(pattern: str) -> list[str]:
    """The one rule for a timm pattern (`run --models timm:PATTERN` and `models --timm PATTERN`): names with
    pretrained weights whose head is an ImageNet-1k classifier (CLIP and other backbones are left out)."""
    import timm
    from timm.models import get_pretrained_cfg

    names = timm.list_models(pattern, pretrained=True)
    return [n for n in names if getattr(get_pretrained_cfg(n), "num_classes", 1000) == 1000]


def close_packaged_name(name: str) -> str | None:
    """The packaged model a mistyped bare name most likely means (`efficientnet-lite0`, `EfficientNet_Lite1`),
    matched case- and separator-blind before timm's hub names are considered; None when none is close."""
    import difflib

    def plain(text: str) -> str:
        return text.lower().replace("-", "_").replace(" ", "_")

    by_plain = {plain(n): n for n in PACKAGED_MODELS}
    close = difflib.get_close_matches(plain(name), list(by_plain), n=1, cutoff=0.8)
    return by_plain[close[0]] if close else None


def check_timm_name(name: str, token: str | None = None) -> None:
    """A named timm model must exist and have pretrained ImageNet weights: a one-line error now, not at load.

    `token` is the name as typed (`timm:NAME`), for the message."""
    token = token or name
    import timm
    from timm.models import get_pretrained_cfg, is_model_pretrained

    if not timm.is_model(name):
        import difflib

        packaged = None if token.startswith("timm:") else close_packaged_name(name)
        close = [packaged] if packaged else [f"timm:{n}" for n in
                                             difflib.get_close_matches(name, timm.list_models(pretrained=True), n=1)]
        hint = f"did you mean {close[0]}? " if close else ""
        raise UserError(f"--models {token}: not a packaged model ({', '.join(PACKAGED_MODELS)}) nor a timm "
                        f"architecture; {hint}(`robustbench-lite models --timm PATTERN` lists them)")
    if not is_model_pretrained(name):
        tagged = timm_classifier_names(f"{name}.*")
        hint = f"; with weights: {', '.join('timm:' + t for t in tagged[:3])}" if tagged else ""
        raise UserError(f"--models {token}: timm has this architecture but no pretrained weights for it{hint} "
                        "(or give local weights as ARCH@PATH)")
    classes = getattr(get_pretrained_cfg(name), "num_classes", 1000)
    if classes != 1000:
        raise UserError(f"--models {token}: its pretrained head has {classes} outputs, not the 1,000 ImageNet classes")


def _entries_of(token: str) -> list[ModelEntry]:
    if "@" in token:  # named by `checkpoint_names` once every token is known; the path kept absolute
        arch, path = token.split("@", 1)
        return [ModelEntry(token, arch.strip(), "checkpoint", os.path.abspath(os.path.expanduser(path.strip())))]
    if token.startswith("timm:"):
        pattern = token[5:]
        if not _is_pattern(pattern):
            check_timm_name(pattern, token)
            return [ModelEntry(token, pattern, "timm")]
        names = timm_classifier_names(pattern)
        if not names:
            raise UserError(f"--models {token}: no timm model with pretrained ImageNet weights matches "
                            "(see `robustbench-lite models --timm PATTERN`)")
        return [ModelEntry(f"timm:{n}", n, "timm") for n in names]
    if _is_pattern(token):
        names = fnmatch.filter(PACKAGED_MODELS, token)
        if not names:
            raise UserError(f"--models {token}: no packaged model matches (packaged: {', '.join(PACKAGED_MODELS)}; "
                            "use timm:PATTERN for timm's)")
        return [ModelEntry(n, PACKAGED_MODELS[n].arch, "packaged") for n in names]
    if token in PACKAGED_MODELS:
        return [ModelEntry(token, PACKAGED_MODELS[token].arch, "packaged")]
    check_timm_name(token)
    return [ModelEntry(token, token, "timm")]


def _variant_entries(token: str) -> list[ModelEntry]:
    """A token, with an optional trailing `@NNNpx` (a test-resolution variant of what the rest names)."""
    match = VARIANT.match(token)
    if not match:
        return _entries_of(token)
    return [e.at_resolution(int(match["side"])) for e in _entries_of(match["base"])]


def parse_resolutions(text: str | Sequence[int] | None) -> list[int] | None:
    """`--resolutions 128,160,192,224` -> [128, 160, 192, 224]; None means each model's own."""
    if text is None or text == "":
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        sides = [int(str(i).strip().removesuffix("px")) for i in items if str(i).strip()]
    except ValueError:
        raise UserError(f"--resolutions takes input sides in pixels like 160,224, not {text!r}") from None
    return list(dict.fromkeys(sides)) or None


def resolve_models(text: str | list[str], resolutions: Sequence[int] | None = None) -> list[ModelEntry]:
    """Parse `--models`: packaged names and wildcards, `timm:NAME`/`timm:PATTERN`, `ARCH@PATH`, each
    optionally `@NNNpx`; with `resolutions`, every model becomes one variant per side."""
    tokens = text.split(",") if isinstance(text, str) else list(text)
    entries = [e for token in tokens if token.strip() for e in _variant_entries(token.strip())]
    if not entries:
        raise UserError("--models: no model given")
    if resolutions:
        entries = [e.at_resolution(side) for e in entries for side in resolutions]
    short = checkpoint_names([(e.arch, e.path) for e in entries if e.source == "checkpoint"])
    entries = [replace(e, name=short[(e.arch, e.path)] + (f"@{e.input_size}px" if e.input_size else ""))
               if e.source == "checkpoint" else e for e in entries]
    return list(dict.fromkeys(entries))


def checkpoint_names(checkpoints: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """A short, unique display name per (arch, checkpoint path): `ARCH@STEM` (`tf_efficientnet_lite0@best`),
    lengthened only where two would collide, to the file name (`@best.pth`), then parent folders
    (`@run1/best.pth`). Tables and plots show it; the manifest keeps the full path."""
    def label(path: str, depth: int) -> str:
        parts = Path(path).parts
        return Path(path).stem if depth == 0 else "/".join(parts[-depth:])

    pairs = list(dict.fromkeys(checkpoints))
    depth = dict.fromkeys(pairs, 0)
    while True:
        names = {pair: f"{pair[0]}@{label(pair[1], depth[pair])}" for pair in pairs}
        taken = list(names.values())
        clashing = [pair for pair in pairs if taken.count(names[pair]) > 1 and depth[pair] < len(Path(pair[1]).parts)]
        if not clashing:
            return names
        for pair in clashing:
            depth[pair] += 1
