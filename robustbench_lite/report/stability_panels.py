"""The report's Stability section (`--stability imagenet-p`): stability.csv, one plot of the flip rate per
perturbation per model, and the sentences that read it."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.stability import MEAN_ROW
from ..analysis.tables import Analysis
from .drawing import LEGEND_LINE, PAGE_WIDTH, ModelStyle, figure_legend, new_figure, plain
from .section import Section

RESNET50_PUBLISHED = (58.0, 78.4)  # ResNet-50's mFR and mT5D, hendrycks/robustness README (AlexNet = 100)


def plot_stability(result: Analysis, styles: ModelStyle):
    """Grouped bars: flip probability per ImageNet-P perturbation (x), a bar per model; None without sequences."""
    table = result.stability
    if table.empty:
        return None
    rows = table[table["perturbation"] != MEAN_ROW]
    perturbations = list(dict.fromkeys(rows["perturbation"]))
    models = list(dict.fromkeys(rows["model"]))
    width = 0.8 / max(len(models), 1)
    figure = new_figure(PAGE_WIDTH, 2.9 + LEGEND_LINE * np.ceil(len(models) / 3))
    ax = figure.add_axes((0.08, 0.36, 0.9, 0.58))
    for k, model in enumerate(models):
        mine = rows[rows["model"] == model].set_index("perturbation").reindex(perturbations)
        ax.bar(np.arange(len(perturbations)) + (k - (len(models) - 1) / 2) * width, mine["flip_rate"], width,
               color=styles.colour(model), label=plain(model), lw=0)
    ax.set_xticks(np.arange(len(perturbations)))
    ax.set_xticklabels(perturbations, rotation=40, ha="right")
    ax.set_xlim(-0.6, len(perturbations) - 0.4)
    ax.set_ylabel("flip probability")
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.3, lw=0.4)
    figure_legend(figure, [ax])
    return figure


def stability_text(table: pd.DataFrame) -> list[str]:
    """What the table says, and how to read it."""
    means = table[table["perturbation"] == MEAN_ROW]
    rows = table[table["perturbation"] != MEAN_ROW]
    worst = rows.sort_values("flip_rate", ascending=False).head(1)
    text = ["ImageNet-P (Hendrycks & Dietterich 2019), made in memory: each photo's 14 perturbation sequences "
            "(31 frames, translate 41; difficulty 1). Flip rate = probability that the top-1 class changes between "
            "consecutive frames (noise sequences: between each frame and the clean first one); top-5 distance = how "
            "far the top-5 ranking moves over the same pairs (0 = unchanged, at most 15). Records hold one row per "
            "frame; stability.csv has a row per model and perturbation, and a 'mean' row over the 10 test "
            "perturbations (speckle noise, gaussian blur, spatter and shear are the validation ones)."]
    for _, row in means.iterrows():
        text.append(f"{row['model']}: mean flip rate {row['flip_rate']:.4f} and top-5 distance "
                    f"{row['top5_distance']:.3f} over the 10 test perturbations ({row['n_photos']} photos).")
    if len(worst):
        w = worst.iloc[0]
        text.append(f"Least stable: {w['model']} on {w['perturbation']} (flip rate {w['flip_rate']:.4f}).")
    if means["mfr"].isna().all():
        text.append(f"mFR and mT5D (AlexNet = 100; ResNet-50 published {RESNET50_PUBLISHED[0]} and "
                    f"{RESNET50_PUBLISHED[1]}) are left empty: AlexNet's own flip rates and top-5 distances per "
                    "perturbation are not published in the paper or its code (only normalised figures are).")
    return text


def stability_section(result: Analysis, plots: dict) -> Section | None:
    """The Stability section of --stability runs (stability.csv and its figure), or None."""
    table = result.stability
    if table.empty:
        return None
    section = Section("Stability", stability_text(table), [("stability.csv", table)])
    if "stability" in plots:
        section.plots.append(("stability", "Flip probability per ImageNet-P perturbation, a bar per model."))
    return section
