"""The CUDA path, exercised whenever a GPU is present (skipped on CPU-only machines)."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
KEYS = ["model", "transform", "severity", "image_id"]


def run_on(device: str, precision: str, out, shared_sample, batch_size="auto"):
    from robustbench_lite import run

    run(data=str(shared_sample), models="efficientnet_lite0", transforms="greyscale,rotate,gaussian_noise", severities="3",
        limit=48, device=device, precision=precision, batch_size=batch_size, out=str(out), report=False)
    return pd.read_parquet(out / "records.parquet").sort_values(KEYS).reset_index(drop=True)


def test_cuda_matches_cpu_and_amp_runs(shared_sample, tmp_path):
    cpu = run_on("cpu", "fp32", tmp_path / "cpu", shared_sample, batch_size=16)
    gpu = run_on("cuda", "fp32", tmp_path / "gpu", shared_sample)
    bf16 = run_on("cuda", "bf16", tmp_path / "bf16", shared_sample)
    assert cpu[KEYS].equals(gpu[KEYS]) and cpu[KEYS].equals(bf16[KEYS])
    fixed = ~cpu["transform"].isin(["rotate", "gaussian_noise"])  # seeded draws differ between CPU and CUDA generators
    top1 = lambda df: df["top5"].map(lambda t: t[0])
    assert (top1(cpu)[fixed] == top1(gpu)[fixed]).mean() >= 0.95
    assert (cpu["confidence"][fixed] - gpu["confidence"][fixed]).abs().max() < 0.02
    assert (top1(gpu) == top1(bf16)).mean() >= 0.9
    # random transforms are deterministic on CUDA too: a second run draws the same
    again = run_on("cuda", "fp32", tmp_path / "gpu2", shared_sample, batch_size=7)
    assert (top1(gpu) == top1(again)).all()
    assert (gpu["confidence"] - again["confidence"]).abs().max() < 1e-4


def test_device_decode_on_cuda_agrees_with_the_cpu_path(shared_sample):
    """nvjpeg + resize/crop on the GPU against PIL + timm on the CPU: near pixels, lite0 top-1 >= 99 %."""
    from robustbench_lite.data.datasets import open_dataset
    from robustbench_lite.data.decode import DecodeDataset, collate_decoded
    from robustbench_lite.data.device_decode import JpegBytesDataset, collate_raw, decode_block
    from robustbench_lite.models import load_model, resolve_models

    cuda = torch.device("cuda")
    model = load_model(resolve_models("efficientnet_lite0")[0], cuda)
    samples = open_dataset(shared_sample).samples
    cpu = collate_decoded([DecodeDataset(samples, model.geometry)[i] for i in range(len(samples))])
    raw = collate_raw([JpegBytesDataset(samples, model.geometry)[i] for i in range(len(samples))])
    indices, pixels, failed = decode_block(raw.pin_memory(), samples, model.geometry, cuda)
    assert torch.equal(indices, cpu[0]) and failed == cpu[2] and pixels.is_cuda
    diff = (pixels.cpu().int() - cpu[1].int()).abs().float()
    print(f"cuda decode vs PIL on {len(samples)} photos: mean abs diff {diff.mean():.4f}, max {diff.max():.0f}")
    assert diff.mean() < 2.0
    with torch.inference_mode():
        top1 = [torch.cat([model.module(model.normalise(p[k:k + 100].to(cuda).float().div(255))
                                        .contiguous(memory_format=torch.channels_last)).argmax(1)
                           for k in range(0, len(p), 100)]) for p in (cpu[1], pixels)]
    agreement = (top1[0] == top1[1]).float().mean().item()
    print(f"lite0 top-1 agreement, cuda decode vs CPU decode: {agreement:.4f}")
    assert agreement >= 0.99


def test_cuda_runs_with_both_decode_paths_agree_with_cpu(shared_sample, tmp_path):
    """Deterministic conditions: the CUDA run with CPU decode agrees with the CPU run on >= 99.5 % of photos."""
    import json

    from robustbench_lite import run

    def records(device, decode, out):
        run(data=str(shared_sample), models="efficientnet_lite0", transforms="greyscale,edges,border_black", severities="3",
            limit=200, device=device, decode=decode, out=str(out), report=False)
        assert json.loads((out / "manifest.json").read_text())["decode"] == decode
        return pd.read_parquet(out / "records.parquet").sort_values(KEYS).reset_index(drop=True)

    top1 = lambda df: df["top5"].map(lambda t: t[0])
    cpu = records("cpu", "cpu", tmp_path / "cpu")
    gpu = records("cuda", "cpu", tmp_path / "gpu")
    device = records("cuda", "device", tmp_path / "device")  # prefetch thread, side stream, nvjpeg
    assert cpu[KEYS].equals(gpu[KEYS]) and cpu[KEYS].equals(device[KEYS])
    print(f"top-1 vs CPU: decode cpu {(top1(cpu) == top1(gpu)).mean():.4f}, decode device {(top1(cpu) == top1(device)).mean():.4f}")
    assert (top1(cpu) == top1(gpu)).mean() >= 0.995
    assert (top1(cpu) == top1(device)).mean() >= 0.98


def test_hysteresis_on_cuda_is_the_cpu_mask():
    """The CUDA step (max-pool on halves) and the CPU step (byte ORs) reach the same fixed point."""
    from transforms.outlines import _hysteresis

    g = torch.Generator().manual_seed(0)
    weak = torch.rand(16, 1, 96, 96, generator=g) < 0.45
    strong = weak & (torch.rand(16, 1, 96, 96, generator=g) < 0.02)
    assert torch.equal(_hysteresis(strong.cuda(), weak.cuda()).cpu(), _hysteresis(strong, weak))


def test_a_failing_cuda_pass_stops_its_prefetch_thread(tmp_path, shared_sample):
    """--strict on an undecodable photo raises in the consumer; the feeder thread does not outlive the run."""
    import shutil
    import threading

    from robustbench_lite import run
    from robustbench_lite.errors import UserError

    data = tmp_path / "data" / "n01440764"
    data.mkdir(parents=True)
    for p in sorted((shared_sample / "n01440764").iterdir())[:3]:
        shutil.copy(p, data / p.name)
    (data / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    with pytest.raises(UserError, match="--strict"):
        run(data=str(tmp_path / "data"), models="efficientnet_lite0", transforms="none", device="cuda", decode="device",
            strict=True, out=str(tmp_path / "out"), report=False)
    assert not [t for t in threading.enumerate() if t.name == "robustbench-lite-prefetch" and t.is_alive()]


def smooth_photos(n: int, side: int) -> torch.Tensor:
    """Smooth random pictures on the CPU (no shared photos needed)."""
    noise = torch.rand(n, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    return torch.nn.functional.interpolate(noise, size=(side, side), mode="bicubic").clamp(0, 1)


def family_names(*families: str) -> list[str]:
    from robustbench_lite.conditions.registry import all_transforms

    return [s.name for s in all_transforms() if s.family in families]


@pytest.mark.parametrize("name", family_names("corruptions", "imagecorruptions", "cbar"))
def test_corruptions_draw_the_same_bytes_twice_on_cuda(name):
    """Seeded per photo, a corruption is the same on CUDA run after run (no atomics-ordered sums)."""
    from robustbench_lite.conditions.registry import get_transform
    from robustbench_lite.conditions.rng import PhotoRNG, photo_seed

    x = smooth_photos(3, 224).cuda()
    spec = get_transform(name)
    draws = [spec(x, spec.severities[2], PhotoRNG([photo_seed(0, name, 3, f"p{i}") for i in range(3)], device="cuda"))
             for _ in range(2)]
    assert torch.equal(draws[0], draws[1])


@pytest.mark.parametrize("name", family_names("cbar"))
def test_cbar_corruptions_run_on_cuda(name):
    from robustbench_lite.conditions.registry import get_transform
    from robustbench_lite.conditions.rng import PhotoRNG, photo_seed

    x = smooth_photos(3, 224).cuda()
    spec = get_transform(name)
    out = spec(x, spec.severities[-1], PhotoRNG([photo_seed(0, name, 5, f"p{i}") for i in range(3)], device="cuda"))
    assert out.device == x.device and out.shape == x.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_imagenet_p_sequences_run_on_cuda():
    from robustbench_lite.conditions.rng import PhotoRNG
    from robustbench_lite.conditions.sequences import SUITES, suite_sequences

    side = SUITES["imagenet-p"].context_side
    x = smooth_photos(2, side).cuda()
    for spec in suite_sequences("imagenet-p"):
        frames = list(spec.fn(x, PhotoRNG([11, 12], device="cuda")))
        assert len(frames) == spec.frames, spec.name
        for frame in frames:
            assert frame.is_cuda and frame.shape[:2] == x.shape[:2] and torch.isfinite(frame).all(), spec.name


def test_the_imagenet_c_protocol_and_stability_run_on_cuda(shared_sample, tmp_path):
    """The release protocol (JPEG round trip on the CPU in the middle) and ImageNet-P's frames, bf16, end to end."""
    from robustbench_lite import run

    run(data=str(shared_sample), models="efficientnet_lite0", transforms="gaussian_noise,fog,jpeg_compression",
        severities="3", limit=6, device="cuda", precision="bf16", corruption_protocol="imagenet-c",
        stability="imagenet-p", out=str(tmp_path / "run"), report=False)
    records = pd.read_parquet(tmp_path / "run" / "records.parquet")
    kinds = set(records["transform"])
    assert {"clean", "gaussian_noise", "fog", "jpeg_compression"} <= kinds
    assert any(k.startswith("imagenet-p.") for k in kinds)
    assert (tmp_path / "run" / "stability.csv").is_file()
    clean = records.loc[records["transform"] == "clean", "correct1"].mean()
    assert clean >= 0.5  # lite0 gets most of these photos right in bf16 too
