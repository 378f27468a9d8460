"""The natural-shift panels: each shift of a run on the testbed's published line (ImageNet-A: its two
pieces), the testbed population in grey, the run's models placed on their clean counterpart, and
ObjectNet's line beside them as a reference only (runs do not measure ObjectNet)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.fit import unscale_accuracy
from ..analysis.references import (IMAGENET_A_SPLIT, REFERENCE_ONLY_SHIFTS, bootstrap_band, counterpart, imagenet_a_lines,
                         imagenet_a_points, population_points, predict, reference_line, testbed_shift)
from ..analysis.tables import Analysis
from .drawing import AccuracyAxis, draw_models, panel_grid, plain, wilson_bounds
from .population_figure import setting_name

LINE_COLOUR = "#d62728"  # the published line, as in the other published panels
SPLIT_COLOUR = "#7f7f7f"
COUNTERPART_NAMES = {"clean": "ImageNet val", "clean@r-classes": "val, 200 ImageNet-R classes",
                     "clean@a-classes": "val, 200 ImageNet-A classes"}
SHIFT_TITLES = {"imagenet-a": "ImageNet-A"}


def shift_title(shift: str) -> str:
    """A shift's name for a panel: `imagenet-r` -> `ImageNet-R`."""
    name = testbed_shift(shift) or shift
    return SHIFT_TITLES.get(name) or setting_name(name)


def _population(shift: str) -> pd.DataFrame:
    name = testbed_shift(shift) or shift
    return imagenet_a_points() if name == "imagenet-a" else population_points(name)


def _counterpart_bounds(bounds: pd.DataFrame, key: str) -> pd.DataFrame:
    """Wilson bounds with the counterpart's standing in for clean, so x error bars are the counterpart's."""
    if key == "clean" or key not in bounds.index.get_level_values(0):
        return bounds
    part = bounds.xs(key, level=0, drop_level=False).rename(index={key: "clean"}, level=0)
    return pd.concat([bounds.drop(index="clean", level=0, errors="ignore"), part])


def _axes(ax, clean: np.ndarray, shifted: np.ndarray, scale: str) -> AccuracyAxis:
    """Logit axes with their own x and y ranges (a shift's accuracies sit far below clean), readable ticks
    and y = x dashed; returns the x axis (both map accuracy to the same coordinate on `scale`)."""
    x_axis, y_axis = AccuracyAxis(scale, clean), AccuracyAxis(scale, shifted)
    for axis, set_lim, set_ticks in ((x_axis, ax.set_xlim, ax.set_xticks), (y_axis, ax.set_ylim, ax.set_yticks)):
        set_lim(axis.limits)
        set_ticks(*axis.ticks())
    low, high = min(x_axis.limits[0], y_axis.limits[0]), max(x_axis.limits[1], y_axis.limits[1])
    ax.plot([low, high], [low, high], ls="--", color="0.6", lw=0.8, zorder=1, label="y = x")
    ax.grid(alpha=0.3, lw=0.5)
    return x_axis


def _scatter_population(ax, axis: AccuracyAxis, population: pd.DataFrame, faint: bool = False) -> None:
    for in_fit, shade in ((False, "0.82"), (True, "0.6" if faint else "0.5")):
        part = population.loc[population["in_fit"] == in_fit]
        ax.scatter(axis(part["clean"]), axis(part["shifted"]), s=6, color=shade, lw=0, zorder=2,
                   label=f"testbed, {'line-fit models' if in_fit else 'other models'}")


def _draw_published(ax, axis: AccuracyAxis, shift: str, alpha: float = 1.0) -> None:
    """The testbed's line and its 95 % band over its line-fit models; ImageNet-A's two pieces and split."""
    grid = np.linspace(*axis.limits, 120)
    clean = unscale_accuracy(grid, axis.scale)
    if (testbed_shift(shift) or shift) == "imagenet-a":
        split = IMAGENET_A_SPLIT / 100
        for i, (line, side) in enumerate(zip(imagenet_a_lines(axis.scale), (clean < split, clean >= split))):
            ax.plot(grid[side], axis(predict(line, clean[side])), color=LINE_COLOUR, lw=1.4, zorder=3,
                    label="published two-piece line (ImageNet-A)" if i == 0 else None)
        ax.axvline(float(axis(split)), color=SPLIT_COLOUR, ls=":", lw=0.9, zorder=2,
                   label=f"ImageNet-A split ({IMAGENET_A_SPLIT:g} %)")
        return
    line = reference_line(testbed_shift(shift) or shift, axis.scale)
    low, high = bootstrap_band(line, clean)
    ax.fill_between(grid, axis(low), axis(high), color=LINE_COLOUR, alpha=0.18 * alpha, lw=0, zorder=2)
    ax.plot(grid, axis(predict(line, clean)), color=LINE_COLOUR, lw=1.4, alpha=alpha, zorder=3,
            label="published line (95 % band)")


def _shift_panel(ax, result: Analysis, shift: str, bounds: pd.DataFrame, colours: dict, scale: str) -> None:
    population = _population(shift)
    mine = result.fit.points.loc[result.fit.points["condition"] == shift]
    key = counterpart(shift)
    fit = population.loc[population["in_fit"]]
    axis = _axes(ax, np.r_[fit["clean"], mine["clean_top1"] / 100], np.r_[fit["shifted"], mine["top1"] / 100], scale)
    _scatter_population(ax, axis, population)
    _draw_published(ax, axis, shift)
    draw_models(ax, axis, mine, _counterpart_bounds(bounds, key), colours)
    if (testbed_shift(shift) or shift) == "imagenet-a":
        below, above = imagenet_a_lines()
        fitted = f"two lines fitted on {below.n} + {above.n} testbed models"
    else:
        fitted = f"line fitted on {len(fit)} testbed models"
    ax.set_title(plain(f"{shift_title(shift)}\n{fitted}"), fontsize=7.5)
    ax.set_xlabel(plain(f"{COUNTERPART_NAMES.get(key, key)} top-1 (run: {key})"))
    ax.set_ylabel(f"{shift_title(shift)} top-1")


def _reference_panel(ax, shift: str, scale: str) -> None:
    """A testbed line the run does not measure, drawn faint and labelled as a reference only."""
    line = reference_line(shift, scale)
    population = population_points(shift)
    fit = population.loc[population["in_fit"]]
    axis = _axes(ax, fit["clean"].to_numpy(), fit["shifted"].to_numpy(), scale)
    _scatter_population(ax, axis, population, faint=True)
    _draw_published(ax, axis, shift, alpha=0.55)
    ax.set_facecolor("#f6f6f6")
    for spine in ax.spines.values():
        spine.set_edgecolor("0.7")
    ax.set_title(f"{setting_name(line.column)} (line fitted on {line.n} models)\nreference only: not measured "
                 "by this run", fontsize=7.5,
                 color="0.35")
    ax.set_xlabel(f"{setting_name(line.clean_column)} top-1", color="0.35")
    ax.set_ylabel(f"{setting_name(line.column)} top-1", color="0.35")


def plot_natural_shifts(result: Analysis, colours: dict):
    """One panel per natural shift of the run on its published line (the lines' scale, logit unless the
    report asked for probit; y = x dashed), plus ObjectNet's line as a reference; None without a shift."""
    shifts = result.shift_names
    if not shifts:
        return None
    rows = result.published.loc[result.published["condition"].isin(shifts)] if len(result.published) else []
    scale = str(rows["scale"].iloc[0]) if len(rows) else "logit"
    bounds = wilson_bounds(result.summary)
    references = [s for s in REFERENCE_ONLY_SHIFTS if s not in shifts]  # ObjectNet measured: its own panel
    figure, axes = panel_grid(len(shifts) + len(references), size=3.4, max_cols=4)
    for ax, shift in zip(axes, shifts):
        _shift_panel(ax, result, shift, bounds, colours, scale)
    for ax, shift in zip(axes[len(shifts):], references):
        _reference_panel(ax, shift, scale)
    handles = {}
    for ax in axes[:len(shifts)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    figure.suptitle("Natural shifts: the run's models on the imagenet-testbed's published lines "
                    f"({scale} axes; dashed: y = x)", y=1.0)
    figure.tight_layout()
    figure.legend(list(handles.values()), list(handles), loc="upper center", ncol=min(4, len(handles)),
                  bbox_to_anchor=(0.5, 0.0), frameon=False, fontsize=7)
    return figure
