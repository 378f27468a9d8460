"""Albumentations and torchvision v2 transforms as conditions, named by spec strings.

`albu:GaussNoise(std_range=(0.2, 0.2))` or `tv:GaussianBlur(kernel_size=9, sigma=3.0)` is parsed
without evaluating code (a call of a class of the library with literal arguments only), built
once, and applied per photo on the CPU with photo i's own seed.
"""
from __future__ import annotations

import ast
import inspect
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConditionFailed, UserError
from .registry import TransformSpec, add_transform, source_of
from .rng import PhotoRNG

PREFIXES = {"albu": "albumentations", "tv": "torchvision"}


def is_adapter_spec(token: str) -> bool:
    """Whether a `--transforms` token names an albumentations/torchvision transform."""
    prefix, sep, _ = token.partition(":")
    return bool(sep) and prefix.strip() in PREFIXES


@dataclass(frozen=True)
class ParsedSpec:
    """A spec string reduced to its library, class name and literal arguments."""

    library: str
    class_name: str
    args: tuple
    kwargs: dict

    @property
    def prefix(self) -> str:
        return next(p for p, lib in PREFIXES.items() if lib == self.library)

    @property
    def canonical(self) -> str:
        """The registry name: `albu:GaussNoise(std_range=(0.2,0.2))`, no spaces outside strings."""
        items = [_compact(a) for a in self.args] + [f"{k}={_compact(v)}" for k, v in self.kwargs.items()]
        return f"{self.prefix}:{self.class_name}({','.join(items)})"


def _compact(value: Any) -> str:
    """A literal's source text without spaces (strings keep theirs)."""
    if isinstance(value, tuple):
        inner = ",".join(_compact(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ",".join(_compact(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_compact(k)}:{_compact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (set, frozenset)):
        return "{" + ",".join(sorted(_compact(v) for v in value)) + "}" if value else "set()"
    return repr(value)


def _literal(node: ast.AST, spec: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise UserError(
            f"transform spec {spec!r}: argument {ast.unparse(node)!r} is not a literal "
            "(numbers, strings, booleans, None, tuples, lists, dicts only)"
        ) from None


def parse_spec(spec: str) -> ParsedSpec:
    """Parse `albu:Class(args)` / `tv:Class(args)` safely: nothing in it is ever executed."""
    prefix, sep, body = spec.strip().partition(":")
    if not sep or prefix.strip() not in PREFIXES:
        raise UserError(f"transform spec {spec!r}: must start with 'albu:' or 'tv:'")
    try:
        node = ast.parse(body.strip(), mode="eval").body
    except SyntaxError as exc:
        raise UserError(f"transform spec {spec!r}: not of the form Class(arg=value, ...) ({exc.msg})") from None
    if isinstance(node, ast.Name):  # `tv:Grayscale` means `tv:Grayscale()`
        node = ast.Call(func=node, args=[], keywords=[])
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise UserError(f"transform spec {spec!r}: must be a class name called with literal arguments")
    if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
        raise UserError(f"transform spec {spec!r}: * and ** arguments are not allowed")
    args = tuple(_literal(a, spec) for a in node.args)
    kwargs = {k.arg: _literal(k.value, spec) for k in node.keywords}
    return ParsedSpec(PREFIXES[prefix.strip()], node.func.id, args, kwargs)


def _library(name: str):
    """The library module and the base class its transforms must derive from (imported lazily)."""
    if name == "albumentations":
        os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network at import
        import albumentations

        return albumentations, albumentations.BasicTransform, albumentations.__version__
    import torchvision
    from torchvision.transforms import v2

    return v2, v2.Transform, torchvision.__version__


def build_transform(parsed: ParsedSpec) -> Any:
    """Instantiate the library's class; `p` defaults to 1.0 so every photo is transformed."""
    module, base, _ = _library(parsed.library)
    spec = parsed.canonical
    cls = getattr(module, parsed.class_name, None) if not parsed.class_name.startswith("_") else None
    if not (inspect.isclass(cls) and issubclass(cls, base)):
        raise UserError(f"transform spec {spec!r}: {parsed.library} has no transform {parsed.class_name!r}")
    kwargs = dict(parsed.kwargs)
    try:
        signature = inspect.signature(cls)
        bound = signature.bind(*parsed.args, **kwargs)
    except TypeError as exc:
        raise UserError(f"transform spec {spec!r}: {exc}") from None
    if "p" in signature.parameters and "p" not in bound.arguments:
        kwargs["p"] = 1.0
    try:
        return cls(*parsed.args, **kwargs)
    except Exception as exc:  # the library's own validation (pydantic, ValueError, ...)
        raise UserError(f"transform spec {spec!r}: {_summary(exc)}") from None


def _summary(exc: Exception) -> str:
    """A library's (possibly multi-line, pydantic) error message joined into one short line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("For further information")]
    return "; ".join(lines[:3]) or type(exc).__name__


def _to_float_chw(image: Tensor) -> Tensor:
    """A library's output (CHW or HW, uint8 or float) as float32 CHW with 3 channels in [0, 1]."""
    image = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
    if image.ndim == 2:
        image = image.unsqueeze(0)
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    if image.ndim != 3 or image.shape[0] != 3:
        raise ConditionFailed(f"output of shape {tuple(image.shape)} is not an RGB image")
    return image.nan_to_num(0.0).clamp(0.0, 1.0)


def _fit_size(image: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a CHW image back to `size` (bilinear, antialiased) if the transform changed it."""
    if tuple(image.shape[-2:]) == size:
        return image
    return F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]


def _albumentations_apply(transform: Any) -> Callable[[Tensor, int], Tensor]:
    def apply(photo: Tensor, seed: int) -> Tensor:
        hwc = (photo.permute(1, 2, 0) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()
        transform.set_random_seed(seed)
        out = transform(image=np.ascontiguousarray(hwc))["image"]
        if not isinstance(out, np.ndarray):
            raise ConditionFailed(f"returned a {type(out).__name__}, not an image array")
        out = torch.from_numpy(np.ascontiguousarray(out))
        return _to_float_chw(out.permute(2, 0, 1) if out.ndim == 3 else out)

    return apply


def _torchvision_apply(transform: Any) -> Callable[[Tensor, int], Tensor]:
    from torchvision import tv_tensors

    def apply(photo: Tensor, seed: int) -> Tensor:
        with torch.random.fork_rng(devices=[]):  # CPU generator only; the caller's state is restored
            torch.default_generator.manual_seed(seed)
            out = transform(tv_tensors.Image(photo))
        if not isinstance(out, Tensor):
            raise ConditionFailed(f"returned a {type(out).__name__}, not an image tensor")
        return _to_float_chw(out.as_subclass(Tensor))

    return apply


def _per_photo(name: str, apply: Callable[[Tensor, int], Tensor]) -> Callable[[Tensor, float, PhotoRNG], Tensor]:
    """A registry transform applying `apply(photo_chw_cpu, seed)` photo by photo."""

    def per_photo(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
        size = (x.shape[-2], x.shape[-1])
        photos = x.detach().float().cpu()
        try:
            out = [_fit_size(apply(photo, seed), size) for photo, seed in zip(photos, rng.seeds)]
        except ConditionFailed as exc:
            raise ConditionFailed(f"{name}: {exc}") from None
        except Exception as exc:
            raise ConditionFailed(f"{name}: {type(exc).__name__}: {exc}") from exc
        return torch.stack(out).to(device=x.device, dtype=torch.float32)

    per_photo.__qualname__ = per_photo.__name__ = f"adapter[{name}]"
    return per_photo


def register_spec_transform(spec: str) -> TransformSpec:
    """Build the transform a spec names and register it under its canonical name.

    One level (1.0); family `albumentations` or `torchvision`; registering the same spec again
    is harmless. Outputs whose size differs from the input are resized back to it.
    """
    parsed = parse_spec(spec)
    name = parsed.canonical
    if "@" in name:
        raise UserError(f"transform spec {spec!r}: '@' is not allowed in a spec")
    transform = build_transform(parsed)
    _, _, version = _library(parsed.library)
    apply = _albumentations_apply(transform) if parsed.library == "albumentations" else _torchvision_apply(transform)
    fn = _per_photo(name, apply)
    description = f"{parsed.library} {name.partition(':')[2]}, per photo on CPU (resized back if it changes the size)"
    params = {"level": "single level: the spec fixes every argument", "applied": repr(transform)}
    return add_transform(TransformSpec(name, parsed.library, (1.0,), fn, description, params,
                                       f"{parsed.library}=={version}", source_of(fn), kind="per_photo"))
