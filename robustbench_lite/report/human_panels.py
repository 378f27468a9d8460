"""Humans beside the models: model-vs-human's psychometric plots (16-class accuracy against the condition)."""
from __future__ import annotations

import numpy as np

from ..analysis.humans import CHANCE
from ..analysis.tables import Analysis
from .drawing import ModelStyle, figure_legend, panel_grid, plain


def plot_psychometric(result: Analysis, styles: ModelStyle):
    """One panel per model-vs-human experiment of the run: humans as a black line, each model in its colour
    and marker, chance (1/16) dotted. Humans saw model-vs-human's photos, the models the run's: per condition."""
    table = result.humans
    if table.empty:
        return None
    experiments = list(dict.fromkeys(table["experiment"]))
    figure, axes, free = panel_grid(len(experiments), aspect=0.8,
                                    legend_entries=len(result.data.models) + 2)
    for ax, experiment in zip(axes, experiments):
        part = table.loc[table["experiment"] == experiment]
        numeric = part["condition_value"].notna().all() and np.isfinite(part["condition_value"].astype(float)).all()
        x = part["condition_value"].astype(float).to_numpy() if numeric else np.arange(len(part))
        ax.plot(x, part["human_accuracy"], color="black", marker="D", ms=3, lw=1.3, label="humans (their stimuli)",
                zorder=5)
        for model in result.data.models:
            if model in part.columns:
                ax.plot(x, part[model], marker=styles.marker(model), ms=3, lw=1, color=styles.colour(model),
                        label=plain(model), zorder=4)
        ax.axhline(CHANCE, ls=":", lw=0.7, color="0.5", label="chance (1/16)")
        ax.set_ylim(0, 1.02)
        if not numeric:
            ax.set_xticks(x, part["condition"].astype(str))
        elif experiment in ("low-pass", "contrast") and (x > 0).all():
            ax.set_xscale("log")
        ax.set_title(experiment, loc="left")
        ax.set_xlabel("condition (model-vs-human's value)")
        ax.set_ylabel("16-class accuracy")
        ax.grid(alpha=0.25, lw=0.4)
    figure_legend(figure, axes, free)
    return figure
