"""published.csv: timm's published row of each run model, the number a measurement should reproduce.

A packaged model is timm's `tf_efficientnet_liteN` with the same weights (`tf_efficientnet_liteN.in1k`); a
`timm:NAME` model is NAME, with timm's default pretrained tag when NAME has none; each at the input side the
run used, so a `@NNNpx` variant takes timm's row at NNN px (none when timm did not publish that size). Where the
run measured top-1 on ImageNet val (placement `val`), its clean top-1, Wilson 95 % interval and the difference
from the published top-1 sit beside it (RobustBench's users found a preprocessing bug this way, its issue #59).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from .references import run_placement
from .timm_population import published_row

SOURCE = "timm"  # who published the row: timm's results CSVs (reference_data/SOURCE_timm.md)
PUBLISHED_COLUMNS = ["model", "source", "published_model", "img_size", "top1", "real", "imagenetv2_matched_frequency",
                     "sketch", "imagenet_r", "imagenet_a"]
MEASURED_COLUMNS = ["measured_top1", "measured_top1_low", "measured_top1_high", "difference", "placement"]
COLUMNS = PUBLISHED_COLUMNS + MEASURED_COLUMNS


def published_name(entry: dict) -> str | None:
    """The timm name (with tag) whose published row is this manifest model's, or None (local weights)."""
    source, arch = entry.get("source"), str(entry.get("arch", ""))
    if source == "packaged":
        return f"{arch}.in1k"
    if source != "timm":
        return None
    if "." in arch:
        return arch
    from timm.models import get_pretrained_cfg

    config = get_pretrained_cfg(arch)
    tag = getattr(config, "tag", None) if config is not None else None
    return f"{arch}.{tag}" if tag else None


def _side(entry: dict) -> int | None:
    size = (entry.get("preprocessing") or {}).get("input_size") or []
    return int(size[0]) if len(size) == 2 and size[0] == size[1] else None


def published_rows(manifests: Sequence[dict], summary: pd.DataFrame, placement: str) -> pd.DataFrame:
    """One row per run model that timm published a row for (COLUMNS); measured_* only on `val` placement."""
    entries: dict[str, dict] = {}
    for manifest in manifests:
        for name, entry in manifest.get("models", {}).items():
            entries.setdefault(name, entry)
    clean = summary.loc[summary["transform"] == "clean"].drop_duplicates("model").set_index("model")
    rows = []
    for model in dict.fromkeys(summary["model"]):
        entry = entries.get(model)
        name = published_name(entry) if entry else None
        side = _side(entry) if entry else None
        found = published_row(name, side) if name and side else None
        if found is None:
            continue
        row = {"model": model, "source": SOURCE, "published_model": name, "img_size": side,
               **{c: found[c] for c in PUBLISHED_COLUMNS[4:]}, "placement": placement}
        if placement == "val" and model in clean.index:
            top1 = float(clean.loc[model, "top1"])
            row.update(measured_top1=top1, measured_top1_low=float(clean.loc[model, "top1_low"]),
                       measured_top1_high=float(clean.loc[model, "top1_high"]), difference=top1 - found["top1"])
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def outside_interval(table: pd.DataFrame) -> pd.DataFrame:
    """The rows whose published top-1 lies outside the run's 95 % interval of the same quantity (val runs only)."""
    if table.empty:
        return table
    measured = table.dropna(subset=["measured_top1"])
    low, high = measured["measured_top1_low"].to_numpy(float), measured["measured_top1_high"].to_numpy(float)
    published = measured["top1"].to_numpy(float)
    return measured.loc[(published < low) | (published > high)] if len(measured) else measured.iloc[:0]


def write_table(table: pd.DataFrame, out_dir: Path | str) -> Path:
    """published.csv from its table: percent with three decimals, timm's published values as timm writes them."""
    path = Path(out_dir) / "published.csv"
    table.to_csv(path, index=False, float_format="%.3f")
    return path


def write_published(manifests: Sequence[dict], summary: pd.DataFrame, out_dir: Path | str) -> Path:
    """Write published.csv for a run without a report (its header alone when no model has a published row)."""
    manifest = manifests[0]
    placement = run_placement(manifest.get("dataset", {}), manifest.get("config", {}))[0]
    return write_table(published_rows(manifests, summary, placement), out_dir)

