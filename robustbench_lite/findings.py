"""What a run found, in sentences computed from its Analysis: the headline, mCE as published, the
published lines, and humans beside the models. The report places them; nothing here renders."""
from __future__ import annotations

import pandas as pd

from .analysis import Analysis
from .conditions import condition_key


def headline(result: Analysis) -> list[str]:
    """A few sentences computed from the run: what cut each model most, from what to what, where humans stand."""
    from .humans import related_human_accuracy

    summary = result.summary
    shifted = summary.loc[summary["transform"] != "clean"]
    if shifted.empty:
        return ["Clean photos only: no condition to compare."]
    lines = []
    for model, part in shifted.groupby("model", sort=False):
        worst = part.sort_values("drop", ascending=False).drop_duplicates("transform").head(3)
        clean = float(worst["top1"].iloc[0] + worst["drop"].iloc[0])
        cuts = []
        for row in worst.itertuples():
            key = condition_key(row.transform, row.severity)
            human = related_human_accuracy(row.transform, row.severity)
            on_humans = f" (humans {100 * human[1]:.0f} % on model-vs-human's {human[0]} stimuli)" if human else ""
            cuts.append(f"{key} {clean:.0f} → {row.top1:.0f} %{on_humans}")
        lines.append(f"{model} (top-1): {'; '.join(cuts)}.")
    overconfident = shifted.loc[(shifted["overconfidence"] > 15) & (shifted["drop"] > 20)]
    if len(overconfident):
        worst = overconfident.sort_values("overconfidence", ascending=False).iloc[0]
        lines.append(f"Confidence stays high while accuracy falls: {worst['model']} on "
                     f"{condition_key(worst['transform'], worst['severity'])} is right on {worst['top1']:.0f} % of photos "
                     f"at {worst['mean_confidence']:.0f} % "
                     f"mean confidence ({len(overconfident)} model x condition cells are over 15 points overconfident "
                     "after a drop of over 20 points).")
    return lines


def humans_text(result: Analysis) -> list[str]:
    """The model-vs-human comparison, labelled honestly, and the confidence gap the lecture points at."""
    if result.humans.empty:
        return []
    text = ["Humans saw model-vs-human's photos (Geirhos et al. 2018, 2021; 85,120 trials, bundled), the models saw "
            "this run's photos of the 16 categories under the same transforms with the same parameters: the "
            "comparison is per condition, not per photo. 16-class answers average each model's softmax over the 207 "
            "member classes of each category (model-vs-human's rule)."]
    scores = result.human_scores.dropna(subset=["ood_accuracy"])
    if len(scores):
        text.append("model-vs-human's benchmark over the datasets the run covers: " + "; ".join(
            f"{r.model} OOD accuracy {r.ood_accuracy:.3f}" + ("" if r.model == "humans" or pd.isna(r.accuracy_difference)
                                                           else f", accuracy difference {r.accuracy_difference:.3f}")
            for r in scores.itertuples()) + ".")
    summary = result.summary.set_index(["model", "transform", "severity"])
    gaps = []
    for row in result.humans.itertuples():
        for model in result.data.models:
            key = (model, row.transform, int(row.severity))
            if key in summary.index and summary.loc[key, "mean_confidence"] - summary.loc[key, "top1"] > 20:
                gaps.append(f"{model} on {condition_key(row.transform, row.severity)} ({summary.loc[key, 'top1']:.0f} % right, "
                            f"{summary.loc[key, 'mean_confidence']:.0f} % confident; humans {100 * row.human_accuracy:.0f} %)")
    if gaps:
        text.append("Humans know when they are in trouble; these models do not: " + "; ".join(gaps[:8]) +
                    (f" and {len(gaps) - 8} more" if len(gaps) > 8 else "") + ".")
    return text


def mce_text(result: Analysis) -> list[str]:
    """mCE as papers publish it (AlexNet-normalised), or why the run reports none."""
    from .metrics import alexnet_mce

    corruptions = result.summary.loc[result.summary["family"] == "corruptions"]
    if corruptions.empty:
        return []
    table = alexnet_mce(result.summary)
    reported = table.dropna(subset=["mce_alexnet"])
    text = ["mce_alexnet / relative_mce_alexnet: mCE as published (Hendrycks & Dietterich 2019): each corruption's "
            "errors summed over its 5 severities over AlexNet's (the published table, bundled), averaged over the 15 "
            "ImageNet-C corruptions; relative mCE subtracts clean errors (AlexNet's 43.48 %)."]
    if len(reported) < len(table):
        text.append("No AlexNet-normalised mCE for " + "; ".join(
            f"{m}: missing {miss}" for m, miss in zip(table["model"], table["missing"]) if miss) +
            " (mCE needs all 5 severities of all 15 corruptions).")
    return text


def published_text(result: Analysis) -> list[str]:
    """Where the run's models stand against the field's lines, and how far that placement can be trusted."""
    placement, why = result.placement
    vs = result.fit.effective.loc[result.fit.effective["reference"] != "run"]
    mapped = set(result.published["condition"])
    unmapped = [k for k in dict.fromkeys(result.fit.lines.loc[result.fit.lines["kind"] == "condition", "condition"])
                if k not in mapped]
    missing = (f"No published counterpart (no population drawn, no line): {', '.join(unmapped)}; "
               "`robustbench-lite reference --list` lists the mapped conditions.") if unmapped else ""
    if not mapped:
        return [missing or "No condition of this run has a published counterpart."]
    text = [f"{len(result.published)} condition(s) of this run have a published counterpart in the imagenet-testbed "
            "population (Taori et al. 2020; 338 models, bundled). Each line is the testbed's: OLS on "
            f"{result.published['scale'].iloc[0]} axes over its STANDARD models with clean top-1 >= 55 %. Effective "
            "robustness is the model's transformed top-1 minus the line's prediction at its clean top-1, in points, "
            "with a 95 % interval from the bootstrap over the run's photos.",
            f"Placement: {placement}: {why}." + (" Read the positions against the lines as indicative: a steep line "
                                                 "turns a few points of clean accuracy into many points of "
                                                 "prediction." if placement != "val" else "")]
    columns = " ".join(result.published["column"].astype(str))
    if "_on-disk" in columns:
        text.append("ImageNet-C lines marked _on-disk are the testbed's scores on the released JPEGs, which it passed "
                    "through each model's Resize/CenterCrop again (its src/models/model_base.py; RobustBench's bug "
                    "#59): those numbers carry that second resize, the imagenet-c protocol here does not."
                    + (" glass_blur has no in-memory column, so a native run borrows its on-disk line (indicative)."
                       if "glass_blur" in columns and (result.data.config("corruption_protocol") or "native") == "native"
                       else ""))
    for condition, part in vs.groupby("condition", sort=False):
        sides = ", ".join(f"{m} {v} ({e:+.1f})" for m, v, e in
                          zip(part["model"], part["versus_line"], part["effective_robustness"]))
        text.append(f"{condition}: {sides}.")
    return text + ([missing] if missing else [])
