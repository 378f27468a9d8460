"""Build transforms/frost/frost.json: what the frost corruption checks ImageNet-C's six frost photos by.

The photos themselves are never committed: transforms/_frost.py takes them from the `imagecorruptions`
1.1.2 wheel on PyPI (Michaelis et al., Apache-2.0), folder `imagecorruptions/frost/` (frost1-3.png,
frost4-6.jpg): byte for byte the files of ImageNet-C's own `ImageNet-C/create_c/` in hendrycks/robustness
(Apache-2.0) and of the imagenet-testbed's `src/eval_settings/imagenet-c_frost_pictures/` (MIT); the
sha256 of each original is checked below. They are photos of frost textures (no ImageNet photo).

`frost.json` records source and licence, and per photo the original file's sha256, the sha256 of its
decoded RGB pixels (a PNG's alpha dropped, as OpenCV's imread drops it) and its size; LICENSE is the
package's Apache-2.0 text.

    python tools/build_frost.py                      # pip downloads imagecorruptions==1.1.2
    python tools/build_frost.py --source DIR         # a folder holding the six files
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "transforms" / "frost"
PACKAGE = "imagecorruptions==1.1.2"
ORIGINALS = {  # name: sha256 of the file as imagecorruptions 1.1.2 (and ImageNet-C's create_c/) ship it
    "frost1.png": "ff9f907860bd7a835d459e32f9d588062b7f61ee267343cc7222b56753a14755",
    "frost2.png": "fe211a89b336999c207a852ce05818d4545d0b57c5beadd824b4cc9d9a9b6137",
    "frost3.png": "2d0d50b4a9bb213f38b024ef7768731bb83cc08d2f26b5766bbc167cdfa0e504",
    "frost4.jpg": "3f8b91ca1a9fa7167b09e773da53f5ae60d0a1fd88f02a783f6e328a72887f6e",
    "frost5.jpg": "5fc6a19df4a429ba68abdcc8f8a4278d4c9f81c9ccafd2c92ab0c8cf8992ebd2",
    "frost6.jpg": "1f92b2f48408748085b68dd81d816ef239f42cef3029c25d041fcb6760fb4f25",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rgb(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def originals_from_pip(folder: Path) -> dict[str, bytes]:
    """The six files out of the wheel pip downloads (no dependencies, nothing installed)."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d",
                    str(folder), PACKAGE], check=True)
    (wheel,) = folder.glob("imagecorruptions-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        files = {name: archive.read(f"imagecorruptions/frost/{name}") for name in ORIGINALS}
        return files | {"LICENSE": archive.read("imagecorruptions-1.1.2.dist-info/LICENSE")}


def build(originals: dict[str, bytes], out: Path = OUT) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    photos = {}
    for name, expected in ORIGINALS.items():
        data = originals[name]
        if sha256(data) != expected:
            sys.exit(f"{name}: sha256 {sha256(data)} is not the published file's {expected}")
        pixels = rgb(data)
        photos[name] = {"original_sha256": expected, "pixels_sha256": sha256(np.ascontiguousarray(pixels).tobytes()),
                        "height": int(pixels.shape[0]), "width": int(pixels.shape[1])}
    meta = {
        "source": f"PyPI {PACKAGE}, imagecorruptions/frost/ (the same files as hendrycks/robustness "
                  "ImageNet-C/create_c/ and modestyachts/imagenet-testbed src/eval_settings/imagenet-c_frost_pictures/)",
        "licence": "Apache-2.0 (imagecorruptions; hendrycks/robustness)",
        "built_by": "tools/build_frost.py",
        "photos": photos,
    }
    if "LICENSE" in originals:
        (out / "LICENSE").write_bytes(originals["LICENSE"])
    (out / "frost.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="a folder with frost1.png ... frost6.jpg (default: pip download)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.source:
        originals = {name: (args.source / name).read_bytes() for name in ORIGINALS}
        if (args.source / "LICENSE").exists():
            originals["LICENSE"] = (args.source / "LICENSE").read_bytes()
    else:
        with tempfile.TemporaryDirectory(prefix="frost-") as folder:
            originals = originals_from_pip(Path(folder))
    meta = build(originals, args.out)
    print(f"{args.out / 'frost.json'}: {len(meta['photos'])} frost photos described")


if __name__ == "__main__":
    main()
