"""The ImageNet-C-bar release run on shared photos: the reference tests/test_cbar_goldens.py compares
the built-in `cbar` transforms with.

The release is facebookresearch/augmentation-corruption (MIT), folder `imagenet_c_bar/` (its
`corrupt.py`, `base.py`, `utils/`). It is not a package and is not vendored here: clone the public
repository and point $ROBUSTBENCH_LITE_CBAR_REF at its `imagenet_c_bar` folder (or put that folder at
`.cbar-ref/imagenet_c_bar` in this checkout). It runs on today's numpy, scipy, scikit-image and Pillow
(those of the project's own environment).

`--goldens DIR`: for each of the ten corruptions at the given severities, on `--photos` shared photos
(Resize 256 bicubic + CenterCrop 224, uint8), the release's `sample_parameters()` (numpy seeded per
photo and severity) and its `transform()` output, one DIR/<name>.npz each (params as JSON text), and
DIR/clean.npy. `--speed`: seconds per photo of each corruption at its middle severity, the release
(one photo at a time, as written) and ours (batched torch), on the same photos.

    .venv/bin/python benchmarks/cbar_reference.py --goldens /tmp/cbar-goldens --photos 2
    .venv/bin/python benchmarks/cbar_reference.py --speed --photos 4
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
NAMES = ("blue_noise_sample", "brownish_noise", "caustic_refraction", "checkerboard_cutout", "cocentric_sine_waves",
         "inverse_sparkles", "perlin_noise", "plasma_noise", "single_frequency_greyscale", "sparkles")


def reference_folder() -> Path | None:
    """The release's imagenet_c_bar folder: $ROBUSTBENCH_LITE_CBAR_REF, else .cbar-ref/imagenet_c_bar."""
    for candidate in (os.environ.get("ROBUSTBENCH_LITE_CBAR_REF", ""), str(REPO / ".cbar-ref" / "imagenet_c_bar")):
        if candidate and (Path(candidate) / "corrupt.py").is_file():
            return Path(candidate)
    return None


def release_classes(folder: Path) -> dict:
    """The release's transform classes by name (its folder put first on sys.path: it imports `utils`, `base`)."""
    sys.path.insert(0, str(folder))
    import corrupt  # noqa: PLC0415  (the release's module)

    return {cls.name: cls for cls in vars(corrupt).values() if isinstance(cls, type) and hasattr(cls, "tags")}


def jsonable(params: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else [float(i) for i in v] if isinstance(v, (list, tuple))
                else float(v) if isinstance(v, (float, np.floating)) else int(v)) for k, v in params.items()}


def goldens(folder: Path, out: Path, photos: np.ndarray, severities: dict[str, list[float]]) -> None:
    """The release's draws and outputs per corruption, severity and photo."""
    classes = release_classes(folder)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "clean.npy", photos)
    for name in NAMES:
        arrays = {}
        for level in severities[name]:
            for i, photo in enumerate(photos):
                np.random.seed(int(level * 100) * 1000 + i)
                transform = classes[name](severity=level, im_size=224)
                params = transform.sample_parameters()
                arrays[f"out:{level}:{i}"] = np.asarray(transform.transform(photo.copy(), **params), dtype=np.uint8)
                arrays[f"params:{level}:{i}"] = np.array(json.dumps(jsonable(params)))
        np.savez(out / f"{name}.npz", **arrays)


def speed(folder: Path, photos: np.ndarray) -> dict:
    """Seconds per photo at the middle severity: the release (photo by photo) and ours (one batch)."""
    import torch

    from robustbench_lite.conditions.registry import get_transform
    from robustbench_lite.conditions.rng import PhotoRNG

    classes = release_classes(folder)
    batch = torch.from_numpy(photos).permute(0, 3, 1, 2).float().div(255)
    rows = {}
    for name in NAMES:
        spec = get_transform(name)
        level = spec.levels[2]
        np.random.seed(0)
        start = time.perf_counter()
        for photo in photos:
            classes[name](severity=level, im_size=224)(photo.copy())
        theirs = (time.perf_counter() - start) / len(photos)
        start = time.perf_counter()
        spec(batch, level, PhotoRNG(list(range(len(photos)))))
        ours = (time.perf_counter() - start) / len(photos)
        rows[name] = {"release_s_per_photo": theirs, "ours_s_per_photo": ours, "speedup": theirs / ours}
        print(f"{name:28s} release {theirs:7.3f} s/photo  ours {ours:7.4f} s/photo  x{theirs / ours:6.1f}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goldens", type=Path)
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--photos", type=int, default=2)
    parser.add_argument("--severities", default="first,last", help="first,last or all")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    folder = reference_folder()
    if folder is None:
        sys.exit("no release checkout: set ROBUSTBENCH_LITE_CBAR_REF to augmentation-corruption/imagenet_c_bar")
    sys.path.insert(0, str(REPO / "benchmarks"))
    sys.path.insert(0, str(REPO))
    from corruptions_reference import load_photos

    photos = load_photos(args.photos)[0]
    from transforms._cbar_kit import RELEASE_TABLE

    chosen = {n: list(RELEASE_TABLE[n]) if args.severities == "all" else [RELEASE_TABLE[n][0], RELEASE_TABLE[n][-1]]
              for n in NAMES}
    result = {}
    if args.goldens:
        goldens(folder, args.goldens, photos, chosen)
        result["goldens"] = str(args.goldens)
    if args.speed:
        result["speed"] = speed(folder, photos)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
