"""Numbers as precise as their interval: the one place the report's prose and tables round.

A percentage of n photos is given to 0.1 point when n > 1,000, else to the whole point (a Wilson 95 %
interval at n = 1,000 is already +-3 points wide); a proportion of model-vs-human's (16-class accuracy,
error consistency, shape bias) to 3 decimals. A table never shows fewer digits than the prose above it.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

FINE_N = 1000  # above this many photos, percentages carry one decimal


def digits(n: int | float | None) -> int:
    """Decimals of a percentage (or percentage points) measured on `n` photos."""
    return 1 if n is not None and np.isfinite(n) and n > FINE_N else 0


def pct(value: float, n: int | float | None) -> str:
    """A percentage measured on n photos, e.g. `87` or `87.3` (no sign, no unit)."""
    return _fixed(value, digits(n))


def points(value: float, n: int | float | None, sign: bool = True) -> str:
    """A difference in percentage points, signed (`+7`, `−14`, `0`)."""
    text = _fixed(value, digits(n))
    if text.strip("0.") == "":
        return text.lstrip("-")
    return ("+" + text if sign and not text.startswith("-") else text).replace("-", "−")


def interval(low: float, high: float, n: int | float | None) -> str:
    """A 95 % interval in points: `95 % −26 to −4`."""
    return f"95 % {points(low, n)} to {points(high, n)}"


def proportion(value: float) -> str:
    """A proportion of model-vs-human's tables, to 3 decimals (`0.875`)."""
    return f"{value:.3f}"


def _fixed(value: float, places: int) -> str:
    text = f"{float(value):.{places}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # never "-0"


def photos(summary: pd.DataFrame, model: str | None = None, key: str | None = None) -> float:
    """The photos behind a model's number on condition `key` (summary.csv's n; the fewest over what is not named)."""
    from ..conditions.keys import condition_key

    mask = np.ones(len(summary), dtype=bool)
    if model is not None:
        mask &= (summary["model"] == model).to_numpy()
    if key is not None:
        mask &= np.array([condition_key(t, s) == key for t, s in zip(summary["transform"], summary["severity"])], bool)
    rows = summary.loc[mask] if mask.any() else summary
    return float(rows["n"].min()) if "n" in rows.columns and len(rows) else float("nan")


def number_in(text: str) -> list[float]:
    """Every number written in a sentence (the minus sign as printed), for checking prose against tables."""
    import re

    return [float(m.replace("−", "-")) for m in re.findall(r"[−+-]?\d+(?:\.\d+)?", text)]


# ---------------------------------------------------------------- table cells

_FORMATS = {"p_value": "{:.3g}", "statistic": "{:.2f}", "level": "{:g}"}  # a level as registered, never rounded
_THREE_DIGITS = ("slope", "intercept", "r2", "auroc", "nll", "relative_robustness", "model_accuracy", "human_accuracy",
                 "observed_consistency", "expected_consistency", "error_consistency", "fraction_", "shape_bias",
                 "spearman", "ci_low", "ci_high", "ood_accuracy", "accuracy_difference", "condition_value")


def cell(column: str, value, fractions: bool = False) -> str:
    """A table cell as text: numbers rounded by column (every float to 3 decimals in a table of fractions),
    missing values as an en dash."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        fmt = _FORMATS.get(column) or ("{:.3f}" if fractions or column.startswith(_THREE_DIGITS) else "{:.1f}")
        text = fmt.format(float(value))
        return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.0"
    return str(value)


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with every cell formatted (rendering escapes it later); `frame.attrs["fractions"]`
    marks a table of proportions (3 decimals in every float column)."""
    fractions = bool(frame.attrs.get("fractions"))
    return pd.DataFrame({c: [cell(str(c), v, fractions) for v in frame[c]] for c in frame.columns}, index=frame.index)


def fractions_table(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame`, marked as a table of proportions (e.g. humans.csv's model columns, named after the models)."""
    frame = frame.copy()
    frame.attrs["fractions"] = True
    return frame
