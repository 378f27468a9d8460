"""A loaded model: the network on its device, its preprocessing, and its own normalisation."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from ..data.decode import Geometry
from .entries import ModelEntry
from .loaders import LOADERS
from .preprocessing import Preprocessing, resolve_preprocessing


@dataclass
class LoadedModel:
    """A model ready for inference plus the preprocessing it was trained with."""

    entry: ModelEntry
    module: torch.nn.Module
    preprocessing: Preprocessing
    weights: str  # where the weights came from
    weights_sha256: str
    _affine: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def geometry(self) -> Geometry:
        return self.preprocessing.geometry

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / std of a [0, 1] batch, as one fused x * scale + bias (kept per device)."""
        key = (x.device, x.dtype)
        if key not in self._affine:
            std = torch.tensor(self.preprocessing.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
            mean = torch.tensor(self.preprocessing.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
            scale = 1 / std
            self._affine[key] = (scale, -mean * scale)
        scale, bias = self._affine[key]
        return torch.addcmul(bias, x, scale)

    def describe(self) -> dict:
        """Manifest entry: architecture, weights and preprocessing."""
        return {"arch": self.entry.arch, "source": self.entry.source, "weights": self.weights,
                "weights_sha256": self.weights_sha256, "preprocessing": self.preprocessing.describe()}


def load_model(entry: ModelEntry, device: torch.device) -> LoadedModel:
    """Build the network, load its weights, and resolve its preprocessing from timm's pretrained config."""
    return load_models([entry], device)[0]


def load_models(entries: Sequence[ModelEntry], device: torch.device) -> list[LoadedModel]:
    """Load every entry; test-resolution variants of one model share its network (loaded once)."""
    networks: dict[tuple, tuple] = {}
    loaded = []
    for entry in entries:
        key = (entry.base, entry.arch, entry.source, entry.path)
        if key not in networks:
            module, weights, digest = LOADERS[entry.source](entry)
            networks[key] = (module.eval().to(device=device, memory_format=torch.channels_last), weights, digest)
        module, weights, digest = networks[key]
        preprocessing = resolve_preprocessing(module, input_size=entry.input_size)
        loaded.append(LoadedModel(entry, module, preprocessing, weights, digest))
    return loaded
