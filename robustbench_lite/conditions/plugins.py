"""Loading users' transforms: plug-in files, plug-in folders and installed entry points.

Plug-in code runs only from files and folders the user names and from packages the user
installed; nothing is ever imported from the data folder.
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import re
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Iterable

from ..errors import UserError
from .registry import load_builtin_transforms

ENTRY_POINT_GROUP = "robustbench_lite.transforms"


def _one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    if isinstance(exc, UserError):
        return str(exc).splitlines()[0] if str(exc) else "error"
    if isinstance(exc, SyntaxError):
        return f"syntax error at line {exc.lineno}: {exc.msg}"
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _module_name(path: Path) -> str:
    """A stable, unique module name for a plug-in file: the same file always gets the same one.

    The registry tells a re-registration from a clash by `module.qualname`, so a stable name is
    what makes loading a file twice harmless.
    """
    stem = re.sub(r"\W", "_", path.stem)
    digest = hashlib.blake2b(str(path).encode(), digest_size=4).hexdigest()
    return f"rbl_plugin_{stem}_{digest}"


def load_plugin_file(path: str | Path) -> ModuleType:
    """Import a user's `.py` file so its `@register_transform` decorators run.

    Any failure (missing file, import error, syntax error, a clash or bad signature) is a
    one-line UserError naming the file. Loading the same file again re-registers the same
    functions, which the registry accepts.
    """
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise UserError(f"plug-in file {file} not found")
    if file.suffix != ".py":
        raise UserError(f"plug-in file {file} is not a .py file")
    name = _module_name(file)
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise UserError(f"plug-in file {file} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(name)
    sys.modules[name] = module  # so dataclasses, pickling and typing inside the plug-in work
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
        raise UserError(f"plug-in file {file}: {_one_line(exc)}") from None
    return module


def load_plugin_dir(folder: str | Path) -> list[ModuleType]:
    """Load every `*.py` file of `folder` (sorted, not recursive, `_*.py` skipped)."""
    directory = Path(folder).expanduser().resolve()
    if not directory.is_dir():
        raise UserError(f"plug-in folder {directory} not found")
    files = sorted(p for p in directory.glob("*.py") if not p.name.startswith("_") and p.is_file())
    return [load_plugin_file(p) for p in files]


def _takes_no_arguments(obj: object) -> bool:
    try:
        inspect.signature(obj).bind()
    except (TypeError, ValueError):
        return False
    return True


def _describe(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    owner = f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"
    return f"entry point {ep.name!r} ({ep.value}) of {owner}"


def _load_entry_point(ep: EntryPoint) -> None:
    """Import the entry point's module; if it names a no-argument callable, call it too."""
    obj = ep.load()
    if ep.attr and callable(obj) and not isinstance(obj, ModuleType) and _takes_no_arguments(obj):
        obj()


def load_entry_point_plugins() -> list[str]:
    """Load every installed entry point of group `robustbench_lite.transforms`.

    An entry point is `module` (importing it registers its transforms) or
    `module:function` (a no-argument function that registers them). Returns what was loaded.
    """
    loaded = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value)):
        what = _describe(ep)
        try:
            _load_entry_point(ep)
        except (Exception, SystemExit) as exc:
            raise UserError(f"plug-in {what}: {_one_line(exc)}") from None
        loaded.append(what)
    return loaded


def load_plugins(
    files: Iterable[str | Path] = (),
    dirs: Iterable[str | Path] = (),
    entry_points: bool = True,
) -> list[str]:
    """Load built-ins, then installed entry points, plug-in folders and plug-in files, in that order.

    What run planning and the CLI call. Built-ins come first so a name clash blames the plug-in.
    Returns the files (and entry points) loaded, in loading order.
    """
    load_builtin_transforms()
    loaded = load_entry_point_plugins() if entry_points else []
    for folder in dirs:
        loaded += [str(m.__file__) for m in load_plugin_dir(folder)]
    for file in files:
        loaded.append(str(load_plugin_file(file).__file__))
    return loaded
