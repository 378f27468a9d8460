"""The device decode path (`--decode device`), run here with device cpu: same photos, nearly the same pixels."""
from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from robustbench_lite.data.datasets import Sample, open_dataset, spread_over_classes
from robustbench_lite.data.decode import DecodeDataset, Geometry, collate_decoded
from robustbench_lite.data.device_decode import (JpegBytesDataset, collate_raw, decode_block, device_decodable, resolve_decode,
                                            tensor_ops)
from robustbench_lite.errors import UserError

CPU = torch.device("cpu")
LITE0 = Geometry((224, 224), 0.875, "bicubic")
RESNET50 = Geometry((224, 224), 0.95, "bicubic")


def both_paths(samples, geometry, device=CPU):
    """(indices, pixels, failed) by the CPU (PIL) path and by the device path."""
    cpu = collate_decoded([DecodeDataset(samples, geometry)[i] for i in range(len(samples))])
    raw = collate_raw([JpegBytesDataset(samples, geometry)[i] for i in range(len(samples))])
    return cpu, decode_block(raw, samples, geometry, device), raw


def shared_photos(root, n):
    return sorted(spread_over_classes(open_dataset(root).samples)[:n], key=lambda s: s.id)


@pytest.mark.parametrize("geometry", [LITE0, RESNET50, Geometry((224, 224), 0.875, "bilinear")], ids=lambda g: g.key)
def test_device_path_pixels_match_the_cpu_path(shared_sample, geometry):
    samples = shared_photos(shared_sample, 100)
    (ci, cp, cf), (di, dp, df), raw = both_paths(samples, geometry)
    assert len(raw.jpeg) == len(samples)  # every shared photo goes the device way
    assert torch.equal(ci, di) and cf == df == []
    diff = (cp.int() - dp.int()).abs()
    assert diff.float().mean() < 0.05  # measured 0.0024 (bicubic), 0.00001 (bilinear) on 100 photos
    assert diff.max() <= 4


def test_lite0_top1_agrees_between_decode_paths(shared_sample):
    from robustbench_lite.models import load_model, resolve_models

    model = load_model(resolve_models("efficientnet_lite0")[0], CPU)
    samples = shared_photos(shared_sample, 100)
    (_, cp, _), (_, dp, _), _ = both_paths(samples, model.geometry)
    with torch.inference_mode():
        top1 = [model.module(model.normalise(p.float().div(255)).contiguous(memory_format=torch.channels_last)).argmax(1)
                for p in (cp, dp)]
    assert (top1[0] == top1[1]).float().mean() >= 0.99


def jpeg_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **kwargs)
    return buffer.getvalue()


def photo(size=(320, 240)) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def test_what_the_device_path_takes():
    good = jpeg_bytes(photo())
    assert device_decodable(good)
    assert device_decodable(jpeg_bytes(photo(), progressive=True))
    assert not device_decodable(good[: len(good) // 2])  # truncated
    assert not device_decodable(jpeg_bytes(photo().convert("L")))  # greyscale
    assert not device_decodable(jpeg_bytes(photo().convert("CMYK")))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    assert not device_decodable(jpeg_bytes(photo(), exif=exif.tobytes()))
    exif[0x0112] = 1
    assert device_decodable(jpeg_bytes(photo(), exif=exif.tobytes()))
    buffer = io.BytesIO()
    photo().save(buffer, format="PNG")
    assert not device_decodable(buffer.getvalue())
    assert not device_decodable(b"")


def test_other_files_fall_back_to_the_cpu_path(tmp_path):
    folder = tmp_path / "n01440764"
    folder.mkdir()
    photo().save(folder / "a.png")
    photo().convert("L").save(folder / "b.jpg")
    whole = jpeg_bytes(photo())
    (folder / "c.jpg").write_bytes(whole[: len(whole) // 2])  # truncated: skipped, as the CPU path does
    (folder / "d.jpg").write_bytes(whole)
    exif = Image.Exif()
    exif[0x0112] = 8
    photo((300, 200)).save(folder / "e.jpg", exif=exif.tobytes())
    (folder / "f.jpg").write_bytes(b"\xff\xd8 not really a jpeg \xff\xd9")  # passes no check: the CPU path says why
    samples = [Sample(p.name, p, 0) for p in sorted(folder.iterdir())]
    (ci, cp, cf), (di, dp, df), raw = both_paths(samples, LITE0)
    assert [samples[i].id for i, _ in raw.jpeg] == ["d.jpg"]
    assert torch.equal(ci, di) and [i for i, _ in cf] == [i for i, _ in df] == [2, 5]
    assert cf == df  # the same reasons
    assert dp.shape == cp.shape == (4, 3, 224, 224)
    assert (cp.int() - dp.int()).abs().float().mean() < 0.5  # the rotated one is the CPU path's own pixels


def test_a_decoder_refusal_falls_back_per_file(tmp_path, monkeypatch):
    from robustbench_lite.data import device_decode as dd

    paths = []
    for k in range(3):
        paths.append(tmp_path / f"{k}.jpg")
        paths[-1].write_bytes(jpeg_bytes(photo((200 + 10 * k, 180))))
    samples = [Sample(p.name, p, 0) for p in paths]
    real = dd._decode_jpegs
    monkeypatch.setattr(dd, "_decode_jpegs", lambda data, device: [None, *real(data[1:], device)])
    (ci, cp, _), (di, dp, df), _ = both_paths(samples, LITE0)
    assert torch.equal(ci, di) and df == []
    assert torch.equal(cp[0], dp[0])  # the refused file decoded by the CPU path: its exact pixels


def test_decode_modes():
    assert resolve_decode("auto", CPU) == "cpu"
    assert resolve_decode("auto", torch.device("cuda", 0)) == "device"
    assert resolve_decode("device", CPU) == "device"
    with pytest.raises(UserError, match="--decode"):
        resolve_decode("gpu", CPU)
    assert tensor_ops(Geometry((224, 224), 1.0, "bicubic", crop_mode="squash")) is not None
    assert tensor_ops(Geometry((224, 224), 1.0, "bicubic", crop_mode="border")) is None  # not mirrored: CPU path


def test_a_run_with_device_decode(shared_sample, tmp_path):
    import json

    import pandas as pd

    from robustbench_lite import run

    tops = {}
    for mode in ("cpu", "device"):
        out = tmp_path / mode
        run(data=str(shared_sample), models="efficientnet_lite0", transforms="greyscale", severities="3", limit=32,
            device="cpu", decode=mode, out=str(out), report=False)
        assert json.loads((out / "manifest.json").read_text())["decode"] == mode
        records = pd.read_parquet(out / "records.parquet").sort_values(["transform", "image_id"])
        tops[mode] = records["top5"].map(lambda t: t[0]).to_numpy()
    assert (tops["cpu"] == tops["device"]).mean() >= 0.95


def test_threaded_prefetch_keeps_order_stops_and_passes_errors():
    import threading

    from robustbench_lite.run.prefetch import prefetch_blocks

    blocks = list(prefetch_blocks(iter(range(6)), lambda b: (b, b * b), CPU, threaded=True))
    assert blocks == [(b, b * b) for b in range(6)]
    stream = prefetch_blocks(iter(range(100)), lambda b: (b,), CPU, depth=2, threaded=True)
    assert next(stream) == (0,)
    stream.close()  # a pass cut short: the feeder stops instead of filling the queue forever

    def bad(b):
        if b == 2:
            raise ValueError("photo 2")
        return (b,)

    got = []
    with pytest.raises(ValueError, match="photo 2"):
        for item in prefetch_blocks(iter(range(5)), bad, CPU, threaded=True):
            got.append(item)
    assert got == [(0,), (1,)]
    assert not [t for t in threading.enumerate() if t.name == "robustbench-lite-prefetch" and t.is_alive()]


def test_a_run_through_the_threaded_prefetch_gives_the_same_records(shared_sample, tmp_path, monkeypatch):
    """The CUDA feeder-thread path driven on the CPU: three blocks, the same records to the bit."""
    import pandas as pd

    from robustbench_lite.run import engine
    from robustbench_lite import run
    from robustbench_lite.run.prefetch import prefetch_blocks

    def records(out):
        run(data=str(shared_sample), models="efficientnet_lite0", transforms="greyscale,rotate", severities="3", limit=40,
            chunk_size=16, device="cpu", decode="device", out=str(out), report=False)
        return pd.read_parquet(out / "records.parquet").sort_values(["transform", "image_id"]).reset_index(drop=True)

    inline = records(tmp_path / "inline")
    monkeypatch.setattr(engine, "prefetch_blocks", lambda s, f, d: prefetch_blocks(s, f, d, threaded=True))
    threaded = records(tmp_path / "threaded")
    assert len(inline) == 120
    assert inline.equals(threaded)
