"""The report's plots, drawn from an Analysis (matplotlib Agg, seaborn): nothing here reads records."""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..analysis.fit import unscale_accuracy
from ..analysis.metrics import shifted_rows
from ..analysis.references import is_natural_shift
from ..analysis.tables import Analysis
from ..conditions.keys import parse_condition_key
from .drawing import (AccuracyAxis, draw_line, draw_models, draw_reference, model_colours, panel_grid, panel_title,
                      plain, table_unit, wilson_bounds)

MAX_CONDITION_PANELS = 12  # above this, the reproducibility plot shows one panel per family
MAX_TRANSFORM_PANELS = 16  # above this, accuracy-vs-severity shows one panel per family
DPI = 100


def make_plots(result: Analysis, plot_dir: Path) -> dict[str, Path]:
    """Draw every plot to plot_dir/*.png (Agg, dpi 100); returns {name: path}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = model_colours(result.data.models)
    plots: dict[str, Path] = {}
    with plt.rc_context({"font.size": 8, "axes.titlesize": 9, "figure.dpi": DPI, "savefig.dpi": DPI}):
        from .human_panels import plot_psychometric
        from .selective_panels import plot_trouble
        from .shift_panels import plot_natural_shifts

        for name, draw in [("published", plot_published), ("natural_shifts", plot_natural_shifts),
                           ("psychometric", plot_psychometric),
                           ("reproducibility", plot_reproducibility), ("severity", plot_severity),
                           ("drop_heatmap", plot_drop_heatmap), ("confidence", plot_confidence),
                           ("trouble", plot_trouble)]:
            figure = draw(result, colours)
            if figure is None:
                continue
            plots[name] = plot_dir / f"{name}.png"
            figure.savefig(plots[name], bbox_inches="tight")
            plt.close(figure)
    examples = _find_examples(result.data.run_dirs, plot_dir)
    if examples is not None:
        plots["examples"] = examples
    return plots


def _find_examples(run_dirs: Sequence[Path], plot_dir: Path) -> Path | None:
    """The engine's photo grid (first run folder that has one), copied beside the other plots."""
    target = plot_dir / "examples.png"
    for run_dir in run_dirs:
        source = Path(run_dir) / "plots" / "examples.png"
        if source.is_file():
            if source.resolve() != target.resolve():
                shutil.copyfile(source, target)
            return target
    return None


def _panel_kind(result: Analysis) -> str:
    n_conditions = int((result.fit.lines["kind"] == "condition").sum())
    return "condition" if n_conditions <= MAX_CONDITION_PANELS else "family"


def plot_reproducibility(result: Analysis, colours: dict):
    """Transformed vs clean top-1 on probit axes per condition (or family): models, fit, band, reference."""
    lines = result.fit.lines.loc[result.fit.lines["kind"] == _panel_kind(result)]
    if lines.empty:
        return None
    points = result.fit.points
    points = points.loc[points["condition"].isin(lines["condition"])]
    bounds = wilson_bounds(result.summary)
    ref = result.reference
    values = [points[c] / 100 for c in ("clean_top1", "top1", "top1_low", "top1_high")]
    if ref is not None:  # the axes cover the reference's fitted rows, not its whole population
        fitted = ref.rows.loc[ref.rows["in_fit"]]
        values += [fitted[ref.x] / table_unit(ref), fitted[ref.y] / table_unit(ref)]
    axis = AccuracyAxis(result.fit.scale, np.concatenate([np.asarray(v, dtype=float) for v in values]))
    figure, axes = panel_grid(len(lines))
    for ax, (_, line) in zip(axes, lines.iterrows()):
        axis.style(ax)
        if ref is not None:
            draw_reference(ax, axis, ref)
        draw_line(ax, axis, line, result.fit.replicates.get(line["condition"]))
        draw_models(ax, axis, points.loc[points["condition"] == line["condition"]], bounds, colours)
        title = line["condition"] if line["kind"] == "condition" else f"{line['family']} (family mean)"
        ax.set_title(panel_title(title))
        ax.set_xlabel("clean top-1")
        ax.set_ylabel("transformed top-1")
    figure.suptitle(f"Transformed vs clean accuracy ({result.fit.scale} axes; dashed: y = x)", y=1.0)
    figure.tight_layout()
    return figure


PUBLISHED_COLOUR = "#d62728"  # the testbed's line, as in `fit --population` figures
MAX_PUBLISHED_PANELS = 16  # above this, one panel per transform (its middle mapped severity)


def published_panels(result: Analysis) -> pd.DataFrame:
    """The conditions drawn on their published lines (rows of references.csv), at most MAX_PUBLISHED_PANELS;
    natural shifts have their own figure (shift_panels)."""
    table = result.published
    table = table.loc[~table["condition"].isin(result.shift_names)] if len(table) else table
    if len(table) > MAX_PUBLISHED_PANELS:
        transform = [parse_condition_key(key)[0] for key in table["condition"]]  # clean@r-classes is one name
        groups = table.groupby(transform, sort=False).indices.values()
        table = table.iloc[[index[len(index) // 2] for index in groups]]
    return table.head(MAX_PUBLISHED_PANELS)


def plot_published(result: Analysis, colours: dict):
    """Each mapped condition on its published line: the population (grey; line-fit models darker), its
    line and 95 % band, y = x, the run's models with Wilson intervals on both axes, and the run's own
    line only where it is identified."""
    from ..analysis.references import bootstrap_band, population_points, reference_line

    panels = published_panels(result)
    if panels.empty:
        return None
    protocol = result.data.config("corruption_protocol") or "native"
    bounds = wilson_bounds(result.summary)
    own = result.fit.lines.set_index("condition")
    points = result.fit.points
    figure, axes = panel_grid(len(panels))
    for ax, row in zip(axes, panels.itertuples()):
        if row.population == "table":  # a user's table tied to this condition (--reference-condition)
            ref = result.reference
            population = pd.DataFrame({"clean": ref.rows[ref.x] / table_unit(ref), "shifted": ref.rows[ref.y] / table_unit(ref),
                                       "in_fit": ref.rows["in_fit"]})
        else:
            line = reference_line(row.condition, row.scale, protocol)
            population = population_points(row.condition, protocol)
        mine = points.loc[points["condition"] == row.condition]
        axis = AccuracyAxis(row.scale, np.concatenate([population.loc[population["in_fit"], ["clean", "shifted"]].to_numpy().ravel(),
                                                mine[["clean_top1", "top1"]].to_numpy().ravel() / 100]))
        axis.style(ax)
        for in_fit, shade in ((False, "0.8"), (True, "0.55")):
            part = population.loc[population["in_fit"] == in_fit]
            ax.scatter(axis(part["clean"]), axis(part["shifted"]), s=5, color=shade, lw=0, zorder=2,
                       label=f"testbed, {'line-fit' if in_fit else 'other'} (n = {len(part)})")
        grid = np.linspace(*axis.limits, 60)
        if row.population != "table":
            low, high = bootstrap_band(line, unscale_accuracy(grid, row.scale))
            ax.fill_between(grid, axis(low), axis(high), color=PUBLISHED_COLOUR, alpha=0.18, lw=0, zorder=2)
        ax.plot(grid, row.slope * grid + row.intercept, color=PUBLISHED_COLOUR, lw=1.3, zorder=3,
                label="published line (95 % band)")
        if row.condition in own.index and own.loc[row.condition, "status"] == "ok":
            draw_line(ax, axis, own.loc[row.condition], result.fit.replicates.get(row.condition))
        else:
            why = own.loc[row.condition, "status"] if row.condition in own.index else "no fit"
            ax.text(0.03, 0.97, plain("own line " + why.replace(": ", ":\n", 1).replace(" (", "\n(")), transform=ax.transAxes, va="top",
                    fontsize=6, color="0.35")
        draw_models(ax, axis, mine, bounds, colours)
        flag = " (indicative)" if row.indicative else ""
        ax.set_title(plain(f"{row.condition}{flag}\n{row.column} (n = {row.n})"), fontsize=7.5)
        ax.set_xlabel("clean top-1")
        ax.set_ylabel("transformed top-1")
    axes[0].legend(loc="lower right", fontsize=6, frameon=False)
    figure.suptitle(f"The run's models on the published lines (imagenet-testbed, {panels['scale'].iloc[0]} axes; "
                    "dashed: y = x)", y=1.0)
    figure.tight_layout()
    return figure


def _transform_order(summary: pd.DataFrame, shifts: bool = True) -> list[tuple[str, str]]:
    """(family, transform) pairs, grouped by family in order of first appearance (natural shifts only if `shifts`)."""
    shifted = shifted_rows(summary)
    if not shifts:
        shifted = shifted.loc[~shifted["transform"].map(is_natural_shift)]
    shifted = shifted[["family", "transform"]].drop_duplicates()
    families = {f: i for i, f in enumerate(dict.fromkeys(shifted["family"]))}
    return sorted(shifted.itertuples(index=False, name=None), key=lambda pair: families[pair[0]])


def plot_severity(result: Analysis, colours: dict):
    """Top-1 against severity (0 = clean): a panel per transform (per family when there are many)."""
    summary = result.summary
    pairs = _transform_order(summary, shifts=False)  # a natural shift has no severities
    if not pairs:
        return None
    clean = summary.loc[summary["transform"] == "clean"].set_index("model")["top1"]
    shifted = summary.loc[summary["transform"].isin([t for _, t in pairs])]
    by_family = len(pairs) > MAX_TRANSFORM_PANELS
    if by_family:
        shifted = shifted.groupby(["model", "family", "severity"], as_index=False)["top1"].mean()
        families = dict.fromkeys(f for f, _ in pairs)
        panels = [(f, shifted["family"] == f, f"{f} (mean of its transforms)") for f in families]
    else:
        panels = [(t, shifted["transform"] == t, f"{f} / {t}") for f, t in pairs]
    figure, axes = panel_grid(len(panels), size=2.8)
    for ax, (_, mask, title) in zip(axes, panels):
        part = shifted.loc[mask]
        for model in result.data.models:
            rows = part.loc[part["model"] == model].sort_values("severity")
            if rows.empty:
                continue
            xs = np.r_[0, rows["severity"].to_numpy()]
            ys = np.r_[clean.get(model, np.nan), rows["top1"].to_numpy()]
            ax.plot(xs, ys, marker="o", ms=3, lw=1.2, color=colours.get(model), label=plain(model))
        ax.set_title(panel_title(title))
        ax.set_xlabel("severity (0 = clean)")
        ax.set_ylabel("top-1 (%)")
        ax.set_ylim(0, 100)
        ax.set_xticks(range(0, int(part["severity"].max()) + 1 if len(part) else 1))
        ax.grid(alpha=0.3, lw=0.5)
    figure.tight_layout()
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, title="model")
    return figure


def plot_drop_heatmap(result: Analysis, colours: dict):
    """Model x transform heatmap of the top-1 drop (points), averaged over each transform's levels."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    shifted = shifted_rows(result.summary)
    if shifted.empty:
        return None
    pairs = _transform_order(result.summary)
    order = [t for _, t in pairs]
    table = shifted.pivot_table(index="model", columns="transform", values="drop", aggfunc="mean")
    table = table.reindex(index=[m for m in result.data.models if m in table.index], columns=order)
    table.index = [plain(m) for m in table.index]
    table.columns = [plain(c) for c in table.columns]
    figure, ax = plt.subplots(figsize=(max(4.5, 2.2 + 0.55 * len(order)), 1.4 + 0.4 * len(table)))
    limit = max(5.0, float(np.nanmax(np.abs(table.to_numpy()))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # seaborn's cmap.set_bad on new matplotlib
        sns.heatmap(table, ax=ax, cmap="RdBu_r", center=0, vmin=-limit, vmax=limit, annot=len(order) <= 30,
                    fmt=".1f", annot_kws={"fontsize": 7}, cbar_kws={"label": "drop in top-1 (points)"},
                    linewidths=0.5, linecolor="white")
    _mark_families(ax, [f for f, _ in pairs])
    ax.set_xlabel("transform (mean over levels; a natural shift: from its clean counterpart)"
                  if any(is_natural_shift(t) for t in order) else "transform (mean over levels)")
    ax.set_ylabel("")
    ax.set_title("Top-1 drop from clean", pad=18)
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    plt.setp(ax.get_yticklabels(), rotation=0)
    figure.tight_layout()
    return figure


def _mark_families(ax, families: list[str]) -> None:
    """Family names above the heatmap's columns, white lines between families."""
    start = 0
    for i in range(1, len(families) + 1):
        if i == len(families) or families[i] != families[start]:
            if start:
                ax.axvline(start, color="white", lw=3)
            ax.text((start + i) / 2, -0.15, plain(families[start]), ha="center", va="bottom", fontsize=7,
                    transform=ax.transData, clip_on=False)
            start = i


def plot_confidence(result: Analysis, colours: dict):
    """Mean confidence against top-1 per (model, condition): above the diagonal = overconfident."""
    import matplotlib.pyplot as plt

    summary = result.summary
    figure, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 100], [0, 100], ls="--", color="0.6", lw=0.8)
    for model in result.data.models:
        rows = summary.loc[summary["model"] == model]
        clean = rows["transform"] == "clean"
        ax.scatter(rows.loc[~clean, "top1"], rows.loc[~clean, "mean_confidence"], s=14, alpha=0.8,
                   color=colours.get(model), label=plain(model))
        ax.scatter(rows.loc[clean, "top1"], rows.loc[clean, "mean_confidence"], s=70, marker="*",
                   edgecolor="black", linewidth=0.5, color=colours.get(model))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_aspect("equal")
    ax.set_xlabel("top-1 accuracy (%)")
    ax.set_ylabel("mean confidence (%)")
    ax.set_title("Does a model know when it is in trouble?")
    ax.text(3, 96, "overconfident", va="top", fontsize=7, color="0.4")
    ax.text(97, 4, "underconfident", ha="right", fontsize=7, color="0.4")
    ax.grid(alpha=0.3, lw=0.5)
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 0.08), fontsize=7, title="★ = clean", title_fontsize=7)
    figure.tight_layout()
    return figure
