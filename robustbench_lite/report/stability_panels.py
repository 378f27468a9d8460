"""The report's Stability section (`--stability imagenet-p`): stability.csv, one plot of the flip rate per
perturbation per model, and the sentences that read it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.stability import MEAN_ROW, run_stability_table

RESNET50_PUBLISHED = (58.0, 78.4)  # ResNet-50's mFR and mT5D, hendrycks/robustness README (AlexNet = 100)


def draw_flip_rates(table: pd.DataFrame, path: Path) -> Path:
    """Grouped bars: flip probability per perturbation (x), a bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table[table["perturbation"] != MEAN_ROW]
    perturbations = list(dict.fromkeys(rows["perturbation"]))
    models = list(dict.fromkeys(rows["model"]))
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(perturbations) * max(1, len(models)) ** 0.5), 3.6))
    for k, model in enumerate(models):
        mine = rows[rows["model"] == model].set_index("perturbation").reindex(perturbations)
        ax.bar(np.arange(len(perturbations)) + (k - (len(models) - 1) / 2) * width, mine["flip_rate"], width,
               label=model)
    ax.set_xticks(np.arange(len(perturbations)))
    ax.set_xticklabels(perturbations, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("flip probability")
    ax.set_title("ImageNet-P: how often the top-1 answer flips between frames", fontsize=10)
    ax.legend(fontsize=7, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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


def stability_section(data, out_dir: Path, plots: dict, written: dict) -> tuple | None:
    """Write stability.csv and plots/stability.png for runs with `--stability`; the report section's
    (title, paragraphs, tables, plots), or None."""
    table = run_stability_table(data.run_dirs, data.manifests)
    if table.empty:
        return None
    written["stability"] = Path(out_dir) / "stability.csv"
    table.to_csv(written["stability"], index=False)
    plots["stability"] = draw_flip_rates(table, Path(out_dir) / "plots" / "stability.png")
    written["plot:stability"] = plots["stability"]
    return ("Stability", stability_text(table), [("stability.csv", table)],
            [("stability", "Flip probability per ImageNet-P perturbation, a bar per model.")])
