"""The line figures: the run's models on the published lines (`published`) and on the run's own lines
(`reproducibility`), one panel per condition, axes fitted to the line-fit models and the run's points."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.fit import unscale_accuracy
from ..analysis.tables import Analysis
from ..conditions.keys import parse_condition_key
from .drawing import (POPULATION_SHADES, PUBLISHED_STYLE, AccuracyAxis, ModelStyle, draw_models, draw_own_line,
                      draw_reference, figure_legend, panel_grid, panel_title, plain, point_extent, style_axes,
                      table_unit, wilson_bounds)

MAX_PUBLISHED_PANELS = 12  # above this, one panel per transform (its middle mapped severity)
MAX_OWN_PANELS = 12  # above this, the run's own lines are drawn per family
BEYOND_COLOUR = "0.93"


def published_panels(result: Analysis) -> pd.DataFrame:
    """The conditions drawn on their published lines (rows of references.csv), at most MAX_PUBLISHED_PANELS;
    natural shifts have their own figure (shift_panels)."""
    table = result.published
    table = table.loc[~table["condition"].isin(result.shift_names)] if len(table) else table
    if "recipe" in table:  # a condition whose recipe is not its line's is not placed on it
        table = table.loc[table["recipe"].eq("release") | table["population"].eq("table")]
    if len(table) > MAX_PUBLISHED_PANELS:
        transform = [parse_condition_key(key)[0] for key in table["condition"]]  # clean@r-classes is one name
        groups = table.groupby(transform, sort=False).indices.values()
        table = table.iloc[[index[len(index) // 2] for index in groups]]
    return table.head(MAX_PUBLISHED_PANELS)


def _population(result: Analysis, row) -> tuple[pd.DataFrame, object | None]:
    """The population behind a published line (clean, shifted fractions, in_fit) and the testbed line, if any."""
    from ..analysis.references import population_points, reference_line

    if row.population == "table":  # a user's table tied to this condition (--reference-condition)
        ref = result.reference
        unit = table_unit(ref)
        return pd.DataFrame({"clean": ref.rows[ref.x] / unit, "shifted": ref.rows[ref.y] / unit,
                             "in_fit": ref.rows["in_fit"]}), None
    protocol = result.data.config("corruption_protocol") or "native"
    return population_points(row.condition, protocol), reference_line(row.condition, row.scale, protocol)


def shade_beyond(ax, x_axis: AccuracyAxis, low: float, high: float) -> None:
    """Shade the clean accuracies beyond the line-fit models (fractions `low`-`high`): the line is extrapolated there."""
    left, right = x_axis.limits
    label = "beyond the line-fit models"
    for start, end in ((left, float(x_axis(low))), (float(x_axis(high)), right)):
        if end > start:
            ax.axvspan(start, end, color=BEYOND_COLOUR, lw=0, zorder=0, label=label)
            label = "_beyond"


def _own_status(result: Analysis, condition: str) -> pd.Series | None:
    own = result.fit.lines.set_index("condition")
    return own.loc[condition] if condition in own.index else None


def plot_published(result: Analysis, styles: ModelStyle):
    """Each mapped condition on its published line: the population (line-fit models darker), the line and
    its 95 % band, y = x, the run's models with Wilson intervals on both axes, the run's own line where it
    is identified, and the clean range beyond the line-fit models shaded."""
    from ..analysis.references import bootstrap_band

    panels = published_panels(result)
    if panels.empty:
        return None
    bounds = wilson_bounds(result.summary)
    points = result.fit.points
    figure, axes, free = panel_grid(len(panels), title_lines=3, legend_entries=len(result.data.models) + 6)
    for ax, row in zip(axes, panels.itertuples()):
        population, line = _population(result, row)
        fitted = population.loc[population["in_fit"]]
        mine = points.loc[points["condition"] == row.condition]
        xs, ys = point_extent(mine, bounds)
        x_axis = AccuracyAxis(row.scale, np.r_[fitted["clean"], xs])
        y_axis = AccuracyAxis(row.scale, np.r_[fitted["shifted"], ys])
        style_axes(ax, x_axis, y_axis)
        shade_beyond(ax, x_axis, float(fitted["clean"].min()), float(fitted["clean"].max()))
        for in_fit in (False, True):
            part = population.loc[population["in_fit"] == in_fit]
            ax.scatter(x_axis(part["clean"]), y_axis(part["shifted"]), s=4, color=POPULATION_SHADES[in_fit], lw=0,
                       zorder=2, label=f"{'published population' if row.population == 'table' else 'testbed'}, "
                                       f"{'line-fit' if in_fit else 'other'} models")
        grid = np.linspace(*x_axis.limits, 60)
        if line is not None:
            low, high = bootstrap_band(line, unscale_accuracy(grid, row.scale))
            ax.fill_between(grid, y_axis(low), y_axis(high), color="0.5", alpha=0.2, lw=0, zorder=2)
        ax.plot(grid, row.slope * grid + row.intercept, zorder=3, label="published line (95 % band)",
                **PUBLISHED_STYLE)
        title = [row.condition, f"published slope {row.slope:.2f} ({row.n} models)"]
        own = _own_status(result, row.condition)
        if own is not None and own["status"] == "ok" and result.fit.scale == row.scale:
            draw_own_line(ax, x_axis, own, result.fit.replicates.get(row.condition))
            title.append(f"run's own slope {own['slope']:.2f} ({own['n']} models)")
        draw_models(ax, x_axis, y_axis, mine, bounds, styles)
        ax.set_title(plain("\n".join(title)), loc="left")
        ax.set_xlabel("clean top-1")
        ax.set_ylabel("transformed top-1")
    figure_legend(figure, axes, free)
    return figure


def _own_panels(result: Analysis) -> pd.DataFrame:
    """The run's own identified lines not already drawn on a published panel (per family when there are many)."""
    lines = result.fit.lines
    drawn = set(published_panels(result)["condition"]) if len(result.published) else set()
    mine = lines.loc[(lines["kind"] == "condition") & (lines["status"] == "ok") & ~lines["condition"].isin(drawn)]
    if len(mine) > MAX_OWN_PANELS:
        mine = lines.loc[(lines["kind"] == "family") & (lines["status"] == "ok")]
    return mine.head(MAX_OWN_PANELS)


def plot_reproducibility(result: Analysis, styles: ModelStyle):
    """The run's own identified lines (conditions without a published panel): its models with Wilson
    intervals on both axes, the line and its 95 % bootstrap band over photos, y = x, a reference table."""
    lines = _own_panels(result)
    if lines.empty:
        return None
    points = result.fit.points
    bounds = wilson_bounds(result.summary)
    ref = result.reference
    figure, axes, free = panel_grid(len(lines), title_lines=2,
                                    legend_entries=len(result.data.models) + (4 if ref is not None else 2))
    scale = result.fit.scale
    for ax, (_, line) in zip(axes, lines.iterrows()):
        mine = points.loc[points["condition"] == line["condition"]]
        xs, ys = point_extent(mine, bounds)
        if ref is not None:  # the axes cover the reference's fitted rows, not its whole population
            fitted = ref.rows.loc[ref.rows["in_fit"]]
            xs, ys = np.r_[xs, fitted[ref.x] / table_unit(ref)], np.r_[ys, fitted[ref.y] / table_unit(ref)]
        x_axis, y_axis = AccuracyAxis(scale, xs, pad=0.12), AccuracyAxis(scale, ys, pad=0.12)
        style_axes(ax, x_axis, y_axis)
        if ref is not None:
            draw_reference(ax, x_axis, y_axis, ref)
        draw_own_line(ax, x_axis, line, result.fit.replicates.get(line["condition"]))
        draw_models(ax, x_axis, y_axis, mine, bounds, styles)
        name = line["condition"] if line["kind"] == "condition" else f"{line['family']} (family mean)"
        ax.set_title(panel_title(name) + plain(f"\nrun's own slope {line['slope']:.2f}, R² {line['r2']:.2f}"),
                     loc="left")
        ax.set_xlabel("clean top-1")
        ax.set_ylabel("transformed top-1")
    figure_legend(figure, axes, free)
    return figure
