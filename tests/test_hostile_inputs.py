"""Hostile photos: broken, exotic and booby-trapped files beside real photos. The run completes, every
decodable photo is evaluated, every other file is listed in the manifest with its reason, --strict
makes a skip an error; load_rgb and DecodeDataset never raise anything but UndecodablePhoto."""
from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import SHARED_SAMPLE, make_subset_folder

from robustbench_lite.data.datasets import Sample
from robustbench_lite.data.decode import DecodeDataset, Geometry, UndecodablePhoto, load_rgb

LITE0 = Geometry((224, 224), 0.875, "bicubic")
ORIENTATION = 0x0112
MODES = ("1", "L", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "LA")
FORMATS = {  # formats Pillow writes each mode in
    "1": ("PNG", "BMP", "TIFF"), "L": ("PNG", "JPEG", "TIFF"), "P": ("PNG", "GIF", "BMP", "TIFF"),
    "RGB": ("PNG", "JPEG", "TIFF", "WEBP"), "RGBA": ("PNG", "TIFF", "WEBP"), "CMYK": ("JPEG", "TIFF"),
    "I;16": ("PNG", "TIFF"), "I": ("TIFF",), "F": ("TIFF",), "LA": ("PNG", "TIFF"),
}
WITH_EXIF = ("PNG", "JPEG", "TIFF", "WEBP")
EXAMPLES = 100


def real_photo(rows: list[dict], i: int = 0) -> Image.Image:
    return Image.open(SHARED_SAMPLE / rows[i]["path"]).convert("RGB")


def exif_rotated_jpeg(photo: Image.Image, path: Path) -> None:
    """The photo stored sideways with EXIF orientation 6 (display rotated 90 degrees clockwise)."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    photo.save(path, "JPEG", quality=95, exif=exif)


def sixteen_bit_png(photo: Image.Image, path: Path) -> None:
    grey = np.asarray(photo.convert("L"), dtype=np.uint16) * 257
    Image.fromarray(grey).save(path)  # mode I;16


def one_bit_png(size: tuple[int, int], path: Path) -> None:
    """A huge solid PNG that costs little to write (one bit a pixel, compressed)."""
    Image.new("1", size, 1).save(path)


def build_hostile_folder(root: Path, rows: list[dict]) -> tuple[set[str], dict[str, str]]:
    """Real photos plus every kind of trouble. Returns (ids that must be evaluated, id -> words its skip reason holds)."""
    make_subset_folder(root, rows[:4])
    a, b = rows[0]["synset"], rows[1]["synset"]
    photo = real_photo(rows)
    evaluated = {r["path"] for r in rows[:4]}

    def add(rel: str, make) -> str:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        make(path)
        return rel

    evaluated |= {
        add(f"{a}/cmyk.JPEG", lambda p: photo.convert("CMYK").save(p, "JPEG")),
        add(f"{a}/sixteen_bit.png", lambda p: sixteen_bit_png(photo, p)),
        add(f"{a}/rgba.png", lambda p: photo.convert("RGBA").save(p)),
        add(f"{a}/grey_alpha.png", lambda p: photo.convert("LA").save(p)),
        add(f"{a}/palette.png", lambda p: photo.quantize(64).save(p)),
        add(f"{a}/palette_transparent.png", lambda p: photo.quantize(64).save(p, transparency=0)),
        add(f"{a}/float.tif", lambda p: Image.fromarray(np.asarray(photo.convert("L"), np.float32) / 255).save(p)),
        add(f"{b}/one_pixel.png", lambda p: Image.new("RGB", (1, 1), (200, 40, 40)).save(p)),
        add(f"{b}/exif_rotated.JPEG", lambda p: exif_rotated_jpeg(photo, p)),
        add(f"{b}/upright.png", lambda p: load_rgb(root / b / "exif_rotated.JPEG").save(p)),
        add(f"{b}/ünïcode photo ✓.JPEG", lambda p: photo.save(p, "JPEG")),
        add(f"{b}/looks_like_a_photo.JPEG/inside.JPEG", lambda p: photo.save(p, "JPEG")),
    }
    data = (SHARED_SAMPLE / rows[2]["path"]).read_bytes()
    expected_skips = {
        add(f"{a}/truncated.JPEG", lambda p: p.write_bytes(data[: len(data) // 2])): "truncated",
        add(f"{a}/empty.JPEG", lambda p: p.write_bytes(b"")): "empty file",
        add(f"{a}/not_an_image.JPEG", lambda p: p.write_text("<html>not a photo</html>")): "not an image",
        add(f"{a}/huge_12000px.png", lambda p: one_bit_png((12000, 12000), p)): "decompression bomb",
        add(f"{b}/fifo.JPEG", lambda p: os.mkfifo(p)): "FIFO",
        add(f"{b}/loop.JPEG", lambda p: p.symlink_to(p)): "loop",
        add(f"{b}/dangling.JPEG", lambda p: p.symlink_to(root / "nowhere.JPEG")): "broken symbolic link",
        add(f"{b}/notes.txt", lambda p: p.write_text("notes")): "not an image file type",
        add(f"{b}/linked_folder", lambda p: p.symlink_to(root / a, target_is_directory=True)): "symbolic link to a folder",
        add("README.txt", lambda p: p.write_text("readme")): "stray file",
        add("stray.JPEG", lambda p: photo.save(p, "JPEG")): "stray file",
    }
    return evaluated, expected_skips


def every_entry(root: Path) -> set[str]:
    """Every file, link and FIFO under root (folders only by what they hold), as ids."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            found.add((Path(dirpath) / name).relative_to(root).as_posix())
    return found


@pytest.fixture(scope="module")
def hostile(shared_manifest, tmp_path_factory):
    if not SHARED_SAMPLE.is_dir():
        pytest.skip("../shared/data/imagenet-sample is not beside the checkout")
    root = tmp_path_factory.mktemp("hostile") / "data"
    evaluated, skips = build_hostile_folder(root, shared_manifest)
    return root, evaluated, skips


def run_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--data", str(data), "--out", str(out), "--models", "efficientnet_lite0", "--transforms", "none",
            "--device", "cpu", "--no-report", *extra]


@pytest.fixture(scope="module")
def hostile_run(hostile, tmp_path_factory):
    from robustbench_lite.cli.commands import main

    root, _, _ = hostile
    out = tmp_path_factory.mktemp("hostile-run") / "run"
    code = main(run_args(root, out))
    return code, out


def test_hostile_folder_run_completes_and_evaluates_every_decodable_photo(hostile, hostile_run):
    root, evaluated, skips = hostile
    code, out = hostile_run
    assert code == 0
    records = pd.read_parquet(out / "records.parquet")
    assert set(records.image_id) == evaluated
    assert len(records) == len(evaluated)
    assert len(evaluated) == 16 and len(skips) == 11


def test_every_file_not_evaluated_is_listed_with_its_reason(hostile, hostile_run):
    root, evaluated, skips = hostile
    _, out = hostile_run
    listed = {item["path"]: item["reason"] for item in json.loads((out / "manifest.json").read_text())["skipped"]}
    assert set(listed) == set(skips)
    assert every_entry(root) == evaluated | set(listed)
    for path, words in skips.items():
        assert words in listed[path], (path, listed[path])


def test_exif_orientation_is_applied(hostile, hostile_run, shared_manifest):
    root, _, _ = hostile
    rotated = root / shared_manifest[1]["synset"] / "exif_rotated.JPEG"
    raw = Image.open(rotated).convert("RGB")
    upright = load_rgb(rotated)
    assert upright.size == raw.size[::-1] != raw.size
    assert np.array_equal(np.asarray(upright), np.asarray(raw.transpose(Image.Transpose.ROTATE_270)))
    # the run saw the same pixels as for the upright copy: the very same predictions
    records = pd.read_parquet(hostile_run[1] / "records.parquet").set_index("image_id")
    synset = shared_manifest[1]["synset"]
    a, b = records.loc[f"{synset}/exif_rotated.JPEG"], records.loc[f"{synset}/upright.png"]
    assert list(a.top5) == list(b.top5) and list(a.top5_prob) == list(b.top5_prob)


def test_sixteen_bit_and_float_photos_keep_their_tones(hostile, shared_manifest):
    """Scaled to 8 bits, not clipped to white: equal to the 8-bit greyscale within rounding."""
    root, _, _ = hostile
    grey = np.asarray(real_photo(shared_manifest).convert("L"), dtype=int)
    for name in ("sixteen_bit.png", "float.tif"):
        decoded = np.asarray(load_rgb(root / shared_manifest[0]["synset"] / name), dtype=int)
        assert decoded.shape == (*grey.shape, 3)
        assert np.abs(decoded[..., 0] - grey).max() <= 1, name


def test_strict_makes_a_skipped_photo_an_error(hostile, tmp_path, cli_run):
    root, _, _ = hostile
    code, _, err = cli_run(*run_args(root, tmp_path / "run", "--strict"))
    assert code == 2
    assert "--strict" in err and "cannot decode" in err and "Traceback" not in err


def test_a_block_of_only_undecodable_photos_counts_as_done(shared_manifest, tmp_path, cli_run):
    """With --chunk-size 4, the first block is all broken files: a rerun finds both blocks done."""
    root = tmp_path / "data"
    broken = sorted({r["synset"] for r in shared_manifest})[0]
    rows = [r for r in shared_manifest if r["synset"] > broken][:4]
    make_subset_folder(root, rows)
    (root / broken).mkdir()
    for i in range(4):
        (root / broken / f"broken{i}.JPEG").write_bytes(b"\xff\xd8\xff garbage")
    args = run_args(root, tmp_path / "run", "--chunk-size", "4")
    assert cli_run(*args)[0] == 0
    code, _, err = cli_run(*args)
    assert code == 0
    assert "resuming: 2 of 2 chunks already done" in err
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert len(manifest["skipped"]) == 4 and manifest["records"] == 4


def test_a_folder_of_only_unreadable_files_stops_before_any_model_loads(shared_manifest, tmp_path, cli_run):
    """Text and random bytes named .JPEG, and an empty file: one line naming the files, no model loaded, no run folder."""
    root = tmp_path / "data"
    synsets = sorted({r["synset"] for r in shared_manifest})[:2]
    for synset in synsets:
        (root / synset).mkdir(parents=True)
        (root / synset / "text.JPEG").write_text("not a photo")
        (root / synset / "noise.JPEG").write_bytes(np.random.default_rng(0).bytes(500))
    (root / synsets[0] / "empty.JPEG").write_bytes(b"")
    code, out, err = cli_run(*run_args(root, tmp_path / "run"))
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and "loading" not in err, err
    assert lines[0].startswith(f"error: --data {root}: none of its 5 photo file(s) can be read as an image (")
    assert f"{synsets[0]}/empty.JPEG: empty file" in lines[0] and "not an image Pillow can read" in lines[0]
    assert "and 2 more" in lines[0] and "no model loaded" in lines[0]
    assert not (tmp_path / "run").exists()


def test_a_folder_whose_photos_open_but_none_decodes_fails_and_its_manifest_says_so(shared_manifest, tmp_path, cli_run):
    """Real JPEGs cut short: their headers open, no photo decodes. Exit 2 with one line naming the files, and a
    manifest whose status is failed (never complete) listing every skipped file with its reason."""
    root = tmp_path / "data"
    rows = shared_manifest[:4]
    for row in rows:
        target = root / row["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((SHARED_SAMPLE / row["path"]).read_bytes()[:3000])
    out = tmp_path / "run"
    code, _, err = cli_run(*run_args(root, out))
    assert code == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: --data {root}: none of its 4 photo(s) could be decoded (") and "truncated" in last
    assert "and 1 more" in last and f"under 'skipped' in {out / 'manifest.json'}" in last and "Traceback" not in err
    assert "records are empty" not in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["error"] == last.removeprefix("error: ")
    assert sorted(item["path"] for item in manifest["skipped"]) == sorted(r["path"] for r in rows)
    assert all("truncated" in item["reason"] for item in manifest["skipped"]) and manifest["records"] == 0


# --- property tests: whatever the bytes, a photo or a reason, never another exception -------------


@contextlib.contextmanager
def pixel_limit(limit: int):
    """A lower decompression-bomb limit, so a mutated header cannot make a test decode gigapixels."""
    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = before


@st.composite
def encoded_images(draw):
    """(file bytes, (w, h) it should decode to) for a random image of a random mode, size and values."""
    mode = draw(st.sampled_from(MODES))
    fmt = draw(st.sampled_from(FORMATS[mode]))
    size = (draw(st.integers(1, 48)), draw(st.integers(1, 48)))
    seed = draw(st.integers(0, 2**32 - 1))
    raw = np.random.default_rng(seed).bytes(len(Image.new(mode, size).tobytes()))
    img = Image.frombytes(mode, size, raw)  # every bit pattern: NaN and inf floats, extreme ints
    options = {}
    if mode == "P":
        img.putpalette(list(np.random.default_rng(seed + 1).integers(0, 256, 768)))
        if fmt == "PNG" and draw(st.booleans()):
            options["transparency"] = draw(st.integers(0, 255))
    orientation = draw(st.sampled_from([None, 1, 2, 3, 4, 5, 6, 7, 8, 0, 9, 65535])) if fmt in WITH_EXIF else None
    if orientation is not None:
        exif = Image.Exif()
        exif[ORIENTATION] = orientation
        options["exif"] = exif
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    w, h = size
    return buffer.getvalue(), (h, w) if orientation in (5, 6, 7, 8) else (w, h)


GEOMETRIES = [LITE0, Geometry((240, 240), 0.882, "bicubic"), Geometry((260, 260), 0.89, "bilinear")]


def decode_both(path: Path, geometry: Geometry):
    """load_rgb and DecodeDataset on one file: (image or None, item)."""
    try:
        img = load_rgb(path)
    except UndecodablePhoto as exc:
        assert str(exc), "an undecodable photo always has a reason"
        img = None
    item = DecodeDataset([Sample(path.name, path, 0)], geometry)[0]
    return img, item


def assert_item(item, img, geometry: Geometry) -> None:
    index, pixels, reason = item
    assert index == 0
    if img is None:
        assert pixels is None and reason
    else:
        assert reason is None
        assert pixels.dtype == torch.uint8
        assert tuple(pixels.shape) == (3, *geometry.input_size)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(encoded=encoded_images(), geometry=st.sampled_from(GEOMETRIES))
def test_any_mode_size_and_values_decode_to_rgb_at_the_geometry(encoded, geometry, tmp_path):
    data, size = encoded
    path = tmp_path / "photo.bin"
    path.write_bytes(data)
    img, item = decode_both(path, geometry)
    event(f"mode {Image.open(path).mode}")
    assert img is not None, "a well-formed image of a supported mode always decodes"
    assert img.mode == "RGB" and img.size == size
    assert_item(item, img, geometry)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(encoded=encoded_images(), cut=st.one_of(st.none(), st.floats(0.0, 0.99)),
       flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=8))
def test_truncated_or_corrupted_files_give_a_photo_or_a_reason(encoded, cut, flips, tmp_path):
    data = bytearray(encoded[0])
    for where, value in flips:
        data[min(int(where * len(data)), len(data) - 1)] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    path = tmp_path / "photo.bin"
    path.write_bytes(bytes(data))
    with pixel_limit(1_000_000):
        img, item = decode_both(path, LITE0)
    event("decoded" if img is not None else f"refused: {item[2].split(':')[0]}")
    if img is not None:
        assert img.mode == "RGB" and min(img.size) >= 1
    assert_item(item, img, LITE0)


def test_files_that_are_not_files_are_refused_without_being_opened(tmp_path):
    """A FIFO would block a reader forever; folders, loops and dangling links are reasons too."""
    os.mkfifo(tmp_path / "fifo.JPEG")
    (tmp_path / "folder.JPEG").mkdir()
    (tmp_path / "loop.JPEG").symlink_to(tmp_path / "loop.JPEG")
    (tmp_path / "empty.JPEG").write_bytes(b"")
    reasons = {}
    for name in ("fifo.JPEG", "folder.JPEG", "loop.JPEG", "empty.JPEG", "missing.JPEG"):
        with pytest.raises(UndecodablePhoto) as caught:
            load_rgb(tmp_path / name)
        reasons[name] = str(caught.value)
    assert "FIFO" in reasons["fifo.JPEG"] and "folder" in reasons["folder.JPEG"]
    assert "loop" in reasons["loop.JPEG"] and reasons["empty.JPEG"] == "empty file"
    assert reasons["missing.JPEG"] == "no such file"


def test_photos_over_the_pixel_limit_are_refused_and_the_limit_is_pillows(tmp_path):
    """The header alone decides (nothing decoded); a user who raises Pillow's limit raises ours."""
    path = tmp_path / "wide.png"
    Image.new("RGB", (300, 200)).save(path)
    with pixel_limit(50_000), pytest.raises(UndecodablePhoto, match="decompression bomb"):
        load_rgb(path)
    with pixel_limit(60_000):
        assert load_rgb(path).size == (300, 200)
