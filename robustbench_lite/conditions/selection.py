"""`--transforms` text -> registry specs: families, transform names, adapters, `none`, and exclusions.

A bare name is the transform when one has that name, else the family: `greyscale` is the one
transform `greyscale`, `outlines` the family; `family:greyscale` always names the family (its three
transforms). `corruptions,-glass_blur` is a family minus one of its transforms (exclusions apply after every inclusion, as timm's `list_models(exclude_filters=...)`);
`-edges` alone is the default selection minus `edges`; `rotate@3` (a condition key) is one transform
at one severity number, whatever `--severities` says.
"""
from __future__ import annotations

from typing import Iterable

from ..errors import UserError
from .adapters import is_adapter_spec, register_spec_transform
from .registry import TransformSpec, all_transforms, families, find_transform, get_transform

CORE_FAMILIES = ("greyscale", "outlines", "borders", "distortions")  # the default selection: these families
FAMILY_PREFIX = "family:"
_OPENING, _CLOSING = "([{", ")]}"


def split_transform_tokens(text: str) -> list[str]:
    """Split `--transforms` text on commas outside brackets and quotes; blanks are dropped.

    `"greyscale,albu:GaussNoise(std_range=(0.2, 0.2))"` -> `["greyscale", "albu:GaussNoise(...)"]`.
    """
    tokens, current, depth, quote = [], [], 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in _OPENING:
            depth += 1
        elif char in _CLOSING:
            depth -= 1
            if depth < 0:
                raise UserError(f"--transforms {text!r}: unbalanced {char!r}")
        elif char == "," and depth == 0:
            tokens.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if depth or quote:
        raise UserError(f"--transforms {text!r}: unclosed bracket or quote")
    tokens.append("".join(current).strip())
    return [t for t in tokens if t]


def pinned_severities(tokens: Iterable[str] | str | None) -> dict[str, set[int]]:
    """{transform: severity numbers} of `NAME@S` tokens (conditions named by their key)."""
    if tokens is None:
        return {}
    tokens = split_transform_tokens(tokens) if isinstance(tokens, str) else list(tokens)
    pinned: dict[str, set[int]] = {}
    for token in tokens:
        name, at, number = token.strip().rpartition("@")
        if at and not is_adapter_spec(token) and not token.startswith("-"):
            if not number.isdigit() or int(number) < 1:
                raise UserError(f"--transforms {token}: a condition is NAME@SEVERITY with a severity number from 1")
            spec = get_transform(name)
            if int(number) > len(spec.levels):
                raise UserError(f"--transforms {token}: {name} has {len(spec.levels)} levels")
            pinned.setdefault(name, set()).add(int(number))
    return pinned


NAMED_SETS = {
    "imagenet-c": lambda spec: spec.params.get("benchmark") == "imagenet-c",
    "imagenet-c-bar": lambda spec: spec.params.get("benchmark") == "imagenet-c-bar",
}
"""Named sets beside families: `imagenet-c` is the benchmark's 15 corruptions (the `corruptions` family
also holds the 4 extras of its validation set: speckle_noise, gaussian_blur, spatter, saturate);
`imagenet-c-bar` is ImageNet-C-bar's 10 (the `cbar` family)."""


def _expand(token: str) -> list[TransformSpec]:
    """The specs one token names: an adapter spec (registered now), a family, or a transform."""
    if is_adapter_spec(token):
        return [register_spec_transform(token)]
    if token.startswith(FAMILY_PREFIX):
        return family_transforms(token[len(FAMILY_PREFIX):].strip())
    name, at, _ = token.rpartition("@")
    if at:  # NAME@S names a condition: the transform NAME (its severity is pinned_severities')
        return [get_transform(name)]
    spec = find_transform(token)
    if spec is not None:  # a transform's own name wins over a family of that name
        return [spec]
    if token in NAMED_SETS:
        return [s for s in all_transforms() if NAMED_SETS[token](s)]
    family = [s for s in all_transforms() if s.family == token]
    return family or [get_transform(token)]


def family_transforms(name: str) -> list[TransformSpec]:
    """The transforms of family `name`, or a one-line error with the closest family."""
    specs = [s for s in all_transforms() if s.family == name]
    if not specs:
        import difflib

        close = difflib.get_close_matches(name, families(), n=1) or difflib.get_close_matches(name.lower(), families(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(f"unknown family {name!r}; {hint}families: {', '.join(families())}")
    return specs


def select_transforms(tokens: Iterable[str] | str | None) -> list[TransformSpec]:
    """Resolve `--transforms` tokens; `None` selects the four core families (`family:greyscale` and the rest).

    Order follows the tokens; duplicates are dropped; `-TOKEN` removes a family or transform.
    """
    if tokens is None:
        tokens = [FAMILY_PREFIX + f for f in CORE_FAMILIES]
    elif isinstance(tokens, str):
        tokens = split_transform_tokens(tokens)
    tokens = [t.strip() for t in tokens if t.strip()]
    include = [t for t in tokens if not t.startswith("-")]
    exclude = [t[1:].strip() for t in tokens if t.startswith("-")]
    if not include and exclude:
        include = [FAMILY_PREFIX + f for f in CORE_FAMILIES]
    chosen: dict[str, TransformSpec] = {}
    for token in include:
        if token == "none":
            continue
        for spec in _expand(token):
            chosen.setdefault(spec.name, spec)
    for token in exclude:
        for spec in _expand(token):
            chosen.pop(spec.name, None)
    return list(chosen.values())
