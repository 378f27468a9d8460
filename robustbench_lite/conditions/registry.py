"""The transform registry: severity-graded, batched, seeded image operations, open to plug-ins.

Each entry says how it executes (`kind`): `batched` transforms run on whole batches on the run's
device (every built-in and plug-in), `per_photo` ones photo by photo on the CPU (the albumentations
and torchvision adapters). Selection of `--transforms` tokens lives in `selection.py`.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from torch import Tensor

from ..errors import UserError
from .rng import PhotoRNG

TransformFn = Callable[[Tensor, float, PhotoRNG], Tensor]
KINDS = ("batched", "per_photo")
RESERVED_NAMES = ("clean", "none")


@dataclass(frozen=True)
class TransformSpec:
    """A registered transform: its function, family, level values, execution kind and documentation."""

    name: str
    family: str
    levels: tuple[float, ...]
    fn: TransformFn = field(compare=False, repr=False)
    description: str = ""
    params: dict[str, str] = field(default_factory=dict, compare=False)
    version: str = "1"
    source: str = ""
    kind: str = "batched"

    @property
    def severities(self) -> tuple[float, ...]:
        """The level values (the name `register_transform` and `transforms --format json` use)."""
        return self.levels

    def __call__(self, x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
        return self.fn(x, level, rng)

    def as_dict(self) -> dict:
        """JSON-ready description (for `transforms --format json` and the manifest)."""
        return {
            "name": self.name,
            "family": self.family,
            "severities": list(self.levels),
            "description": self.description,
            "params": dict(self.params),
            "version": self.version,
            "source": self.source,
            "kind": self.kind,
        }


_REGISTRY: dict[str, TransformSpec] = {}
_BUILTINS_LOADED = False


def source_of(fn: Callable) -> str:
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


def add_transform(spec: TransformSpec) -> TransformSpec:
    """Put a spec in the registry; the same name from another source is a clash (one-line error)."""
    if spec.kind not in KINDS:
        raise UserError(f"transform {spec.name!r}: kind must be one of {', '.join(KINDS)}")
    if not spec.levels:
        raise UserError(f"transform {spec.name!r}: needs at least one severity level")
    existing = _REGISTRY.get(spec.name)
    if existing is not None and existing.source != spec.source:
        raise UserError(f"transform {spec.name!r} from {spec.source} clashes with the one from {existing.source}")
    _REGISTRY[spec.name] = spec
    return spec


def register_transform(
    name: str,
    family: str,
    severities: Sequence[float] | None = None,
    *,
    levels: Sequence[float] | None = None,
    description: str | None = None,
    params: dict[str, str] | None = None,
    version: str = "1",
) -> Callable[[TransformFn], TransformFn]:
    """Register a batched `fn(x, level, rng) -> x'` under `name`; `severities` (or `levels`) are its level values.

    `x` is a float batch in [0, 1] of shape (N, 3, H, W) on the run's device; `rng` gives
    per-photo generators. The docstring's first line is the description unless one is given.
    """
    values = tuple(float(s) for s in (levels if levels is not None else severities or ()))
    if name in RESERVED_NAMES or not name or any(c in name for c in ",@: "):
        raise UserError(f"transform name {name!r} is reserved or malformed (no spaces, ',', '@' or ':')")

    def decorator(fn: TransformFn) -> TransformFn:
        _check_signature(name, fn)
        lines = (inspect.getdoc(fn) or "").strip().splitlines()
        text = description or (lines[0] if lines else "")
        add_transform(TransformSpec(name, family, values, fn, text, dict(params or {}), version, source_of(fn)))
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
    root = Path(__file__).resolve().parents[2] / "transforms"
    loaded = sys.modules.get("transforms")
    if loaded is not None and [str(Path(p).resolve()) for p in getattr(loaded, "__path__", [])] == [str(root)]:
        return loaded
    spec = importlib.util.spec_from_file_location("transforms", root / "__init__.py", submodule_search_locations=[str(root)])
    package = importlib.util.module_from_spec(spec)
    sys.modules["transforms"] = package
    spec.loader.exec_module(package)
    return package


def load_builtin_transforms() -> None:
    """Import every public module of the top-level `transforms` package, registering the built-ins."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    package = _builtin_package()
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"transforms.{info.name}")


def builtin_module(name: str):
    """A module of the built-in `transforms` package (e.g. `_release`), imported from its location."""
    load_builtin_transforms()
    return importlib.import_module(f"transforms.{name}")


def all_transforms() -> list[TransformSpec]:
    """Every registered transform, built-ins loaded, sorted by family then name."""
    load_builtin_transforms()
    return sorted(_REGISTRY.values(), key=lambda s: (s.family, s.name))


def families() -> list[str]:
    """Every family name, sorted."""
    return sorted({s.family for s in all_transforms()})


def find_transform(name: str) -> TransformSpec | None:
    """The transform called `name`, or None."""
    load_builtin_transforms()
    return _REGISTRY.get(name)


def get_transform(name: str) -> TransformSpec:
    """The transform called `name`, or a one-line error listing the families."""
    spec = find_transform(name)
    if spec is None:
        import difflib

        names = [s.name for s in _REGISTRY.values()] + families()
        close = difflib.get_close_matches(name, names, n=1) or difflib.get_close_matches(name.lower(), names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(
            f"unknown transform or family {name!r}; {hint}families: {', '.join(families())} "
            "(`robustbench-lite transforms` lists all)"
        )
    return spec
