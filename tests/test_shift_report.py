"""Natural shifts in the report: counterpart placement, effective robustness against the testbed's lines
(ImageNet-A's two pieces), the synthetic-vs-natural Spearman table, the panels and the report's text.

The run folders are synthesised in the real record schema (records.record_schema, written as the
store writes records.parquet): model m answers the first round(accuracy * n) photos of a condition right.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import special, stats

import robustbench_lite.references as references
from robustbench_lite.analysis import analyse, load_runs
from robustbench_lite.records import record_schema
from robustbench_lite.report import write_report

MODELS = ("m0", "m1", "m2", "m3", "m4", "m5")
# condition key -> (transform, severity, photo-id prefix, n photos, accuracy per model)
CONDITIONS = {
    "clean": ("clean", 0, "val", 400, (0.85, 0.80, 0.75, 0.70, 0.65, 0.60)),
    "clean@r-classes": ("clean@r-classes", 0, "val", 200, (0.92, 0.90, 0.86, 0.84, 0.80, 0.76)),
    "imagenet-r": ("imagenet-r", 0, "imagenet-r", 300, (0.45, 0.30, 0.36, 0.25, 0.28, 0.18)),
    "imagenetv2-matched-frequency": ("imagenetv2-matched-frequency", 0, "imagenetv2-matched-frequency", 300,
                                     (0.75, 0.69, 0.62, 0.58, 0.52, 0.47)),
    "greyscale@5": ("greyscale", 5, "val", 400, (0.80, 0.72, 0.69, 0.62, 0.58, 0.50)),
    "fog@3": ("fog", 3, "val", 400, (0.55, 0.52, 0.40, 0.42, 0.33, 0.30)),
    "edges@1": ("edges", 1, "val", 400, (0.20, 0.12, 0.15, 0.08, 0.10, 0.05)),
    "rotate@3": ("rotate", 3, "val", 400, (0.70, 0.66, 0.58, 0.57, 0.50, 0.46)),
}
SYNTHETIC = ["greyscale@5", "fog@3", "edges@1", "rotate@3"]
SHIFTS = ["imagenet-r", "imagenetv2-matched-frequency"]
FAMILY = {"greyscale": "colour", "fog": "corruptions", "edges": "outlines", "rotate": "geometric"}


def _records(model: str, transform: str, severity: int, prefix: str, n: int, accuracy: float) -> pa.Table:
    right = np.arange(n) < round(accuracy * n)
    labels = np.arange(n) % 200
    top1 = np.where(right, labels, (labels + 1) % 1000)
    top5 = np.stack([top1, *[(top1 + k) % 1000 for k in (2, 3, 4, 5)]], axis=1).astype(np.int16)
    probs = np.tile(np.array([0.6, 0.1, 0.1, 0.1, 0.1], np.float32), (n, 1))
    return pa.table({
        "model": pa.array([model] * n, pa.string()), "transform": pa.array([transform] * n, pa.string()),
        "severity": pa.array(np.full(n, severity, np.int16)),
        "image_id": pa.array([f"{prefix}/p{j:04d}.JPEG" for j in range(n)], pa.string()),
        "label": pa.array(labels.astype(np.int16)),
        "top5": pa.FixedSizeListArray.from_arrays(pa.array(top5.reshape(-1)), 5),
        "top5_prob": pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), 5),
        "label_prob": pa.array(np.where(right, 0.6, 0.01).astype(np.float32)),
        "confidence": pa.array(np.full(n, 0.6, np.float32)), "correct1": pa.array(right),
        "correct5": pa.array(right), "sixteen_class_answer": pa.array(["dog"] * n, pa.string()),
        "sixteen_class_correct": pa.array(np.zeros(n, bool), mask=np.ones(n, bool)),
    }, schema=record_schema(False))


def make_shift_run(run_dir: Path, models=MODELS, conditions=CONDITIONS, list_shifts: bool = True) -> Path:
    """A run folder: records.parquet in the record schema and a manifest with the run side's `shifts`."""
    index = {m: i for i, m in enumerate(MODELS)}
    tables = [_records(m, t, s, prefix, n, acc[index[m]]) for m in models
              for t, s, prefix, n, acc in conditions.values()]
    run_dir.mkdir(parents=True)
    pq.write_table(pa.concat_tables(tables), run_dir / "records.parquet")
    listed = [c for c in conditions.values() if list_shifts or not (references.is_natural_shift(c[0])
                                                                      or references.is_counterpart(c[0]))]
    shifts = {t: {"root": f"/data/{t}", "n_samples": n, "n_classes": 200, "fingerprint": "fp", "classes": 200
                  if references.counterpart(t) != "clean" else 1000, "counterpart": references.counterpart(t)}
              for t, _, _, n, _ in conditions.values() if references.is_natural_shift(t)}
    manifest = {
        "config": {"seed": 0, "shifts": list(shifts)}, "models": {m: {} for m in models}, "status": "complete",
        "conditions": [{"transform": t, "family": FAMILY.get(t, "natural shifts" if s == 0 and t != "clean" else t),
                        "severity": s, "level": float(s)} for t, s, *_ in listed],
        "dataset": {"root": "/data/val", "fingerprint": "x", "n_samples": 400, "n_classes": 200, "val_structure": False},
        "shifts": shifts,
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir


def accuracy(key: str, model: str) -> float:
    """An accuracy computed here from the pattern the records were made with (first k of n right)."""
    _, _, _, n, acc = CONDITIONS[key]
    return round(acc[MODELS.index(model)] * n) / n
