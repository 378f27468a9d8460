"""The named-dataset download code, exercised against a local HTTP server (no internet here)."""
from __future__ import annotations

import functools
import http.server
import threading
import zipfile
from pathlib import Path

import pytest

from robustbench_lite.data.datasets import open_dataset
from robustbench_lite.data.download import download, fetch_named_dataset, lay_out_sample_archive
from robustbench_lite.errors import UserError


def build_sample_archive(shared_sample: Path, rows: list[dict], dest: Path) -> Path:
    """An archive shaped like the public one: imagenet-sample-images-master/<synset>_<name>.JPEG."""
    with zipfile.ZipFile(dest, "w") as zf:
        zf.writestr("imagenet-sample-images-master/README.md", "sample")
        for row in rows:
            name = Path(row["path"]).name
            zf.write(shared_sample / row["path"], f"imagenet-sample-images-master/{name}")
    return dest


@pytest.fixture
def http_folder(tmp_path):
    """Serve tmp_path/www on 127.0.0.1 (Range requests supported by a small handler)."""
    www = tmp_path / "www"
    www.mkdir()

    class RangeHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def send_head(self):
            rng = self.headers.get("Range")
            path = Path(self.translate_path(self.path))
            if not rng or not path.is_file():
                return super().send_head()
            start = int(rng.split("=")[1].split("-")[0])
            data = path.read_bytes()
            self.send_response(206)
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            import io

            return io.BytesIO(data[start:])

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RangeHandler, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_fetch_lays_out_synset_folders(shared_sample, shared_manifest, http_folder, tmp_path):
    www, base = http_folder
    rows = shared_manifest[:6]
    build_sample_archive(shared_sample, rows, www / "master.zip")
    from robustbench_lite.data import download as dl

    spec = dl.NAMED_DATASETS["imagenet-sample"]
    dl.NAMED_DATASETS["imagenet-sample"] = dl.NamedDataset(spec.name, spec.url, expected_photos=6)
    try:
        folder = fetch_named_dataset("imagenet-sample", url=f"{base}/master.zip", root=tmp_path / "cache")
    finally:
        dl.NAMED_DATASETS["imagenet-sample"] = spec
    dataset = open_dataset(folder)
    assert {s.id: s.label for s in dataset.samples} == {r["path"]: int(r["imagenet_index"]) for r in rows}
    assert not (tmp_path / "cache" / "imagenet-sample.zip").exists()


def test_download_resumes_a_partial_file(http_folder, tmp_path):
    www, base = http_folder
    payload = bytes(range(256)) * 4000
    (www / "blob.bin").write_bytes(payload)
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(payload[:1000])  # an earlier, interrupted download
    download(f"{base}/blob.bin", dest)
    assert dest.read_bytes() == payload
    assert not dest.with_name("blob.bin.part").exists()


def test_checksum_mismatch_is_refused_and_removed(http_folder, tmp_path):
    www, base = http_folder
    (www / "blob.bin").write_bytes(b"abc")
    with pytest.raises(UserError, match="checksum mismatch"):
        download(f"{base}/blob.bin", tmp_path / "blob.bin", sha256="0" * 64)
    assert not (tmp_path / "blob.bin").exists() and not (tmp_path / "blob.bin.part").exists()


def test_wrong_photo_count_is_refused_atomically(shared_sample, shared_manifest, tmp_path):
    archive = build_sample_archive(shared_sample, shared_manifest[:3], tmp_path / "a.zip")
    with pytest.raises(UserError, match="expected 1000 photos, found 3"):
        lay_out_sample_archive(archive, tmp_path / "out", expected_photos=1000)
    assert not (tmp_path / "out").exists()


def test_unreachable_url_is_one_line(tmp_path):
    with pytest.raises(UserError, match="offline"):
        download("http://127.0.0.1:9/none.zip", tmp_path / "none.zip")


def test_frost_photos_come_from_the_wheel_on_the_index_checked_and_cached(http_folder, tmp_path, monkeypatch):
    """Without the installed package, frost's photos are downloaded once from the index's JSON API (the wheel's
    published sha256 checked, then each photo's), kept in the cache, and read from there afterwards; a wheel
    whose digest is not ours is refused with one line that says how to get the photos instead."""
    import hashlib
    import json
    import zipfile

    from transforms import _frost

    www, base = http_folder
    names = list(_frost.frost_meta()["photos"])
    originals = {name: _frost.frost_file(name).read_bytes() for name in names}  # the installed package's (make)
    wheel = www / _frost.WHEEL
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in originals.items():
            archive.writestr(f"imagecorruptions/frost/{name}", data)
        archive.writestr("imagecorruptions/__init__.py", "")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    api = www / "imagecorruptions" / "1.1.2"
    api.mkdir(parents=True)
    (api / "json").write_text(json.dumps({"urls": [{"filename": _frost.WHEEL, "url": f"{base}/{_frost.WHEEL}",
                                                    "digests": {"sha256": digest}}]}))
    monkeypatch.setattr(_frost, "WHEEL_SHA256", digest)
    monkeypatch.setattr(_frost, "_installed", lambda name: None)
    monkeypatch.setenv("ROBUSTBENCH_LITE_PYPI", base)
    monkeypatch.setenv("ROBUSTBENCH_LITE_CACHE", str(tmp_path / "cache"))
    path = _frost.frost_file("frost4.jpg")
    assert path == tmp_path / "cache" / "frost" / "frost4.jpg"
    assert {p.name: p.read_bytes() for p in path.parent.iterdir()} == originals  # six photos, nothing else left
    wheel.unlink()  # from now on the cache answers
    assert _frost.frost_file("frost1.png").read_bytes() == originals["frost1.png"]
    monkeypatch.setattr(_frost, "WHEEL_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match=r"pip install --no-deps imagecorruptions==1\.1\.2.*no imagecorruptions"):
        _frost.download(tmp_path / "other")
