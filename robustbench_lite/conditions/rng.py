"""Per-photo random generators, so a transform's draws never depend on batching or order."""
from __future__ import annotations

import hashlib
from typing import Sequence

import torch
from torch import Tensor


def photo_seed(run_seed: int, transform: str, severity: int, image_id: str) -> int:
    """A 63-bit seed unique to (run seed, transform, severity, photo)."""
    key = f"{run_seed}\x1f{transform}\x1f{severity}\x1f{image_id}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


class PhotoRNG:
    """One torch generator per photo of a batch; every draw is stacked along dim 0.

    Draws for photo i come from photo i's own generator, so they are identical whatever the
    batch size, order or worker count (on one device: CPU and CUDA generators differ).
    """

    def __init__(self, seeds: Sequence[int], device: torch.device | str = "cpu"):
        self.seeds = [int(s) for s in seeds]
        self.device = torch.device(device)
        self.generators = []
        for seed in self.seeds:
            g = torch.Generator(device=self.device)
            g.manual_seed(seed)
            self.generators.append(g)

    def __len__(self) -> int:
        return len(self.seeds)

    def _stack(self, draw) -> Tensor:
        return torch.stack([draw(g) for g in self.generators])

    def rand(self, *shape: int) -> Tensor:
        """Uniform [0, 1) draws of shape (N, *shape)."""
        return self._stack(lambda g: torch.rand(shape, generator=g, device=self.device))

    def randn(self, *shape: int) -> Tensor:
        """Standard normal draws of shape (N, *shape)."""
        return self._stack(lambda g: torch.randn(shape, generator=g, device=self.device))

    def uniform(self, low: float, high: float, *shape: int) -> Tensor:
        """Uniform [low, high) draws of shape (N, *shape)."""
        return low + (high - low) * self.rand(*shape)

    def randint(self, low: int, high: int, *shape: int) -> Tensor:
        """Integers in [low, high) of shape (N, *shape)."""
        return self._stack(lambda g: torch.randint(low, high, shape, generator=g, device=self.device))

    def poisson(self, rates: Tensor) -> Tensor:
        """Poisson draws with per-element rates of shape (N, ...), photo i from generator i."""
        return torch.stack([torch.poisson(r, generator=g) for r, g in zip(rates, self.generators)])
