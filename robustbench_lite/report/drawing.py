"""The drawing kit of the report's accuracy panels: probit/logit axes with readable ticks, panel grids,
the run's models with Wilson intervals on both axes, fitted lines with their bootstrap bands."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..analysis.fit import TableFit, scale_accuracy, unscale_accuracy
from ..conditions.keys import condition_key


def plain(text) -> str:
    """A user string safe for matplotlib: `$` would start mathtext."""
    return str(text).replace("$", r"\$")


def panel_title(text, width: int = 30) -> str:
    """A panel title that stays over its own panel: long names (adapter specs) wrap, at most two lines."""
    import textwrap

    lines = textwrap.wrap(str(text), width, break_on_hyphens=False) or [""]
    return plain("\n".join(lines if len(lines) <= 2 else [lines[0], "…" + str(text)[-(width - 1):]]))


def model_colours(models: Sequence[str]) -> dict[str, tuple]:
    import seaborn as sns

    palette = sns.color_palette("tab10" if len(models) <= 10 else "husl", len(models))
    return dict(zip(models, palette))



def panel_grid(n: int, size: float = 3.2, max_cols: int = 4):
    import matplotlib.pyplot as plt

    cols = max(1, min(max_cols, n))
    rows = int(np.ceil(n / cols))
    figure, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return figure, list(axes.flat[:n])


# Candidate ticks (fractions), roundest first: the greedy pick keeps the rounder of two close ticks.
TICK_PRIORITY = (0.5, 0.1, 0.9, 0.3, 0.7, 0.01, 0.99, 0.2, 0.8, 0.05, 0.95, 0.4, 0.6, 0.02, 0.98,
                 0.001, 0.999, 0.25, 0.75, 0.15, 0.85, 0.35, 0.65, 0.45, 0.55, 0.005, 0.995, 0.03, 0.97)


def readable_ticks(low: float, high: float, scale: str = "logit", min_gap: float = 0.085) -> list[float]:
    """Accuracy ticks (fractions) in [low, high], at least `min_gap` of the axis span apart on `scale`."""
    f = lambda p: float(scale_accuracy(p, scale))  # noqa: E731
    span = f(high) - f(low)
    kept: list[float] = []
    for tick in TICK_PRIORITY:
        if low <= tick <= high and all(abs(f(tick) - f(k)) >= min_gap * span for k in kept):
            kept.append(tick)
    return sorted(kept)


class AccuracyAxis:
    """Accuracy (fraction) <-> plot coordinate on the fit's scale, values kept off 0 and 1."""

    def __init__(self, scale: str, values: np.ndarray):
        self.scale = scale
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        self.eps = 1e-3 if scale != "linear" else 0.0
        z = self(values if len(values) else np.array([0.5]))
        pad = 0.06 * max(z.max() - z.min(), 0.5)
        self.limits = (z.min() - pad, z.max() + pad)

    def __call__(self, p) -> np.ndarray:
        return scale_accuracy(np.clip(np.asarray(p, dtype=float), self.eps, 1 - self.eps), self.scale)

    def ticks(self) -> tuple[list[float], list[str]]:
        """Readable accuracy ticks (never crowded: at least 8.5 % of the span apart) as positions and labels."""
        low, high = (float(unscale_accuracy(z, self.scale)) for z in self.limits)
        chosen = readable_ticks(max(low, self.eps), min(high, 1 - self.eps), self.scale, min_gap=0.15)
        return [float(self(t)) for t in chosen], [f"{100 * t:g}%" for t in chosen]

    def style(self, ax) -> None:
        positions, labels = self.ticks()
        ax.set_xlim(self.limits)
        ax.set_ylim(self.limits)
        ax.set_xticks(positions, labels)
        ax.set_yticks(positions, labels)
        ax.set_aspect("equal")
        ax.plot(self.limits, self.limits, ls="--", color="0.6", lw=0.8, zorder=1)
        ax.grid(alpha=0.3, lw=0.5)



def wilson_bounds(summary: pd.DataFrame) -> pd.DataFrame:
    """top1 Wilson bounds per (condition key, model), clean ones included."""
    keys = [condition_key(t, s) for t, s in zip(summary["transform"], summary["severity"])]
    return summary.assign(condition=keys).set_index(["condition", "model"])[["top1", "top1_low", "top1_high"]]


def table_unit(ref: TableFit) -> float:
    return 100.0 if ref.unit == "percent" else 1.0


def draw_reference(ax, axis: AccuracyAxis, ref: TableFit) -> None:
    ax.scatter(axis(ref.rows[ref.x] / table_unit(ref)), axis(ref.rows[ref.y] / table_unit(ref)), s=6, color="0.7", zorder=2,
               label="reference", clip_on=True)
    grid = np.linspace(*axis.limits, 50)
    ax.plot(grid, ref.line.slope * grid + ref.line.intercept if axis.scale == ref.line.scale else grid * np.nan,
            color="0.55", lw=1, zorder=2)


def draw_line(ax, axis: AccuracyAxis, line: pd.Series, replicates: np.ndarray | None) -> None:
    if line["status"] != "ok":
        ax.text(0.03, 0.97, plain(line["status"].replace(": ", ":\n", 1).replace(" (", "\n(")), transform=ax.transAxes,
                va="top", fontsize=7, color="firebrick")
        return
    grid = np.linspace(*axis.limits, 60)
    ax.plot(grid, line["slope"] * grid + line["intercept"], color="black", lw=1.2, zorder=3)
    if replicates is not None and np.isfinite(replicates).all(axis=1).any():
        ok = replicates[np.isfinite(replicates).all(axis=1)]
        band = ok[:, :1] * grid[None, :] + ok[:, 1:2]
        ax.fill_between(grid, *np.percentile(band, [2.5, 97.5], axis=0), color="black", alpha=0.12, lw=0, zorder=2)
    ax.text(0.03, 0.97, f"slope {line['slope']:.2f}, R² {line['r2']:.2f}", transform=ax.transAxes,
            va="top", fontsize=7)


def draw_models(ax, axis: AccuracyAxis, points: pd.DataFrame, bounds: pd.DataFrame, colours: dict) -> None:
    for _, p in points.iterrows():
        clean = bounds.loc[("clean", p["model"])] if ("clean", p["model"]) in bounds.index else None
        own = bounds.loc[(p["condition"], p["model"])] if (p["condition"], p["model"]) in bounds.index else None
        y_low, y_high = (own["top1_low"], own["top1_high"]) if own is not None else (p["top1_low"], p["top1_high"])
        x, y = axis(p["clean_top1"] / 100), axis(p["top1"] / 100)
        xerr = None if clean is None else [[x - axis(clean["top1_low"] / 100)], [axis(clean["top1_high"] / 100) - x]]
        yerr = [[y - axis(y_low / 100)], [axis(y_high / 100) - y]]
        at_edge = axis.scale != "linear" and not (0 < p["clean_top1"] < 100 and 0 < p["top1"] < 100)
        ax.errorbar(x, y, xerr=xerr, yerr=np.nan_to_num(yerr), fmt="o", ms=4, lw=0.8, capsize=1.5,
                    color=colours.get(p["model"]), mfc="white" if at_edge else None, zorder=4)
        right_half = x > sum(axis.limits) / 2
        ax.annotate(plain(p["model"]), (x, y), xytext=(-4 if right_half else 4, -9), textcoords="offset points",
                    ha="right" if right_half else "left", fontsize=6, color=colours.get(p["model"]), zorder=5,
                    bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.7})
