"""The natural-shift panels: each shift of a run on its population's published line (the testbed's by default,
ImageNet-A: its two pieces; timm's with `--population timm|timm-in1k`, the testbed's line kept thin beside it),
that population in grey, the run's models placed on their clean counterpart, and ObjectNet's line beside them
as a reference only (runs do not measure ObjectNet)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.fit import unscale_accuracy
from ..analysis.references import (IMAGENET_A_SPLIT, POPULATION, REFERENCE_ONLY_SHIFTS, bootstrap_band, counterpart,
                                   imagenet_a_lines, imagenet_a_points, population_points, predict, reference_line,
                                   shift_population, testbed_shift)
from ..analysis.tables import Analysis
from .drawing import (POPULATION_SHADES, PUBLISHED_STYLE, AccuracyAxis, ModelStyle, draw_models, figure_legend,
                      panel_grid, plain, point_extent, style_axes, wilson_bounds)
from .line_panels import shade_beyond
from .population_figure import setting_name

SPLIT_COLOUR = "#7f7f7f"
TESTBED_COMPARISON = {"color": "0.15", "lw": 0.8, "ls": "-.", "zorder": 3}  # the testbed's line beside timm's
COUNTERPART_NAMES = {"clean": "ImageNet val", "clean@r-classes": "val, 200 ImageNet-R classes",
                     "clean@a-classes": "val, 200 ImageNet-A classes"}
SHIFT_TITLES = {"imagenet-a": "ImageNet-A"}


def shift_title(shift: str) -> str:
    """A shift's name for a panel: `imagenet-r` -> `ImageNet-R`."""
    name = testbed_shift(shift) or shift
    return SHIFT_TITLES.get(name) or setting_name(name)


def _population(shift: str, population: str = POPULATION) -> pd.DataFrame:
    name = testbed_shift(shift) or shift
    if name == "imagenet-a" and population == POPULATION:
        return imagenet_a_points()
    return population_points(name, population=population)


def _rows_noun(population: str) -> str:
    return "models" if population == POPULATION else "rows"


def _counterpart_bounds(bounds: pd.DataFrame, key: str) -> pd.DataFrame:
    """Wilson bounds with the counterpart's standing in for clean, so x error bars are the counterpart's."""
    if key == "clean" or key not in bounds.index.get_level_values(0):
        return bounds
    part = bounds.xs(key, level=0, drop_level=False).rename(index={key: "clean"}, level=0)
    return pd.concat([bounds.drop(index="clean", level=0, errors="ignore"), part])


def _scatter_population(ax, x_axis: AccuracyAxis, y_axis: AccuracyAxis, population: pd.DataFrame,
                        faint: bool = False, name: str = POPULATION) -> None:
    for in_fit in (False, True):
        part = population.loc[population["in_fit"] == in_fit]
        shade = "0.6" if faint and in_fit else POPULATION_SHADES[in_fit]
        if len(part):
            ax.scatter(x_axis(part["clean"]), y_axis(part["shifted"]), s=4, color=shade, lw=0, zorder=2,
                       label=f"{name}, {'line-fit' if in_fit else 'other'} {_rows_noun(name)}")


def _draw_testbed_comparison(ax, x_axis: AccuracyAxis, y_axis: AccuracyAxis, shift: str) -> None:
    """The testbed's line (ImageNet-A: its two pieces), thin, beside another population's."""
    grid = np.linspace(*x_axis.limits, 120)
    clean = unscale_accuracy(grid, x_axis.scale)
    name = testbed_shift(shift) or shift
    if name == "imagenet-a":
        split = IMAGENET_A_SPLIT / 100
        for i, (line, side) in enumerate(zip(imagenet_a_lines(x_axis.scale), (clean < split, clean >= split))):
            ax.plot(grid[side], y_axis(predict(line, clean[side])), **TESTBED_COMPARISON,
                    label="imagenet-testbed's line (comparison)" if i == 0 else None)
        return
    ax.plot(grid, y_axis(predict(reference_line(name, x_axis.scale), clean)), **TESTBED_COMPARISON,
            label="imagenet-testbed's line (comparison)")


def _draw_published(ax, x_axis: AccuracyAxis, y_axis: AccuracyAxis, shift: str, alpha: float = 1.0,
                    population: str = POPULATION) -> None:
    """A population's line and its 95 % band over its line-fit rows; the testbed's ImageNet-A: two pieces and split."""
    grid = np.linspace(*x_axis.limits, 120)
    clean = unscale_accuracy(grid, x_axis.scale)
    if (testbed_shift(shift) or shift) == "imagenet-a" and population == POPULATION:
        split = IMAGENET_A_SPLIT / 100
        for i, (line, side) in enumerate(zip(imagenet_a_lines(x_axis.scale), (clean < split, clean >= split))):
            ax.plot(grid[side], y_axis(predict(line, clean[side])), zorder=3,
                    label="published two-piece line (ImageNet-A)" if i == 0 else None, **PUBLISHED_STYLE)
        ax.axvline(float(x_axis(split)), color=SPLIT_COLOUR, ls=":", lw=0.9, zorder=2,
                   label=f"ImageNet-A split ({IMAGENET_A_SPLIT:g} %)")
        return
    line = reference_line(testbed_shift(shift) or shift, x_axis.scale, population=population)
    low, high = bootstrap_band(line, clean)
    ax.fill_between(grid, y_axis(low), y_axis(high), color="0.5", alpha=0.2 * alpha, lw=0, zorder=2)
    ax.plot(grid, y_axis(predict(line, clean)), zorder=3, alpha=alpha, **PUBLISHED_STYLE,
            label="published line (95 % band)" if population == POPULATION else f"{population} line (95 % band)")


def _shift_panel(ax, result: Analysis, shift: str, bounds: pd.DataFrame, styles: ModelStyle, scale: str) -> None:
    chosen = shift_population(testbed_shift(shift) or shift, result.population)
    population = _population(shift, chosen)
    mine = result.fit.points.loc[result.fit.points["condition"] == shift]
    key = counterpart(shift)
    fit = population.loc[population["in_fit"]]
    shifted_bounds = _counterpart_bounds(bounds, key)
    xs, ys = point_extent(mine, shifted_bounds)
    x_axis, y_axis = AccuracyAxis(scale, np.r_[fit["clean"], xs]), AccuracyAxis(scale, np.r_[fit["shifted"], ys])
    style_axes(ax, x_axis, y_axis)
    shade_beyond(ax, x_axis, float(fit["clean"].min()), float(fit["clean"].max()))
    _scatter_population(ax, x_axis, y_axis, population, name=chosen)
    _draw_published(ax, x_axis, y_axis, shift, population=chosen)
    if chosen != POPULATION:
        _draw_testbed_comparison(ax, x_axis, y_axis, shift)
    draw_models(ax, x_axis, y_axis, mine, shifted_bounds, styles)
    if (testbed_shift(shift) or shift) == "imagenet-a" and chosen == POPULATION:
        below, above = imagenet_a_lines()
        fitted = f"two lines fitted on {below.n} + {above.n} testbed models"
    else:
        fitted = f"line fitted on {len(fit)} {chosen} {_rows_noun(chosen)}"
    ax.set_title(plain(f"{shift_title(shift)}\n{fitted}"), loc="left")
    ax.set_xlabel(plain(f"{COUNTERPART_NAMES.get(key, key)} top-1\n(run: {key})"))
    ax.set_ylabel(f"{shift_title(shift)} top-1")


def _reference_panel(ax, shift: str, scale: str) -> None:
    """A testbed line the run does not measure, drawn faint and labelled as a reference only."""
    line = reference_line(shift, scale)
    population = population_points(shift)
    fit = population.loc[population["in_fit"]]
    x_axis, y_axis = AccuracyAxis(scale, fit["clean"].to_numpy()), AccuracyAxis(scale, fit["shifted"].to_numpy())
    style_axes(ax, x_axis, y_axis)
    _scatter_population(ax, x_axis, y_axis, population, faint=True)
    _draw_published(ax, x_axis, y_axis, shift, alpha=0.55)
    ax.set_facecolor("#f6f6f6")
    for spine in ax.spines.values():
        spine.set_edgecolor("0.7")
    ax.set_title(f"{setting_name(line.column)}, line fitted on\n{line.n} models; reference only:\nnot measured "
                 "by this run", color="0.35", loc="left")
    ax.set_xlabel(f"{setting_name(line.clean_column)} top-1".replace(", ", ",\n", 1), color="0.35")
    ax.set_ylabel(f"{setting_name(line.column)} top-1", color="0.35")


def plot_natural_shifts(result: Analysis, styles: ModelStyle):
    """One panel per natural shift of the run on its published line (the lines' scale, logit unless the
    report asked for probit; y = x dotted), plus ObjectNet's line as a reference; None without a shift."""
    shifts = result.shift_names
    if not shifts:
        return None
    rows = result.published.loc[result.published["condition"].isin(shifts)] if len(result.published) else []
    scale = str(rows["scale"].iloc[0]) if len(rows) else "logit"
    bounds = wilson_bounds(result.summary)
    references = [s for s in REFERENCE_ONLY_SHIFTS if s not in shifts]  # ObjectNet measured: its own panel
    n = len(shifts) + len(references)
    figure, axes, free = panel_grid(n, title_lines=3, legend_entries=len(result.data.models) + 7)
    for ax, shift in zip(axes, shifts):
        _shift_panel(ax, result, shift, bounds, styles, scale)
    for ax, shift in zip(axes[len(shifts):], references):
        _reference_panel(ax, shift, scale)
    figure_legend(figure, axes[:len(shifts)], free)
    return figure
