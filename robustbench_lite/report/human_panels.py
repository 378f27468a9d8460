"""Humans beside the models: model-vs-human's psychometric plots (16-class accuracy against the condition)."""
from __future__ import annotations

import numpy as np

from ..analysis.humans import CHANCE
from ..analysis.tables import Analysis


def plot_psychometric(result: Analysis, colours: dict):
    """One panel per model-vs-human experiment of the run: humans as a black line, each model in colour,
    chance (1/16) dashed. Humans saw model-vs-human's photos, the models the run's: per condition only."""
    import matplotlib.pyplot as plt

    table = result.humans
    if table.empty:
        return None
    experiments = list(dict.fromkeys(table["experiment"]))
    cols = min(4, len(experiments))
    rows = int(np.ceil(len(experiments) / cols))
    figure, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.flat[len(experiments):]:
        ax.set_visible(False)
    for ax, experiment in zip(axes.flat, experiments):
        part = table.loc[table["experiment"] == experiment]
        numeric = part["condition_value"].notna().all() and np.isfinite(part["condition_value"].astype(float)).all()
        x = part["condition_value"].astype(float).to_numpy() if numeric else np.arange(len(part))
        ax.plot(x, part["human_accuracy"], color="black", marker="D", ms=4, lw=1.6, label="humans", zorder=5)
        for model in result.data.models:
            if model in part.columns:
                ax.plot(x, part[model], marker="o", ms=3.5, lw=1.2, color=colours.get(model), label=model, zorder=4)
        ax.axhline(CHANCE, ls="--", lw=0.8, color="0.5")
        ax.set_ylim(0, 1.02)
        if not numeric:
            ax.set_xticks(x, part["condition"].astype(str))
        elif experiment in ("low-pass", "contrast") and (x > 0).all():
            ax.set_xscale("log")
        ax.set_title(experiment, fontsize=9)
        ax.set_xlabel("condition (model-vs-human's value)", fontsize=7)
        ax.set_ylabel("16-class accuracy", fontsize=7)
        ax.grid(alpha=0.3, lw=0.5)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=7)
    figure.suptitle("Humans (model-vs-human's 85,120 trials, their stimuli) and the run's models (the run's photos), "
                    "16-class accuracy; dashed: chance", fontsize=9, y=1.0)
    figure.tight_layout()
    return figure
