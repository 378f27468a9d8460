#!/usr/bin/env python3
"""Throughput benchmark (not a test): is the model the only bottleneck?

Prints one JSON object. Modes:
  default      the real `run` path vs the bare model vs a naive per-condition ImageFolder pipeline
  --scale      clean-only runs on synthetic folders of 1,000 and 10,000 small JPEGs: time and peak RSS
  corruptions  photos/s of each ImageNet-C corruption, ours beside the imagecorruptions reference
  --gpu        issue #15's measurement (benchmarks/gpu_bench.py): resnet50 x3 + lite0 x1 over clean + 15
               ImageNet-C corruptions + the core families at severity 3, per-transform cost, the pre-rendered route

Examples:
  python benchmarks/throughput.py                                   # CPU target: lite0, 200 photos
  python benchmarks/throughput.py --device cuda --precision bf16 --photos 1000 --repeat-photos 2
  python benchmarks/throughput.py --scale
  python benchmarks/throughput.py corruptions
  python benchmarks/throughput.py --gpu --device cuda --precision bf16 --photos 5000 --agreement
  python benchmarks/throughput.py --gpu --device cpu --photos 16 --repeats 1 --render-photos 8 --cost-batch 16
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("ROBUSTBENCH_LITE_SHARED", REPO.parent / "shared")) / "data" / "imagenet-sample"


def run_subprocess(args: list[str]) -> tuple[float, float, int]:
    """Run `python -m robustbench_lite ARGS`; returns (wall seconds, peak RSS MB, exit code)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "robustbench_lite", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=REPO, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"run failed ({code}):\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024, code


def stage_seconds(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())["timings"]


def repeated_folder(src: Path, dest: Path, photos: int, repeat: int) -> Path:
    """A synset-folder dataset of symlinks: the first `photos` shared photos, each `repeat` times."""
    from robustbench_lite.data.datasets import open_dataset, spread_over_classes

    chosen = spread_over_classes(open_dataset(src).samples)[:photos]
    for k in range(repeat):
        for s in chosen:
            target = dest / s.path.parent.name / f"r{k}_{s.path.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(s.path.resolve())
    return dest


def forward_only(models: str, images: int, batch: int, device: str, precision: str) -> float:
    """The bare models over `images` random tensors already in memory, same batch size and dtype."""
    from robustbench_lite.run.allocator import keep_freed_memory
    from robustbench_lite.run.evaluate import autocast
    from robustbench_lite.run.plan import resolve_device
    from robustbench_lite.models import load_model, resolve_models

    dev = resolve_device(device)
    keep_freed_memory()  # as the run does: the same allocator for both sides
    total = 0.0
    for spec in resolve_models(models):
        model = load_model(spec, dev)
        h, w = model.geometry.input_size
        x = torch.rand(batch, 3, h, w, device=dev).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(dev, precision):
            model.module(x)  # warm-up
            _sync(dev)
            t0 = time.perf_counter()
            done = 0
            while done < images:
                n = min(batch, images - done)
                model.module(x[:n]).float().softmax(1).topk(5)
                done += n
            _sync(dev)
        total += time.perf_counter() - t0
    return total


def _sync(dev) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def naive(data: Path, model_name: str, conditions: list, batch: int, device: str, precision: str) -> float:
    """What users write by hand: per condition, a fresh ImageFolder pass with a per-photo transform."""
    import torchvision
    from timm.data import create_transform, resolve_data_config

    from robustbench_lite.run.evaluate import autocast
    from robustbench_lite.run.plan import resolve_device
    from robustbench_lite.models import load_model, resolve_models
    from robustbench_lite.conditions.registry import get_transform
    from robustbench_lite.conditions.rng import PhotoRNG, photo_seed

    dev = resolve_device(device)
    model = load_model(resolve_models(model_name)[0], dev)
    base = create_transform(**resolve_data_config({}, model=model.module))
    to_float = torchvision.transforms.Compose(base.transforms[:-1])  # resize, crop, to tensor
    normalize = base.transforms[-1]
    t0 = time.perf_counter()
    for condition in conditions:
        spec = None if condition.is_clean else get_transform(condition.transform)

        def per_photo(img, spec=spec, level=condition.level, sev=condition.severity):
            x = to_float(img)
            if spec is not None:
                rng = PhotoRNG([photo_seed(0, spec.name, sev, str(id(img)))])
                x = spec(x[None], level, rng)[0]
            return normalize(x)

        folder = torchvision.datasets.ImageFolder(str(data), transform=per_photo)
        loader = torch.utils.data.DataLoader(folder, batch_size=batch, num_workers=min(8, (os.cpu_count() or 1) - 1) if dev.type == "cuda" else 0)
        with torch.inference_mode(), autocast(dev, precision):
            for x, _ in loader:
                model.module(x.to(dev).contiguous(memory_format=torch.channels_last)).float().softmax(1).topk(5)
        _sync(dev)
    return time.perf_counter() - t0


def main_throughput(args) -> dict:
    from robustbench_lite.conditions.keys import build_conditions, parse_severities
    from robustbench_lite.conditions.selection import select_transforms

    conditions = build_conditions(select_transforms(args.transforms), parse_severities(args.severities))
    work = Path(tempfile.mkdtemp(prefix="rbl-bench-"))
    data = repeated_folder(SHARED, work / "data", args.photos, args.repeat_photos)
    images = args.photos * args.repeat_photos
    n_models = len(args.models.split(","))
    batch = args.batch_size if args.batch_size != "auto" else "32"  # replaced by the size the run used
    pipeline, core, rss = [], [], []
    for i in range(args.repeats):
        out = work / f"run{i}"
        cmd = ["run", "--data", str(data), "--models", args.models, "--transforms", args.transforms,
               "--severities", args.severities, "--device", args.device, "--precision", args.precision,
               "--batch-size", args.batch_size, "--out", str(out)]
        wall, peak, _ = run_subprocess(cmd)
        t = stage_seconds(out)
        used = json.loads((out / "manifest.json").read_text()).get("batch_sizes", {})
        batch = str(min(used.values())) if used else batch
        pipeline.append(wall)
        core.append(t["decode"] + t["transform"] + t["forward"] + t["records"])
        rss.append(peak)
        stages = t
    fwd = [forward_only(args.models, images * len(conditions), int(batch), args.device, args.precision) for _ in range(args.repeats)]
    naive_runs = 0 if args.skip_naive else 1 if args.quick_naive else args.repeats
    naive_s = [naive(data, args.models.split(",")[0], conditions, int(batch), args.device, args.precision) for _ in range(naive_runs)] or [float("nan")]
    if n_models > 1:  # the naive baseline runs the first model only: scale to all models by forward share
        naive_s = [n * n_models for n in naive_s]
    med = statistics.median
    result = {
        "device": _device_name(args.device),
        "models": args.models,
        "images": images,
        "conditions": len(conditions),
        "image_conditions": images * len(conditions),
        "batch_size": args.batch_size,
        "precision": args.precision,
        "forward_only_s": round(med(fwd), 3),
        "pipeline_s": round(med(pipeline), 3),
        "core_s": round(med(core), 3),
        "efficiency": round(med(fwd) / med(pipeline), 3),
        "core_efficiency": round(med(fwd) / med(core), 3),
        "naive_s": round(med(naive_s), 3),
        "speedup_vs_naive": round(med(naive_s) / med(pipeline), 2),
        "speedup_vs_naive_core": round(med(naive_s) / med(core), 2),
        "peak_rss_mb": round(max(rss), 1),
        "stages_last_run": stages,
        "repeats": args.repeats,
    }
    return result


def _device_name(device: str) -> str:
    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        return torch.cuda.get_device_name(0)
    import platform

    return f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def synthetic_folder(dest: Path, photos: int, size: int = 96) -> Path:
    """Small random-content JPEGs spread over 100 synsets (for the memory-flatness check)."""
    import numpy as np
    from PIL import Image

    from robustbench_lite.data.imagenet import synset_to_index

    synsets = list(synset_to_index())[:100]
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    for i in range(photos):
        folder = dest / synsets[i % 100]
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.roll(base, i, axis=1)
        Image.fromarray(pixels).save(folder / f"p{i:06d}.jpg", quality=80)
    return dest


def main_scale(args) -> dict:
    """Clean-only runs at 1,000 and 10,000 photos: time should be linear, memory flat."""
    import timm

    work = Path(tempfile.mkdtemp(prefix="rbl-scale-"))
    ckpt = work / "model.pth"
    torch.save(timm.create_model(args.scale_arch, pretrained=False).state_dict(), ckpt)
    rows = {}
    for photos in (1000, 10000):
        data = synthetic_folder(work / f"data{photos}", photos)
        wall, peak, _ = run_subprocess(["run", "--data", str(data), "--models", f"{args.scale_arch}@{ckpt}", "--transforms", "none",
                                        "--device", args.device, "--out", str(work / f"run{photos}"), "--no-report"])
        rows[photos] = {"seconds": round(wall, 1), "peak_rss_mb": round(peak, 1)}
    return {
        "device": _device_name(args.device),
        "model": f"{args.scale_arch} (random weights: speed and memory only)",
        "runs": rows,
        "time_ratio_10k_vs_1k": round(rows[10000]["seconds"] / rows[1000]["seconds"], 2),
        "rss_ratio_10k_vs_1k": round(rows[10000]["peak_rss_mb"] / rows[1000]["peak_rss_mb"], 3),
    }


def main_corruptions(args) -> dict:
    """Delegates to the reference comparison's speed mode (it runs the reference in its own venv)."""
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "corruptions_reference.py"), "--speed", "--json", "/dev/stdout"],
                          capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        sys.exit(done.stderr[-2000:])
    return {"corruptions": done.stdout}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", default="throughput", choices=["throughput", "corruptions"])
    parser.add_argument("--scale", action="store_true", help="Memory-flatness mode (synthetic 1k and 10k folders).")
    parser.add_argument("--models", default=None, help="[default: efficientnet_lite0; with --gpu resnet50,lite0]")
    parser.add_argument("--transforms", default="family:greyscale,outlines,borders,distortions")
    parser.add_argument("--severities", default="3")
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--repeat-photos", type=int, default=1, help="Repeat each photo K times (bigger GPU workloads).")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--batch-size", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick-naive", action="store_true", help="Time the naive pipeline once instead of --repeats times.")
    parser.add_argument("--skip-naive", action="store_true", help="Do not time the naive pipeline (its fields are NaN).")
    parser.add_argument("--scale-arch", default="mobilenetv3_small_050")
    gpu = parser.add_argument_group("--gpu mode")
    gpu.add_argument("--gpu", action="store_true", help="Issue #15's benchmark (see benchmarks/gpu_bench.py).")
    gpu.add_argument("--decode", default="auto", choices=["cpu", "device", "auto"])
    gpu.add_argument("--render-photos", type=int, default=500, help="Photos pre-rendered for the ImageNet-C route.")
    gpu.add_argument("--cost-batch", type=int, default=256, help="Batch of the per-transform cost (at most the run's).")
    gpu.add_argument("--cost-reps", type=int, default=3)
    gpu.add_argument("--agreement", action="store_true", help="Also top-1 agreement CPU vs device runs (lite0).")
    gpu.add_argument("--agree-photos", type=int, default=500)
    gpu.add_argument("--partial", default=None, help="Write the figures so far to this JSON file after each step.")
    args = parser.parse_args()
    if args.models is None:
        args.models = "resnet50,lite0" if args.gpu else "efficientnet_lite0"
    if args.gpu:
        from gpu_bench import main_gpu

        result = main_gpu(args, SHARED)
    elif args.scale:
        result = main_scale(args)
    elif args.mode == "corruptions":
        result = main_corruptions(args)
    else:
        result = main_throughput(args)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
