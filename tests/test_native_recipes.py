"""The native recipe without the reference environment: the frost photos are the published ones,
the glass sweep's pointer jumping is the release's loop, and the random corruptions draw with the
testbed's parameters (statistics per severity of ours' own draws against the formulas)."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robustbench_lite.conditions.registry import builtin_module, get_transform
from robustbench_lite.conditions.rng import PhotoRNG, photo_seed

REPO = Path(__file__).resolve().parents[1]
FROST = REPO / "transforms" / "frost"
SEVERITIES = (1, 2, 3, 4, 5)


def corrupt(name: str, severity: int, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    spec = get_transform(name)
    return spec(x, spec.severities[severity - 1], PhotoRNG([photo_seed(seed, name, severity, str(i)) for i in range(len(x))]))


def test_frost_photos_are_the_published_pixels():
    meta = json.loads((FROST / "frost.json").read_text())
    assert len(meta["photos"]) == 6 and "Apache-2.0" in meta["licence"] and (FROST / "LICENSE").is_file()
    assert not list(FROST.glob("*.png")) + list(FROST.glob("*.jpg")) + list(FROST.glob("*.webp"))  # never committed
    weather = builtin_module("corruptions_weather")
    from transforms._frost import frost_file

    for i, (name, photo) in enumerate(meta["photos"].items()):
        data = frost_file(name).read_bytes()  # the published file, byte for byte (imagecorruptions' wheel)
        assert hashlib.sha256(data).hexdigest() == photo["original_sha256"], name
        with Image.open(frost_file(name)) as image:
            pixels = np.asarray(image.convert("RGB"))
        assert hashlib.sha256(pixels.tobytes()).hexdigest() == photo["pixels_sha256"], name
        assert pixels.shape == (photo["height"], photo["width"], 3) and min(pixels.shape[:2]) >= 315
        loaded = weather.frost_photo(i)
        assert torch.equal(torch.round(loaded * 255).to(torch.uint8).permute(1, 2, 0), torch.from_numpy(pixels.copy()))


def release_sweep(draws: np.ndarray, h: int, w: int, delta: int) -> np.ndarray:
    """make_imagenet_c.py's glass sweep on pixel indices, as its loop runs it (copy, not swap)."""
    index = np.arange(h * w).reshape(h, w)
    for sweep in draws:
        for r, row in enumerate(range(h - delta, delta, -1)):
            for c, col in enumerate(range(w - delta, delta, -1)):
                dx, dy = sweep[r, c]
                index[row, col] = index[row + dy, col + dx]
    return index.reshape(-1)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_glass_sweep_by_pointer_jumping_is_the_release_loop(severity):
    blur = builtin_module("corruptions_blur")
    _, delta, iterations = blur.GLASS_SIGMA_DELTA_ITER[severity - 1]
    h, w = 40, 37
    rng = np.random.default_rng(severity)
    draws = rng.integers(-delta, delta, size=(2, iterations, h - 2 * delta, w - 2 * delta, 2))
    ours = blur.sweep_sources(torch.from_numpy(draws), h, w, delta)
    for photo, mine in zip(draws, ours):
        np.testing.assert_array_equal(mine.numpy(), release_sweep(photo, h, w, delta))


@pytest.fixture(scope="module")
def grey() -> torch.Tensor:
    """Flat mid-grey photos: the noise is all there is, away from the clip."""
    return torch.full((4, 3, 64, 64), 0.5)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_noise_moments_are_the_testbeds(grey, severity):
    """gaussian: x + N(0, std); speckle: x + x N(0, std); shot: Poisson(x photons) / photons;
    impulse: a value hit with probability `amount`, then 0 or 1 half each (the testbed's image_utils)."""
    noise = builtin_module("corruptions_noise")
    n = grey.numel()
    std = noise.GAUSSIAN_NOISE_STD[severity - 1]
    d = (corrupt("gaussian_noise", severity, grey) - grey).double()
    if std < 0.2:  # hardly clipped at 0.5 +- 0.5
        assert abs(float(d.std()) - std) < 0.02 * std
    assert abs(float(d.mean())) < 4 * std / math.sqrt(n)
    std = noise.SPECKLE_NOISE_STD[severity - 1]
    d = (corrupt("speckle_noise", severity, grey) - grey).double() / 0.5
    assert abs(float(d.mean())) < 4 * std / math.sqrt(n)
    from scipy.stats import poisson

    photons = noise.SHOT_NOISE_PHOTONS[severity - 1]
    d = corrupt("shot_noise", severity, grey).double() * photons
    counts = np.arange(200)
    clipped = np.minimum(counts, photons) * poisson.pmf(counts, 0.5 * photons)  # the clip at 1
    mean = clipped.sum()
    var = (np.minimum(counts, photons) ** 2 * poisson.pmf(counts, 0.5 * photons)).sum() - mean**2
    assert abs(float(d.mean()) - mean) < 4 * math.sqrt(var / n)
    assert abs(float(d.var()) - var) < 0.05 * var
    amount = noise.IMPULSE_NOISE_AMOUNT[severity - 1]
    out = corrupt("impulse_noise", severity, grey)
    hit, salt = float((out != 0.5).double().mean()), float((out == 1).double().mean())
    assert abs(hit - amount) < 4 * math.sqrt(amount / n) and abs(salt - amount / 2) < 4 * math.sqrt(amount / n)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_elastic_field_is_the_testbeds(severity):
    """The displacement field from U(-1, 1) noise: scipy.signal.gaussian taps of size
    2 min(int(3 sigma + 0.5), side) - 1, mirrored edges, times alpha (an independent numpy/scipy
    computation on the same draws); its mean magnitude per severity as the table makes it."""
    from scipy.ndimage import correlate1d
    from scipy.signal.windows import gaussian

    digital = builtin_module("corruptions_digital")
    alpha, sigma, _ = digital.ELASTIC_TESTBED[severity - 1]
    noise = torch.rand(2, 2, 224, 224, generator=torch.Generator().manual_seed(severity)) * 2 - 1
    ours = digital.elastic_field(noise, sigma, alpha).numpy()
    radius = min(int(3 * sigma + 0.5), 224)
    taps = gaussian(2 * radius - 1, sigma)
    taps /= taps.sum()
    expected = correlate1d(correlate1d(noise.double().numpy(), taps, axis=-2, mode="mirror"), taps, axis=-1, mode="mirror")
    np.testing.assert_allclose(ours, expected * alpha, atol=1e-4 * alpha)
    magnitude = float(np.hypot(ours[:, 0], ours[:, 1]).mean())
    assert magnitude == pytest.approx(float(np.hypot(expected[:, 0], expected[:, 1]).mean()) * alpha, rel=1e-4)


def test_frost_windows_cover_every_photo_and_start():
    """Frost's draws: each of the six photos, and starts from 0 to the last that fits, equally likely."""
    weather = builtin_module("corruptions_weather")
    x = torch.zeros(1, 3, 224, 224)
    u = torch.tensor([[0.0, 0.0, 0.0], [0.999999, 0.999999, 0.999999]])
    first, last = weather.frost_windows(x.expand(2, -1, -1, -1), u, 1.0, 6)
    layer0, layer5 = weather.frost_at(0, 224, 224, 1.0), weather.frost_at(5, 224, 224, 1.0)
    assert torch.equal(first, layer0[:, :224, :224]) and torch.equal(last, layer5[:, -224:, -224:])
    photo = weather.frost_photo(3)  # the testbed's resize swaps height and width
    assert weather.frost_at(3, 224, 224, 1.0).shape[1:] == (photo.shape[2], photo.shape[1])


def test_recipe_parity_per_protocol_and_the_defective_zoom_column():
    """native: every corruption is the population's recipe, but zoom_blur@1's published in-memory column
    holds clean val top-1 for most line-fit models (counted here from the shared CSV); imagenet-c: snow
    and motion blur (ImageMagick in the release) are not placed."""
    import pandas as pd

    from robustbench_lite.analysis.recipes import recipe

    shared = REPO.parent / "shared" / "data" / "published-accuracies"
    if not shared.is_dir():
        pytest.skip("../shared/data/published-accuracies is absent")
    top1 = pd.read_csv(shared / "testbed_robustness_top1s.csv").merge(pd.read_csv(shared / "testbed_model_types.csv"))
    fit = top1[top1["model_type"].eq("STANDARD") & (top1["val"] >= 55)
               & ~top1["model"].str.contains("aws|batch64|subsample") & top1["imagenet-c.zoom_blur.1_in-memory"].notna()]
    same = int((fit["imagenet-c.zoom_blur.1_in-memory"] == fit["val"]).sum())
    assert same > len(fit) / 2
    assert recipe("zoom_blur@1", "native").startswith(f"its published column equals clean val top-1 for {same} of")
    assert recipe("zoom_blur@2", "native") == "release" and recipe("zoom_blur@1", "imagenet-c") == "release"
    assert recipe("snow@3", "imagenet-c").startswith("the release's ImageMagick") and recipe("snow@3", "native") == "release"
    assert recipe("motion_blur@1", "imagenet-c") != "release" and recipe("frost@1", "imagenet-c") == "release"
    assert recipe("greyscale@5", "native") == "release"
