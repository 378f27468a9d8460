"""Stability on perturbation sequences (`--stability imagenet-p`): flip rate and top-5 distance per
(model, perturbation), as ImageNet-P defines them (Hendrycks & Dietterich 2019, hendrycks/robustness
`ImageNet-P/test.py`, difficulty 1).

- flip rate (FP): per photo the share of frame pairs whose top-1 differs, averaged over photos (a
  probability in [0, 1]). Pairs are consecutive frames (j-1, j), except for noise sequences, whose
  frames are independent draws: there every frame j >= 1 is compared with the clean first frame.
- top-5 distance (T5D): over the same pairs, sum over i = 1..5 of |i - min(sigma(i), 6)|, sigma(i) the rank
  in the second frame of the first frame's i-th class; averaged per photo, then over photos.
- mFR / mT5D: FP and T5D divided by AlexNet's on the same perturbation (x 100), averaged over the suite's
  10 test perturbations. The paper publishes only AlexNet-normalised figures (ResNet-50: mFR 58.0,
  mT5D 78.4, the hendrycks/robustness README); AlexNet's own FP and T5D per perturbation are not in the
  paper or the release (they sit in a spreadsheet linked from hendrycks/robustness issue #49), so
  `ALEXNET_IMAGENET_P` is empty and mfr / mt5d stay empty unless a table is given.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

STABILITY_COLUMNS = ["model", "perturbation", "n_photos", "frames", "flip_rate", "top5_distance", "mfr", "mt5d",
                     "validation"]
ALEXNET_IMAGENET_P: dict[str, tuple[float, float]] = {}
"""AlexNet's (flip probability, top-5 distance) per ImageNet-P perturbation, difficulty 1: unpublished here."""
MEAN_ROW = "mean"


def _pairs(frames: int, noise: bool) -> list[tuple[int, int]]:
    return [(0, j) for j in range(1, frames)] if noise else [(j - 1, j) for j in range(1, frames)]


def top5_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Top-5 distance of frame pairs: `first`, `second` (P, 5) top-5 classes, best first -> (P,)."""
    match = first[:, :, None] == second[:, None, :]  # (P, 5 of first, 5 of second)
    position = np.where(match.any(axis=2), match.argmax(axis=2), 5)  # 0-based rank in second; 5 = not in its top 5
    return np.abs(np.arange(5)[None, :] - position).sum(axis=1).astype(np.float64)


def sequence_scores(top5: np.ndarray, noise: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per photo (flip rate, top-5 distance) of a (photos, frames, 5) stack of top-5 classes."""
    n, frames, _ = top5.shape
    pairs = _pairs(frames, noise)
    a, b = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    flips = (top5[:, a, 0] != top5[:, b, 0]).mean(axis=1)
    distance = top5_distance(top5[:, a].reshape(-1, 5), top5[:, b].reshape(-1, 5)).reshape(n, len(pairs)).mean(axis=1)
    return flips, distance


def stability_table(records: pd.DataFrame, sequences: dict[str, dict], benchmark: Sequence[str],
                    alexnet: dict[str, tuple[float, float]] | None = None, models: Sequence[str] | None = None
                    ) -> pd.DataFrame:
    """stability.csv: a row per (model, perturbation) and a `mean` row per model over the `benchmark`
    perturbations (when all ran). `records` are sequence records (model, transform, image_id, frame, top5);
    `sequences` the manifest's {transform: {name, frames, noise, validation}}."""
    alexnet = ALEXNET_IMAGENET_P if alexnet is None else alexnet
    rows = []
    order = list(models or dict.fromkeys(records["model"]))
    for (model, transform), part in records.groupby(["model", "transform"], sort=False):
        info = sequences.get(transform)
        if info is None:
            continue
        part = part.sort_values(["image_id", "frame"], kind="stable")
        counts = part.groupby("image_id", sort=False)["frame"].count()
        complete = counts.index[counts == int(info["frames"])]  # a photo with every frame
        part = part[part["image_id"].isin(complete)]
        top5 = np.stack(part["top5"].to_numpy()).reshape(len(complete), int(info["frames"]), 5)
        flips, distance = sequence_scores(top5, bool(info["noise"]))
        fp, t5d = float(flips.mean()), float(distance.mean())
        base = alexnet.get(info["name"])
        rows.append({"model": model, "perturbation": info["name"], "n_photos": len(complete), "frames": info["frames"],
                     "flip_rate": fp, "top5_distance": t5d,
                     "mfr": 100 * fp / base[0] if base else np.nan, "mt5d": 100 * t5d / base[1] if base else np.nan,
                     "validation": bool(info.get("validation", False))})
    table = pd.DataFrame(rows, columns=STABILITY_COLUMNS)
    means = []
    for model in order:
        mine = table[(table["model"] == model) & table["perturbation"].isin(benchmark)]
        if len(mine) == len(benchmark):
            means.append({"model": model, "perturbation": MEAN_ROW, "n_photos": int(mine["n_photos"].min()),
                          "frames": int(mine["frames"].sum()), "flip_rate": mine["flip_rate"].mean(),
                          "top5_distance": mine["top5_distance"].mean(), "mfr": mine["mfr"].mean(skipna=False),
                          "mt5d": mine["mt5d"].mean(skipna=False), "validation": False})
    table = pd.concat([table, pd.DataFrame(means, columns=STABILITY_COLUMNS)], ignore_index=True)
    rank = {m: i for i, m in enumerate(order)}
    names = list(dict.fromkeys([*benchmark, *sorted(table["perturbation"])]))
    return table.sort_values(["model", "perturbation"], key=lambda c: c.map(rank if c.name == "model" else
                             {n: i for i, n in enumerate(names + [MEAN_ROW])}), kind="stable").reset_index(drop=True)


def run_stability_table(run_dirs: Sequence[Path], manifests: Sequence[dict]) -> pd.DataFrame:
    """stability.csv of merged runs (a model from the first run that has it), empty without sequences."""
    from ..results.store import read_sequence_records

    frames, seen, sequences, benchmark = [], set(), {}, ()
    for run_dir, manifest in zip(run_dirs, manifests):
        info = manifest.get("stability") or {}
        if not info:
            continue
        sequences.update(info.get("sequences", {}))
        benchmark = benchmark or tuple(info.get("benchmark", ()))
        records = read_sequence_records(run_dir)
        records = records[~records["model"].isin(seen)]
        seen |= set(records["model"])
        frames.append(records)
    if not frames or not sum(len(f) for f in frames):
        return pd.DataFrame(columns=STABILITY_COLUMNS)
    return stability_table(pd.concat(frames, ignore_index=True), sequences, benchmark)
