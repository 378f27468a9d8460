"""Perturbation sequences (`run --stability SUITE`): a photo turned, frame by frame, into a short video.

A sequence is one function `fn(x, rng) -> iterator of frames`: `x` is a float batch (N, 3, S, S) in
[0, 1] decoded at the suite's context geometry (ImageNet-P: Resize 256 + CenterCrop 256, so that
geometric perturbations have the release's surround), each frame the same shape; the run cuts the
centre crop (224 px) of each frame and scores it. Frames are yielded in order because some carry state
(zoom blur's running average, spatter's dripping drops). `noise` sequences are independent draws around
the clean first frame: their stability compares every frame with the first (the release's `flip_prob`);
the others compare consecutive frames. Registered like transforms, from `transforms/` or a plug-in.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable, Iterator

from torch import Tensor

from ..errors import UserError
from .rng import PhotoRNG

SequenceFn = Callable[[Tensor, PhotoRNG], Iterator[Tensor]]


@dataclass(frozen=True)
class Suite:
    """A stability suite: the geometry its sequences are made at and the crop scored."""

    name: str
    context_side: int  # photos decoded at Resize(side) + CenterCrop(side), bilinear
    crop_side: int  # the centre of each frame that is scored (then resized to each model's input size)
    benchmark: tuple[str, ...]  # the perturbations its mean (mFR, mT5D) averages
    citation: str


SUITES = {
    "imagenet-p": Suite(
        "imagenet-p", 256, 224,
        ("gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "snow", "brightness", "translate", "rotate",
         "tilt", "scale"),
        "Hendrycks & Dietterich, ICLR 2019; hendrycks/robustness ImageNet-P/create_p/make_imagenet_p.py (Apache-2.0)"),
}


@dataclass(frozen=True)
class SequenceSpec:
    """A registered sequence: its suite, frame count, whether frames are independent noise draws."""

    name: str
    suite: str
    frames: int
    noise: bool
    fn: SequenceFn = field(compare=False, repr=False)
    description: str = ""
    params: dict[str, str] = field(default_factory=dict, compare=False)
    validation: bool = False  # one of the suite's validation perturbations, outside its mean

    @property
    def condition(self) -> str:
        """The name its records carry as `transform` (`imagenet-p.translate`)."""
        return f"{self.suite}.{self.name}"

    def as_dict(self) -> dict:
        return {"name": self.name, "suite": self.suite, "frames": self.frames, "noise": self.noise,
                "validation": self.validation, "description": self.description, "params": dict(self.params)}


_SEQUENCES: dict[str, SequenceSpec] = {}


def register_sequence(name: str, suite: str, frames: int, *, noise: bool = False, validation: bool = False,
                      params: dict[str, str] | None = None) -> Callable[[SequenceFn], SequenceFn]:
    """Register `fn(x, rng) -> iterator of `frames` frames` as perturbation `name` of `suite`."""
    if suite not in SUITES:
        raise UserError(f"sequence {name!r}: unknown suite {suite!r} (known: {', '.join(SUITES)})")

    def decorator(fn: SequenceFn) -> SequenceFn:
        lines = (inspect.getdoc(fn) or "").strip().splitlines()
        spec = SequenceSpec(name, suite, int(frames), noise, fn, lines[0] if lines else "", dict(params or {}),
                            validation)
        existing = _SEQUENCES.get(spec.condition)
        if existing is not None and existing.fn.__module__ != fn.__module__:
            raise UserError(f"sequence {spec.condition!r} is registered twice ({existing.fn.__module__}, {fn.__module__})")
        _SEQUENCES[spec.condition] = spec
        return fn

    return decorator


def suite_sequences(suite: str) -> list[SequenceSpec]:
    """The sequences of a suite (built-ins loaded), in the suite's order: its benchmark's, then validation ones."""
    from .registry import load_builtin_transforms

    if suite not in SUITES:
        raise UserError(f"--stability {suite!r}: unknown suite; use one of {', '.join(SUITES)}")
    load_builtin_transforms()
    order = {n: i for i, n in enumerate(SUITES[suite].benchmark)}
    found = [s for s in _SEQUENCES.values() if s.suite == suite]
    return sorted(found, key=lambda s: (order.get(s.name, len(order)), s.name))


def sequence_of(condition: str) -> SequenceSpec | None:
    """The sequence whose records carry `condition` as their transform, or None."""
    return _SEQUENCES.get(condition)
