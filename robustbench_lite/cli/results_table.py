"""The short result tables `run` and `demo` print when a run finishes: top-1 per model and condition, and
effective robustness against the published lines where the run's models are placed on them.

Kept short for a terminal: beyond MAX_COLUMNS conditions the columns become clean plus each family's
mean, beyond MAX_ROWS models the rest are counted; every number is in summary.csv and the report.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

MAX_COLUMNS = 10
MAX_ROWS = 20


def _condition_column(frame: pd.DataFrame) -> pd.Series:
    from ..conditions.keys import condition_key

    return pd.Series([condition_key(t, s) for t, s in zip(frame["transform"], frame["severity"])], index=frame.index)


def _shortened(table: pd.DataFrame, noun: str) -> str:
    """At most MAX_ROWS rows, the rest counted; rounded to 0.1."""
    text = table.head(MAX_ROWS).round(1).to_string()
    if len(table) > MAX_ROWS:
        text += f"\n... and {len(table) - MAX_ROWS} more {noun} (every one in summary.csv and the report)"
    return text


def top1_table(summary: pd.DataFrame) -> str:
    """Top-1 (%) per model (rows, run order) and condition; clean plus per-family means when conditions are many."""
    summary = summary.assign(condition=_condition_column(summary))
    conditions = list(dict.fromkeys(summary["condition"]))
    if len(conditions) <= MAX_COLUMNS:
        table = summary.pivot_table(index="model", columns="condition", values="top1", sort=False)
        return "top-1 (%):\n" + _shortened(table, "models")
    table = summary.pivot_table(index="model", columns="family", values="top1", aggfunc="mean", sort=False)
    return (f"top-1 (%), clean and each family's mean over its conditions ({len(conditions)} conditions in "
            "summary.csv):\n" + _shortened(table, "models"))


def effective_robustness_table(path: Path) -> str | None:
    """Effective robustness (points) against the published lines, where the run has any; None otherwise."""
    if not path.is_file():
        return None
    er = pd.read_csv(path)
    er = er.loc[er["reference"] != "run"]
    if er.empty:
        return None
    title = f"effective robustness against the published lines (points; placement {er['placement'].iloc[0]})"
    if er["condition"].nunique() <= MAX_COLUMNS:
        table = er.pivot_table(index="model", columns="condition", values="effective_robustness", sort=False)
        return f"{title}:\n" + _shortened(table, "models")
    table = er.groupby("model", sort=False)["effective_robustness"].agg(["mean", "count"])
    table = table.rename(columns={"mean": "mean over lines", "count": "lines"})
    return f"{title}, each model's mean (per line in effective_robustness.csv):\n" + _shortened(table, "models")


def results_text(summary: pd.DataFrame, run_dir: Path) -> str:
    """What a finished run prints: the top-1 table, effective robustness where placed, the report's path."""
    parts = [top1_table(summary)]
    er = effective_robustness_table(Path(run_dir) / "effective_robustness.csv")
    if er:
        parts.append(er)
    report = Path(run_dir) / "report.html"
    parts.append(f"report: {report}" if report.is_file() else f"results: {run_dir}")
    return "\n" + "\n\n".join(parts)
