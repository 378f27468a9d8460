"""The ImageNet-C corruptions family on real photos: contract, severity grading, seeding, and
agreement with the reference formulas where the corruption is deterministic."""
from __future__ import annotations

import ast
import csv
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import structural_similarity
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from robustbench_lite.conditions.registry import all_transforms, get_transform
from robustbench_lite.conditions.rng import PhotoRNG, photo_seed
from conftest import SHARED_SAMPLE

REPO = Path(__file__).resolve().parents[1]
SAMPLE = SHARED_SAMPLE
NAMES = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression",
)  # fmt: skip
EXTRAS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")  # ImageNet-C's validation set
ALL = NAMES + EXTRAS
RANDOM = (
    "gaussian_noise", "shot_noise", "impulse_noise", "glass_blur", "motion_blur", "snow", "frost",
    "fog", "elastic_transform", "speckle_noise", "spatter",
)  # fmt: skip
SEVERITIES = (1, 2, 3, 4, 5)
PHOTOS = 20

# Where mean SSIM may rise from one severity to the next by more than 0.005, and why.
SSIM_RISES = {
    # The published snow table is not monotone: severity 3 has far fewer, bigger flakes
    # (threshold 0.9 against 0.5) than severity 2, and the reference's SSIM rises too
    # (0.491 -> 0.536 on the shared photos, benchmarks/README.md).
    ("snow", 2): "published table not monotone",
    # Severity 4 shuffles less than 3 (the reference's sweeps: 2 rounds of +-3 px against 3 of
    # +-2 px) under a little more blur; the reference's SSIM rises as well (0.502 -> 0.510 on 12
    # shared photos, run with scikit-image's channel_axis fix), and ours is matched to it.
    ("glass_blur", 3): "published table not monotone",
    # The testbed's pixelate: 'area' to 134 px and 'nearest' back makes uneven blocks at severity 1,
    # even 2 x 2 blocks at 2 (112 px).
    ("pixelate", 1): "the testbed's area/nearest resampling",
    # The testbed's (and the release's) elastic table: severities 1 and 2 are big random affines
    # (control points moved up to 24 and 49 px), 3-5 small local warps.
    ("elastic_transform", 2): "published table not monotone",
}
NOT_GRADED = {"elastic_transform": "severities 1-2 warp far more than 5 (the published table)"}


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """20 shared photos spread over the sample, Resize(256, bicubic) + CenterCrop(224), (N, 3, H, W)."""
    if not (SAMPLE / "MANIFEST.csv").exists():
        pytest.skip(f"shared photos not found at {SAMPLE}")
    with open(SAMPLE / "MANIFEST.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    batch = []
    for row in rows[:: len(rows) // PHOTOS][:PHOTOS]:
        with Image.open(SAMPLE / row["path"]) as image:
            image = TF.center_crop(TF.resize(image.convert("RGB"), 256, InterpolationMode.BICUBIC), 224)
        batch.append(TF.pil_to_tensor(image))
    return torch.stack(batch).float().div(255)


def seeded(name: str, severity: int, count: int, run_seed: int = 0, first: int = 0) -> PhotoRNG:
    return PhotoRNG([photo_seed(run_seed, name, severity, f"photo{i}") for i in range(first, first + count)])


def corrupt(name: str, severity: int, x: torch.Tensor, run_seed: int = 0, first: int = 0) -> torch.Tensor:
    spec = get_transform(name)
    return spec(x, spec.severities[severity - 1], seeded(name, severity, len(x), run_seed, first))


@pytest.fixture(scope="module")
def outputs(photos) -> dict[tuple[str, int], torch.Tensor]:
    """Every corruption at every severity on the 20 photos, computed once."""
    torch.manual_seed(0)  # nothing may depend on it; the outputs come from PhotoRNG only
    return {(name, severity): corrupt(name, severity, photos) for name in ALL for severity in SEVERITIES}


def test_transform_modules_are_small_and_import_only_the_plug_in_side():
    """No module of transforms/ over 400 lines; robustbench_lite reached only through the face's
    register_transform and PhotoRNG (the plug-in side, as a user's plug-in does), parsed, not imported."""
    modules = sorted((REPO / "transforms").glob("*.py"))
    assert len([m for m in modules if m.name.startswith("corruptions_")]) >= 4
    for path in modules:
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) < 400, f"{path.name}: {len(text.splitlines())} lines"
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
                assert not [n for n in names if n.split(".")[0] == "robustbench_lite"], f"{path.name}: import {names}"
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "robustbench_lite":
                assert node.level == 0
                names = {alias.name for alias in node.names}
                allowed = {"robustbench_lite": {"register_transform", "register_sequence", "PhotoRNG"}, "robustbench_lite.conditions.rng": {"PhotoRNG"}}
                assert names <= allowed.get(node.module, set()), f"{path.name}: from {node.module} import {names}"


def mean_ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    pairs = zip(a.permute(0, 2, 3, 1).numpy(), b.permute(0, 2, 3, 1).numpy())
    return float(np.mean([structural_similarity(p, q, channel_axis=-1, data_range=1.0) for p, q in pairs]))


def test_all_nineteen_are_registered_with_documented_levels_and_their_set():
    specs = {s.name: s for s in all_transforms() if s.family == "corruptions"}
    assert set(specs) == set(ALL)
    assert {n for n, s in specs.items() if s.params["benchmark"] == "imagenet-c"} == set(NAMES)
    assert {n for n, s in specs.items() if s.params["benchmark"] == "imagenet-c-extra"} == set(EXTRAS)
    for name in ALL:
        spec = specs[name]
        assert spec.severities == SEVERITIES
        assert "severity" in spec.params["level"]
        assert spec.description and len(spec.params) >= 2  # the level and the published table


@pytest.mark.parametrize("name", ALL)
def test_output_contract(name, photos, outputs):
    for severity in SEVERITIES:
        out = outputs[name, severity]
        assert out.shape == photos.shape and out.dtype == torch.float32
        assert torch.isfinite(out).all()
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert not torch.equal(out, photos)


@pytest.mark.parametrize("name", ALL)
def test_ssim_falls_with_severity(name, photos, outputs):
    ssim = [mean_ssim(outputs[name, severity], photos) for severity in SEVERITIES]
    for severity, (before, after) in enumerate(zip(ssim, ssim[1:]), start=1):
        if (name, severity) not in SSIM_RISES:
            assert after <= before + 0.005, f"{name}: SSIM {ssim}"
    if name not in NOT_GRADED:
        assert ssim[0] - ssim[-1] >= 0.05, f"{name}: SSIM {ssim}"


@pytest.mark.parametrize("name", ALL)
def test_batch_size_does_not_matter(name, photos, outputs):
    # JPEG runs per photo through libjpeg, deterministic, so it is held to the same tolerance.
    for severity in (1, 5):
        alone = torch.cat([corrupt(name, severity, photos[i : i + 1], first=i) for i in range(len(photos))])
        torch.testing.assert_close(alone, outputs[name, severity], atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", RANDOM)
def test_run_seed_changes_the_output(name, photos, outputs):
    other = corrupt(name, 3, photos[:4], run_seed=1)
    assert (other - outputs[name, 3][:4]).abs().mean() > 1e-3
    again = corrupt(name, 3, photos[:4], run_seed=0)
    torch.testing.assert_close(again, outputs[name, 3][:4], atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("size", [(260, 300), (48, 40)])
def test_any_size_works(name, photos, size):
    x = torch.nn.functional.interpolate(photos[:2], size=size, mode="bilinear", antialias=True).clamp(0, 1)
    for severity in (1, 5):
        out = corrupt(name, severity, x)
        assert out.shape == x.shape and torch.isfinite(out).all()
        assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("name", ["defocus_blur", "motion_blur", "zoom_blur"])
def test_a_severity_means_the_same_at_twice_the_size(name, photos):
    """Pixel sizes scale with the side: corrupting at 448 px and shrinking back is close to 224 px."""
    x = photos[:4]
    big = torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic").clamp(0, 1)
    shrunk = torch.nn.functional.avg_pool2d(corrupt(name, 4, big), 2)
    direct = corrupt(name, 4, x)
    assert (shrunk - direct).abs().mean() < 0.03
    assert (shrunk - direct).abs().mean() < 0.5 * (direct - x).abs().mean()


# ---------------------------------------------- deterministic ones against the reference formulas


def as_uint8_images(x: torch.Tensor) -> list[np.ndarray]:
    return list(x.mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())


def test_brightness_is_the_hsv_value_shift(photos):
    from skimage.color import hsv2rgb, rgb2hsv

    for severity, shift in zip(SEVERITIES, (0.1, 0.2, 0.3, 0.4, 0.5)):
        out = corrupt("brightness", severity, photos[:3]).permute(0, 2, 3, 1).numpy()
        for image, result in zip(photos[:3].permute(0, 2, 3, 1).numpy(), out):
            hsv = rgb2hsv(image.astype(np.float64))
            hsv[..., 2] = np.clip(hsv[..., 2] + shift, 0, 1)
            np.testing.assert_allclose(result, hsv2rgb(hsv), atol=1e-5)


def test_saturate_is_the_hsv_saturation_change(photos):
    from skimage.color import hsv2rgb, rgb2hsv

    images = photos[:2].permute(0, 2, 3, 1).numpy().copy()
    images[0, :8, :8] = 0.5  # grey: no hue, so a shift makes it red as scikit-image's hue 0 does
    images[0, 8:16, :8] = 0.0
    for severity, (gain, shift) in zip(SEVERITIES, ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))):
        out = corrupt("saturate", severity, torch.from_numpy(images).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
        for image, result in zip(images, out):
            hsv = rgb2hsv(image.astype(np.float64))
            hsv[..., 1] = np.clip(hsv[..., 1] * gain + shift, 0, 1)
            np.testing.assert_allclose(result, hsv2rgb(hsv), atol=2e-5)


def test_gaussian_blur_is_the_testbeds_truncated_kernel(photos):
    """Native: the testbed's 2-D kernel of size 4 sigma - 1, 'reflect' (mirror about the edge pixel) edges."""
    from scipy.ndimage import correlate

    for severity, sigma in zip(SEVERITIES, (1, 2, 3, 4, 6)):
        t = np.arange(-((4 * sigma - 1) // 2), (4 * sigma - 1) // 2 + 1)
        kernel = np.exp(-(t**2)[:, None] / (2 * sigma**2) - (t**2)[None, :] / (2 * sigma**2))
        image = photos[0].numpy().astype(np.float64)
        expected = np.stack([correlate(c, kernel / kernel.sum(), mode="mirror") for c in image])
        result = corrupt("gaussian_blur", severity, photos[:1])[0].numpy()
        assert np.abs(result - expected).max() < 1e-5


def test_gaussian_blur_ic_is_skimage_gaussian_per_channel(photos):
    from skimage.filters import gaussian

    for severity, sigma in zip(SEVERITIES, (1, 2, 3, 4, 6)):
        result = corrupt("gaussian_blur_ic", severity, photos[:1])[0].permute(1, 2, 0).numpy()
        expected = gaussian(photos[0].permute(1, 2, 0).numpy().astype(np.float64), sigma=sigma, channel_axis=-1)
        assert np.abs(result - expected).max() < 1e-5


def test_contrast_pulls_each_channel_to_its_mean(photos):
    image = photos[:2].numpy()
    means = image.mean(axis=(2, 3), keepdims=True)
    expected = (image - means) * 0.2 + means  # severity 3
    np.testing.assert_allclose(corrupt("contrast", 3, photos[:2]).numpy(), expected, atol=1e-6)


def test_pixelate_is_area_means_then_nearest(photos):
    """Native (the testbed's): each small pixel the mean of input pixels floor(i in/out) ..
    ceil((i + 1) in/out) - 1, blown up by nearest (source floor(j out/in))."""
    image = photos[0].numpy().astype(np.float64)
    for severity, factor in zip(SEVERITIES, (0.6, 0.5, 0.4, 0.3, 0.25)):
        small_side = int(224 * factor)
        bins = [(i * 224 // small_side, -(-(i + 1) * 224 // small_side)) for i in range(small_side)]
        small = np.array([[image[:, a:b, c:d].mean(axis=(1, 2)) for c, d in bins] for a, b in bins])  # (s, s, 3)
        pick = np.minimum(np.arange(224) * small_side // 224, small_side - 1)
        expected = small[pick][:, pick].transpose(2, 0, 1)
        assert np.abs(corrupt("pixelate", severity, photos[:1])[0].numpy() - expected).max() < 1e-5


def test_pixelate_ic_matches_pil_box_then_nearest(photos):
    for severity, factor in zip(SEVERITIES, (0.6, 0.5, 0.4, 0.3, 0.25)):
        out = corrupt("pixelate_ic", severity, photos[:2])
        for image, result in zip(as_uint8_images(photos[:2]), out):
            pil = Image.fromarray(image).resize((int(224 * factor), int(224 * factor)), Image.BOX)
            expected = np.asarray(pil.resize((224, 224), Image.NEAREST)) / 255
            assert np.abs(result.permute(1, 2, 0).numpy() - expected).max() <= 1 / 255 + 1e-6


def test_jpeg_is_the_testbeds_truncated_rgb_as_bgr_round_trip(photos):
    import cv2

    out = corrupt("jpeg_compression", 3, photos[:2])
    for image, result in zip(photos[:2], out):
        truncated = (image * 255).to(torch.uint8).permute(1, 2, 0).numpy()  # the testbed's .type(torch.uint8)
        _, encoded = cv2.imencode(".jpg", truncated, [cv2.IMWRITE_JPEG_QUALITY, 15])
        expected = cv2.imdecode(encoded, 1).astype(np.float32) / 255  # read back in the order it was written
        np.testing.assert_array_equal(result.permute(1, 2, 0).numpy(), expected)


def test_jpeg_ic_matches_a_pil_round_trip(photos):
    out = corrupt("jpeg_compression_ic", 3, photos[:3])
    for image, result in zip(as_uint8_images(photos[:3]), out):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=15)
        expected = np.asarray(Image.open(buffer)).astype(np.float32) / 255
        assert np.abs(result.permute(1, 2, 0).numpy() - expected).max() <= 1 / 255 + 1e-6


def test_zoom_blur_ic_matches_scipy_zooms(photos):
    from scipy.ndimage import zoom

    image = photos[0].permute(1, 2, 0).numpy()
    factors = np.arange(1, 1.21, 0.02)  # severity 3
    total = image.copy()
    for factor in factors:
        side = int(np.ceil(224 / factor))
        top = (224 - side) // 2
        total += zoom(image[top : top + side, top : top + side], (factor, factor, 1), order=1)[:224, :224]
    expected = np.clip(total / (len(factors) + 1), 0, 1)
    result = corrupt("zoom_blur_ic", 3, photos[:1])[0].permute(1, 2, 0).numpy()
    assert np.abs(result - expected).mean() < 2e-3


def test_defocus_matches_the_reference_disk_filter(photos):
    import cv2

    radius, alias = 6, 0.5  # severity 3: disk of radius 6 on a 17 x 17 grid, 3 x 3 anti-aliasing
    grid = np.arange(-8, 9)
    disk = ((grid[:, None] ** 2 + grid[None, :] ** 2) <= radius**2).astype(np.float32)
    kernel = cv2.GaussianBlur(disk / disk.sum(), ksize=(3, 3), sigmaX=alias)
    image = photos[0].permute(1, 2, 0).numpy()
    expected = np.stack([cv2.filter2D(image[..., c], -1, kernel) for c in range(3)], axis=-1)
    result = corrupt("defocus_blur", 3, photos[:1])[0].permute(1, 2, 0).numpy()
    assert np.abs(result - np.clip(expected, 0, 1)).max() < 0.02


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ALL)
def test_runs_on_the_device_it_is_given(name):
    # Smooth random pictures, so that this runs on a GPU machine without the shared photos.
    noise = torch.rand(4, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    x = torch.nn.functional.interpolate(noise, size=(224, 224), mode="bicubic").clamp(0, 1).cuda()
    spec = get_transform(name)
    rng = PhotoRNG([photo_seed(0, name, 5, f"photo{i}") for i in range(4)], device="cuda")
    out = spec(x, spec.severities[-1], rng)
    assert out.device == x.device and out.shape == x.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
