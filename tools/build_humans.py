#!/usr/bin/env python3
"""Build robustbench_lite/human_data/ (model-vs-human's human table, 16 classes, mean spectrum).

    python tools/build_humans.py [--source ../shared/data/model-vs-human]
        [--photos ../shared/data/imagenet-sample] [--gamma PATH/x_gamma_function.npy] [--out DIR]
        [--raw-data PATH/model-vs-human/raw-data]

Everything written is deterministic: rebuilding from the same sources gives identical bytes.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "model-vs-human"
DEFAULT_PHOTOS = REPO.parent / "shared" / "data" / "imagenet-sample"
PACKAGE_DATA = REPO / "robustbench_lite" / "human_data"
GAMMA_NAME = "monitor_gamma.npy"
TRIALS_NAME = "human_trials.json"  # the subject CSVs' names, checksums and trial counts (downloaded on use)
TRIALS_URL = "https://raw.githubusercontent.com/bethgelab/model-vs-human/{commit}/raw-data/{experiment}/{file}"
SPECTRUM_NAME = "mean_amplitude_spectrum.npy"
SIDE = 224
BT709 = np.array([0.2125, 0.7154, 0.0721])  # skimage.color.rgb2gray

MVH_REPO = "bethgelab/model-vs-human"
MVH_COMMIT = "79ed7cd1d9ac3a114e71b6638f0a98bdd627316c"
STIMULI_REPO = "rgeirhos/generalisation-humans-DNNs"
STIMULI_COMMIT = "0b88343"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def photo_224(path: Path) -> np.ndarray:
    """A photo as the models see it (shorter side 256 bicubic, centre crop 224), uint8 RGB."""
    with Image.open(path) as picture:
        picture = picture.convert("RGB")
        width, height = picture.size
        size = (256, int(256 * height / width)) if width <= height else (int(256 * width / height), 256)
        picture = picture.resize(size, Image.BICUBIC)
        left = int(round((size[0] - SIDE) / 2.0))
        top = int(round((size[1] - SIDE) / 2.0))
        return np.asarray(picture.crop((left, top, left + SIDE, top + SIDE)))


def mean_amplitude_spectrum(photos: Path) -> tuple[np.ndarray, int]:
    """calculate_mean_power_spectrum.py's recipe: mean of |fftshift(fft2(rgb2gray(img / 255)))|."""
    with open(photos / "MANIFEST.csv", newline="") as f:
        paths = sorted(row["path"] for row in csv.DictReader(f))
    total = np.zeros((SIDE, SIDE), dtype=np.float64)
    for relative in paths:
        grey = (photo_224(photos / relative) / 255.0) @ BT709
        total += np.abs(np.fft.fftshift(np.fft.fft2(grey)))
    return total / len(paths), len(paths)


def compact_sixteen(source: Path) -> bytes:
    """sixteen_classes.json reduced to what the package uses: names, indices, WNIDs, the rule."""
    full = json.loads(source.read_text())
    indices = full["sixteen_class_imagenet_indices"]
    compact = {
        "categories": sorted(indices),
        "imagenet_indices": {k: sorted(int(i) for i in indices[k]) for k in sorted(indices)},
        "imagenet_wnids": {k: list(full["sixteen_class_wnids"][k]) for k in sorted(indices)},
        "aggregation_rule": full["aggregation_rule"]["rule"],
        "index_convention": full["index_convention"],
        "repo": full["repo"],
    }
    if sum(len(v) for v in compact["imagenet_indices"].values()) != 207:
        raise SystemExit("sixteen_classes.json: expected 207 member classes")
    return (json.dumps(compact, indent=1, sort_keys=True) + "\n").encode()


def benchmark_json(source: Path) -> bytes:
    """Humans' published benchmark scores plus each dataset's human-subject variance term.

    model-vs-human's accuracy difference averages (model - subject)^2 over subjects; that is
    (model - pooled human)^2 + the subjects' population variance. The variance term per dataset
    follows from the humans' own per-dataset accuracy difference (mean over subject pairs of
    (h_i - h_j)^2 = 2 n / (n - 1) * variance): term = (n - 1) / (2 n) * humans' value.
    """
    summary = json.loads((source / "benchmark_summary.json").read_text())
    with open(source / "human_accuracy.csv", newline="") as f:
        subjects = {row["experiment"]: int(row["n_subjects"]) for row in csv.DictReader(f)}
    per_dataset = summary["humans_per_dataset_humanlike"]["accuracy difference"]
    variance = {d: (subjects[d] - 1) / (2 * subjects[d]) * v for d, v in sorted(per_dataset.items())}
    out = {
        "humans": summary["humans"],
        "humans_per_dataset_OOD_accuracy": dict(sorted(summary["humans_per_dataset_OOD_accuracy"].items())),
        "humans_per_dataset_accuracy_difference": dict(sorted(per_dataset.items())),
        "humans_per_dataset_error_consistency": dict(sorted(
            summary["humans_per_dataset_humanlike"]["error consistency"].items())),
        "subject_variance_per_dataset": variance,
        "n_subjects": dict(sorted(subjects.items())),
        "definition": (
            "OOD accuracy: per dataset the mean accuracy over its conditions whose "
            "in_benchmark_ood_subset is not 'no', then the mean over datasets. Accuracy difference: "
            "per dataset the mean over those conditions of (model - subject)^2 averaged over subjects "
            "= (model - pooled human)^2 + subject_variance_per_dataset, then the mean over datasets."
        ),
    }
    return (json.dumps(out, indent=1, sort_keys=True) + "\n").encode()


def trials_json(raw_data: Path) -> bytes:
    """The list of model-vs-human's per-trial human CSVs (raw-data/<experiment>/<experiment>_subject-NN_session_1.csv
    at MVH_COMMIT): name, sha256 and rows of each, so the package can download and check them; no trial is kept."""
    experiments: dict[str, list[dict]] = {}
    for path in sorted(raw_data.glob("*/*_subject-*_session_1.csv")):
        data = path.read_bytes()
        rows = max(0, len(data.decode().strip().splitlines()) - 1)
        experiments.setdefault(path.parent.name, []).append(
            {"file": path.name, "sha256": hashlib.sha256(data).hexdigest(), "trials": rows})
    if sum(len(v) for v in experiments.values()) != 90 or len(experiments) != 17:
        raise SystemExit(f"{raw_data}: expected 90 subject files of 17 experiments")
    out = {"repo": MVH_REPO, "commit": MVH_COMMIT, "url": TRIALS_URL, "experiments": dict(sorted(experiments.items()))}
    return (json.dumps(out, indent=1, sort_keys=True) + "\n").encode()


def source_text(files: dict[str, bytes], n_photos: int, gamma_note: str) -> bytes:
    digests = "\n".join(f"  {name}  sha256 {hashlib.sha256(data).hexdigest()}" for name, data in sorted(files.items()))
    text = f"""robustbench_lite/human_data: model-vs-human's human reference data, built by tools/build_humans.py

Source: {MVH_REPO} @ {MVH_COMMIT} (raw-data/<experiment>/*_subject-NN_session_1.csv:
85,120 trials, 90 subject files), aggregated per experiment x condition (human_accuracy.csv,
benchmark_summary.json, sixteen_classes.json, human_shape_bias.csv of ../shared/data/model-vs-human).
{TRIALS_NAME}: the names, sha256 and trial counts of those 90 subject CSVs (no trial itself): the
package downloads them from {MVH_REPO} @ {MVH_COMMIT} when a run needs them (error consistency).
Stimulus code: {STIMULI_REPO} @ {STIMULI_COMMIT}, code/image_manipulation.py.

Licence: the code of both repositories is MIT licensed (as the shared README states); the
human CSVs carry no licence statement of their own, so these files hold aggregate statistics
derived from them, to be cited with both papers. No stimulus image is included.
{GAMMA_NAME}: the measured monitor gamma table of the 2018 lab ({STIMULI_REPO}
code/x_gamma_function.npy, 256 values; that repository's LICENSE.txt is CC-BY-4.0), {gamma_note}.
{SPECTRUM_NAME}: computed here, not copied: the mean amplitude spectrum
|fftshift(fft2(rgb2gray(photo / 255)))| (224 x 224, float16) over the {n_photos} photos of
../shared/data/imagenet-sample at shorter side 256 (bicubic) + centre crop 224, the recipe of
code/calculate_mean_power_spectrum.py applied to other photos.

Cite:
  R. Geirhos, C. R. M. Temme, J. Rauber, H. H. Schuett, M. Bethge, F. A. Wichmann.
  Generalisation in humans and deep neural networks. NeurIPS 2018.
  R. Geirhos, K. Narayanappa, B. Mitzkus, T. Thieringer, M. Bethge, F. A. Wichmann, W. Brendel.
  Partial success in closing the gap between human and machine vision. NeurIPS 2021.

Files:
{digests}
"""
    return text.encode()


def build(source: Path, photos: Path, out: Path, gamma: Path | None, raw_data: Path | None = None) -> dict[str, int]:
    """Write every package-data file under `out`; returns their sizes in bytes.

    `raw_data` (a model-vs-human checkout's raw-data/) rebuilds human_trials.json; without it the bundled one is kept.
    """
    for needed in ("human_accuracy.csv", "sixteen_classes.json", "benchmark_summary.json", "human_shape_bias.csv"):
        if not (source / needed).is_file():
            raise SystemExit(f"{source / needed} is missing")
    if not (photos / "MANIFEST.csv").is_file():
        raise SystemExit(f"{photos / 'MANIFEST.csv'} is missing")
    gamma = gamma or PACKAGE_DATA / GAMMA_NAME
    table = np.load(gamma, allow_pickle=False).astype(np.float64).reshape(-1)
    if table.shape != (256,) or not np.all(np.diff(table) > 0):
        raise SystemExit(f"{gamma}: expected 256 increasing monitor-gamma values")
    trials = trials_json(raw_data) if raw_data is not None else (PACKAGE_DATA / TRIALS_NAME).read_bytes()
    spectrum, n_photos = mean_amplitude_spectrum(photos)
    files = {
        "human_accuracy.csv": (source / "human_accuracy.csv").read_bytes(),
        "human_shape_bias.csv": (source / "human_shape_bias.csv").read_bytes(),
        TRIALS_NAME: trials,
        "sixteen_classes.json": compact_sixteen(source / "sixteen_classes.json"),
        "benchmark.json": benchmark_json(source),
        SPECTRUM_NAME: _npy_bytes(spectrum.astype(np.float16)),
        GAMMA_NAME: _npy_bytes(table),
    }
    files["meta/SOURCE"] = source_text(files, n_photos, "kept as is (float64)")
    if out.exists():
        shutil.rmtree(out)
    for name, data in files.items():
        _write(out / name, data)
    return {name: len(data) for name, data in files.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--gamma", type=Path, default=None,
                        help="x_gamma_function.npy (default: the copy already bundled)")
    parser.add_argument("--out", type=Path, default=PACKAGE_DATA)
    parser.add_argument("--raw-data", type=Path, default=None,
                        help=f"a {MVH_REPO} checkout's raw-data/ (default: keep the bundled {TRIALS_NAME})")
    args = parser.parse_args(argv)
    sizes = build(args.source, args.photos, args.out, args.gamma, args.raw_data)
    for name, size in sorted(sizes.items()):
        print(f"{size:>8}  {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
