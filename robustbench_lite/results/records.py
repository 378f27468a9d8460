"""The one record schema: one row per (model, condition, photo), built from a batch's outputs.

Writing and reading files is the store's job; this module says what a record holds, how it is
made from model outputs, and how the analysis sees it (with `top1` = top5[0]).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..data.sixteen_class import CATEGORIES, category_of_label, sixteen_class_decision

if TYPE_CHECKING:
    import torch

    from ..conditions.keys import Condition

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
    pa.field("sixteen_class_answer", pa.string()),  # model-vs-human's 16-class decision (CATEGORIES name)
    pa.field("sixteen_class_correct", pa.bool_()),  # null where the label is outside the 16 categories
    pa.field("stimulus_condition", pa.string()),  # mvh: stimuli: the photo's condition as model-vs-human names it
    pa.field("frame", pa.int16()),  # --stability: the frame of a perturbation sequence (null for every other record)
]
LOGITS_FIELD = pa.field("logits", pa.list_(pa.float16()))
ANALYSIS_COLUMNS = ["model", "transform", "severity", "image_id", "top5", "confidence", "label_prob",
                    "correct1", "correct5", "sixteen_class_correct"]
"""What the analysis reads of the records (it derives `top1` from `top5`)."""
STIMULUS_COLUMNS = ["sixteen_class_answer", "stimulus_condition"]
"""What it reads besides of a run on model-vs-human's stimuli (error consistency, shape bias)."""


def record_schema(with_logits: bool) -> pa.Schema:
    return pa.schema(RECORD_FIELDS + ([LOGITS_FIELD] if with_logits else []))


def batch_outputs(logits: "torch.Tensor", labels: "torch.Tensor", class_mask: "torch.Tensor | None",
                  save_logits: bool) -> dict:
    """What records keep of one batch's logits, still on the device (no synchronisation)."""
    import torch

    logits = logits.float()
    masked = logits if class_mask is None else logits.masked_fill(~class_mask, float("-inf"))
    probs = masked.softmax(dim=1)
    # the 16-class answer over all 1000 classes, from the very logits --save-logits stores
    kept = logits.to(torch.float16).float() if save_logits else logits
    sixteen = sixteen_class_decision(kept.softmax(dim=1) if (save_logits or class_mask is not None) else probs)
    top5_prob, top5 = probs.topk(5, dim=1)
    out = {
        "top5": top5.to(torch.int16),
        "top5_prob": top5_prob,
        "label_prob": probs.gather(1, labels.clamp(min=0).view(-1, 1)).squeeze(1).masked_fill(labels < 0, float("nan")),
        "nonfinite": (~torch.isfinite(logits).all()).view(1),
        "sixteen": sixteen.to(torch.int8),
    }
    if save_logits:
        out["logits"] = logits.to(torch.float16)
    return out


def to_host(parts: list[dict]) -> dict[str, np.ndarray]:
    """Concatenate a chunk's batch outputs and copy them to the host, one transfer per field."""
    import torch

    return {key: torch.cat([p[key] for p in parts]).cpu().numpy() for key in parts[0]}


def records_table(model: str, condition: "Condition", ids: Sequence[str], labels: np.ndarray,
                  host: dict[str, np.ndarray], categories: Sequence[str | None] | None = None,
                  stimulus_conditions: Sequence[str | None] | None = None,
                  frames: np.ndarray | None = None) -> pa.Table:
    """Records of one chunk for one model, as an Arrow table of the record schema.

    `categories` (16-class names) score photos labelled by category (model-vs-human's stimuli, label -1);
    `frames` number the rows of a perturbation sequence (`--stability`).
    """
    n = len(ids)
    top5 = host["top5"]
    hit = top5 == labels.reshape(-1, 1)
    top5_prob = host["top5_prob"].astype(np.float32)
    columns = {
        "model": pa.array([model] * n, pa.string()),
        "transform": pa.array([condition.transform] * n, pa.string()),
        "severity": pa.array(np.full(n, condition.severity, np.int16)),
        "image_id": pa.array(list(ids), pa.string()),
        "label": pa.array(labels.astype(np.int16)),
        "top5": pa.FixedSizeListArray.from_arrays(pa.array(top5.reshape(-1)), 5),
        "top5_prob": pa.FixedSizeListArray.from_arrays(pa.array(top5_prob.reshape(-1)), 5),
        "label_prob": pa.array(host["label_prob"].astype(np.float32)),
        "confidence": pa.array(top5_prob[:, 0]),
        "correct1": pa.array(hit[:, 0]),
        "correct5": pa.array(hit.any(axis=1)),
        **sixteen_class_columns(host["sixteen"], labels, categories),
        "stimulus_condition": pa.array(list(stimulus_conditions) if stimulus_conditions is not None else [None] * n,
                                       pa.string()),
        "frame": pa.array(frames, pa.int16()) if frames is not None else pa.nulls(n, pa.int16()),
    }
    if "logits" in host:
        flat = host["logits"]
        columns["logits"] = pa.ListArray.from_arrays(
            pa.array(np.arange(0, flat.size + 1, flat.shape[1], dtype=np.int32)), pa.array(flat.reshape(-1))
        )
    return pa.table(columns, schema=record_schema("logits" in host))


def sixteen_class_columns(answers: np.ndarray, labels: np.ndarray,
                          categories: Sequence[str | None] | None = None) -> dict[str, pa.Array]:
    """Records' sixteen_class_answer (a category name) and sixteen_class_correct (null outside the 16);
    a photo's own `categories` entry, where given, is its truth."""
    given = categories if categories is not None else [None] * len(labels)
    truth = np.array([CATEGORIES.index(c) if (c := g or category_of_label(int(l))) else -1
                      for l, g in zip(labels, given)], dtype=np.int64)
    names = np.array(CATEGORIES, dtype=object)[answers.astype(np.int64)]
    return {"sixteen_class_answer": pa.array(names.tolist(), pa.string()),
            "sixteen_class_correct": pa.array(answers.astype(np.int64) == truth, mask=truth < 0)}


def analysis_frame(table: pa.Table):
    """Records as the analysis uses them: a DataFrame with `top1` (= top5[0]) instead of `top5`."""
    if "top5" in table.column_names:
        table = table.append_column("top1", pc.list_element(table["top5"], 0)).drop_columns(["top5"])
    frame = table.to_pandas()
    for column in ("model", "transform", "image_id"):
        if column in frame.columns:
            frame[column] = frame[column].astype(str)
    if "severity" in frame.columns:
        frame["severity"] = frame["severity"].astype(int)
    for column in ("correct1", "correct5"):
        if column in frame.columns:
            frame[column] = frame[column].astype(bool)
    if "sixteen_class_correct" in frame.columns:
        frame["sixteen_class_correct"] = frame["sixteen_class_correct"].astype("boolean")
    return frame


def _condition_codes(records: pd.DataFrame) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """A code per record for its (transform, severity), and the pair behind each code."""
    transform_codes, transforms = pd.factorize(records["transform"])
    severity = records["severity"].to_numpy(dtype=np.int64)
    span = int(severity.max()) + 1 if len(severity) else 1
    codes, combined = pd.factorize(transform_codes * span + severity)
    return codes, [(str(transforms[c // span]), int(c % span)) for c in combined]


def correctness_cube(records: pd.DataFrame, models: Sequence[str]
                     ) -> tuple[list[tuple[str, int]], np.ndarray, np.ndarray]:
    """Top-1 correctness as a (condition, photo, model) float32 cube, and where a record exists.

    Returns the (transform, severity) of each condition slice, `right` and `present` (0/1 each).
    Photos are aligned by image_id across models and conditions; unknown models are left out.
    """
    codes, pairs = _condition_codes(records)
    photo = pd.factorize(records["image_id"])[0]
    model = pd.Index(list(models)).get_indexer(records["model"].astype(str))
    keep = model >= 0
    shape = (len(pairs), int(photo.max()) + 1 if len(photo) else 0, len(models))
    right, present = np.zeros(shape, dtype=np.float32), np.zeros(shape, dtype=np.float32)
    right[codes[keep], photo[keep], model[keep]] = records["correct1"].to_numpy(dtype=np.float32)[keep]
    present[codes[keep], photo[keep], model[keep]] = 1.0
    return pairs, right, present
