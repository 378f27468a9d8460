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
