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
    """Effective robustness (points) against the published lines, where the run has any; None otherwise.
    An extrapolated row (clean top-1 outside the line-fit models' range) is shown in parentheses and left
    out of the means: it is not a placement."""
    if not path.is_file():
        return None
    er = pd.read_csv(path)
    er = er.loc[er["reference"] != "run"]
    if er.empty:
        return None
    beyond = er["versus_line"].eq("extrapolated") if "versus_line" in er else pd.Series(False, index=er.index)
    title = f"effective robustness against the published lines (points; placement {er['placement'].iloc[0]})"
    note = ("\n(in parentheses: extrapolated, the model's clean top-1 lies outside the line-fit models' range; "
            "not placed)") if beyond.any() else ""
    if er["condition"].nunique() <= MAX_COLUMNS:
        cells = [f"({v:.1f})" if out else f"{v:.1f}" for v, out in zip(er["effective_robustness"], beyond)]
        table = er.assign(cell=cells).pivot(index="model", columns="condition", values="cell")
        table = table.reindex(index=list(dict.fromkeys(er["model"])), columns=list(dict.fromkeys(er["condition"])))
        return f"{title}:\n" + _shortened(table.fillna("–"), "models") + note
    placed = er.loc[~beyond]
    table = placed.groupby("model", sort=False)["effective_robustness"].agg(["mean", "count"])
    table = table.reindex(list(dict.fromkeys(er["model"]))).fillna({"count": 0}).astype({"count": int})
    table = table.rename(columns={"mean": "mean over lines", "count": "lines"})
    table["extrapolated"] = beyond.groupby(er["model"], sort=False).sum().reindex(table.index).fillna(0).astype(int)
    return (f"{title}, each model's mean over the lines it is placed on (per line in effective_robustness.csv):\n"
            + _shortened(table, "models"))


def results_text(summary: pd.DataFrame, run_dir: Path) -> str:
    """What a finished run prints: the top-1 table, effective robustness where placed, the report's path."""
    parts = [top1_table(summary)]
    er = effective_robustness_table(Path(run_dir) / "effective_robustness.csv")
    if er:
        parts.append(er)
    report = Path(run_dir) / "report.html"
    parts.append(f"report: {report}" if report.is_file() else f"results: {run_dir}")
    return "\n" + "\n\n".join(parts)
