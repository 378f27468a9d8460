"""ImageNet-C noise corruptions: Gaussian, shot (Poisson) and impulse (salt-and-pepper) noise, and
speckle (multiplicative Gaussian) noise of the validation set.

Published parameters and conventions: see transforms/_corruption_kit.py. All four are the
imagenet-testbed's in-memory recipe (its torch code, the lines native runs are placed on) and the
released ImageNet-C's (hendrycks/robustness `make_imagenet_c.py`); only the random draws differ
(ours from `rng`; the release's impulse noise is scikit-image's, the same distribution).
"""
from __future__ import annotations

import torch
from torch import Tensor

from robustbench_lite import PhotoRNG
from transforms._corruption_kit import EXTRA, corruption, finish, pick, table_doc, threaded_map

# Published parameter tables, one entry per severity 1..5.
GAUSSIAN_NOISE_STD = (0.08, 0.12, 0.18, 0.26, 0.38)
SHOT_NOISE_PHOTONS = (60, 25, 12, 5, 3)
IMPULSE_NOISE_AMOUNT = (0.03, 0.06, 0.09, 0.17, 0.27)
SPECKLE_NOISE_STD = (0.15, 0.2, 0.35, 0.45, 0.6)


@corruption("gaussian_noise", std=f"std of additive Gaussian noise: {table_doc(GAUSSIAN_NOISE_STD)}")
def gaussian_noise(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Additive Gaussian noise, independent per pixel and channel."""
    std = pick(GAUSSIAN_NOISE_STD, level)
    return finish(rng.randn(*x.shape[1:]).to(x.device).mul_(std).add_(x))


def _poisson(rng: PhotoRNG, rates: Tensor) -> Tensor:
    """rng.poisson, the photos' draws spread over torch's CPU threads (the CPU sampler is serial)."""
    if rates.device.type != "cpu":
        return rng.poisson(rates)
    return torch.stack(threaded_map(lambda rate, g: torch.poisson(rate, generator=g), rates, rng.generators))


@corruption(
    "shot_noise",
    photons=f"Poisson rate per unit intensity (fewer = noisier): {table_doc(SHOT_NOISE_PHOTONS)}",
)
def shot_noise(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Poisson photon noise: each value becomes Poisson(x * photons) / photons."""
    photons = pick(SHOT_NOISE_PHOTONS, level)
    return finish(_poisson(rng, (x * photons).to(rng.device)).to(x.device) / photons)


@corruption(
    "impulse_noise",
    version="2",  # 2: the imagenet-testbed's in-memory recipe (issue #21)
    amount=f"probability that a value is hit, set to 0 or 1 (half each): {table_doc(IMPULSE_NOISE_AMOUNT)}",
    method="the testbed's: two uniform draws per value, hit if the first < amount, salt if the second < 0.5",
)
def impulse_noise(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Salt-and-pepper noise on independent channel values."""
    amount = pick(IMPULSE_NOISE_AMOUNT, level)
    hit = rng.rand(*x.shape[1:]).to(x.device) < amount
    salt = (rng.rand(*x.shape[1:]).to(x.device) < 0.5).to(x.dtype)
    return torch.where(hit, salt, x)


@corruption(
    "speckle_noise",
    benchmark=EXTRA,
    std=f"std of the Gaussian noise that multiplies each value, x + x * N(0, std): {table_doc(SPECKLE_NOISE_STD)}",
)
def speckle_noise(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Speckle noise: Gaussian noise proportional to the intensity, independent per value."""
    std = pick(SPECKLE_NOISE_STD, level)
    return finish(rng.randn(*x.shape[1:]).to(x.device).mul_(std).mul_(x).add_(x))
