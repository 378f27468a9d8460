"""ImageNet-C noise corruptions: Gaussian, shot (Poisson) and impulse (salt-and-pepper) noise, and
speckle (multiplicative Gaussian) noise of the validation set.

Published parameters and conventions: see transforms/_corruption_kit.py. All four are the
released ImageNet-C's recipe (hendrycks/robustness `make_imagenet_c.py`); only the random draws
differ (ours from `rng`; impulse positions drawn with replacement, the same distribution).
"""
from __future__ import annotations

import math

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
    amount=f"fraction of values set to 0 or 1 (half each): {table_doc(IMPULSE_NOISE_AMOUNT)}",
    method=(
        "-ln(1 - amount) * values positions drawn with replacement, so each value is hit with "
        "probability `amount`; a hit value is 1 if any draw on it was salt, with the salt share "
        "set so that half the hit values end as 1 (skimage random_noise 's&p' in distribution)"
    ),
)
def impulse_noise(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Salt-and-pepper noise on independent channel values."""
    amount = pick(IMPULSE_NOISE_AMOUNT, level)
    n, values = x.shape[0], x[0].numel()
    hits = -math.log1p(-amount)  # mean draws per value
    count = max(int(round(hits * values)), 1)
    salt_share = -math.log((1 + math.exp(-hits)) / 2) / hits
    where = rng.randint(0, values, count).to(x.device)
    salt = (rng.rand(count).to(x.device) < salt_share).to(x.dtype)
    out = x.reshape(n, values).clone().scatter_(1, where, 0.0)
    return out.scatter_reduce_(1, where, salt, reduce="amax").view_as(x)


@corruption(
    "speckle_noise",
    benchmark=EXTRA,
    std=f"std of the Gaussian noise that multiplies each value, x + x * N(0, std): {table_doc(SPECKLE_NOISE_STD)}",
)
def speckle_noise(x: Tensor, level: float, rng: PhotoRNG) -> Tensor:
    """Speckle noise: Gaussian noise proportional to the intensity, independent per value."""
    std = pick(SPECKLE_NOISE_STD, level)
    return finish(rng.randn(*x.shape[1:]).to(x.device).mul_(std).mul_(x).add_(x))
