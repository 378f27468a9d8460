"""Plug-ins: files, folders, entry points and albumentations/torchvision spec strings."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robustbench_lite.conditions.adapters import parse_spec, register_spec_transform
from robustbench_lite.errors import ConditionFailed, UserError
from robustbench_lite.conditions.plugins import (
    load_entry_point_plugins,
    load_plugin_dir,
    load_plugin_file,
    load_plugins,
)
from robustbench_lite.conditions.registry import all_transforms, get_transform, unregister_transform
from robustbench_lite.conditions.selection import select_transforms, split_transform_tokens
from robustbench_lite.conditions.rng import PhotoRNG
from conftest import SHARED_SAMPLE

HERE = Path(__file__).resolve().parent
PLUGINS = HERE / "plugins_data"
SAMPLE = SHARED_SAMPLE

GAUSS_NOISE = "albu:GaussNoise(std_range=(0.2, 0.2))"
ROTATION = "tv:RandomRotation(degrees=30)"
BLUR = "tv:GaussianBlur(kernel_size=9, sigma=3.0)"


@pytest.fixture(autouse=True)
def clean_registry():
    """Unregister whatever a test registered, so tests never leak transforms."""
    before = {s.name for s in all_transforms()}
    yield
    for spec in all_transforms():
        if spec.name not in before:
            unregister_transform(spec.name)


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """Four real ImageNet photos as a float batch in [0, 1] at 224 px."""
    paths = sorted(SAMPLE.glob("*/*.JPEG"))[:4]
    arrays = [np.array(Image.open(p).convert("RGB").resize((224, 224), Image.BILINEAR)) for p in paths]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0


def _write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text("from robustbench_lite import register_transform\n" + body)
    return path


def _error(call, *args) -> str:
    with pytest.raises(UserError) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- plug-in files and folders ------------------------------------------------------------------


def test_plugin_file_registers_a_working_transform(photos):
    load_plugin_file(PLUGINS / "invert_colours.py")
    spec = get_transform("invert_colours")
    assert spec.severities == (1.0,)
    assert spec.description == "Photographic negative: every channel becomes 1 - value."
    out = spec(photos, 1.0, PhotoRNG(range(4)))
    assert torch.equal(out, 1.0 - photos)
    assert abs(out.mean().item() - (1.0 - photos.mean().item())) < 1e-6


def test_loading_a_file_twice_is_harmless(photos):
    first = load_plugin_file(PLUGINS / "invert_colours.py")
    second = load_plugin_file(str(PLUGINS / "invert_colours.py"))
    assert first.__name__ == second.__name__
    assert torch.equal(get_transform("invert_colours")(photos, 1.0, PhotoRNG(range(4))), 1.0 - photos)
    unregister_transform("invert_colours")
    load_plugin_file(PLUGINS / "invert_colours.py")  # re-registers after an unregister
    assert get_transform("invert_colours").family == "test_plugins"


def test_plugin_dir_loads_every_public_file(photos):
    modules = load_plugin_dir(PLUGINS / "plugin_dir")
    assert [Path(m.__file__).name for m in modules] == ["channel_swap.py", "darken.py"]
    assert torch.equal(get_transform("plugdir_swap_rb")(photos, 1.0, PhotoRNG(range(4))), photos.flip(1))
    darken = get_transform("plugdir_darken")
    assert darken.severities == (0.2, 0.4, 0.6, 0.8, 0.9)
    assert torch.allclose(darken(photos, 0.4, PhotoRNG(range(4))), photos * 0.6)


def test_load_plugins_loads_files_and_dirs_in_order():
    loaded = load_plugins(files=[PLUGINS / "invert_colours.py"], dirs=[PLUGINS / "plugin_dir"], entry_points=False)
    assert [Path(p).name for p in loaded] == ["channel_swap.py", "darken.py", "invert_colours.py"]
    assert {"invert_colours", "plugdir_darken", "plugdir_swap_rb"} <= {s.name for s in select_transforms(["test_plugins"])}


def test_missing_file_and_folder_are_user_errors(tmp_path):
    assert "nope.py not found" in _error(load_plugin_file, tmp_path / "nope.py")
    assert "not found" in _error(load_plugin_dir, tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("hello")
    assert "not a .py file" in _error(load_plugin_file, tmp_path / "notes.txt")


def test_name_clash_names_the_file(tmp_path):
    load_plugin_file(PLUGINS / "invert_colours.py")
    clash = _write(tmp_path, "clash.py", (
        "@register_transform('invert_colours', family='mine', severities=(1.0,))\n"
        "def other(x, level, rng):\n    return x\n"
    ))
    message = _error(load_plugin_file, clash)
    assert str(clash) in message and "clashes" in message


def test_import_failure_names_the_file_and_cause(tmp_path):
    broken = _write(tmp_path, "broken.py", "import no_such_module_for_robustbench\n")
    message = _error(load_plugin_file, broken)
    assert str(broken) in message and "ModuleNotFoundError" in message
    assert not any(getattr(m, "__file__", None) == str(broken) for m in list(sys.modules.values()))


def test_runtime_error_at_import_names_the_file(tmp_path):
    failing = _write(tmp_path, "failing.py", "raise RuntimeError('cannot start\\nsecond line')\n")
    assert _error(load_plugin_file, failing) == f"plug-in file {failing}: RuntimeError: cannot start"


def test_syntax_error_names_the_file_and_line(tmp_path):
    bad = _write(tmp_path, "bad_syntax.py", "def oops(:\n    pass\n")
    message = _error(load_plugin_file, bad)
    assert str(bad) in message and "syntax error at line 2" in message


def test_wrong_signature_names_the_file(tmp_path):
    wrong = _write(tmp_path, "wrong_signature.py", (
        "@register_transform('one_arg', family='mine', severities=(1.0,))\n"
        "def one_arg(x):\n    return x\n"
    ))
    message = _error(load_plugin_file, wrong)
    assert str(wrong) in message and "fn(x, level, rng)" in message


def test_a_failing_file_in_a_folder_stops_the_load(tmp_path):
    _write(tmp_path, "a_good.py", "@register_transform('tmp_good', family='mine', severities=(1.0,))\n"
                                  "def good(x, level, rng):\n    return x\n")
    bad = _write(tmp_path, "b_bad.py", "1/0\n")
    assert f"{bad}: ZeroDivisionError" in _error(load_plugin_dir, tmp_path)


def test_the_guide_example_works(tmp_path, photos):
    guide = (HERE.parent / "docs" / "plugins.md").read_text()
    code = guide.split("```python\n", 1)[1].split("```", 1)[0]
    load_plugin_file(_write(tmp_path, "occlusion.py", code))
    occlusion = get_transform("occlusion")
    assert occlusion.severities == (0.1, 0.2, 0.3, 0.4, 0.5)
    seeds = [5, 6, 7, 8]
    out = occlusion(photos, 0.3, PhotoRNG(seeds))
    assert out.shape == photos.shape
    grey = (out == 0.5).all(dim=1) & (photos != 0.5).any(dim=1)
    assert grey.sum(dim=(1, 2)).tolist() == [67 * 67] * 4  # round(0.3 * 224) = 67 px square
    assert torch.equal(occlusion(photos[2:3], 0.3, PhotoRNG(seeds[2:3]))[0], out[2])
    assert not torch.equal(occlusion(photos, 0.3, PhotoRNG([1, 2, 3, 4])), out)


# --- entry points ---------------------------------------------------------------------------------


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """The `fakeplug` distribution (dist-info + module) installed on sys.path for one test."""
    shutil.copytree(PLUGINS / "fakeplug", tmp_path, dirs_exist_ok=True)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("fakeplug_mod", None)


def test_entry_points_register_module_and_callable(fake_distribution, photos):
    loaded = load_entry_point_plugins()
    assert "entry point 'fakeplug_module' (fakeplug_mod) of fakeplug 0.1" in loaded
    assert "entry point 'fakeplug_register' (fakeplug_mod:register) of fakeplug 0.1" in loaded
    rng = PhotoRNG(range(4))
    assert torch.equal(get_transform("fakeplug_halve")(photos, 1.0, rng), photos * 0.5)
    assert get_transform("fakeplug_black")(photos, 1.0, rng).abs().max().item() == 0.0
    load_entry_point_plugins()  # again: harmless


def test_load_plugins_includes_entry_points(fake_distribution):
    loaded = load_plugins(files=[PLUGINS / "invert_colours.py"])
    assert any("fakeplug 0.1" in item for item in loaded)
    assert loaded[-1] == str(PLUGINS / "invert_colours.py")
    assert not any("fakeplug" in item for item in load_plugins(entry_points=False))


def test_broken_entry_point_names_distribution(fake_distribution):
    info = fake_distribution / "brokenplug-0.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplug\nVersion: 0.2\n")
    (info / "entry_points.txt").write_text("[robustbench_lite.transforms]\nbroken = brokenplug_missing_module\n")
    message = _error(load_entry_point_plugins)
    assert "'broken'" in message and "brokenplug 0.2" in message and "ModuleNotFoundError" in message


# --- albumentations / torchvision specs -----------------------------------------------------------


def test_split_transform_tokens_respects_brackets_and_quotes():
    text = f"greyscale, {GAUSS_NOISE},{BLUR}, tv:Pad(padding=[1, 2], padding_mode='a,b'),"
    assert split_transform_tokens(text) == [
        "greyscale", GAUSS_NOISE, BLUR, "tv:Pad(padding=[1, 2], padding_mode='a,b')",
    ]
    assert split_transform_tokens("borders") == ["borders"]
    assert "unclosed" in _error(split_transform_tokens, "albu:GaussNoise(std_range=(0.2, 0.2)")
    assert "unbalanced" in _error(split_transform_tokens, "a),b")


def test_canonical_names_drop_spaces():
    assert parse_spec(GAUSS_NOISE).canonical == "albu:GaussNoise(std_range=(0.2,0.2))"
    assert parse_spec("albu: GaussNoise( std_range = (0.2,0.2) )").canonical == "albu:GaussNoise(std_range=(0.2,0.2))"
    assert parse_spec(BLUR).canonical == "tv:GaussianBlur(kernel_size=9,sigma=3.0)"
    assert parse_spec("tv:Grayscale").canonical == "tv:Grayscale()"
    assert parse_spec("tv:Pad([1], fill=-0.5)").canonical == "tv:Pad([1],fill=-0.5)"


def test_spec_registration_and_selection():
    names = [s.name for s in select_transforms(f"{GAUSS_NOISE},{BLUR},border_black")]
    assert names == ["albu:GaussNoise(std_range=(0.2,0.2))", "tv:GaussianBlur(kernel_size=9,sigma=3.0)", "border_black"]
    noise, blur = get_transform(names[0]), get_transform(names[1])
    assert (noise.family, noise.severities) == ("albumentations", (1.0,))
    assert (blur.family, blur.severities) == ("torchvision", (1.0,))
    assert "GaussNoise(std_range=(0.2,0.2))" in noise.description
    assert "p=1.0" in noise.params["applied"] and "std_range=(0.2, 0.2)" in noise.params["applied"]
    assert noise.version.startswith("albumentations==2.")
    register_spec_transform(GAUSS_NOISE)  # again: harmless
    assert [s.name for s in select_transforms(names[:2])] == names[:2]


@pytest.mark.parametrize("spec", [GAUSS_NOISE, ROTATION])
def test_random_spec_is_seeded_per_photo(spec, photos):
    transform = register_spec_transform(spec)
    seeds = [11, 12, 13, 14]
    batch = transform(photos, 1.0, PhotoRNG(seeds))
    assert batch.shape == photos.shape and batch.dtype == torch.float32
    assert 0.0 <= batch.min().item() and batch.max().item() <= 1.0
    assert torch.equal(batch, transform(photos, 1.0, PhotoRNG(seeds)))
    for i in range(4):
        alone = transform(photos[i : i + 1], 1.0, PhotoRNG([seeds[i]]))
        assert torch.equal(alone[0], batch[i])
    reseeded = transform(photos, 1.0, PhotoRNG([21, 22, 23, 24]))
    assert (reseeded - batch).abs().mean().item() > 0.01
    assert (batch - photos).abs().mean().item() > 0.05


def test_gauss_noise_has_the_asked_strength(photos):
    noisy = register_spec_transform(GAUSS_NOISE)(photos, 1.0, PhotoRNG(range(4)))
    residual = noisy - photos
    unclipped = (noisy > 0.01) & (noisy < 0.99)
    assert abs(residual[unclipped].std().item() - 0.2) < 0.03


def test_torchvision_blur_smooths_and_leaves_global_rng_alone(photos):
    blur = register_spec_transform(BLUR)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    out = blur(photos, 1.0, PhotoRNG(range(4)))
    assert torch.equal(torch.rand(3), expected)
    gradient = lambda t: (t[..., 1:] - t[..., :-1]).abs().mean().item()  # noqa: E731
    assert gradient(out) < 0.5 * gradient(photos)


def test_size_changing_transform_is_resized_back(photos):
    crop = register_spec_transform("tv:CenterCrop(size=112)")
    out = crop(photos[:2], 1.0, PhotoRNG([1, 2]))
    assert out.shape == (2, 3, 224, 224)
    centre = torch.nn.functional.interpolate(photos[:2, :, 56:168, 56:168], size=(224, 224), mode="bilinear",
                                             antialias=True, align_corners=False)
    assert (out - centre).abs().max().item() < 1e-5


def test_any_size_and_single_channel_output(photos):
    small = torch.nn.functional.interpolate(photos[:2], size=(97, 131), mode="bilinear", antialias=True)
    grey = register_spec_transform("tv:Grayscale(num_output_channels=1)")(small, 1.0, PhotoRNG([1, 2]))
    assert grey.shape == (2, 3, 97, 131)
    assert torch.equal(grey[:, 0], grey[:, 2])
    albu_grey = register_spec_transform("albu:ToGray()")(small, 1.0, PhotoRNG([1, 2]))
    assert (albu_grey - grey).abs().max().item() < 2.5 / 255


def test_non_image_output_is_a_condition_failure(photos):
    five = register_spec_transform("tv:FiveCrop(size=10)")
    with pytest.raises(ConditionFailed, match=r"tv:FiveCrop\(size=10\): returned a tuple"):
        five(photos[:1], 1.0, PhotoRNG([1]))


@pytest.mark.parametrize("spec, fragment", [
    ("albu:GaussNoise(std_range=__import__('os'))", "not a literal"),
    ("tv:GaussianBlur(kernel_size=os.sep)", "not a literal"),
    ("albu:GaussNoise(std_range=(0.2, 0.2).__class__)", "not a literal"),
    ("albu:GaussNoise(std_range=[x for x in (1, 2)])", "not a literal"),
    ("tv:torch.nn.Identity()", "class name called"),
    ("tv:GaussianBlur(kernel_size=9)(1)", "class name called"),
    ("tv:(lambda: 1)()", "class name called"),
    ("tv:GaussianBlur(*[9])", "* and ** arguments"),
    ("albu:NoSuchTransform()", "has no transform 'NoSuchTransform'"),
    ("albu:__class__()", "has no transform"),
    ("tv:functional()", "has no transform"),
    ("albu:GaussNoise(foo=1)", "unexpected keyword argument 'foo'"),
    ("albu:GaussNoise(std_range=5)", "std_range; Input should be a valid tuple"),
    ("tv:GaussianBlur(kernel_size=4)", "odd"),
    ("pil:GaussianBlur(3)", "must start with 'albu:' or 'tv:'"),
    ("tv:GaussianBlur(kernel_size=9", "not of the form"),
])
def test_bad_specs_are_refused(spec, fragment):
    message = _error(register_spec_transform, spec)
    assert fragment in message and spec.partition(":")[2].strip()[:8] in message


def test_spec_arguments_are_never_executed(tmp_path):
    marker = tmp_path / "created"
    _error(register_spec_transform, f"albu:GaussNoise(std_range=open({str(marker)!r}, 'w'))")
    assert not marker.exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_adapter_keeps_the_device(photos):
    x = photos[:2].cuda()
    for spec in (GAUSS_NOISE, ROTATION):
        transform = register_spec_transform(spec)
        out = transform(x, 1.0, PhotoRNG([1, 2], device="cuda"))
        assert out.device == x.device
        assert torch.equal(out.cpu(), transform(photos[:2], 1.0, PhotoRNG([1, 2])))
