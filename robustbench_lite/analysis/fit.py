"""The linear reproducibility fit: f(shifted accuracy) = slope * f(clean accuracy) + intercept.

Fitted by ordinary least squares across models, f = logit (the default: the testbed's published
lines), probit or identity of the accuracy as a fraction (Recht et al. 2019; Taori et al. 2020; Miller et al. 2021). A model's
effective robustness is its shifted accuracy minus the line's prediction at its clean accuracy.
A run's fits, with a bootstrap over photos, are in `run_fit.py`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy import special

from ..errors import UserError

MIN_MODELS = 3
DEFAULT_BOOTSTRAP = 1000
DEFAULT_SCALE = "logit"  # the scale of the testbed's published lines: `fit`, the report and the library agree

Scale = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]
SCALES: dict[str, Scale] = {
    "probit": (special.ndtri, special.ndtr),
    "logit": (special.logit, special.expit),
    "linear": (lambda p: np.asarray(p, dtype=float), lambda z: np.asarray(z, dtype=float)),
}
_ALIASES = {"identity": "linear"}

def scale_name(scale: str) -> str:
    """The canonical name of a scale (`identity` is `linear`), or a one-line error."""
    name = _ALIASES.get(scale, scale)
    if name not in SCALES:
        raise UserError(f"unknown scale {scale!r}; use one of: {', '.join(SCALES)}")
    return name


def scale_accuracy(p, scale: str) -> np.ndarray:
    """f(p) for accuracies p given as fractions (+-inf at 0 and 1 for probit and logit)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return SCALES[scale_name(scale)][0](np.asarray(p, dtype=float))


def unscale_accuracy(z, scale: str) -> np.ndarray:
    """f^-1(z): back from the fit's scale to accuracy as a fraction."""
    return SCALES[scale_name(scale)][1](np.asarray(z, dtype=float))


def unavailable(n: int, n_excluded: int = 0, noun: str = "models") -> str:
    """The status line of a fit that has too few points."""
    extra = f" ({n_excluded} at 0 or 100 % left out)" if n_excluded else ""
    return f"unavailable: needs >= {MIN_MODELS} {noun}, got {n}{extra}"


def line_stats(fx: np.ndarray, fy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares (slope, intercept, r2, n) of fy on fx along the last axis, over finite pairs.

    Works on any leading shape (e.g. bootstrap replicates x models); NaN where n < MIN_MODELS.
    """
    fx, fy = np.asarray(fx, dtype=float), np.asarray(fy, dtype=float)
    use = np.isfinite(fx) & np.isfinite(fy)
    n = use.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_mean = np.where(use, fx, 0).sum(axis=-1) / n
        y_mean = np.where(use, fy, 0).sum(axis=-1) / n
        dx = np.where(use, fx - x_mean[..., None], 0)
        dy = np.where(use, fy - y_mean[..., None], 0)
        sxx, syy, sxy = (dx * dx).sum(axis=-1), (dy * dy).sum(axis=-1), (dx * dy).sum(axis=-1)
        slope = sxy / sxx
        intercept = y_mean - slope * x_mean
        r2 = sxy * sxy / (sxx * syy)
    enough = n >= MIN_MODELS
    return (np.where(enough, slope, np.nan), np.where(enough, intercept, np.nan),
            np.where(enough, r2, np.nan), n)


@dataclass(frozen=True)
class LineFit:
    """A fitted line on one scale; `status` is "ok" or why no line could be fitted. `x_low` and `x_high`
    are the clean accuracies (fractions) of the points it is fitted on: outside them it is extrapolated."""

    scale: str
    slope: float
    intercept: float
    r2: float
    n: int
    n_excluded: int
    status: str = "ok"
    x_low: float = float("nan")
    x_high: float = float("nan")

    @property
    def available(self) -> bool:
        return self.status == "ok"

    def covers(self, clean) -> np.ndarray:
        """Where a clean accuracy (fraction) lies within the fitted points' range (True where the range is unknown)."""
        clean = np.asarray(clean, dtype=float)
        if not (np.isfinite(self.x_low) and np.isfinite(self.x_high)):
            return np.ones(clean.shape, dtype=bool)
        return (clean >= self.x_low) & (clean <= self.x_high)

    def predict(self, clean) -> np.ndarray:
        """The line's shifted accuracy (fraction) at clean accuracies given as fractions."""
        return unscale_accuracy(self.slope * scale_accuracy(clean, self.scale) + self.intercept, self.scale)


@dataclass(frozen=True)
class TwoPieceLine:
    """Two lines split at a clean accuracy (ImageNet-A's published pair): `below` under `split`, `above` from it."""

    split: float  # fraction
    below: LineFit
    above: LineFit

    @property
    def n(self) -> int:
        return self.below.n + self.above.n

    @property
    def scale(self) -> str:
        return self.below.scale

    def covers(self, clean) -> np.ndarray:
        """Where a clean accuracy lies within the fitted range of the piece it falls on."""
        clean = np.asarray(clean, dtype=float)
        return np.where(self.is_above(clean), self.above.covers(clean), self.below.covers(clean))

    def is_above(self, clean) -> np.ndarray:
        """Which piece a model sits on: True at or above the split (False where clean is missing)."""
        return np.asarray(clean, dtype=float) >= self.split

    def predict(self, clean) -> np.ndarray:
        """Each clean accuracy's prediction on the piece it falls on (fractions in and out)."""
        clean = np.asarray(clean, dtype=float)
        return np.where(self.is_above(clean), self.above.predict(clean), self.below.predict(clean))


def fit_line(clean, shifted, scale: str = DEFAULT_SCALE, noun: str = "models") -> LineFit:
    """Fit f(shifted) on f(clean), accuracies as fractions; points at 0 or 1 (infinite under
    probit/logit) or missing are left out and counted in `n_excluded`."""
    scale = scale_name(scale)
    fx, fy = scale_accuracy(clean, scale), scale_accuracy(shifted, scale)
    slope, intercept, r2, n = line_stats(fx, fy)
    n, n_excluded = int(n), int(len(fx) - n)
    status = "ok" if n >= MIN_MODELS else unavailable(n, n_excluded, noun)
    used = np.asarray(clean, dtype=float)[np.isfinite(fx) & np.isfinite(fy)]
    low, high = (float(used.min()), float(used.max())) if len(used) else (float("nan"), float("nan"))
    return LineFit(scale, float(slope), float(intercept), float(r2), n, n_excluded, status, low, high)


def effective_robustness(clean, shifted, line: LineFit) -> np.ndarray:
    """Shifted accuracy minus the line's prediction at the clean accuracy (fractions in, fraction out)."""
    return np.asarray(shifted, dtype=float) - line.predict(clean)


# ---------------------------------------------------------------- fitting a published table

@dataclass
class TableFit:
    """A line fitted on a table's rows; `rows` holds every row's x, y and effective robustness
    in the table's own unit (`percent` or `fraction`), `in_fit` marking the fitted ones."""

    line: LineFit
    unit: str
    x: str
    y: str
    where: str | None
    rows: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    source: str = ""  # the CSV it was read from, if any


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV of accuracies, or a one-line error naming the path."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such CSV file: {path}")
    try:
        return pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path} as CSV: {str(exc).splitlines()[0]}") from None


def _numeric_column(table: pd.DataFrame, column: str) -> pd.Series:
    if column not in table.columns:
        raise UserError(f"unknown column {column!r}; the table has: {', '.join(map(str, table.columns))}")
    values = pd.to_numeric(table[column], errors="coerce")
    if values.notna().sum() == 0:
        raise UserError(f"column {column!r} holds no numbers")
    return values


def select_rows(table: pd.DataFrame, where: str | None) -> np.ndarray:
    """Boolean mask of the rows a pandas query selects (all rows when `where` is empty)."""
    if not where:
        return np.ones(len(table), dtype=bool)
    try:
        chosen = table.query(where)
    except Exception as exc:  # pandas raises many types for a bad expression
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"bad --where expression {where!r}: {reason}") from None
    return np.asarray(table.index.isin(chosen.index), dtype=bool)


def fit_table(table: pd.DataFrame | str | Path, x: str = "clean_top1", y: str = "shifted_top1",
              scale: str = DEFAULT_SCALE, where: str | None = None, noun: str = "rows") -> TableFit:
    """Fit y on x over the rows `where` selects; accuracies in percent when any value exceeds 1.

    Effective robustness is given for every row (fitted or not), in the table's unit.
    """
    scale = scale_name(scale)
    frame = read_table(table) if isinstance(table, (str, Path)) else table
    xs, ys = _numeric_column(frame, x), _numeric_column(frame, y)
    percent = bool((xs > 1).any() or (ys > 1).any())
    unit_factor = 100.0 if percent else 1.0
    clean, shifted = xs.to_numpy(float) / unit_factor, ys.to_numpy(float) / unit_factor
    chosen = select_rows(frame, where)
    line = fit_line(clean[chosen], shifted[chosen], scale, noun)
    notes = [f"accuracies read as {'percent' if percent else 'fractions'}",
             f"{int(chosen.sum())} of {len(frame)} rows selected" + (f" by {where!r}" if where else "")]
    if line.n_excluded:
        notes.append(f"{line.n_excluded} selected rows left out: missing, or at 0 or 100 % "
                     f"(infinite on the {scale} scale)")
    if not line.available:
        raise UserError(f"cannot fit {y} on {x}: {line.status}")
    fx, fy = scale_accuracy(clean, scale), scale_accuracy(shifted, scale)
    rows = frame.copy()
    rows["in_fit"] = chosen & np.isfinite(fx) & np.isfinite(fy)
    rows["predicted"] = unit_factor * line.predict(clean)
    rows["effective_robustness"] = unit_factor * effective_robustness(clean, shifted, line)
    source = "" if isinstance(table, pd.DataFrame) else str(table)
    return TableFit(line, "percent" if percent else "fraction", x, y, where, rows, notes, source)
