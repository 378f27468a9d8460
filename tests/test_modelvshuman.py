"""The modelvshuman family against references written here from stimulus_generation.md.

Each reference is plain numpy/scipy/skimage on float64 images, step by step as
rgeirhos/generalisation-humans-DNNs code/image_manipulation.py makes model-vs-human's stimuli;
the random ones use the same per-photo generator draws as the transform.
"""
from __future__ import annotations

import ast
import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage.color import rgb2gray

from robustbench_lite.analysis import humans
from robustbench_lite.conditions.registry import all_transforms, get_transform
from robustbench_lite.conditions.rng import PhotoRNG, photo_seed

from conftest import REPO

MODULE = REPO / "transforms" / "modelvshuman.py"
DATA = REPO / "robustbench_lite" / "human_data"
SPECS = [s for s in all_transforms() if s.family == "modelvshuman"]
NAMES = {"mvh_greyscale", "mvh_contrast", "low_pass", "high_pass", "phase_scramble", "uniform_noise",
         "power_equalisation", "false_colour", "mvh_rotation"}
TOL = 1e-3
BG = 0.4423
MEASURED: dict[str, float] = {}


def _photo_224(path: Path) -> np.ndarray:
    picture = Image.open(path).convert("RGB")
    w, h = picture.size
    size = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
    picture = picture.resize(size, Image.BICUBIC)
    left, top = int(round((size[0] - 224) / 2.0)), int(round((size[1] - 224) / 2.0))
    return np.asarray(picture.crop((left, top, left + 224, top + 224)))


@pytest.fixture(scope="module")
def photos(shared_sample) -> tuple[list[str], np.ndarray, torch.Tensor]:
    """(ids, uint8 (4, 224, 224, 3), float batch (4, 3, 224, 224)) of four colour photos."""
    with open(shared_sample / "MANIFEST.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["mode"] == "RGB"]
    chosen = rows[:: len(rows) // 4][:4]
    pixels = np.stack([_photo_224(shared_sample / r["path"]) for r in chosen])
    batch = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(255)
    return [Path(r["path"]).stem for r in chosen], pixels, batch


def _rng(name: str, number: int, ids: list[str], run_seed: int = 3) -> PhotoRNG:
    return PhotoRNG([photo_seed(run_seed, name, number, i) for i in ids])


# --- references (numpy, float64, one photo at a time) ---------------------------------------


def ref_contrast(img, c):
    return (1 - c) / 2.0 + rgb2gray(img) * c


def ref_low_pass(img, std):
    if std == 0:
        return rgb2gray(img)
    return np.clip(gaussian_filter(rgb2gray(img), std, mode="constant", cval=BG), 0, 1)


def ref_high_pass(img, std):
    image = rgb2gray(img)
    if math.isinf(std):
        return image
    new = image - gaussian_filter(image, std, mode="constant", cval=BG)
    new = new + (BG - np.mean(new, axis=(0, 1)))
    return np.clip(new, 0, 1)


def ref_uniform_noise(img, noise):
    return np.clip(ref_contrast(img, 0.3) + noise, 0, 1)


def ref_phase_scramble(img, uniform01, width):
    shifts = (uniform01 - 0.5) * 2 * width / 180 * np.pi
    f = np.fft.fftshift(np.fft.fft2(rgb2gray(img)))
    amp, phase = np.abs(f), np.angle(f)
    block = phase[1:, 1:]
    flat = block.flatten()
    n = flat.shape[0]
    flat[: n // 2] += shifts
    flat[n // 2 + 1 :] -= shifts
    phase[1:, 1:] = flat.reshape(block.shape)
    return np.clip(np.fft.ifft2(np.fft.ifftshift(amp * np.exp(1j * phase))).real, 0, 1)


def ref_power_equalisation(img, spectrum):
    f = np.fft.fftshift(np.fft.fft2(rgb2gray(img)))
    new = np.fft.ifft2(np.fft.ifftshift(spectrum * np.exp(1j * np.angle(f)))).real
    return np.clip(new, 0, 1)


def ref_false_colour(pixels_uint8, gamma):
    image_nl = gamma[pixels_uint8]  # monitor_nonlinearity on 8-bit values
    m = np.array([[0.1619982647, 0.208049264, 0.0389347448],
                  [0.0330275785, 0.2496504557, 0.0618343518],
                  [0.0015524055, 0.0198861001, 0.1890224274]])
    white = [0.20449114, 0.17225619, 0.10523047]
    n = np.array([[9.27590805, 9.27590805, 0], [7.86421647, -9.33587662, 0],
                  [-3.39709047, -3.39709047, 12.16230246]])
    dkl = np.einsum("ij,klj->kli", n, np.einsum("ij,klj->kli", m, image_nl) - white)
    dkl[:, :, 1] *= -1
    dkl[:, :, 2] *= -1
    cones = np.einsum("ij,klj->kli", np.linalg.inv(n), dkl) + white
    rgb = np.clip(np.einsum("ij,klj->kli", np.linalg.inv(m), cones), 0, 1)
    flat = rgb.reshape(-1)
    idx = np.concatenate([np.abs(chunk[:, None] - gamma[None, :]).argmin(axis=1)
                          for chunk in np.array_split(flat, 64)])
    return idx.reshape(rgb.shape) / 255


def _as_hwc(out: torch.Tensor, i: int) -> np.ndarray:
    return out[i].permute(1, 2, 0).double().numpy()


def _check(name: str, out: torch.Tensor, references: list[np.ndarray]) -> float:
    worst = 0.0
    for i, ref in enumerate(references):
        ours = _as_hwc(out, i)
        ref3 = ref if ref.ndim == 3 else np.repeat(ref[:, :, None], 3, axis=2)
        worst = max(worst, float(np.abs(ours - ref3).max()))
    MEASURED[name] = max(MEASURED.get(name, 0.0), worst)
    print(f"{name}: max |ours - reference| = {worst:.2e}")
    assert worst <= TOL, (name, worst)
    return worst


# --- registry shape -------------------------------------------------------------------------


def test_family_has_exactly_their_transforms_and_levels():
    assert {s.name for s in SPECS} == NAMES
    assert sum(len(s.severities) for s in SPECS) >= 40
    table = humans.human_table()
    for spec in SPECS:
        assert "level" in spec.params and spec.description, spec.name
        experiment = humans.TRANSFORM_EXPERIMENTS[spec.name]
        rows = table[table["experiment"] == experiment]
        matched = [humans.human_condition(spec.name, level) for level in spec.severities]
        assert sorted(c for _, c in matched) == sorted(rows["condition"]), spec.name  # one to one
        numeric = rows["condition_value"].dropna().tolist()
        if numeric:
            assert list(spec.severities) == numeric, spec.name  # level == condition_value, in order
    assert get_transform("contrast").family == "corruptions"  # ImageNet-C's contrast keeps its name


def test_module_is_written_like_a_plugin_and_small():
    source = MODULE.read_text()
    assert len(source.splitlines()) < 400
    imported = {n.module for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom)}
    assert {m for m in imported if m and m.startswith("robustbench_lite")} <= {"robustbench_lite", "robustbench_lite.conditions.rng"}
    assert not (REPO / "transforms" / "frequency.py").exists()


# --- each transform at each level against its reference ----------------------------------


@pytest.mark.parametrize("name,reference", [
    ("mvh_contrast", lambda img, level: ref_contrast(img, level / 100)),
    ("low_pass", ref_low_pass),
    ("high_pass", ref_high_pass),
])
def test_deterministic_transforms_match_the_reference(photos, name, reference):
    ids, pixels, batch = photos
    spec = get_transform(name)
    images = pixels / 255.0
    for number, level in enumerate(spec.severities, start=1):
        out = spec(batch, level, _rng(name, number, ids))
        _check(name, out, [reference(img, level) for img in images])


def test_greyscale_matches_skimage_rgb2gray(photos):
    ids, pixels, batch = photos
    spec = get_transform("mvh_greyscale")
    assert torch.equal(spec(batch, 0, _rng("mvh_greyscale", 1, ids)), batch)
    _check("mvh_greyscale", spec(batch, 1, _rng("mvh_greyscale", 2, ids)), [rgb2gray(p / 255.0) for p in pixels])


def test_rotation_is_exactly_np_rot90_of_the_greyscale(photos):
    ids, pixels, batch = photos
    grey = get_transform("mvh_greyscale")(batch, 1, _rng("g", 1, ids)).numpy()
    spec = get_transform("mvh_rotation")
    for number, level in enumerate(spec.severities, start=1):
        out = spec(batch, level, _rng("mvh_rotation", number, ids)).numpy()
        assert np.array_equal(out, np.rot90(grey, int(level) // 90, axes=(2, 3))), level
        _check("mvh_rotation", torch.from_numpy(out), [np.rot90(rgb2gray(p / 255.0), int(level) // 90) for p in pixels])
    sample = np.arange(12.0).reshape(3, 4)
    assert np.array_equal(np.rot90(sample), sample.T[::-1, :])  # their rotate90
    assert np.array_equal(np.rot90(sample, 3), np.transpose(sample[::-1, :]))  # their rotate270


def test_uniform_noise_matches_the_recipe_with_the_same_draws(photos):
    ids, pixels, batch = photos
    spec = get_transform("uniform_noise")
    for number, level in enumerate(spec.severities, start=1):
        out = spec(batch, level, _rng("uniform_noise", number, ids))
        noise = _rng("uniform_noise", number, ids).uniform(-level, level, 224, 224).double().numpy()
        _check("uniform_noise", out, [ref_uniform_noise(p / 255.0, noise[i]) for i, p in enumerate(pixels)])


def test_phase_scramble_matches_scramble_phases_with_the_same_draws(photos):
    ids, pixels, batch = photos
    spec = get_transform("phase_scramble")
    for number, level in enumerate(spec.severities, start=1):
        out = spec(batch, level, _rng("phase_scramble", number, ids))
        draws = _rng("phase_scramble", number, ids).rand(223 * 223 // 2).double().numpy()
        _check("phase_scramble", out, [ref_phase_scramble(p / 255.0, draws[i], level) for i, p in enumerate(pixels)])


def test_power_equalisation_uses_the_bundled_spectrum(photos):
    ids, pixels, batch = photos
    spectrum = np.load(DATA / "mean_amplitude_spectrum.npy").astype(np.float64)
    spec = get_transform("power_equalisation")
    _check("power_equalisation", spec(batch, 0, _rng("p", 1, ids)), [rgb2gray(p / 255.0) for p in pixels])
    out = spec(batch, 1, _rng("power_equalisation", 2, ids))
    _check("power_equalisation", out, [ref_power_equalisation(p / 255.0, spectrum) for p in pixels])
    amplitude = np.abs(np.fft.fftshift(np.fft.fft2(out[:, 0].double().numpy()), axes=(1, 2)))
    assert np.median(amplitude / spectrum) == pytest.approx(1.0, abs=0.05)  # clipping aside


def test_false_colour_matches_the_opponent_recipe(photos):
    ids, pixels, batch = photos
    gamma = np.load(DATA / "monitor_gamma.npy").reshape(-1)
    spec = get_transform("false_colour")
    assert torch.equal(spec(batch, 0, _rng("f", 1, ids)), batch)
    out = spec(batch, 1, _rng("false_colour", 2, ids))
    _check("false_colour", out, [ref_false_colour(p, gamma) for p in pixels])
    assert not torch.allclose(out, batch, atol=0.05)  # colours changed


def test_sigma_scales_with_the_side(photos):
    _, pixels, batch = photos
    big = torch.nn.functional.interpolate(batch[:1], size=(448, 448), mode="nearest")
    image = big[0].permute(1, 2, 0).double().numpy()
    low = get_transform("low_pass")(big, 5, PhotoRNG([0]))
    _check("low_pass", low, [ref_low_pass(image, 10)])
    high = get_transform("high_pass")(big, 1.5, PhotoRNG([0]))
    _check("high_pass", high, [ref_high_pass(image, 3)])


# --- the contract every built-in keeps ----------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_contract_batching_and_seeds(spec, photos):
    ids, _, batch = photos
    for number, level in enumerate(spec.severities, start=1):
        out = spec(batch, level, _rng(spec.name, number, ids))
        assert out.shape == batch.shape and out.dtype == batch.dtype and not torch.isnan(out).any()
        assert out.min() >= 0 and out.max() <= 1
    number, level = len(spec.severities), spec.severities[-1]
    batched = spec(batch, level, _rng(spec.name, number, ids))
    single = torch.cat([spec(batch[i : i + 1], level, _rng(spec.name, number, ids[i : i + 1])) for i in range(4)])
    assert torch.equal(batched, spec(batch, level, _rng(spec.name, number, ids)))
    assert (batched - single).abs().max() <= 1e-6
    other = spec(batch, level, _rng(spec.name, number, ids, run_seed=4))
    changed = (batched - other).abs().amax(dim=(1, 2, 3)) > 1e-3
    assert bool(changed.all()) == ("random" in spec.params), spec.name


def test_non_square_and_tiny_images_keep_the_contract():
    x = torch.rand(3, 3, 31, 57, generator=torch.Generator().manual_seed(1))
    for spec in SPECS:
        for number, level in enumerate(spec.severities, start=1):
            out = spec(x, level, _rng(spec.name, number, ["a", "b", "c"]))
            assert out.shape == x.shape and not torch.isnan(out).any(), (spec.name, level)
            assert out.min() >= 0 and out.max() <= 1, (spec.name, level)
    turned = get_transform("mvh_rotation")(x, 180, PhotoRNG([0, 1, 2]))
    assert torch.equal(turned, get_transform("mvh_greyscale")(x, 1, PhotoRNG([0, 1, 2])).flip(-1, -2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_cuda_agrees_with_cpu(spec, photos):
    ids, _, batch = photos
    for number, level in enumerate(spec.severities, start=1):
        gpu = spec(batch.cuda(), level, PhotoRNG([photo_seed(3, spec.name, number, i) for i in ids], device="cuda"))
        assert gpu.device.type == "cuda" and gpu.min() >= 0 and gpu.max() <= 1
        if "random" not in spec.params:
            cpu = spec(batch, level, _rng(spec.name, number, ids))
            assert (gpu.cpu() - cpu).abs().max() <= TOL, (spec.name, level)


def test_zz_print_measured_differences():
    """Summary line for the report (runs last in this module)."""
    print("measured max differences:", {k: f"{v:.1e}" for k, v in sorted(MEASURED.items())})
