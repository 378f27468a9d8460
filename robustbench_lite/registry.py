"""The transform registry: severity-graded, batched, seeded image operations, open to plug-ins."""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from torch import Tensor

from .errors import UserError
from .rng import PhotoRNG

TransformFn = Callable[[Tensor, float, PhotoRNG], Tensor]


@dataclass(frozen=True)
class TransformSpec:
    """A registered transform: its function, family, level values and documentation."""

    name: str
    family: str
    severities: tuple[float, ...]
    fn: TransformFn = field(compare=False, repr=False)
    description: str = ""
    params: dict[str, str] = field(default_factory=dict, compare=False)
    version: str = "1"
    source: str = ""

    def __call__(self, x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
        return self.fn(x, level, rng)

    def as_dict(self) -> dict:
        """JSON-ready description (for `transforms --format json` and the manifest)."""
        return {
            "name": self.name,
            "family": self.family,
            "severities": list(self.severities),
            "description": self.description,
            "params": dict(self.params),
            "version": self.version,
            "source": self.source,
        }


@dataclass(frozen=True)
class Condition:
    """One evaluation condition: a transform at one 1-based severity (or clean)."""

    transform: str
    severity: int
    level: float

    @property
    def is_clean(self) -> bool:
        return self.transform == "clean"

    @property
    def key(self) -> str:
        return "clean" if self.is_clean else f"{self.transform}@{self.severity}"


CLEAN = Condition("clean", 0, 0.0)

_REGISTRY: dict[str, TransformSpec] = {}
_BUILTINS_LOADED = False


def _source_of(fn: Callable) -> str:
    """Where a transform was defined: its file (for plug-ins) or module, and its name."""
    try:
        where = inspect.getsourcefile(fn) or fn.__module__
    except TypeError:
        where = getattr(fn, "__module__", "?")
    return f"{where}:{getattr(fn, '__qualname__', '?')}"


def _check_signature(name: str, fn: Callable) -> None:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError) as exc:
        raise UserError(f"transform {name!r}: cannot read its signature ({exc})") from None
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
    if not varargs and (len(positional) < 3 or len(required) > 3):
        raise UserError(
            f"transform {name!r} in {inspect.getsourcefile(fn) or fn.__module__}: "
            "signature must be fn(x, level, rng)"
        )


def register_transform(
    name: str,
    family: str,
    severities: Sequence[float],
    *,
    description: str | None = None,
    params: dict[str, str] | None = None,
    version: str = "1",
) -> Callable[[TransformFn], TransformFn]:
    """Register `fn(x, level, rng) -> x'` under `name`; `severities` are its level values.

    `x` is a float batch in [0, 1] of shape (N, 3, H, W) on the run's device; `rng` gives
    per-photo generators. The docstring's first line is the description unless one is given.
    """
    levels = tuple(float(s) for s in severities)
    if not levels:
        raise UserError(f"transform {name!r}: needs at least one severity level")
    adapter = ":" in name  # albu:/tv: spec names carry their arguments, commas included
    if name in ("clean", "none") or not name or (not adapter and any(c in name for c in ",@ ")):
        raise UserError(f"transform name {name!r} is reserved or malformed")

    def decorator(fn: TransformFn) -> TransformFn:
        _check_signature(name, fn)
        doc = description or (inspect.getdoc(fn) or "").strip().splitlines()[0:1]
        text = doc if isinstance(doc, str) else (doc[0] if doc else "")
        spec = TransformSpec(name, family, levels, fn, text, dict(params or {}), version, _source_of(fn))
        existing = _REGISTRY.get(name)
        if existing is not None and existing.source != spec.source:
            raise UserError(
                f"transform {name!r} from {spec.source} clashes with the one from {existing.source}"
            )
        _REGISTRY[name] = spec
        return fn

    return decorator


def unregister_transform(name: str) -> None:
    """Remove a transform (tests and interactive use)."""
    _REGISTRY.pop(name, None)


def _builtin_package():
    """The top-level `transforms` package installed beside this one, imported by its location.

    Importing it by name would let a `transforms.py` in the working directory (first on sys.path
    under `python -m`) run instead: plug-in code runs only from paths the user names.
    """
    root = Path(__file__).resolve().parent.parent / "transforms"
    loaded = sys.modules.get("transforms")
    if loaded is not None and [str(Path(p).resolve()) for p in getattr(loaded, "__path__", [])] == [str(root)]:
        return loaded
    spec = importlib.util.spec_from_file_location("transforms", root / "__init__.py", submodule_search_locations=[str(root)])
    package = importlib.util.module_from_spec(spec)
    sys.modules["transforms"] = package
    spec.loader.exec_module(package)
    return package


def load_builtin_transforms() -> None:
    """Import every module of the top-level `transforms` package, registering the built-ins."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    package = _builtin_package()
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"transforms.{info.name}")


def all_transforms() -> list[TransformSpec]:
    """Every registered transform, built-ins loaded, sorted by family then name."""
    load_builtin_transforms()
    return sorted(_REGISTRY.values(), key=lambda s: (s.family, s.name))


def get_transform(name: str) -> TransformSpec:
    """The transform called `name`, or a one-line error listing what exists."""
    load_builtin_transforms()
    try:
        return _REGISTRY[name]
    except KeyError:
        families = sorted({s.family for s in _REGISTRY.values()})
        raise UserError(
            f"unknown transform or family {name!r}; families: {', '.join(families)} "
            "(`robustbench-lite transforms` lists all)"
        ) from None


CORE_FAMILIES = ("greyscale", "outlines", "borders", "distortions")


def select_transforms(tokens: Iterable[str] | str | None) -> list[TransformSpec]:
    """Resolve `--transforms` tokens: family names, transform names, or `none` (clean only).

    `None` selects the four core families. Order follows the tokens; duplicates are dropped.
    """
    from .adapters import register_adapter_tokens, split_transform_tokens

    load_builtin_transforms()
    if tokens is None:
        tokens = list(CORE_FAMILIES)
    elif isinstance(tokens, str):
        tokens = split_transform_tokens(tokens)
    tokens = register_adapter_tokens([t.strip() for t in tokens])
    chosen: dict[str, TransformSpec] = {}
    for token in tokens:
        token = token.strip()
        if not token or token == "none":
            continue
        family = [s for s in all_transforms() if s.family == token]
        for spec in family or [get_transform(token)]:
            chosen.setdefault(spec.name, spec)
    return list(chosen.values())


def parse_severities(text: str | Sequence[int] | None) -> list[int] | None:
    """`--severities 1,3,5` -> [1, 3, 5]; None means every level."""
    if text is None or text == "" or text == "all":
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        levels = sorted({int(str(i).strip()) for i in items})
    except ValueError:
        raise UserError(f"--severities takes level numbers like 1,3,5, not {text!r}") from None
    if any(level < 1 for level in levels):
        raise UserError("--severities are 1-based level numbers")
    return levels


def build_conditions(specs: Sequence[TransformSpec], severities: Sequence[int] | None) -> list[Condition]:
    """Clean plus every (transform, severity) asked for; levels a transform lacks are skipped."""
    conditions = [CLEAN]
    for spec in specs:
        for number, level in enumerate(spec.severities, start=1):
            if severities is None or number in severities or len(spec.severities) == 1:
                conditions.append(Condition(spec.name, number, level))
    return conditions
