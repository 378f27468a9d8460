"""The natural-shift datasets' download code, against a local HTTP server set as $ROBUSTBENCH_LITE_MIRROR.

Each archive is built here in its real release layout (tar, tar.gz or zip, its real top folder and
class-folder naming) from a few shared photos; the expected photo count is set to what was packed.
"""
from __future__ import annotations

import dataclasses
import functools
import http.server
import io
import tarfile
import threading
import urllib.parse
import zipfile
from pathlib import Path

import pytest

from robustbench_lite.data.datasets import open_dataset
from robustbench_lite.data.download import NAMED_DATASETS, fetch_named_dataset, mirrored
from robustbench_lite.errors import UserError

SHIFTS = ["imagenetv2-matched-frequency", "imagenet-sketch", "imagenet-r", "imagenet-a"]


def build_archive(spec, rows, shared_sample, dest: Path) -> Path:
    """The release archive of `spec` holding `rows`' photos: top/<synset or index>/<photo>."""
    members = []
    for row in rows:
        folder = row["imagenet_index"] if spec.class_folders == "index" else row["synset"]
        members.append((f"{spec.top}/{folder}/{Path(row['path']).stem}.jpeg", (shared_sample / row["path"]).read_bytes()))
    members.append((f"{spec.top}/README.txt", b"release notes"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.suffix == ".zip":
        with zipfile.ZipFile(dest, "w") as zf:
            for name, data in members:
                zf.writestr(name, data)
    else:
        with tarfile.open(dest, "w:gz" if dest.name.endswith(".gz") else "w") as tf:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return dest


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local server for tmp_path/www, set as the mirror; `cut` makes the next response stop halfway."""
    www = tmp_path / "www"
    www.mkdir()
    state = {"cut": False, "requests": []}

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            path = Path(self.translate_path(self.path))
            if not path.is_file():
                return super().do_GET()
            data = path.read_bytes()
            start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
            state["requests"].append(start)
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            body = data[start:]
            if state["cut"]:
                state["cut"] = False
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.shutdown(2)
                return
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(www)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("ROBUSTBENCH_LITE_MIRROR", f"http://127.0.0.1:{server.server_address[1]}")
    yield www, state
    server.shutdown()


def serve(www: Path, spec, rows, shared_sample) -> Path:
    return build_archive(spec, rows, shared_sample, www / urllib.parse.urlsplit(spec.url).path.lstrip("/"))


@pytest.mark.parametrize("name", SHIFTS)
def test_each_shift_installs_from_its_release_layout_through_the_mirror(name, mirror, shared_sample, shared_manifest,
                                                                         tmp_path):
    www, state = mirror
    rows = shared_manifest[:5]
    spec = dataclasses.replace(NAMED_DATASETS[name], expected_photos=len(rows))
    serve(www, spec, rows, shared_sample)
    state["cut"] = True  # the first transfer breaks off halfway: kept, then resumed with a Range request
    with pytest.raises(UserError, match="run the same command again to resume"):
        fetch_named_dataset(name, root=tmp_path / "cache", spec=spec)
    folder = fetch_named_dataset(name, root=tmp_path / "cache", spec=spec)
    assert state["requests"][0] == 0 and state["requests"][1] > 0
    dataset = open_dataset(folder)
    assert sorted(s.label for s in dataset.samples) == sorted(int(r["imagenet_index"]) for r in rows)
    assert not list((tmp_path / "cache").glob(".*")) and not list((tmp_path / "cache").glob("*.tar*"))


def test_a_damaged_or_short_archive_is_refused_and_nothing_is_left(mirror, shared_sample, shared_manifest, tmp_path):
    www, _ = mirror
    name = "imagenet-r"
    spec = dataclasses.replace(NAMED_DATASETS[name], expected_photos=5)
    archive = serve(www, spec, shared_manifest[:5], shared_sample)
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])  # truncated in the middle of a member
    with pytest.raises(UserError) as damaged:
        fetch_named_dataset(name, root=tmp_path / "cache", spec=spec)
    assert "\n" not in str(damaged.value) and ("damaged" in str(damaged.value) or "expected 5" in str(damaged.value))
    assert list((tmp_path / "cache").iterdir()) == []  # no folder, no archive, no temporary
    serve(www, spec, shared_manifest[:4], shared_sample)  # whole, but one photo short of the expected count
    with pytest.raises(UserError, match="expected 5 photos under imagenet-r/, found 4"):
        fetch_named_dataset(name, root=tmp_path / "cache", spec=spec)
    assert list((tmp_path / "cache").iterdir()) == []


def test_the_mirror_replaces_scheme_and_host_only(monkeypatch):
    monkeypatch.setenv("ROBUSTBENCH_LITE_MIRROR", "http://10.0.0.1:8080")
    assert mirrored("https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar") == "http://10.0.0.1:8080/~hendrycks/imagenet-r.tar"
    monkeypatch.setenv("ROBUSTBENCH_LITE_MIRROR", "nonsense")
    with pytest.raises(UserError, match="scheme and host"):
        mirrored("https://example.org/x.tar")


def test_a_local_folder_in_imagenetv2_layout_is_read_by_class_index(shared_sample, shared_manifest, tmp_path):
    rows = shared_manifest[:3]
    for row in rows:
        target = tmp_path / "v2" / row["imagenet_index"] / Path(row["path"]).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(shared_sample / row["path"])
    dataset = open_dataset(tmp_path / "v2")
    assert sorted(s.label for s in dataset.samples) == sorted(int(r["imagenet_index"]) for r in rows)
