"""Goldens: our ImageNet-C corruptions against the reference `imagecorruptions` 1.1.2 (the release's
code, re-packaged), pixel for pixel where the reference is deterministic given its random draws
(the draws it made injected into ours), by mean SSIM to the clean photo where the draws cannot be
shared; ours is the native transform where its recipe is imagecorruptions' (the noises, fog,
brightness, contrast, saturate, defocus_blur, glass_blur), the NAME_ic variant where the native
recipe is the testbed's (tests/test_testbed_goldens.py), and the release's frost
(transforms/_release.py); and the release recipe against PIL, scipy and OpenCV transcriptions of
make_imagenet_c.py.

The reference runs in its own virtual environment (benchmarks/corruptions_reference.py says how to
make it); the tests that need it skip without it. It is looked for at $ROBUSTBENCH_LITE_REF_PYTHON,
or .venv-ref/ of this checkout.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from robustbench_lite.conditions.registry import get_transform
from robustbench_lite.conditions.rng import PhotoRNG, photo_seed
from transforms import _release
from transforms.corruptions_noise import GAUSSIAN_NOISE_STD, SPECKLE_NOISE_STD
from transforms.corruptions_weather import SNOW_PARAMS, SPATTER_PARAMS

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "imagenet-sample"
SEVERITIES = (1, 2, 3, 4, 5)
PHOTOS = 3
WITHIN = 0.995  # of pixels within 1/255 of the reference
GOLDEN_SCALE = 100  # as benchmarks/corruptions_reference.py stores them
SSIM_TOLERANCE = 0.01


def reference_python() -> Path | None:
    candidates = [os.environ.get("ROBUSTBENCH_LITE_REF_PYTHON", "")]
    candidates += [REPO / ".venv-ref" / "bin" / "python"]
    return next((Path(c) for c in candidates if c and Path(c).exists()), None)


# What the reference draws, turned into the draws ours asks for, in order (one photo).
def _normal_as_standard(draws, scale):
    return [(draws[0] / scale).transpose(2, 0, 1)]


def _snow(draws, severity):
    loc, spread, zoom = SNOW_PARAMS[severity - 1][:3]
    side = math.ceil(224 / zoom)  # ours draws only the centre that the reference's zoom keeps
    top = (224 - side) // 2
    return [((draws[0] - loc) / spread)[None, top : top + side, top : top + side], draws[1]]


def _spatter(draws, severity):
    loc, spread = SPATTER_PARAMS[severity - 1][:2]
    return [((draws[0] - loc) / spread)[None]]


OURS = {  # imagecorruptions' name -> ours with its recipe (a name: a registered transform)
    "motion_blur": "motion_blur_ic", "zoom_blur": "zoom_blur_ic", "gaussian_blur": "gaussian_blur_ic",
    "snow": "snow_ic", "spatter": "spatter_ic", "elastic_transform": "elastic_transform_ic", "pixelate": "pixelate_ic",
    "jpeg_compression": "jpeg_compression_ic",
}  # fmt: skip
# frost is not compared with imagecorruptions: it enlarges the frost photo by 1.1 (bicubic) before
# cropping, the release crops the photo as it is (test_release_frost_follows_make_imagenet_c).


def _glass(draws, severity):
    _, delta, iterations = _release.GLASS_RELEASE[severity - 1]
    return [draws[0].reshape(iterations, 224 - 2 * delta, 224 - 2 * delta, 2)]


INJECT = {  # name -> function(reference draws, severity) -> ours; None: no draws
    "brightness": None, "contrast": None, "saturate": None, "pixelate": None, "jpeg_compression": None,
    "defocus_blur": None, "zoom_blur": None, "gaussian_blur": None,
    "gaussian_noise": lambda d, s: _normal_as_standard(d, GAUSSIAN_NOISE_STD[s - 1]),
    "speckle_noise": lambda d, s: _normal_as_standard(d, SPECKLE_NOISE_STD[s - 1]),
    "motion_blur": lambda d, s: d,
    "fog": lambda d, s: d,
    "elastic_transform": lambda d, s: [np.stack(d)],
    "snow": _snow,
    "spatter": _spatter,
    "glass_blur": _glass,
}  # fmt: skip
DISTRIBUTION = {
    "shot_noise": "Poisson draws: torch's sampler cannot take numpy's",
    "impulse_noise": "scikit-image's random_noise draws from its own unseeded generator",
}
# Where ours cannot reach 1/255 on 99.5 % of pixels: (border px left out, severities checked as
# they are, why); what is left is held to 1/255 on 99.5 %. Measured on 3 shared photos.
KNOWN_GAPS = {
    "elastic_transform": (8, (), (
        "edges: ours smooths the noise with edges mirrored about the edge pixel (F.pad reflect) and "
        "warps with grid_sample reflection about the edge pixel, the reference mirrors about the edge "
        "itself (scipy 'reflect') in both; 95.5-97.1 % of values within 1/255 (max 173 levels, at the "
        "edges), beyond 8 px of the edges 100 % (max 0.04)"
    )),
    "snow": (12, (2, 3), (
        "edges: ours cuts the zoomed flake layer to 224 px before the streak blur, the reference "
        "streaks the 225-227 px layer and cuts after, so streaks differ within a streak length of "
        "the edges (and ours leaves out the reference's 8-bit rounding of the flake layer, <= 1 "
        "level); 99.1-99.7 % within 1/255 at severities 1, 4, 5 (max 144 levels), beyond 12 px "
        "99.98-100 %; severities 2 and 3 100 % as they are"
    )),
}
SSIM_GAPS: dict[str, tuple[float, str]] = {}  # name: (tolerance, why) where mean SSIM cannot come within SSIM_TOLERANCE


class ScriptedRNG:
    """A one-photo stand-in for PhotoRNG that hands out given draws, in order."""

    def __init__(self, draws):
        self.draws = [np.asarray(d) for d in draws]
        self.device = torch.device("cpu")

    def __len__(self):
        return 1

    def _next(self, shape):
        assert self.draws, "ours asked for more draws than the reference made"
        draw = self.draws.pop(0)
        assert tuple(draw.shape) == tuple(shape), f"draw of shape {draw.shape}, ours asks {shape}"
        return torch.from_numpy(np.ascontiguousarray(draw))[None]

    def randn(self, *shape):
        return self._next(shape)

    def rand(self, *shape):
        return self._next(shape)

    def uniform(self, low, high, *shape):
        return self._next(shape)

    def randint(self, low, high, *shape):
        return self._next(shape).long()


@pytest.fixture(scope="module")
def goldens(tmp_path_factory):
    """Run the reference once on 3 shared photos (about 20 s); its outputs, draws and SSIMs."""
    python = reference_python()
    if python is None:
        pytest.skip("no reference environment (.venv-ref with imagecorruptions 1.1.2); see benchmarks/README.md")
    if not (SAMPLE / "MANIFEST.csv").exists():
        pytest.skip(f"shared photos not found at {SAMPLE}")
    folder = tmp_path_factory.mktemp("goldens")
    script = REPO / "benchmarks" / "corruptions_reference.py"
    command = [sys.executable, str(script), "--goldens", str(folder), "--photos", str(PHOTOS), "--ref-python", str(python)]
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    clean = np.load(folder / "clean.npz")
    yield {"folder": folder, "photos": clean["photos"], "ids": list(clean["ids"]),
           "ssim": json.loads((folder / "ssim.json").read_text())}  # fmt: skip
    shutil.rmtree(folder, ignore_errors=True)  # about 110 MB of outputs and draws


def reference(goldens, name):
    return np.load(goldens["folder"] / f"{name}.npz")


def photo_draws(arrays, severity, i):
    keys = sorted((k for k in arrays.files if k.startswith(f"draw:{severity}:{i}:")), key=lambda k: int(k.split(":")[3]))
    return [arrays[k] for k in keys]


def as_batch(photos: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(photos).permute(0, 3, 1, 2).float().div(255)


def agreement(ours: torch.Tensor, theirs: np.ndarray, border: int = 0) -> tuple[float, float]:
    """(max |difference| in levels, fraction of values within one level) of ours in [0, 1]
    against the reference's float output in [0, 255], clipped as its uint8 cut clips; `border`
    px at every edge left out."""
    difference = np.abs(ours.permute(0, 2, 3, 1).double().numpy() * 255 - theirs)
    if border:
        difference = difference[:, border:-border, border:-border]
    return float(difference.max()), float((difference <= 1 + 1e-6).mean())


def pixel_results(goldens, name, border: int = 0):
    """Per severity: (max difference, fraction within 1/255) over the photos, draws injected."""
    arrays = reference(goldens, name)
    ours_name = OURS.get(name, name)
    spec = get_transform(ours_name) if isinstance(ours_name, str) else None
    results = {}
    for severity in SEVERITIES:
        assert f"error:{severity}" not in arrays.files, str(arrays[f"error:{severity}"])
        theirs = arrays[f"out:{severity}"].astype(np.float64) / GOLDEN_SCALE
        outs = []
        for i, photo in enumerate(goldens["photos"]):
            draws = photo_draws(arrays, severity, i)
            inject = INJECT[name]
            rng = ScriptedRNG(inject(draws, severity) if inject else [])
            if spec is None:
                outs.append(ours_name(as_batch(photo[None]), severity, rng))
            else:
                outs.append(spec(as_batch(photo[None]), spec.severities[severity - 1], rng))
            assert not rng.draws, f"{name}@{severity}: ours left reference draws unused"
        results[severity] = agreement(torch.cat(outs), theirs, border)
    return results


@pytest.mark.parametrize("name", sorted(INJECT))
def test_matches_the_reference_pixel_for_pixel(goldens, name):
    """Within 1/255 on 99.5 % of values at every severity; a known gap is held to that away from
    the edges it names (or once its named cause is put in), and as it is where it has none."""
    border, exact, _ = KNOWN_GAPS.get(name, (0, SEVERITIES, ""))
    whole = pixel_results(goldens, name)
    rest = pixel_results(goldens, name, border) if name in KNOWN_GAPS else whole
    for severity in SEVERITIES:
        largest, within = whole[severity] if severity in exact else rest[severity]
        assert within >= WITHIN, f"{name}@{severity}: {within:.4%} within 1/255, max {largest:.2f} levels"


def mean_ssim(x: torch.Tensor, clean: torch.Tensor) -> float:
    pairs = zip(x.permute(0, 2, 3, 1).numpy(), clean.permute(0, 2, 3, 1).numpy())
    return float(np.mean([structural_similarity(a, b, channel_axis=-1, data_range=1.0) for a, b in pairs]))


def ssim_results(goldens, name):
    """Per severity: (ours, reference's) mean SSIM to the clean photos, ours seeded as a run."""
    spec = get_transform(name)
    clean = as_batch(goldens["photos"])
    results = {}
    for severity in SEVERITIES:
        ours = []
        for run_seed in range(1):
            rng = PhotoRNG([photo_seed(run_seed, name, severity, i) for i in goldens["ids"]])
            ours.append(mean_ssim(spec(clean, spec.severities[severity - 1], rng), clean))
        results[severity] = (float(np.mean(ours)), goldens["ssim"][f"{name}@{severity}"])
    return results


@pytest.mark.parametrize("name", sorted(DISTRIBUTION))
def test_distribution_only_by_mean_ssim(goldens, name):
    tolerance = SSIM_GAPS.get(name, (SSIM_TOLERANCE, ""))[0]
    for severity, (ours, theirs) in ssim_results(goldens, name).items():
        assert abs(ours - theirs) <= tolerance, f"{name}@{severity}: SSIM ours {ours:.4f}, reference {theirs:.4f}"


# --------------------------------------------- the release recipe, no reference environment needed


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """3 shared photos, Resize(256, bicubic) + CenterCrop(224), uint8 (N, 224, 224, 3)."""
    if not (SAMPLE / "MANIFEST.csv").exists():
        pytest.skip(f"shared photos not found at {SAMPLE}")
    sys.path.insert(0, str(REPO / "benchmarks"))
    from corruptions_reference import load_photos

    return load_photos(PHOTOS)[0]


def test_release_pixelate_is_pil_box_down_and_up(photos):
    from PIL import Image

    for severity, factor in zip(SEVERITIES, _release.PIXELATE_RELEASE):
        ours = torch.round(_release.release_corruption("pixelate", as_batch(photos), severity, None) * 255)
        for image, mine in zip(photos, ours.permute(0, 2, 3, 1).numpy()):
            small = Image.fromarray(image).resize((int(224 * factor),) * 2, Image.BOX)
            np.testing.assert_array_equal(mine, np.asarray(small.resize((224, 224), Image.BOX)))


def test_release_zoom_blur_trims_the_zooms_symmetrically(photos):
    from scipy.ndimage import zoom

    image = photos[0].astype(np.float32) / 255
    for severity in (1, 3, 5):
        total = image.copy()
        for factor in _release.ZOOM_RELEASE[severity - 1]:
            side = int(np.ceil(224 / factor))
            top = (224 - side) // 2
            zoomed = zoom(image[top : top + side, top : top + side], (factor, factor, 1), order=1)
            trim = (zoomed.shape[0] - 224) // 2
            total += zoomed[trim : trim + 224, trim : trim + 224]
        expected = np.clip(total / (len(_release.ZOOM_RELEASE[severity - 1]) + 1), 0, 1)
        ours = _release._zoom(as_batch(photos[:1]), severity, None)[0].permute(1, 2, 0).numpy()
        assert np.abs(ours - expected).max() < 1e-4


def release_elastic_transcription(image: np.ndarray, moves, noise, severity) -> np.ndarray:
    """make_imagenet_c.py's elastic_transform, given its draws (today's OpenCV and scipy)."""
    import cv2
    from scipy.ndimage import gaussian_filter, map_coordinates

    alpha, sigma, _ = _release.ELASTIC_RELEASE[severity - 1]
    image = image.astype(np.float32) / 255
    centre, half = np.float32(image.shape[:2]) // 2, min(image.shape[:2]) // 3
    points = np.float32([centre + half, [centre[0] + half, centre[1] - half], centre - half])
    matrix = cv2.getAffineTransform(points, points + moves.astype(np.float32))
    image = cv2.warpAffine(image, matrix, image.shape[1::-1], borderMode=cv2.BORDER_REFLECT_101)
    dx, dy = ((gaussian_filter(n, sigma, mode="reflect", truncate=3) * alpha).astype(np.float32) for n in noise)
    rows, cols = np.meshgrid(np.arange(image.shape[0]), np.arange(image.shape[1]), indexing="ij")
    channels = [map_coordinates(image[..., c], (rows + dy, cols + dx), order=1, mode="reflect") for c in range(3)]
    return np.clip(np.stack(channels, -1), 0, 1) * 255


def test_release_elastic_follows_make_imagenet_c(photos):
    """Ours emulates the 1/32 px coordinate grid of the OpenCV the release ran (OpenCV 5 samples
    float images at exact positions): up to 2.6 levels apart at sharp edges, 99.8 % within one."""
    for severity in SEVERITIES:
        _, _, wobble = _release.ELASTIC_RELEASE[severity - 1]
        seeds = [photo_seed(0, "elastic_transform", severity, str(i)) for i in range(PHOTOS)]
        ours = _release._elastic(as_batch(photos), severity, PhotoRNG(seeds))
        draws = PhotoRNG(seeds)
        moves, noise = draws.uniform(-wobble, wobble, 3, 2).numpy(), draws.uniform(-1, 1, 2, 224, 224).double().numpy()
        expected = np.stack([release_elastic_transcription(p, m, n, severity) for p, m, n in zip(photos, moves, noise)])
        largest, within = agreement(ours, expected)
        assert within >= WITHIN and largest < 4, f"elastic@{severity}: {within:.4%} within 1/255, max {largest:.2f}"


def test_release_corruption_covers_all_nineteen_cut_to_eight_bits(photos):
    x = as_batch(photos[:2])
    assert len(_release.OURS) == 19 and set(_release.RELEASE_NOTES) == set(_release.OURS)
    for name in _release.OURS:
        seeds = [photo_seed(0, name, 3, str(i)) for i in range(2)]
        out = _release.release_corruption(name, x, 3, PhotoRNG(seeds))
        assert out.shape == x.shape and out.dtype == torch.float32
        assert torch.equal(torch.round(out * 255) / 255, out) and out.min() >= 0 and out.max() <= 1
        if _release.RELEASE_NOTES[name] == _release.SAME:  # ours, cut to 8 bits as the release cut it
            spec = get_transform(name)
            native = spec(x, spec.severities[2], PhotoRNG(seeds))
            assert torch.equal(out, _release.truncate(native))
    with pytest.raises(ValueError):
        _release.release_corruption("elastic", x, 3, PhotoRNG([0, 1]))
    with pytest.raises(ValueError):
        _release.release_corruption("fog", x, 6, PhotoRNG([0, 1]))


def test_release_frost_follows_make_imagenet_c(photos):
    """make_imagenet_c.py's frost, given its draws (np.random.randint(5), then the window's starts
    randint(0, size - 224)), on the frost photos read as it reads them (cv2.imread, BGR to RGB):
    ours turns the same choices, handed over as uniforms, into the same 8-bit photo."""
    import json

    import cv2

    from transforms._frost import frost_file

    meta = json.loads((REPO / "transforms" / "frost" / "frost.json").read_text())["photos"]
    names = list(meta)
    for severity in SEVERITIES:
        c = ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))[severity - 1]
        for i, image in enumerate(photos):
            index = (i + severity) % 5
            frost = cv2.imread(str(frost_file(names[index])))
            top, left = (7 * severity + 31 * i) % (frost.shape[0] - 224), (13 * severity + 17 * i) % (frost.shape[1] - 224)
            window = frost[top : top + 224, left : left + 224][..., [2, 1, 0]]
            expected = np.uint8(np.clip(c[0] * image + c[1] * window, 0, 255))
            u = np.array([(index + 0.5) / 5, (top + 0.5) / (frost.shape[0] - 224), (left + 0.5) / (frost.shape[1] - 224)])
            ours = _release.release_corruption("frost", as_batch(image[None]), severity, ScriptedRNG([u]))
            np.testing.assert_array_equal(_release.as_uint8(ours)[0].permute(1, 2, 0).numpy(), expected)
