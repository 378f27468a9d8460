"""The one place preprocessing is resolved (timm's `resolve_data_config`): run, dry-run and preview use it."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.decode import Geometry


@dataclass(frozen=True)
class Preprocessing:
    """How a model wants its photos: decode geometry, then (x - mean) / std on [0, 1] pixels."""

    geometry: Geometry
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def describe(self) -> dict:
        """The manifest's `preprocessing` entry."""
        g = self.geometry
        return {"input_size": list(g.input_size), "crop_pct": g.crop_pct, "interpolation": g.interpolation,
                "crop_mode": g.crop_mode, "mean": list(self.mean), "std": list(self.std)}


def resolve_preprocessing(model: torch.nn.Module | None = None, input_size: int | None = None) -> Preprocessing:
    """A model's preprocessing from its pretrained config (timm's defaults without a model).

    `input_size` changes only the side (crop_pct and interpolation kept), as for test-resolution variants.
    """
    from timm.data import resolve_data_config

    args = {} if input_size is None else {"input_size": (3, int(input_size), int(input_size))}
    config = resolve_data_config(args, model=model)
    geometry = Geometry(
        input_size=tuple(config["input_size"][1:]),
        crop_pct=float(config["crop_pct"]),
        interpolation=str(config["interpolation"]),
        crop_mode=str(config.get("crop_mode", "center")),
    )
    return Preprocessing(geometry, tuple(config["mean"]), tuple(config["std"]))
