"""Named datasets with real download code: cached, resumable, atomic, checked."""
from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .hashing import file_sha256


@dataclass(frozen=True)
class NamedDataset:
    name: str
    url: str
    expected_photos: int
    sha256: str | None = None  # archive checksum, where the source publishes a fixed archive


NAMED_DATASETS = {
    "imagenet-sample": NamedDataset(
        "imagenet-sample",
        "https://github.com/EliSchwartz/imagenet-sample-images/archive/refs/heads/master.zip",
        expected_photos=1000,  # one per class; a branch archive has no fixed checksum, so count
    ),
}


def cache_dir() -> Path:
    """`$ROBUSTBENCH_LITE_CACHE`, else ~/.cache/robustbench_lite."""
    return Path(os.environ.get("ROBUSTBENCH_LITE_CACHE", Path.home() / ".cache" / "robustbench_lite")).expanduser()


def download(url: str, dest: Path, sha256: str | None = None, chunk: int = 1 << 20) -> Path:
    """Fetch `url` to `dest`, resuming a partial `.part` file (HTTP Range); rename only when whole."""
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # already complete
            response = None
        else:
            raise UserError(f"download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"download {url}: {reason} (offline? give --data a local folder instead)") from None
    if response is not None:
        with response:
            resumed = response.status == 206
            mode = "ab" if resumed else "wb"
            total = response.headers.get("Content-Length")
            total = int(total) + (have if resumed else 0) if total else None
            with open(part, mode) as f, tqdm(total=total, initial=have if resumed else 0, unit="B", unit_scale=True, desc=dest.name) as bar:
                for block in iter(lambda: response.read(chunk), b""):
                    f.write(block)
                    bar.update(len(block))
                f.flush()
                os.fsync(f.fileno())
    if sha256 is not None:
        digest = file_sha256(part)
        if digest != sha256:
            part.unlink()
            raise UserError(f"download {url}: checksum mismatch (got {digest[:12]}..., expected {sha256[:12]}...); removed, try again")
    os.replace(part, dest)
    return dest


def lay_out_sample_archive(archive: Path, dest: Path, expected_photos: int) -> Path:
    """Unpack `<synset>_<name>.JPEG` files into `<synset>/` folders; atomic via a temporary folder."""
    from .imagenet import synset_to_index

    index = synset_to_index()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        count = 0
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                name = Path(info.filename).name
                synset = name.split("_", 1)[0]
                if info.is_dir() or synset not in index or not name.lower().endswith((".jpeg", ".jpg")):
                    continue
                (tmp / synset).mkdir(exist_ok=True)
                with zf.open(info) as src, open(tmp / synset / name, "wb") as out:
                    shutil.copyfileobj(src, out)
                count += 1
        if count != expected_photos:
            raise UserError(f"{archive}: expected {expected_photos} photos, found {count}; delete it and try again")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def fetch_named_dataset(name: str, url: str | None = None, root: Path | None = None) -> Path:
    """The folder of a named dataset, downloading and laying it out on first use."""
    spec = NAMED_DATASETS[name]
    root = root or cache_dir()
    folder = root / name
    if folder.is_dir() and any(folder.iterdir()):
        return folder
    archive = download(url or spec.url, root / f"{name}.zip", spec.sha256)
    lay_out_sample_archive(archive, folder, spec.expected_photos)
    archive.unlink(missing_ok=True)
    return folder
