"""The run folder on disk: records written in atomic chunks, merged into records.parquet, and read back."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import UserError
from .records import ANALYSIS_COLUMNS, analysis_frame, record_schema

CELL_KEY = b"robustbench_lite.cell"
TEMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give: mkstemp's private 0600 would hide results


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), FILE_MODE)
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: after a power cut the new name, not the old, is what survives."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def strict_json(obj):
    """`obj` with non-finite floats as the strings "inf", "-inf", "nan" (strict JSON has no Infinity or NaN).

    model-vs-human's high-pass starts at sigma = inf, so a run's levels can hold one.
    """
    if isinstance(obj, float) and obj != obj:
        return "nan"
    if isinstance(obj, float) and obj in (float("inf"), float("-inf")):
        return "inf" if obj > 0 else "-inf"
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def atomic_write_json(path: Path, obj) -> None:
    text = json.dumps(strict_json(obj), indent=2, default=str, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())


class ChunkStore:
    """The run folder's `chunks/`: which (block, condition, model) cells are done, and their records.

    A chunk that cannot be read (damaged outside this program) is renamed `*.unreadable` the first
    time it is seen: its cells count as not done, so a resumed run evaluates them again.
    """

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir) / "chunks"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.set_aside: list[str] = []

    def _chunk_files(self) -> list[Path]:
        return sorted(p for p in self.dir.glob("*.parquet") if not p.name.startswith("."))

    def chunks(self) -> list[dict]:
        """Metadata (block, transform, severity, models, path) of every readable chunk on disk."""
        found = []
        for path in self._chunk_files():
            try:
                meta = json.loads(pq.read_schema(path).metadata[CELL_KEY])
                meta = {"block": int(meta["block"]), "transform": str(meta["transform"]),
                        "severity": int(meta["severity"]), "models": [str(m) for m in meta["models"]]}
            except Exception:  # truncated, foreign or hand-edited: set it aside, evaluate again
                with contextlib.suppress(FileNotFoundError):  # another rank set it aside first
                    path.replace(path.with_name(path.name + ".unreadable"))
                self.set_aside.append(path.name)
                continue
            found.append({**meta, "path": path})
        return found

    def write(self, block: int, transform: str, severity: int, table: pa.Table, models: list[str] | None = None) -> Path:
        """Atomically write one chunk: the records of one block under one condition.

        `models` names the cells the chunk completes; given, it may hold no rows (every photo of
        the block undecodable), so a resumed run does not try the block again.
        """
        models = sorted(set(models if models is not None else table.column("model").to_pylist()))
        meta = {"block": block, "transform": transform, "severity": severity, "models": models}
        table = table.replace_schema_metadata({CELL_KEY: json.dumps(meta).encode()})
        digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:10]
        name = f"b{block:06d}-{_slug(transform)}-s{severity}-{digest}.parquet"
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        path = self.dir / name
        atomic_write_bytes(path, sink.getvalue().to_pybytes())
        return path

    def write_skipped(self, block: int, skipped: list[dict], part: str = "") -> None:
        """Record a block's undecodable photos; `part` names a photo set with blocks of its own (a shift)."""
        atomic_write_json(self.dir / f"b{block:06d}{'-' + _slug(part) if part else ''}-skipped.json", skipped)

    def skipped(self) -> list[dict]:
        """Every undecodable photo, once (a val photo in a counterpart's blocks too is listed once)."""
        found: dict[str, dict] = {}
        for path in sorted(self.dir.glob("b*-skipped.json")):
            for item in json.loads(path.read_text()):
                found.setdefault(json.dumps(item, sort_keys=True), item)
        return list(found.values())

    def merge(self, out_path: Path, with_logits: bool, exclude: Iterable[tuple[str, int, str]] = ()) -> int:
        """Stream every chunk into one records.parquet (memory stays flat); returns the row count.

        `exclude` holds (transform, severity, model) cells that failed: rows of theirs written by
        blocks that ran before the failure are left out, so no condition is reported on part of the data.
        """
        schema = record_schema(with_logits)
        failed = set(exclude)
        tmp = out_path.with_name(f".{out_path.name}{TEMP_SUFFIX}")
        rows = 0
        seen: set[tuple] = set()
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for chunk in self.chunks():
                key = (chunk["block"], chunk["transform"], chunk["severity"], tuple(chunk["models"]))
                if key in seen:  # the same cells written twice (two ranks racing): keep one
                    continue
                seen.add(key)
                table = _in_schema(pq.read_table(chunk["path"]), schema)
                dropped = [m for m in chunk["models"] if (chunk["transform"], chunk["severity"], m) in failed]
                if dropped:
                    table = table.filter(pc.invert(pc.is_in(table.column("model"), pa.array(dropped, pa.string()))))
                writer.write_table(table)
                rows += table.num_rows
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out_path)
        _fsync_dir(out_path.parent)
        self.remove_stale_temporaries()
        return rows

    def remove_stale_temporaries(self) -> None:
        """Delete half-written chunks a killed run left (call only when no writer is running)."""
        for path in self.dir.glob(f".*{TEMP_SUFFIX}"):
            path.unlink(missing_ok=True)


def cells_of(chunks: Iterable[dict]) -> set[tuple[int, str, int, str]]:
    """The (block, transform, severity, model) cells that chunks (as `ChunkStore.chunks` lists them) complete."""
    return {(c["block"], c["transform"], c["severity"], m) for c in chunks for m in c["models"]}


def _slug(text: str) -> str:
    safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in text)
    return safe[:40]


def _in_schema(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A chunk in the record schema; a nullable field that an earlier version did not write yet is null."""
    columns = [table.column(f.name) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
               for f in schema]
    return pa.Table.from_arrays(columns, names=schema.names).cast(schema)


def read_records(run_dir: Path, columns: list[str] | None = None):
    """A run's records.parquet as the analysis sees it (records.analysis_frame), or a one-line error."""
    path = Path(run_dir) / "records.parquet"
    if not path.is_file():
        raise UserError(f"{run_dir}: no records.parquet (the run has not finished merging its chunks; "
                        "run the same command again to finish it)")
    present = set(pq.read_schema(path).names)  # runs of earlier versions lack the newer columns
    wanted = [c for c in (columns or ANALYSIS_COLUMNS) if c in present]
    if "frame" in present and "frame" not in wanted:  # sequence frames (--stability) are not conditions
        table = pq.read_table(path, columns=wanted + ["frame"], filters=pc.field("frame").is_null())
        return analysis_frame(table.drop_columns(["frame"]))
    return analysis_frame(pq.read_table(path, columns=wanted))


SEQUENCE_COLUMNS = ["model", "transform", "severity", "image_id", "label", "frame", "top5"]


def read_sequence_records(run_dir: Path):
    """A run's records of perturbation sequences (`--stability`): one row per (model, photo, frame),
    with `top5` as a list per row; empty when the run has none."""
    import pandas as pd

    path = Path(run_dir) / "records.parquet"
    if not path.is_file() or "frame" not in pq.read_schema(path).names:
        return pd.DataFrame(columns=SEQUENCE_COLUMNS)
    table = pq.read_table(path, columns=SEQUENCE_COLUMNS, filters=pc.field("frame").is_valid())
    frame = table.to_pandas()
    for column in ("model", "transform", "image_id"):
        frame[column] = frame[column].astype(str)
    return frame
