"""Records: one row per (model, condition, photo), written in atomic chunks and merged at the end."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

RECORD_FIELDS = [
    pa.field("model", pa.string()),
    pa.field("transform", pa.string()),
    pa.field("severity", pa.int16()),
    pa.field("image_id", pa.string()),
    pa.field("label", pa.int16()),
    pa.field("top5", pa.list_(pa.int16(), 5)),
    pa.field("top5_prob", pa.list_(pa.float32(), 5)),
    pa.field("label_prob", pa.float32()),
    pa.field("confidence", pa.float32()),
    pa.field("correct1", pa.bool_()),
    pa.field("correct5", pa.bool_()),
]
LOGITS_FIELD = pa.field("logits", pa.list_(pa.float16()))
CELL_KEY = b"robustbench_lite.cell"


def record_schema(with_logits: bool) -> pa.Schema:
    return pa.schema(RECORD_FIELDS + ([LOGITS_FIELD] if with_logits else []))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())


class ChunkStore:
    """The run folder's `chunks/`: which (block, condition, model) cells are done, and their records."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir) / "chunks"
        self.dir.mkdir(parents=True, exist_ok=True)

    def _chunk_files(self) -> list[Path]:
        return sorted(p for p in self.dir.glob("*.parquet") if not p.name.startswith("."))

    def done_cells(self) -> set[tuple[int, str, int, str]]:
        """(block, transform, severity, model) of every chunk already on disk."""
        cells = set()
        for path in self._chunk_files():
            meta = json.loads(pq.read_schema(path).metadata[CELL_KEY])
            for model in meta["models"]:
                cells.add((meta["block"], meta["transform"], meta["severity"], model))
        return cells

    def chunk_count(self) -> int:
        return len(self._chunk_files())

    def write(self, block: int, transform: str, severity: int, table: pa.Table) -> Path:
        """Atomically write one chunk: the records of one block under one condition."""
        models = sorted(set(table.column("model").to_pylist()))
        meta = {"block": block, "transform": transform, "severity": severity, "models": models}
        table = table.replace_schema_metadata({CELL_KEY: json.dumps(meta).encode()})
        digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:10]
        name = f"b{block:06d}-{_slug(transform)}-s{severity}-{digest}.parquet"
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        path = self.dir / name
        atomic_write_bytes(path, sink.getvalue().to_pybytes())
        return path

    def write_skipped(self, block: int, skipped: list[dict]) -> None:
        atomic_write_json(self.dir / f"b{block:06d}-skipped.json", skipped)

    def skipped(self) -> list[dict]:
        found: list[dict] = []
        for path in sorted(self.dir.glob("b*-skipped.json")):
            found.extend(json.loads(path.read_text()))
        return found

    def merge(self, out_path: Path, with_logits: bool) -> int:
        """Stream every chunk into one records.parquet (memory stays flat); returns the row count."""
        schema = record_schema(with_logits)
        tmp = out_path.with_name(f".{out_path.name}.tmp")
        rows = 0
        seen: set[tuple] = set()
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for path in self._chunk_files():
                meta = json.loads(pq.read_schema(path).metadata[CELL_KEY])
                key = (meta["block"], meta["transform"], meta["severity"], tuple(meta["models"]))
                if key in seen:  # the same cells written twice (two ranks racing): keep one
                    continue
                seen.add(key)
                table = pq.read_table(path, columns=schema.names).cast(schema)
                writer.write_table(table)
                rows += table.num_rows
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out_path)
        return rows


def _slug(text: str) -> str:
    safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in text)
    return safe[:40]


def read_records(run_dir: Path, columns: Iterable[str] | None = None):
    """records.parquet as a DataFrame."""
    return pq.read_table(Path(run_dir) / "records.parquet", columns=list(columns) if columns else None).to_pandas()
