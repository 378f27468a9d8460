"""The report's "Does it know when it is in trouble?" section: label-free accuracy estimates against the
measured top-1 (each method's mean absolute error), risk-coverage curves of the worst conditions, and a
two-sentence reading computed from accuracy_estimates.csv and selective.csv."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.accuracy_estimates import METHODS, mean_absolute_errors
from ..analysis.tables import Analysis
from .drawing import DIAGONAL_STYLE, ModelStyle, figure_legend, panel_grid, panel_title, plain
from .section import Section

TITLE = "Does it know when it is in trouble?"
METHOD_NAMES = {"ac": "AC", "doc": "DoC", "atc": "ATC", "aline-s": "ALine-S", "aline-d": "ALine-D"}
METHOD_STYLE = {"ac": ("#949494", "o"), "doc": ("#0173B2", "s"), "atc": ("#D55E00", "^"),  # colour-blind safe
                "aline-s": ("#029E73", "D"), "aline-d": ("#CC78BC", "v")}
EXPLANATION = ("Label-free estimates of each condition's top-1 from the model's outputs alone, the source being the "
               "run's clean photos (a natural shift's own counterpart for ImageNet-R/A): AC = mean confidence; "
               "DoC = clean top-1 + change in mean confidence (Guillory et al. 2021); ATC = share of photos above the "
               "clean confidence threshold below which clean photos are as many as clean errors (Garg et al. 2022); "
               "ALine-S/-D = agreement between every two models on the probit line (Baek et al. 2022; >= 3 models). "
               "Selective prediction: keep the k most confident photos; AURC is the mean error over k = 1..n "
               "(Geifman & El-Yaniv 2017), E-AURC its excess over a perfect ranking at the same accuracy. "
               "Tables: accuracy_estimates.csv, selective.csv.")


def trouble_text(result: Analysis) -> list[str]:
    """Two sentences: which estimate to trust on this run, and where the model's confidence misleads most."""
    tables = result.selective
    if tables is None or tables.selective.empty:
        return []
    estimates, selective = tables.estimates, tables.selective
    sentences = []
    mae = mean_absolute_errors(estimates)
    if len(mae):
        best = mae.idxmin()
        others = ", ".join(f"{METHOD_NAMES[m]} {v:.1f}" for m, v in mae.items() if m != best)
        cells = len(estimates[["model", "condition"]].drop_duplicates())
        sentences.append(f"Over the run's {cells} model x condition cells, {METHOD_NAMES[best]}'s estimate of top-1 "
                         f"came closest to the measured one (mean absolute error {mae[best]:.1f} points"
                         f"{'; ' + others if others else ''}), so it is the estimate to trust on photos like these"
                         f"{' although it still misses by that much on average' if mae[best] >= 5 else ''}.")
    else:
        sentences.append("No condition of the run has labelled photos of its own source (clean, or a natural "
                         "shift's counterpart) to estimate its accuracy from, so only selective prediction is reported.")
    ac = estimates.loc[estimates["method"] == "ac"]
    if len(ac):
        worst = ac.loc[ac["error"].idxmax()]
        row = selective.loc[(selective["model"] == worst["model"]) & (selective["condition"] == worst["condition"])].iloc[0]
        sentences.append(f"Its confidence misleads most on {worst['condition']}: {worst['model']} averages "
                         f"{worst['estimated_top1']:.0f} % confidence but is right on {worst['measured_top1']:.0f} % "
                         f"of the photos, and even its most confident half is right on only "
                         f"{row['accuracy_at_coverage_50']:.0f} % (E-AURC {row['e_aurc']:.3f}).")
    else:
        row = selective.loc[selective["e_aurc"].idxmax()]
        sentences.append(f"Its confidence ranks its answers worst on {row['condition']}: {row['model']}'s most "
                         f"confident half is right on {row['accuracy_at_coverage_50']:.0f} % at {row['top1']:.0f} % "
                         f"top-1 overall (E-AURC {row['e_aurc']:.3f}).")
    return [" ".join(sentences)]


def _estimates_panel(ax, estimates: pd.DataFrame) -> None:
    mae = mean_absolute_errors(estimates)
    ax.plot([0, 100], [0, 100], label="y = x", **DIAGONAL_STYLE)
    for method in METHODS:
        part = estimates.loc[estimates["method"] == method].dropna(subset=["estimated_top1"])
        if part.empty:
            continue
        colour, marker = METHOD_STYLE[method]
        ax.scatter(part["measured_top1"], part["estimated_top1"], s=10, color=colour, marker=marker, alpha=0.8,
                   lw=0, zorder=3, label=f"{METHOD_NAMES[method]} (MAE {mae.get(method, np.nan):.1f} points)")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("measured top-1 (%)")
    ax.set_ylabel("estimated top-1, no labels (%)")
    ax.set_title(plain(f"Label-free estimates\n{estimates['condition'].nunique()} conditions x "
                       f"{estimates['model'].nunique()} models"), loc="left")


def _curve_panel(ax, curves: pd.DataFrame, selective: pd.DataFrame, condition: str, styles: ModelStyle) -> None:
    for model, part in curves.loc[curves["condition"] == condition].groupby("model", sort=False):
        ax.plot(100 * part["coverage"], 100 * part["risk"], color=styles.colour(model), lw=1.1, label=plain(model))
    rows = selective.loc[selective["condition"] == condition]
    ax.set_title(plain(f"{panel_title(condition, width=34)}\ntop-1 {rows['top1'].mean():.0f} %, "
                       f"AURC {rows['aurc'].mean():.2f} (model means)"), loc="left")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("coverage: most confident kept (%)")
    ax.set_ylabel("error among them (%)")


def plot_trouble(result: Analysis, styles: ModelStyle):
    """Estimated vs measured top-1 per method (y = x; MAE in the legend) beside the risk-coverage curves
    of clean and the worst conditions (a line per model); None when the run has neither."""
    tables = result.selective
    if tables is None or (tables.estimates.empty and tables.curves.empty):
        return None
    drawn = set(tables.curves["condition"]) if len(tables.curves) else set()
    shown = [c for c in dict.fromkeys(["clean", *tables.worst, *sorted(drawn)]) if c in drawn]  # clean, then worst
    has_estimates = not tables.estimates.empty
    n = int(has_estimates) + len(shown)
    entries = len(result.data.models) + (len(METHODS) + 1 if has_estimates else 0)
    figure, axes, free = panel_grid(n, title_lines=3, legend_entries=entries)
    if has_estimates:
        _estimates_panel(axes[0], tables.estimates)
    for ax, condition in zip(axes[int(has_estimates):], shown):
        _curve_panel(ax, tables.curves, tables.selective, condition, styles)
    for ax in axes:
        ax.grid(alpha=0.3, lw=0.4)
    figure_legend(figure, axes, free)
    return figure


def trouble_section(result: Analysis, plots: dict) -> Section | None:
    """The report section (a section builder); None without selective tables."""
    paragraphs = trouble_text(result)
    if not paragraphs:
        return None
    figures = [("trouble", "First panel: each method's label-free estimate against the measured top-1, one point per "
                "model x condition, y = x dotted, mean absolute error in the legend. Other panels: error among the k most "
                "confident photos against coverage k/n, for clean and the conditions with the lowest top-1 (a line "
                "per model).")] if "trouble" in plots else []
    mae = mean_absolute_errors(result.selective.estimates)
    tables = [("Mean absolute error of each estimate (points)",
               pd.DataFrame({"method": [METHOD_NAMES[m] for m in mae.index], "mae": mae.to_numpy()}))] if len(mae) else []
    return Section(TITLE, [*paragraphs, EXPLANATION], tables, figures)
