"""`throughput.py --gpu`: issue #15's measurement (one JSON object), on CUDA or, small, on the CPU.

Clean + ImageNet-C's 15 corruptions at severity 3 + the four core families at level 3, over a
folder of the shared photos repeated (symlinks) to --photos, for timm resnet50 (random weights:
speed only) --repeats times and packaged EfficientNet-Lite0 once, auto batch size:
  forward_only_s   the bare model over photos x conditions random tensors already on the device
  pipeline_s       the whole `run` command (start-up, decode, transforms, forward, records, report)
  core_s           its decode + transform + forward + records stages
  per_transform_cost  each condition's transform / the model's forward of the same batch (device-synchronised)
  prerendered_s    the ImageNet-C way: pre-corrupted 224 px JPEGs read by a DataLoader (16 workers) + forward;
                   rendered for --render-photos photos (render_s), both extrapolated linearly to --photos
  agreement        (--agreement) top-1 of deterministic conditions, CPU run vs device runs (decode cpu/device)
With --partial PATH the figures so far are written there after each step (a run cut short keeps them).
"""
from __future__ import annotations

import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

CONDITIONS = ("family:corruptions,-speckle_noise,-gaussian_blur,-spatter,-saturate,"
              "family:greyscale,family:outlines,family:borders,family:distortions")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_spec(name: str, work: Path) -> str:
    """`resnet50` -> timm resnet50 with random weights saved to a file (ARCH@PATH); other names as they are."""
    if name != "resnet50":
        return name
    import timm

    path = work / "resnet50-random.pth"
    if not path.exists():
        torch.save(timm.create_model("resnet50", pretrained=False).state_dict(), path)
    return f"resnet50@{path}"


def pipeline_once(data: Path, spec: str, args, out: Path, transforms: str) -> dict:
    """One `run` in a subprocess: wall, stage seconds, batch size used."""
    from throughput import run_subprocess, stage_seconds

    cmd = ["run", "--data", str(data), "--models", spec, "--transforms", transforms, "--severities", "3",
           "--device", args.device, "--precision", args.precision, "--batch-size", args.batch_size,
           "--decode", args.decode, "--out", str(out), "--force"]
    wall, peak, _ = run_subprocess(cmd)
    t = stage_seconds(out)
    manifest = json.loads((out / "manifest.json").read_text())
    used = manifest.get("batch_sizes", {})
    return {"wall": wall, "core": t["decode"] + t["transform"] + t["forward"] + t["records"], "stages": t,
            "batch": min(used.values()) if used else 32, "decode": manifest.get("decode"), "rss": peak}


def decoded_photos(samples, geometry, n: int, device: torch.device) -> torch.Tensor:
    """`n` photos (the shared ones cycled) decoded by the CPU path, as [0, 1] floats on `device`."""
    from robustbench_lite.data.decode import DecodeDataset, collate_decoded

    items = [DecodeDataset(samples, geometry)[i % len(samples)] for i in range(n)]
    return collate_decoded(items)[1].to(device).float().div_(255.0)


def timed(fn, device: torch.device, reps: int) -> float:
    """Median seconds of `fn()` over `reps` runs after one warm-up, the device synchronised around each.

    On the CPU, process CPU time (the caller runs one thread): a shared machine's other load does not count.
    """
    clock = time.process_time if device.type == "cpu" else time.perf_counter
    fn()
    _sync(device)
    times = []
    for _ in range(reps):
        t0 = clock()
        fn()
        _sync(device)
        times.append(clock() - t0)
    return statistics.median(times)


def transform_costs(spec: str, samples, conditions, batch: int, device: torch.device, precision: str, reps: int) -> dict:
    """Each condition's transform (as the run applies it) over one batch, as a fraction of the model's forward."""
    from robustbench_lite.conditions.application import apply_transform, check_transform_output
    from robustbench_lite.run.evaluate import autocast
    from robustbench_lite.models import load_model, resolve_models
    from robustbench_lite.conditions.registry import get_transform

    model = load_model(resolve_models(spec)[0], device)
    x = decoded_photos(samples, model.geometry, batch, device)
    ids = [f"p{i}" for i in range(batch)]
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        return _costs(model, x, ids, conditions, device, precision, reps)
    finally:
        torch.set_num_threads(threads)


def _costs(model, x, ids, conditions, device, precision, reps) -> dict:
    from robustbench_lite.conditions.application import apply_transform, check_transform_output
    from robustbench_lite.run.evaluate import autocast
    from robustbench_lite.conditions.registry import get_transform

    def forward():
        with torch.inference_mode(), autocast(device, precision):
            model.module(model.normalise(x).contiguous(memory_format=torch.channels_last)).float().softmax(1).topk(5)

    fwd = timed(forward, device, reps)
    costs = {}
    for c in conditions:
        if c.is_clean:
            continue
        t = get_transform(c.transform)
        with torch.inference_mode():
            seconds = timed(lambda: check_transform_output(x, apply_transform(t, x, c, ids, 0), t.name), device, reps)
        costs[c.transform] = round(seconds / fwd, 4)
    values = list(costs.values())
    return {"clock": "process CPU time, 1 thread" if device.type == "cpu" else "wall, device synchronised",
            "forward_s_per_batch": round(fwd, 4), "batch": len(ids), "mean": round(statistics.mean(values), 4),
            "max": round(max(values), 4), "over_8pct": sorted(k for k, v in costs.items() if v > 0.08),
            "over_20pct": sorted(k for k, v in costs.items() if v > 0.20), "per_condition": costs}


def render(samples, conditions, spec: str, dest: Path, device: torch.device, batch: int) -> float:
    """Pre-corrupted copies at the model's 224 px geometry as JPEG quality 85 (ImageNet-C's release); seconds."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    from robustbench_lite.conditions.application import apply_transform
    from robustbench_lite.models import load_model, resolve_models
    from robustbench_lite.conditions.registry import get_transform

    geometry = load_model(resolve_models(spec)[0], torch.device("cpu")).geometry
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
        for start in range(0, len(samples), batch):
            part = samples[start : start + batch]
            x = decoded_photos(part, geometry, len(part), device)
            for c in conditions:
                with torch.inference_mode():
                    y = x if c.is_clean else apply_transform(get_transform(c.transform), x, c, [s.id for s in part], 0)
                arrays = y.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
                for s, a in zip(part, arrays):
                    path = dest / f"{c.transform}-{c.severity}" / s.path.parent.name / f"{Path(s.id).stem}.jpg"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    pool.submit(lambda a=a, path=path: Image.fromarray(a).save(path, quality=85))
    return time.perf_counter() - t0


class _Prerendered(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from robustbench_lite.data.decode import load_rgb, to_uint8_chw

        return to_uint8_chw(load_rgb(self.paths[i]))


def read_prerendered(root: Path, spec: str | None, batch: int, device: torch.device, precision: str) -> float:
    """Every pre-rendered condition folder through one 16-worker DataLoader (and the model, if `spec`); seconds.

    One loader over all folders (workers started once), the stricter baseline: an evaluation script that
    makes a loader per corruption folder also pays the workers' start-up per folder."""
    from robustbench_lite.run.evaluate import autocast
    from robustbench_lite.models import load_model, resolve_models

    model = load_model(resolve_models(spec)[0], device) if spec else None
    workers = min(16, os.cpu_count() or 1)
    t0 = time.perf_counter()
    paths = [path for folder in sorted(p for p in root.iterdir() if p.is_dir()) for path in sorted(folder.rglob("*.jpg"))]
    loader = torch.utils.data.DataLoader(_Prerendered(paths), batch_size=batch, num_workers=workers,
                                         pin_memory=device.type == "cuda")
    for x in loader:
        x = x.to(device, non_blocking=True)
        if model is not None:
            with torch.inference_mode(), autocast(device, precision):
                z = model.normalise(x.float().div_(255)).contiguous(memory_format=torch.channels_last)
                model.module(z).float().softmax(1).topk(5)
    _sync(device)
    return time.perf_counter() - t0


def deterministic(conditions) -> list:
    """Conditions whose output does not depend on the seed (so CPU and CUDA runs can agree photo by photo)."""
    from robustbench_lite.conditions.application import apply_transform
    from robustbench_lite.conditions.registry import get_transform

    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    keep = []
    for c in conditions:
        if c.is_clean:
            keep.append(c)
            continue
        t = get_transform(c.transform)
        if torch.equal(apply_transform(t, x, c, ["a", "b"], 0), apply_transform(t, x, c, ["a", "b"], 1)):
            keep.append(c)
    return keep


def agreement(args, shared: Path, work: Path, conditions) -> dict:
    """Lite0 top-1 on the shared photos, deterministic conditions: CPU run vs each device run (decode cpu, device)."""
    import pandas as pd

    from throughput import run_subprocess

    names = ",".join(f"{c.transform}@{c.severity}" for c in deterministic(conditions) if not c.is_clean)
    runs = {"cpu": ("cpu", "cpu")}
    if args.device != "cpu":
        runs.update({"device-decode-cpu": (args.device, "cpu"), "device-decode-device": (args.device, "device")})
    else:
        runs["cpu-decode-device"] = ("cpu", "device")
    tops = {}
    for key, (device, decode) in runs.items():
        out = work / f"agree-{key}"
        run_subprocess(["run", "--data", str(shared), "--models", "efficientnet_lite0", "--transforms", names, "--limit",
                        str(args.agree_photos), "--device", device, "--decode", decode, "--precision", "fp32",
                        "--out", str(out), "--force", "--no-report"])
        r = pd.read_parquet(out / "records.parquet").sort_values(["transform", "severity", "image_id"])
        tops[key] = r["top5"].map(lambda t: int(t[0])).to_numpy()
    return {"photos": args.agree_photos, "conditions": names.count(",") + 2,
            **{f"top1_agreement_{k}_vs_cpu": round(float((v == tops["cpu"]).mean()), 5) for k, v in tops.items() if k != "cpu"}}


def main_gpu(args, shared: Path) -> dict:
    """Everything above, one JSON object."""
    from throughput import _device_name, forward_only, repeated_folder

    from robustbench_lite.conditions.keys import build_conditions, parse_severities
    from robustbench_lite.data.datasets import open_dataset, spread_over_classes
    from robustbench_lite.run.plan import resolve_device
    from robustbench_lite.conditions.selection import select_transforms

    device = resolve_device(args.device)
    transforms = args.transforms if args.transforms != "family:greyscale,outlines,borders,distortions" else CONDITIONS
    conditions = build_conditions(select_transforms(transforms), parse_severities("3"))
    work = Path(tempfile.mkdtemp(prefix="rbl-gpu-"))
    unique = min(args.photos, 500)
    data = repeated_folder(shared, work / "data", unique, math.ceil(args.photos / unique))
    samples = open_dataset(data).samples[: args.photos]
    images = len(open_dataset(data).samples)
    import timm
    import torchvision

    versions = {"torch": torch.__version__, "cuda": torch.version.cuda, "torchvision": torchvision.__version__,
                "timm": timm.__version__, "python": sys.version.split()[0]}
    result = {"device": _device_name(args.device), "versions": versions, "images": images, "conditions": len(conditions),
              "image_conditions": images * len(conditions), "precision": args.precision, "batch_size": args.batch_size,
              "decode": args.decode, "models": {}}

    def save() -> None:  # the figures so far, for a run stopped at its time limit (--partial)
        if args.partial:
            Path(args.partial).write_text(json.dumps({**result, "partial": True}, indent=1))

    save()
    for name, repeats in (("resnet50", args.repeats), ("efficientnet_lite0", 1)):
        if name not in args.models.split(",") and not (name == "efficientnet_lite0" and "lite0" in args.models.split(",")):
            continue
        spec = model_spec(name, work)
        runs = [pipeline_once(data, spec, args, work / f"{name}-{i}", transforms) for i in range(repeats)]
        batch = runs[-1]["batch"]
        per_forward = min(batch, 256, images)  # the run's forwards: one batch never spans two 256-photo chunks
        fwd = [forward_only(spec, images * len(conditions), per_forward, args.device, args.precision) for _ in range(repeats)]
        med = statistics.median
        pipeline, core = med(r["wall"] for r in runs), med(r["core"] for r in runs)
        result["models"][name] = {
            "weights": "random (timing only)" if name == "resnet50" else "packaged", "repeats": repeats,
            "batch_size_used": batch, "decode_used": runs[-1]["decode"],
            "forward_only_s": round(med(fwd), 3), "core_s": round(core, 3), "pipeline_s": round(pipeline, 3),
            "core_efficiency": round(med(fwd) / core, 3), "efficiency": round(med(fwd) / pipeline, 3),
            "peak_rss_mb": round(max(r["rss"] for r in runs), 1), "stages_last_run": runs[-1]["stages"],
        }
        save()
        if name == "resnet50":
            result["per_transform_cost"] = transform_costs(spec, samples, conditions, min(batch, args.cost_batch),
                                                           device, args.precision, reps=args.cost_reps)
            save()
            few = samples[: args.render_photos]
            scale = images / len(few)
            render_s = render(few, conditions, spec, work / "rendered", device, batch)
            read_s = read_prerendered(work / "rendered", None, batch, device, args.precision)
            full_s = read_prerendered(work / "rendered", spec, batch, device, args.precision)
            result["prerendered"] = {
                "extrapolated": f"linearly from {len(few)} to {images} photos (x{scale:g})",
                "render_s": round(render_s * scale, 3), "prerendered_read_s": round(read_s * scale, 3),
                "prerendered_s": round(full_s * scale, 3), "measured_render_s": round(render_s, 3),
                "measured_read_s": round(read_s, 3), "measured_s": round(full_s, 3),
                "pipeline_vs_read_alone": round(read_s * scale / pipeline, 3),
            }
            save()
    if args.agreement:
        result["agreement"] = agreement(args, shared, work, conditions)
    if args.partial:
        Path(args.partial).unlink(missing_ok=True)  # complete: the printed object is the result
    return result


if __name__ == "__main__":
    sys.exit("run it as: python benchmarks/throughput.py --gpu [options]")
