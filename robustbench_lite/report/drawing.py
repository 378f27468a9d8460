"""The drawing kit of the report's figures: a colour-blind-safe palette with a marker per model, probit/logit
axes fitted to the data with readable ticks, panel grids sized for a paper's page, the run's models with
Wilson intervals on both axes, fitted lines with their bootstrap bands, and one legend outside the data."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..analysis.fit import TableFit, scale_accuracy, unscale_accuracy
from ..conditions.keys import condition_key

DPI = 200
PAGE_WIDTH = 7.0  # inches: a paper's text width; one column is half of it
COLUMN_WIDTH = 3.4
STYLE = {"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "xtick.labelsize": 6.5, "ytick.labelsize": 6.5,
         "legend.fontsize": 6.5, "figure.dpi": DPI, "savefig.dpi": DPI, "axes.linewidth": 0.6,
         "xtick.major.width": 0.6, "ytick.major.width": 0.6, "xtick.major.size": 2.5, "ytick.major.size": 2.5}
# Okabe & Ito's colour-blind-safe colours, as seaborn's "colorblind" palette orders them; markers tell models
# apart where colours repeat (more than ten models) and in greyscale print.
PALETTE = ("#0173B2", "#DE8F05", "#029E73", "#D55E00", "#CC78BC", "#CA9161", "#FBAFE4", "#949494", "#ECE133",
           "#56B4E9")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
PUBLISHED_STYLE = {"color": "black", "lw": 1.2, "ls": "-"}
OWN_STYLE = {"color": "#6A3D9A", "lw": 1.1, "ls": (0, (5, 2))}  # the run's own line: purple, dashed
DIAGONAL_STYLE = {"color": "0.55", "lw": 0.7, "ls": ":"}
STACKED_MARKER_STEP = 1.8  # points a marker grows for each model drawn on top of it at the same place
POPULATION_SHADES = {True: "0.45", False: "0.8"}  # the testbed's line-fit models darker than the others


def plain(text) -> str:
    """A user string safe for matplotlib: `$` would start mathtext."""
    return str(text).replace("$", r"\$")


def panel_title(text, width: int = 30) -> str:
    """A panel title that stays over its own panel: long names (adapter specs) wrap, at most two lines."""
    import textwrap

    lines = textwrap.wrap(str(text), width, break_on_hyphens=False) or [""]
    return plain("\n".join(lines if len(lines) <= 2 else [lines[0], "…" + str(text)[-(width - 1):]]))


class ModelStyle(dict):
    """{model: (colour, marker)}: colours cycle through PALETTE, markers shift each cycle so pairs never repeat."""

    def colour(self, model: str):
        return self[model][0] if model in self else "0.3"

    def marker(self, model: str) -> str:
        return self[model][1] if model in self else "o"


def model_colours(models: Sequence[str]) -> ModelStyle:
    """Each model's colour and marker, in the run's model order."""
    n = len(PALETTE)
    return ModelStyle({m: (PALETTE[i % n], MARKERS[(i + i // n) % len(MARKERS)]) for i, m in enumerate(models)})


def new_figure(width: float, height: float):
    """A matplotlib Figure on the Agg canvas, without pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


LEFT, RIGHT, GAP, BOTTOM = 0.55, 0.2, 0.5, 0.42  # inches: tick labels and axis labels beside each panel
TITLE_LINE, LEGEND_LINE = 0.125, 0.135  # inches per line of a panel title, of a legend row


def panel_grid(n: int, max_cols: int = 3, width: float = PAGE_WIDTH, aspect: float = 0.9, title_lines: int = 1,
               legend_entries: int = 0, legend_cols: int = 3):
    """`n` panels in a grid at most `width` inches wide (`max_cols` panels), laid out in inches (no layout pass
    when saved): a free cell holds the legend when the last row has one, else `legend_entries` rows below.

    Returns (figure, panel axes, free axes for the legend: empty when the legend goes below).
    """
    cols = max(1, min(max_cols, n + (1 if legend_entries and n < max_cols else 0)))  # a short row: legend beside
    rows = int(np.ceil(n / cols))
    panel = (width - LEFT - RIGHT - (max_cols - 1) * GAP) / max_cols  # the same panel size however many
    width = LEFT + RIGHT + cols * panel + (cols - 1) * GAP
    row_height = TITLE_LINE * title_lines + 0.08 + panel * aspect + BOTTOM
    free = rows * cols - n if legend_entries * LEGEND_LINE <= row_height else 0  # a legend that fits a cell
    below = 0.0 if free or not legend_entries else LEGEND_LINE * np.ceil(legend_entries / legend_cols) + 0.1
    height = rows * row_height + below + 0.05
    figure = new_figure(width, height)
    axes = []
    for i in range(rows * cols):
        row, col = divmod(i, cols)
        left = LEFT + col * (panel + GAP)
        bottom = height - 0.05 - (row + 1) * row_height + BOTTOM
        axes.append(figure.add_axes((left / width, bottom / height, panel / width, panel * aspect / height)))
    for ax in axes[n:]:
        ax.set_visible(False)
    return figure, axes[:n], axes[n:] if free else []


def figure_legend(figure, axes: Sequence, free: Sequence = (), ncol: int = 3) -> None:
    """One legend naming every line and point drawn in `axes` (each label once), in a free panel cell when
    there is one, else below the panels: never over the data."""
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if not label.startswith("_"):
                handles.setdefault(label, handle)
    if not handles:
        return
    if free:
        box = free[0]
        box.set_visible(True)
        box.axis("off")
        box.legend(list(handles.values()), list(handles), loc="center left", frameon=False, borderaxespad=0,
                   handlelength=1.8, bbox_to_anchor=(-0.1, 0.5))
        return
    figure.legend(list(handles.values()), list(handles), loc="lower center", bbox_to_anchor=(0.5, 0.0),
                  ncol=ncol, frameon=False, handlelength=1.8, columnspacing=1.2, borderaxespad=0.2)


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
    """Accuracy (fraction) <-> plot coordinate on the fit's scale, values kept off 0 and 1; `limits` span
    the given values (points and the ends of their error bars) with a small margin."""

    def __init__(self, scale: str, values: np.ndarray, pad: float = 0.06):
        self.scale = scale
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        self.eps = 1e-3 if scale != "linear" else 0.0
        z = self(values if len(values) else np.array([0.5]))
        margin = pad * max(z.max() - z.min(), 0.5)
        self.limits = (float(z.min() - margin), float(z.max() + margin))

    def __call__(self, p) -> np.ndarray:
        return scale_accuracy(np.clip(np.asarray(p, dtype=float), self.eps, 1 - self.eps), self.scale)

    def ticks(self) -> tuple[list[float], list[str]]:
        """Readable accuracy ticks (at least 15 % of the span apart) as positions and percent labels."""
        low, high = (float(unscale_accuracy(z, self.scale)) for z in self.limits)
        chosen = readable_ticks(max(low, self.eps), min(high, 1 - self.eps), self.scale, min_gap=0.15)
        return [float(self(t)) for t in chosen], [f"{100 * t:g}%" for t in chosen]


def style_axes(ax, x_axis: AccuracyAxis, y_axis: AccuracyAxis, diagonal: bool = True) -> None:
    """Limits and percent ticks of both axes, a light grid, and y = x dotted where it crosses the panel."""
    for axis, set_lim, set_ticks in ((x_axis, ax.set_xlim, ax.set_xticks), (y_axis, ax.set_ylim, ax.set_yticks)):
        set_lim(axis.limits)
        set_ticks(*axis.ticks())
    if diagonal:
        low, high = min(x_axis.limits[0], y_axis.limits[0]), max(x_axis.limits[1], y_axis.limits[1])
        ax.plot([low, high], [low, high], zorder=1, label="y = x", **DIAGONAL_STYLE)
    ax.grid(alpha=0.25, lw=0.4)
    ax.tick_params(pad=1.5)


def wilson_bounds(summary: pd.DataFrame) -> pd.DataFrame:
    """top1 Wilson bounds per (condition key, model), clean ones included."""
    keys = [condition_key(t, s) for t, s in zip(summary["transform"], summary["severity"])]
    return summary.assign(condition=keys).set_index(["condition", "model"])[["top1", "top1_low", "top1_high"]]


def _bounds_of(bounds: pd.DataFrame, key: str, model: str) -> tuple[float, float] | None:
    """A model's Wilson 95 % bounds (percent) on one condition, if the summary has them."""
    if (key, model) not in bounds.index:
        return None
    row = bounds.loc[(key, model)]
    return float(row["top1_low"]), float(row["top1_high"])


def point_extent(points: pd.DataFrame, bounds: pd.DataFrame, counterpart: str = "clean") -> tuple[np.ndarray, np.ndarray]:
    """Every x and y value (fractions) the run's points and their error bars reach, for fitting the axes."""
    xs, ys = [points["clean_top1"].to_numpy(float)], [points["top1"].to_numpy(float)]
    for _, p in points.iterrows():
        xs.append(np.array(_bounds_of(bounds, counterpart, p["model"]) or [], dtype=float))
        ys.append(np.array(_bounds_of(bounds, p["condition"], p["model"]) or (p["top1_low"], p["top1_high"]), float))
    return np.concatenate(xs) / 100, np.concatenate(ys) / 100


def table_unit(ref: TableFit) -> float:
    return 100.0 if ref.unit == "percent" else 1.0


def draw_reference(ax, x_axis: AccuracyAxis, y_axis: AccuracyAxis, ref: TableFit) -> None:
    """A user's reference table (grey points) and its own line (grey) where its scale is the panel's."""
    ax.scatter(x_axis(ref.rows[ref.x] / table_unit(ref)), y_axis(ref.rows[ref.y] / table_unit(ref)), s=5,
               color="0.7", lw=0, zorder=2, label="reference table")
    if x_axis.scale == ref.line.scale:
        grid = np.linspace(*x_axis.limits, 50)
        ax.plot(grid, ref.line.slope * grid + ref.line.intercept, color="0.55", lw=0.9, zorder=2,
                label="reference table's line")


def draw_own_line(ax, axis: AccuracyAxis, line: pd.Series, replicates: np.ndarray | None) -> None:
    """The run's own line across its models (identified lines only) and its 95 % bootstrap band."""
    grid = np.linspace(*axis.limits, 60)
    ax.plot(grid, line["slope"] * grid + line["intercept"], zorder=3, label="run's own line (95 % band)",
            **OWN_STYLE)
    if replicates is not None and np.isfinite(replicates).all(axis=1).any():
        ok = replicates[np.isfinite(replicates).all(axis=1)]
        band = ok[:, :1] * grid[None, :] + ok[:, 1:2]
        ax.fill_between(grid, *np.percentile(band, [2.5, 97.5], axis=0), color=OWN_STYLE["color"], alpha=0.1,
                        lw=0, zorder=2)


def draw_models(ax, x_axis: AccuracyAxis, y_axis: AccuracyAxis, points: pd.DataFrame, bounds: pd.DataFrame,
                styles: ModelStyle, counterpart: str = "clean") -> None:
    """Each model at (clean or counterpart top-1, top-1) with Wilson 95 % intervals on both axes, in its colour
    and marker (labelled once for the figure's legend); hollow where a value is 0 or 100 %. Models at the same
    point are drawn as concentric markers, the first largest, so that none hides another."""
    segments, colours = [], []
    place = pd.Series([f"{x:.9f} {y:.9f}" for x, y in zip(points["clean_top1"], points["top1"])], index=points.index,
                      dtype=object)
    stack = place.groupby(place).cumcount()  # 0 for the first model at its point, 1 for the next, ...
    depth = place.map(place.value_counts()) - 1 - stack  # markers still to come on top of this one
    for index, p in points.iterrows():
        model = p["model"]
        x, y = float(x_axis(p["clean_top1"] / 100)), float(y_axis(p["top1"] / 100))
        clean = _bounds_of(bounds, counterpart, model)
        if clean is not None:
            segments.append([(float(x_axis(clean[0] / 100)), y), (float(x_axis(clean[1] / 100)), y)])
            colours.append(styles.colour(model))
        low, high = _bounds_of(bounds, p["condition"], model) or (p["top1_low"], p["top1_high"])
        if np.isfinite(low) and np.isfinite(high):
            segments.append([(x, float(y_axis(low / 100))), (x, float(y_axis(high / 100)))])
            colours.append(styles.colour(model))
        at_edge = x_axis.scale != "linear" and not (0 < p["clean_top1"] < 100 and 0 < p["top1"] < 100)
        colour = styles.colour(model)
        ax.plot([x], [y], ls="none", marker=styles.marker(model), ms=3.6 + STACKED_MARKER_STEP * depth[index],
                color=colour, mec=colour, mfc="white" if at_edge else colour, mew=0.7, zorder=5 + 0.01 * stack[index],
                label=plain(model))
    if segments:
        from matplotlib.collections import LineCollection

        ax.add_collection(LineCollection(segments, colors=colours, linewidths=0.7, zorder=4), autolim=False)
