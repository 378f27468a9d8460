"""Goldens of the native ImageNet-C recipe: the imagenet-testbed's own in-memory code on shared photos.

`--goldens DIR`: runs the testbed's `image_utils.py` (vendored verbatim in
benchmarks/reference/testbed_image_utils.py, MIT) on `--photos` shared photos (Resize 256 bicubic +
CenterCrop 224, float32 k / 255 as its ToTensor gives them) for the 18 corruptions it ran in memory
(all but glass_blur) at every severity, and writes DIR/<name>.npz (its float outputs x 255 x 100 as
uint16, and every random draw it made, photo by photo) and DIR/clean.npz, for
tests/test_testbed_goldens.py, which injects the draws into the native transforms and compares.

It runs under the reference interpreter (`.venv-ref`, made as benchmarks/README.md says: the
testbed's code needs numpy < 2 (np.float_), scipy < 1.13 (scipy.signal.gaussian) and OpenCV 4 (its
warpAffine's 1/32 px grid); torch comes from any install). Two things of the testbed's 2020 run are
set in the worker only: F.interpolate with a scale factor sizes and scales as torch 1.5.0 did
(recompute_scale_factor=True: the testbed pinned torch 1.5.0 when its columns were made), and its
frost folder is the package's frost photos (their pixels are the originals', tests/test_frost_photos.py).

    .venv/bin/python benchmarks/testbed_reference.py --goldens /tmp/testbed-goldens --photos 3
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NAMES = (
    "gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "defocus_blur", "motion_blur", "zoom_blur",
    "gaussian_blur", "snow", "frost", "fog", "spatter", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression", "saturate",
)  # fmt: skip
GOLDEN_SCALE = 100  # outputs stored as uint16 of value * 255 * GOLDEN_SCALE
TORCH_DRAWS = {  # the torch draws each function makes (reproduced by re-seeding): kind, shape(h, w)
    "gaussian_noise": [("randn", lambda h, w: (3, h, w))],
    "speckle_noise": [("randn", lambda h, w: (3, h, w))],
    "impulse_noise": [("rand", lambda h, w: (3, h, w)), ("rand", lambda h, w: (3, h, w))],
    "snow": [("randn", lambda h, w: (1, h, w))],
    "spatter": [("randn", lambda h, w: (1, h, w))],
    "elastic_transform": [("uniform", lambda h, w: (2, h, w))],
}


def load_testbed(frost_folder: Path):
    """The vendored testbed module, with torch 1.5's interpolate sizing and the package's frost photos."""
    import cv2
    import torch.nn.functional as F

    spec = importlib.util.spec_from_file_location("testbed_image_utils", HERE / "reference" / "testbed_image_utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Torch15Functional:
        def __getattr__(self, name):
            return getattr(F, name)

        @staticmethod
        def interpolate(*args, **kwargs):
            if kwargs.get("scale_factor") is not None:
                kwargs.setdefault("recompute_scale_factor", True)
            return F.interpolate(*args, **kwargs)

    module.F = Torch15Functional()
    pictures = frost_folder / "imagenet-c_frost_pictures"
    pictures.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO))
    from transforms.corruptions_weather import frost_photo

    for i in range(6):  # PNG content under the original names: cv2.imread reads by content
        pixels = (frost_photo(i).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        cv2.imwrite(str(pictures / f"frost{i + 1}.png"), pixels[..., ::-1])
        if i >= 3:
            (pictures / f"frost{i + 1}.png").rename(pictures / f"frost{i + 1}.jpg")
    module.__file__ = str(frost_folder / "image_utils.py")
    return module


class Recorder:
    """numpy's global uniform/randint and the module's python `random.randint`, every draw kept."""

    def __init__(self, module):
        import random

        self.draws: list[np.ndarray] = []
        for name in ("uniform", "randint"):
            setattr(np.random, name, self._keep(getattr(np.random, name)))

        class Random:
            def __getattr__(self, name):
                return getattr(random, name)

        wrapped = Random()
        wrapped.randint = self._keep(random.randint)
        module.r = wrapped

    def _keep(self, function):
        def draw(*args, **kwargs):
            value = function(*args, **kwargs)
            self.draws.append(np.asarray(value))
            return value

        return draw

    def take(self) -> list[np.ndarray]:
        draws, self.draws = self.draws, []
        return draws


def worker(folder: Path, names: list[str]) -> None:
    import random

    import torch

    module = load_testbed(folder / "frost")
    recorder = Recorder(module)
    photos = torch.from_numpy(np.load(folder / "clean.npy")).permute(0, 3, 1, 2).float().div(255).contiguous()  # as ToTensor
    h, w = photos.shape[-2:]
    for name in names:
        arrays = {}
        function = module.corruption_dict[name]
        for severity in range(1, 6):
            outs = []
            for i, photo in enumerate(photos):
                seed = 1000 * severity + i
                torch.manual_seed(seed), np.random.seed(seed), random.seed(seed)
                recorder.take()
                outs.append(function(photo.clone(), severity - 1).float())
                draws = []
                torch.manual_seed(seed)
                for kind, shape in TORCH_DRAWS.get(name, []):
                    if kind == "uniform":
                        draws.append(torch.FloatTensor(*shape(h, w)).uniform_(-1, 1).numpy())
                    else:
                        draws.append(getattr(torch, kind)(shape(h, w)).numpy())
                numpy_draws = recorder.take()
                if name == "elastic_transform":  # the affine's numpy draw comes first
                    draws = [numpy_draws[0].astype(np.float32)] + draws
                else:
                    draws += numpy_draws
                for k, draw in enumerate(draws):
                    arrays[f"draw:{severity}:{i}:{k}"] = draw
            out = torch.stack(outs).permute(0, 2, 3, 1).double().numpy()
            arrays[f"out:{severity}"] = np.round(np.clip(out, 0, 1) * 255 * GOLDEN_SCALE).astype(np.uint16)
        np.savez(folder / f"{name}.npz", **arrays)


def goldens(args) -> dict:
    sys.path.insert(0, str(HERE))
    from corruptions_reference import load_photos

    folder = args.goldens
    folder.mkdir(parents=True, exist_ok=True)
    photos, ids, _ = load_photos(args.photos)
    np.save(folder / "clean.npy", photos)
    np.savez(folder / "clean.npz", photos=photos, ids=np.array(ids))
    if not args.ref_python.exists():
        sys.exit(f"no reference interpreter at {args.ref_python}; make it as benchmarks/README.md says")
    subprocess.run([str(args.ref_python), __file__, "--worker", str(folder), "--names", ",".join(NAMES)], check=True)
    return {"mode": "testbed goldens", "folder": str(folder), "photos": len(ids)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goldens", type=Path, help="write the testbed's outputs and draws into this folder")
    parser.add_argument("--photos", type=int, default=3)
    parser.add_argument("--ref-python", type=Path, default=REPO / ".venv-ref" / "bin" / "python")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--names", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        try:
            worker(args.worker, args.names.split(","))
        except Exception:
            traceback.print_exc()
            sys.exit(1)
        return
    if not args.goldens:
        parser.error("--goldens DIR is required")
    with tempfile.TemporaryDirectory():
        print(json.dumps(goldens(args), indent=1))


if __name__ == "__main__":
    main()
