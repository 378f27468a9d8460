"""The report's view of timm's published numbers: the published row of each run model (published.csv), the
headline warning when a val run's clean top-1 misses its published value, and the chosen population in words."""
from __future__ import annotations

import pandas as pd

from ..analysis.published_rows import outside_interval
from ..analysis.references import POPULATION, population_meta
from ..analysis.tables import Analysis
from ..analysis.timm_population import IN1K_RULE
from .section import Section

SHORT_COLUMNS = ["model", "published_model", "img_size", "top1", "real", "imagenetv2_matched_frequency", "sketch",
                 "imagenet_r", "imagenet_a", "measured_top1", "difference"]


def published_warnings(result: Analysis) -> list[str]:
    """Headline sentences: each model whose clean top-1 on ImageNet val differs from timm's published top-1 by
    more than the run's 95 % interval (wrong preprocessing or weights); none unless the run is placed on val."""
    return [f"Check preprocessing and weights: {r.model} scored {r.measured_top1:.2f} % clean top-1 on ImageNet val "
            f"(95 % interval {r.measured_top1_low:.2f}–{r.measured_top1_high:.2f}), but timm publishes {r.top1:.3f} % "
            f"for {r.published_model} at {r.img_size} px ({r.difference:+.2f} points; published.csv)."
            for r in outside_interval(result.published_models).itertuples()]


def published_table(result: Analysis) -> pd.DataFrame:
    """published.csv's short form for the report (published top-1s in percent; measured where on val)."""
    table = result.published_models
    if table.empty:
        return table
    columns = [c for c in SHORT_COLUMNS if c not in ("measured_top1", "difference") or table[c].notna().any()]
    out = table[columns].copy()
    for column in columns[3:]:  # as timm writes them (three decimals), not rounded to the report's one
        out[column] = [("–" if pd.isna(v) else f"{v:+.3f}" if column == "difference" else f"{v:.3f}")
                       for v in out[column]]
    return out


def published_text(result: Analysis) -> list[str]:
    """What published.csv holds and how its rows were matched, in a few sentences."""
    table, meta = result.published_models, population_meta("timm")
    source = f"timm's results CSVs ({meta['source_repository']} at {meta['source_commit'][:10]}, {meta['licence']})"
    text = [f"Each run model's published row in {source}: a packaged model is timm's tf_efficientnet_liteN.in1k (the "
            "same weights), timm:NAME is NAME (its default pretrained tag when none is given), each at the run's input "
            "size (a NAME@NNNpx variant at NNN px). Top-1 in percent on ImageNet val, ReaL, ImageNetV2 "
            "matched-frequency, Sketch, ImageNet-R and -A, as timm measured them with its own code."]
    if table.empty:
        return text + ["No model of this run has a published row (local weights, or a size timm did not publish)."]
    if table["measured_top1"].notna().any():
        text.append("measured_top1 is this run's clean top-1 on ImageNet val (placement val); difference = measured - "
                    "published, in points. A difference beyond the run's 95 % interval is named in the headline.")
    else:
        text.append(f"The run's clean top-1 is not compared with them: placement {result.placement[0]} (its photos "
                    "are not ImageNet val or a class-balanced subset of it).")
    return text


def published_models_section(result: Analysis, plots: dict | None = None) -> Section:
    """The report section of published.csv (a section builder; it draws no figure)."""
    table = published_table(result)
    return Section("Published rows of the run's models", published_text(result),
                   [("Published top-1 (published.csv, percent)", table)] if len(table) else [])


def population_caption(result: Analysis) -> str:
    """The natural-shift figure's caption for a population other than the testbed ('' for the testbed)."""
    if result.population == POPULATION:
        return ""
    return (f" With population {result.population} the black line, band and grey rows are timm's published results "
            "(for ImageNet-A too: one line); the imagenet-testbed's line is the thin dash-dot one, for comparison.")


def population_text(result: Analysis) -> list[str]:
    """The chosen population of the natural-shift lines, its source and rule; nothing for the testbed (its own text)."""
    if result.population == POPULATION:
        return []
    meta = population_meta(result.population)
    rule = ("every row with both values" if result.population == "timm" else f"the {IN1K_RULE}")
    lines = result.published.loc[result.published["population"] == result.population]
    fitted = "; ".join(f"{r.condition}: n = {r.n}" for r in lines.drop_duplicates("condition").itertuples())
    return [f"Population {result.population}: timm's published results ({meta['rows']} (model, img_size) rows; "
            f"{meta['source_repository']} at {meta['source_commit'][:10]}, {meta['licence']}), which publishes "
            f"ImageNetV2 matched-frequency, Sketch, ImageNet-R and -A (R and A against val on their 200 classes). Its "
            f"line is OLS on {lines['scale'].iloc[0] if len(lines) else 'logit'} axes over {rule}"
            + (f" ({fitted})" if fitted else "") + ". Shifts timm does not publish keep the imagenet-testbed's line "
            "(references.csv names each line's population). The testbed's line is drawn thin beside timm's: the two "
            "populations were measured by different code (the testbed's and timm's validate.py), so where they hold "
            "the same architecture both rows are shown as published."]
