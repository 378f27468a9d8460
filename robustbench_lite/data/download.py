"""Named datasets with real download code: cached, resumable, atomic, checked."""
from __future__ import annotations

import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..hashing import file_sha256
from .mvh_stimuli import PHOTOS, PREFIX, archive_place, release_url


@dataclass(frozen=True)
class NamedDataset:
    """A public dataset: where its release archive is, what it holds, and how it is laid out."""

    name: str
    url: str
    expected_photos: int  # checked after unpacking: a damaged or partial archive is refused
    sha256: str | None = None  # archive checksum, where the source publishes a fixed archive
    top: str = ""  # the archive's folder holding the class folders ("" for imagenet-sample's flat files)
    class_folders: str = "synset"  # "synset" (n01440764/...), "index" (0/ ... 999/, ImageNetV2) or "stimuli" (mvh:)

    @property
    def folder(self) -> str:
        """The cache folder's name (`mvh:low-pass` -> `mvh-low-pass`: no colon in a path)."""
        return self.name.replace(":", "-")


_V2 = "https://huggingface.co/datasets/vaishaal/ImageNetV2/resolve/main"  # the ImageNetV2 authors' release
_HENDRYCKS = "https://people.eecs.berkeley.edu/~hendrycks"  # ImageNet-R and -A, as their READMEs link
NAMED_DATASETS = {
    "imagenet-sample": NamedDataset(
        "imagenet-sample",
        "https://github.com/EliSchwartz/imagenet-sample-images/archive/refs/heads/master.zip",
        expected_photos=1000,  # one per class; a branch archive has no fixed checksum, so count
    ),
    # Recht et al. 2019: 10,000 photos each, folders named by class index 0-999
    "imagenetv2-matched-frequency": NamedDataset(
        "imagenetv2-matched-frequency", f"{_V2}/imagenetv2-matched-frequency.tar.gz", 10_000,
        top="imagenetv2-matched-frequency-format-val", class_folders="index"),
    "imagenetv2-threshold0.7": NamedDataset(
        "imagenetv2-threshold0.7", f"{_V2}/imagenetv2-threshold0.7.tar.gz", 10_000,
        top="imagenetv2-threshold0.7-format-val", class_folders="index"),
    "imagenetv2-top-images": NamedDataset(
        "imagenetv2-top-images", f"{_V2}/imagenetv2-top-images.tar.gz", 10_000,
        top="imagenetv2-top-images-format-val", class_folders="index"),
    # Wang et al. 2019: 50,889 sketches of the 1,000 classes (the authors' release, mirrored on the Hub)
    "imagenet-sketch": NamedDataset(
        "imagenet-sketch", "https://huggingface.co/datasets/songweig/imagenet_sketch/resolve/main/data/ImageNet-Sketch.zip",
        50_889, top="sketch"),
    # Hendrycks et al. 2021: 200 classes each
    "imagenet-r": NamedDataset("imagenet-r", f"{_HENDRYCKS}/imagenet-r.tar", 30_000, top="imagenet-r"),
    "imagenet-a": NamedDataset("imagenet-a", f"{_HENDRYCKS}/imagenet-a.tar", 7_500, top="imagenet-a"),
}
NAMED_DATASETS.update({  # model-vs-human's 17 stimulus sets (mvh_stimuli.py says where and how they are laid out)
    f"{PREFIX}{name}": NamedDataset(f"{PREFIX}{name}", release_url(name), count, top=name, class_folders="stimuli")
    for name, count in PHOTOS.items()
})
MIRROR_VARIABLE = "ROBUSTBENCH_LITE_MIRROR"


def mirrored(url: str) -> str:
    """`url` with its scheme and host replaced by `$ROBUSTBENCH_LITE_MIRROR` (mirrors, air-gapped clusters, tests)."""
    mirror = os.environ.get(MIRROR_VARIABLE)
    if not mirror:
        return url
    target = urllib.parse.urlsplit(mirror)
    if not target.scheme or not target.netloc:
        raise UserError(f"${MIRROR_VARIABLE}={mirror!r}: give a scheme and host, e.g. http://mirror.example:8080")
    return urllib.parse.urlsplit(url)._replace(scheme=target.scheme, netloc=target.netloc).geturl()


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
            try:
                with open(part, mode) as f, tqdm(total=total, initial=have if resumed else 0, unit="B", unit_scale=True,
                                                 desc=dest.name) as bar:
                    for block in iter(lambda: response.read(chunk), b""):
                        f.write(block)
                        bar.update(len(block))
                    f.flush()
                    os.fsync(f.fileno())
            except (OSError, http.client.HTTPException) as exc:  # a cut connection: keep the part, resume later
                raise UserError(f"download {url}: interrupted ({type(exc).__name__}); run the same command again "
                                "to resume") from None
            if total is not None and part.stat().st_size < total:
                raise UserError(f"download {url}: interrupted at {part.stat().st_size:,} of {total:,} bytes; run the "
                                "same command again to resume")
    if sha256 is not None:
        digest = file_sha256(part)
        if digest != sha256:
            part.unlink()
            raise UserError(f"download {url}: checksum mismatch (got {digest[:12]}..., expected {sha256[:12]}...); removed, try again")
    os.replace(part, dest)
    return dest


def lay_out_sample_archive(archive: Path, dest: Path, expected_photos: int) -> Path:
    """Unpack the public sample's `<synset>_<name>.JPEG` files into `<synset>/` folders; atomic, counted."""
    def place(member: str) -> tuple[str, str] | None:
        name = Path(member).name
        return (name.split("_", 1)[0], name) if name.lower().endswith((".jpeg", ".jpg")) else None

    return _lay_out(archive, dest, expected_photos, place)


def _members(archive: Path):
    """(path inside the archive, opener) of every file of a zip or tar archive; unsafe paths are skipped."""
    if zipfile.is_zipfile(archive):
        zf = zipfile.ZipFile(archive)
        for info in zf.infolist():
            if not info.is_dir():
                yield info.filename, (lambda info=info: zf.open(info))
        zf.close()
        return
    with tarfile.open(archive) as tf:
        for member in tf:
            if member.isfile() and not member.name.startswith("/") and ".." not in Path(member.name).parts:
                yield member.name, (lambda member=member: tf.extractfile(member))


def lay_out_class_archive(archive: Path, dest: Path, spec: NamedDataset) -> Path:
    """Unpack a release archive's `top/<class>/<photo>` files into `dest/<synset>/`; atomic, counted."""
    from .imagenet import synset_to_index

    synsets = list(synset_to_index())

    def place(member: str) -> tuple[str, str] | None:
        parts = Path(member).parts
        if len(parts) < 3 or parts[-3] != spec.top or not is_photo_name(parts[-1]):
            return None
        folder = parts[-2]
        if spec.class_folders == "index":  # ImageNetV2: class-index folders, 0-999 in synset order
            folder = synsets[int(folder)] if folder.isdigit() and int(folder) < len(synsets) else ""
        return folder, parts[-1]

    return _lay_out(archive, dest, spec.expected_photos, place, f" under {spec.top}/")


def lay_out_stimulus_archive(archive: Path, dest: Path, spec: NamedDataset) -> Path:
    """Unpack a model-vs-human release archive's stimuli into `dest/<category>/<stimulus name>`; atomic, counted."""
    from .sixteen_class import CATEGORIES

    return _lay_out(archive, dest, spec.expected_photos, lambda member: archive_place(spec.top, member),
                    f" of {spec.top} named as its release names them", folders=set(CATEGORIES))


def _lay_out(archive: Path, dest: Path, expected: int, place, where: str = "", folders=None) -> Path:
    """Copy the archive's photos that `place(member) -> (folder, file name) | None` keeps into `dest/<folder>/`.

    `folders` are the folder names allowed (ImageNet synsets by default). Built in a temporary folder and
    renamed only when whole and counted right; a damaged or short archive is removed (the next run
    downloads it anew) and nothing is left behind.
    """
    from .imagenet import synset_to_index

    index = synset_to_index() if folders is None else folders
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        count = 0
        try:
            for member, opener in _members(archive):
                target = place(member)
                if target is None or target[0] not in index:
                    continue
                (tmp / target[0]).mkdir(exist_ok=True)
                with opener() as src, open(tmp / target[0] / target[1], "wb") as out:
                    shutil.copyfileobj(src, out)
                count += 1
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
            archive.unlink(missing_ok=True)
            raise UserError(f"{archive.name}: damaged archive ({type(exc).__name__}: {exc}); removed it, run again to "
                            "download it anew") from None
        if count != expected:
            archive.unlink(missing_ok=True)
            raise UserError(f"{archive.name}: expected {expected} photos{where}, found {count}; removed it, run again "
                            "to download it anew")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def is_photo_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith((".jpeg", ".jpg", ".png"))


def fetch_named_dataset(name: str, url: str | None = None, root: Path | None = None,
                        spec: NamedDataset | None = None) -> Path:
    """The folder of a named dataset, downloading (through `$ROBUSTBENCH_LITE_MIRROR` when set) and laying it
    out on first use; a folder already laid out in the cache is used as it is."""
    spec = spec or NAMED_DATASETS[name]
    root = root or cache_dir()
    folder = root / spec.folder
    if folder.is_dir() and any(folder.iterdir()):
        return folder
    source = url or mirrored(spec.url)
    archive = download(source, root / Path(urllib.parse.urlsplit(spec.url).path).name, spec.sha256)
    if spec.class_folders == "stimuli":
        lay_out_stimulus_archive(archive, folder, spec)
    elif spec.top:
        lay_out_class_archive(archive, folder, spec)
    else:
        lay_out_sample_archive(archive, folder, spec.expected_photos)
    archive.unlink(missing_ok=True)
    return folder
