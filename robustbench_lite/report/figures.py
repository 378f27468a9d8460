"""The report's figures, drawn from an Analysis' aggregated tables (matplotlib Agg): nothing here reads records.

Each figure is sized for a paper's page (7 in wide, one column 3.4 in), saved as a 200 dpi PNG, and beside it
as PDF or SVG on request. Only what the report shows is drawn.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..analysis.metrics import shifted_rows
from ..analysis.references import is_natural_shift
from ..analysis.tables import Analysis
from .drawing import COLUMN_WIDTH, DPI, LEGEND_LINE, PAGE_WIDTH, STYLE, ModelStyle, model_colours, new_figure, \
    panel_grid, panel_title, plain

MAX_TRANSFORM_PANELS = 12  # above this, accuracy-vs-severity shows one panel per family
VECTOR_FORMATS = ("pdf", "svg")


def figure_makers() -> list[tuple[str, Callable]]:
    """(name, draw(result, styles) -> Figure | None) of every figure, in the report's order."""
    from .human_panels import plot_psychometric
    from .line_panels import plot_published, plot_reproducibility
    from .selective_panels import plot_trouble
    from .shift_panels import plot_natural_shifts
    from .stability_panels import plot_stability

    return [("published", plot_published), ("natural_shifts", plot_natural_shifts),
            ("psychometric", plot_psychometric), ("reproducibility", plot_reproducibility),
            ("drop_heatmap", plot_drop_heatmap), ("severity", plot_severity), ("confidence", plot_confidence),
            ("trouble", plot_trouble), ("stability", plot_stability)]


def make_plots(result: Analysis, plot_dir: Path, vector: str | None = None) -> dict[str, Path]:
    """Draw every figure the report shows to plot_dir/NAME.png (200 dpi; plus NAME.pdf or .svg when `vector`
    names one); returns {name: png path}."""
    import matplotlib

    if vector is not None and vector not in VECTOR_FORMATS:
        raise ValueError(f"vector format {vector!r}: expected one of {', '.join(VECTOR_FORMATS)}")
    styles = model_colours(result.data.models)
    plots: dict[str, Path] = {}
    with matplotlib.rc_context(STYLE):
        for name, draw in figure_makers():
            figure = draw(result, styles)
            if figure is None:
                continue
            plots[name] = plot_dir / f"{name}.png"
            figure.savefig(plots[name], dpi=DPI, pil_kwargs={"compress_level": 3})  # laid out in inches: one pass
            if vector is not None:
                figure.savefig(plot_dir / f"{name}.{vector}")
    return plots


def find_examples(run_dirs: Sequence[Path], plot_dir: Path) -> Path | None:
    """The engine's photo grid (first run folder that has one), copied beside the other plots."""
    target = plot_dir / "examples.png"
    for run_dir in run_dirs:
        source = Path(run_dir) / "plots" / "examples.png"
        if source.is_file():
            if source.resolve() != target.resolve():
                shutil.copyfile(source, target)
            return target
    return None


def _transform_order(summary: pd.DataFrame, shifts: bool = True) -> list[tuple[str, str]]:
    """(family, transform) pairs, grouped by family in order of first appearance (natural shifts only if `shifts`)."""
    shifted = shifted_rows(summary)
    if not shifts:
        shifted = shifted.loc[~shifted["transform"].map(is_natural_shift)]
    shifted = shifted[["family", "transform"]].drop_duplicates()
    families = {f: i for i, f in enumerate(dict.fromkeys(shifted["family"]))}
    return sorted(shifted.itertuples(index=False, name=None), key=lambda pair: families[pair[0]])


def photo_count(result: Analysis) -> int:
    """The fewest photos behind a (model, condition) cell: what decides how precise a percentage is."""
    return int(result.summary["n"].min()) if "n" in result.summary.columns and len(result.summary) else 0


def plot_severity(result: Analysis, styles: ModelStyle):
    """Top-1 against severity (0 = clean), a panel per transform measured at two or more severities (per
    family when there are many); None when every transform has one severity (the heatmap shows those)."""
    summary = result.summary
    pairs = _transform_order(summary, shifts=False)  # a natural shift has no severities
    shifted = summary.loc[summary["transform"].isin([t for _, t in pairs])]
    levels = shifted.groupby("transform")["severity"].nunique()
    pairs = [(f, t) for f, t in pairs if levels.get(t, 0) >= 2]
    if not pairs:
        return None
    clean = summary.loc[summary["transform"] == "clean"].set_index("model")["top1"]
    shifted = shifted.loc[shifted["transform"].isin([t for _, t in pairs])]
    if len(pairs) > MAX_TRANSFORM_PANELS:
        shifted = shifted.groupby(["model", "family", "severity"], as_index=False)["top1"].mean()
        panels = [(shifted["family"] == f, f"{f} (mean of its transforms)") for f in dict.fromkeys(f for f, _ in pairs)]
    else:
        panels = [(shifted["transform"] == t, t) for _, t in pairs]
    figure, axes, free = panel_grid(len(panels), max_cols=4, aspect=0.8, legend_entries=len(result.data.models))
    for ax, (mask, title) in zip(axes, panels):
        part = shifted.loc[mask]
        for model in result.data.models:
            rows = part.loc[part["model"] == model].sort_values("severity")
            if rows.empty:
                continue
            ax.plot(np.r_[0, rows["severity"].to_numpy()], np.r_[clean.get(model, np.nan), rows["top1"].to_numpy()],
                    marker=styles.marker(model), ms=3, lw=1, color=styles.colour(model), label=plain(model))
        ax.set_title(panel_title(title), loc="left")
        ax.set_xlabel("severity (0 = clean)")
        ax.set_ylabel("top-1 (%)")
        ax.set_ylim(0, 100)
        ax.set_xticks(range(0, int(part["severity"].max()) + 1 if len(part) else 1))
        ax.grid(alpha=0.25, lw=0.4)
    from .drawing import figure_legend

    figure_legend(figure, axes, free)
    return figure


def plot_drop_heatmap(result: Analysis, styles: ModelStyle):
    """Model x transform heatmap of the top-1 drop (points), averaged over each transform's levels; cells
    annotated to the precision the photo count allows (whole points up to 1,000 photos)."""
    shifted = shifted_rows(result.summary)
    if shifted.empty:
        return None
    pairs = _transform_order(result.summary)
    order = [t for _, t in pairs]
    table = shifted.pivot_table(index="model", columns="transform", values="drop", aggfunc="mean")
    table = table.reindex(index=[m for m in result.data.models if m in table.index], columns=order)
    values = table.to_numpy(dtype=float)
    labels = [_column_label(result.summary, t) for t in order]
    # inches: model names on the left, rotated condition names below, family names above, the colour bar right
    left = 0.15 + 0.05 * max(len(str(m)) for m in table.index)
    below = 0.2 + 0.036 * max(len(t) for t in labels)
    above = 0.2 + 0.036 * max(len(str(f)) for f, _ in pairs)
    cell_w, cell_h = min(0.45, (PAGE_WIDTH - left - 1.0) / len(order)), 0.24
    width, height = left + cell_w * len(order) + 1.0, above + cell_h * len(table) + below
    figure = new_figure(width, height)
    ax = figure.add_axes((left / width, below / height, cell_w * len(order) / width, cell_h * len(table) / height))
    bar = figure.add_axes(((left + cell_w * len(order) + 0.12) / width, below / height, 0.1 / width,
                           cell_h * len(table) / height))
    limit = max(5.0, float(np.nanmax(np.abs(values))))
    image = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
    digits = 1 if photo_count(result) > 1000 else 0
    if values.size <= 400:
        for (i, j), value in np.ndenumerate(values):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.{digits}f}", ha="center", va="center", fontsize=6,
                        color="white" if abs(value) > 0.6 * limit else "black")
    ax.set_xticks(range(len(order)), [plain(t) for t in labels], rotation=40, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(len(table)), [plain(m) for m in table.index])
    ax.tick_params(length=0, pad=2)
    for spine in ax.spines.values():
        spine.set_visible(False)
    _mark_families(ax, [f for f, _ in pairs])
    colourbar = figure.colorbar(image, cax=bar)
    colourbar.set_label("drop in top-1 (points)")
    colourbar.outline.set_linewidth(0.4)
    return figure


def _column_label(summary: pd.DataFrame, transform: str) -> str:
    """A heatmap column's name: the condition key when the run has the transform at one severity."""
    from ..conditions.keys import condition_key

    rows = summary.loc[summary["transform"] == transform, "severity"].unique()
    return condition_key(transform, rows[0]) if len(rows) == 1 else transform


def _mark_families(ax, families: list[str]) -> None:
    """Family names on a top axis over their columns, white gaps between families."""
    starts, centres, names = [], [], []
    start = 0
    for i in range(1, len(families) + 1):
        if i == len(families) or families[i] != families[start]:
            if start:
                starts.append(start - 0.5)
            centres.append((start + i - 1) / 2)
            names.append(plain(families[start]))
            start = i
    for x in starts:
        ax.axvline(x, color="white", lw=2.5)
    top = ax.secondary_xaxis("top")
    top.set_xticks(centres, names, rotation=40, ha="left", rotation_mode="anchor", fontsize=6, color="0.3")
    top.tick_params(length=0, pad=2)
    top.spines["top"].set_visible(False)


def plot_confidence(result: Analysis, styles: ModelStyle):
    """Mean confidence against top-1 per (model, condition): above the diagonal = overconfident; one column wide."""
    summary = result.summary
    n_models = len(result.data.models)
    legend = LEGEND_LINE * np.ceil((n_models + 2) / 2) + 0.1
    height = 0.15 + 2.2 + 0.45 + legend
    figure = new_figure(COLUMN_WIDTH, height)
    ax = figure.add_axes(((COLUMN_WIDTH - 2.2) / 2 / COLUMN_WIDTH, (0.45 + legend) / height, 2.2 / COLUMN_WIDTH,
                          2.2 / height))
    ax.plot([0, 100], [0, 100], ls=":", color="0.55", lw=0.7, label="calibrated (confidence = accuracy)")
    for model in result.data.models:
        rows = summary.loc[summary["model"] == model]
        clean = rows["transform"] == "clean"
        colour, marker = styles.colour(model), styles.marker(model)
        ax.scatter(rows.loc[~clean, "top1"], rows.loc[~clean, "mean_confidence"], s=10, alpha=0.85, color=colour,
                   marker=marker, lw=0, label=plain(model))
        ax.scatter(rows.loc[clean, "top1"], rows.loc[clean, "mean_confidence"], s=24, marker=marker,
                   edgecolor="black", linewidth=0.6, color=colour)
    ax.scatter([], [], s=24, marker="o", color="white", edgecolor="black", linewidth=0.6, label="clean (outlined)")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_aspect("equal")
    ax.set_xlabel("top-1 accuracy (%)")
    ax.set_ylabel("mean confidence (%)")
    ax.text(3, 97, "overconfident", va="top", fontsize=6, color="0.45")
    ax.text(97, 3, "underconfident", ha="right", va="bottom", fontsize=6, color="0.45")
    ax.grid(alpha=0.25, lw=0.4)
    figure.legend(loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=2, frameon=False, handletextpad=0.3,
                  borderaxespad=0.2)
    return figure
