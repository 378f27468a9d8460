"""What a run found, in sentences computed from its Analysis: mCE as published, the published lines, natural
shifts, and humans beside the models (the headline is `headline.py`). The report places them; nothing here
renders. A model beyond the clean range its line was fitted on (`extrapolated`) is listed apart, never above
or below."""
from __future__ import annotations

import pandas as pd

from ..analysis.references import IMAGENET_A_SPLIT
from ..analysis.run_fit import IDENTIFIED_MODELS, IDENTIFIED_SPAN
from ..analysis.shifts import CORRELATION_BOOTSTRAP
from ..analysis.tables import Analysis
from ..conditions.keys import condition_key
from .numbers import pct, photos, points


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
    for row in result.humans.drop_duplicates(["transform", "severity"]).itertuples():
        for model in result.data.models:
            key = (model, row.transform, int(row.severity))
            if key in summary.index and summary.loc[key, "mean_confidence"] - summary.loc[key, "top1"] > 20:
                n = summary.loc[key, "n"]
                gaps.append(f"{model} on {condition_key(row.transform, row.severity)} ({pct(summary.loc[key, 'top1'], n)} % "
                            f"right at {pct(summary.loc[key, 'mean_confidence'], n)} % mean confidence)")
    if gaps:  # 1000-class top-1 and confidence: no human number beside them (humans answered 16 classes)
        text.append("Overconfident on these conditions (1000-class top-1 and mean confidence, more than 20 points "
                    "apart): " + "; ".join(gaps[:8]) + (f" and {len(gaps) - 8} more" if len(gaps) > 8 else "") + ".")
    return text


def mce_text(result: Analysis) -> list[str]:
    """mCE as papers publish it (AlexNet-normalised), or why the run reports none."""
    from ..analysis.metrics import MCE_PROTOCOL_WHY, alexnet_mce

    corruptions = result.summary.loc[result.summary["family"] == "corruptions"]
    if corruptions.empty:
        return []
    protocol = result.data.config("corruption_protocol") or "native"
    if protocol != "imagenet-c":
        return [f"mce_alexnet and relative_mce_alexnet are empty: this run's corruption protocol is {protocol}, and "
                f"{MCE_PROTOCOL_WHY}; mce and relative_mce (against the baseline model) are given for every protocol."]
    table = alexnet_mce(result.summary, protocol)
    reported = table.dropna(subset=["mce_alexnet"])
    text = ["mce_alexnet / relative_mce_alexnet: mCE as published (Hendrycks & Dietterich 2019): each corruption's "
            "errors summed over its 5 severities over AlexNet's (the published table, bundled), averaged over the 15 "
            "ImageNet-C corruptions; relative mCE subtracts clean errors (AlexNet's 43.48 %)."]
    if len(reported) < len(table):  # one sentence, whatever the number of models
        missing = [m for m in table["missing"] if m]
        same = len(set(missing)) == 1
        who = "any model" if len(reported) == 0 else f"{len(table) - len(reported)} of {len(table)} models"
        text.append(f"No AlexNet-normalised mCE for {who}: mCE needs all 5 severities of all 15 corruptions"
                    + (f"; missing {missing[0]}." if same else "; what each model misses is in the ranking's CSVs."))
    if len(reported) and result.placement[0] != "val":
        text.append("mce_alexnet: " + "; ".join(f"{m} {v:.1f}" for m, v in zip(reported["model"], reported["mce_alexnet"]))
                    + " (indicative: the run's photos are not ImageNet val, on which AlexNet's errors were measured).")
    return text


def published_text(result: Analysis) -> list[str]:
    """Where the run's models stand against the field's lines, and how far that placement can be trusted."""
    placement, why = result.placement
    vs = result.fit.effective.loc[(result.fit.effective["reference"] != "run") & (result.fit.effective["kind"] != "shift")]
    mapped = set(result.published["condition"]) - set(result.shift_names)  # shifts: their own section
    unmapped = [k for k in dict.fromkeys(result.fit.lines.loc[result.fit.lines["kind"] == "condition", "condition"])
                if k not in mapped]
    missing = (f"No published counterpart (no population drawn, no line): {', '.join(unmapped)}; "
               "`robustbench-lite reference --list` lists the mapped conditions.") if unmapped else ""
    if not mapped:
        return [missing or ("Natural shifts only: see Natural shifts." if result.shift_names else
                            "No condition of this run has a published counterpart.")]
    from ..analysis.recipes import recipes_text

    protocol = result.data.config("corruption_protocol") or "native"
    parity = dict(zip(result.published["condition"], result.published.get("recipe", ["release"] * len(result.published))))
    text = [f"{len(mapped)} synthetic condition(s) of this run have a published counterpart in the imagenet-testbed "
            "population (Taori et al. 2020; 338 models, bundled). Each line is the testbed's: OLS on "
            f"{result.published['scale'].iloc[0]} axes over its STANDARD models with clean top-1 >= 55 %. Effective "
            "robustness is the model's transformed top-1 minus the line's prediction at its clean top-1, in points, "
            "with a 95 % interval from the bootstrap over the run's photos.",
            f"Placement: {placement}: {why}." + (" Read the positions against the lines as indicative: a steep line "
                                                 "turns a few points of clean accuracy into many points of "
                                                 "prediction." if placement != "val" else "")]
    text.append(recipes_text(protocol, {c: r for c, r in parity.items() if c in mapped}))
    columns = " ".join(result.published["column"].astype(str))
    if "_on-disk" in columns:
        text.append("ImageNet-C lines marked _on-disk are the testbed's scores on the released JPEGs, which it passed "
                    "through each model's Resize/CenterCrop again (its src/models/model_base.py; RobustBench's bug "
                    "#59): those numbers carry that second resize, the imagenet-c protocol here does not."
                    + (" glass_blur has no in-memory column, so a native run borrows its on-disk line (indicative)."
                       if "glass_blur" in columns and (result.data.config("corruption_protocol") or "native") == "native"
                       else ""))
    text += placement_text(result, vs)
    return text + ([missing] if missing else [])


def _n(result: Analysis, model: str, key: str) -> float:
    return photos(result.summary, model, key)


def placement_text(result: Analysis, rows: pd.DataFrame) -> list[str]:
    """Per condition, where each placed model stands (above, below or on its line within the 95 % interval,
    effective robustness in points); then the extrapolated rows, listed apart and never placed."""
    text = []
    for condition, part in rows.groupby("condition", sort=False):
        placed = part.loc[part["versus_line"] != "extrapolated"]
        if len(placed):
            text.append(f"{condition}: " + ", ".join(
                f"{r.model} {r.versus_line} ({points(r.effective_robustness, _n(result, r.model, condition))})"
                for r in placed.itertuples()) + ".")
    beyond = rows.loc[rows["versus_line"] == "extrapolated"]
    if len(beyond):
        groups: dict[str, list[str]] = {}  # the same models and range on several conditions: said once
        for condition, part in beyond.groupby("condition", sort=False):
            who = " and ".join(f"{r.model} ({pct(r.clean_top1, _n(result, r.model, r.counterpart))} %)"
                               for r in part.itertuples())
            span = f"{part['fit_clean_min'].iloc[0]:.1f}–{part['fit_clean_max'].iloc[0]:.1f} %"
            groups.setdefault(f"{who}, beyond the line-fit models' {span}", []).append(condition)
        listed = "; ".join(f"{who} on {', '.join(conditions)}" for who, conditions in groups.items())
        text.append(f"Extrapolated, so not placed ({len(beyond)} rows): clean top-1 outside the clean range of the "
                    f"models a line is fitted on: {listed}. A line says nothing there; their effective robustness "
                    "stays in the tables, marked `extrapolated`, and is read nowhere.")
    return text


def shifts_text(result: Analysis) -> list[str]:
    """How the run's natural shifts are placed on the testbed's lines, and where its models stand."""
    table = result.shifts
    if table.empty:
        return []
    placement, why = result.placement
    whose = ("the imagenet-testbed's published line (Taori et al. 2020; logit axes)" if result.population == "testbed"
             else f"the {result.population} population's line where timm publishes the shift (below), else the testbed's")
    text = [f"The run measured {len(result.shift_names)} natural shift(s): {', '.join(result.shift_names)}. Each is "
            f"placed on {whose} at its clean counterpart: "
            "ImageNet-R and ImageNet-A at the run's val photos of their 200 classes, scored over those classes "
            "(clean@r-classes, clean@a-classes), the others at clean. Drop is from that counterpart; effective "
            "robustness is the shift's top-1 minus the line's prediction at the counterpart's top-1, in points, with a "
            "95 % interval from the bootstrap over the run's photos."]
    if "imagenet-a" in result.shift_names and result.population == "testbed":
        text.append(f"ImageNet-A is not linear in the testbed: its two published lines split at {IMAGENET_A_SPLIT:g} % "
                    "(resnet50's top-1 on val of the 200 A classes); each model is read against the piece its "
                    "clean@a-classes top-1 falls on (the reference column names the piece).")
    text.append("ObjectNet's line is drawn beside them as a reference only: runs do not measure ObjectNet.")
    if placement != "val":
        text.append(f"Placement: {placement}: {why}; read the positions against the lines as indicative.")
    for shift, part in table.groupby("shift", sort=False):
        er = part.dropna(subset=["effective_robustness"])
        if er.empty:
            text.append(f"{shift}: not placed on its line: the run has no {part['counterpart'].iloc[0]} records "
                        "(its clean counterpart), so its drop and effective robustness are not computed.")
            continue
        placed = er.loc[er["versus_line"] != "extrapolated"]
        beyond = er.loc[er["versus_line"] == "extrapolated"]
        apart = (f"; {len(beyond)} extrapolated, not placed ({', '.join(beyond['model'])}: counterpart top-1 outside "
                 f"the {beyond['fit_clean_min'].iloc[0]:.1f}–{beyond['fit_clean_max'].iloc[0]:.1f} % its line was "
                 "fitted on)") if len(beyond) else ""
        if placed.empty:
            text.append(f"{shift}: no model placed{apart}.")
            continue
        sides = placed["versus_line"].value_counts()
        n = float(result.summary.loc[result.summary["transform"] == shift, "n"].min())
        best = placed.loc[placed["effective_robustness"].idxmax()]
        text.append(f"{shift}: mean effective robustness {points(placed['effective_robustness'].mean(), n)} points over "
                    f"{len(placed)} placed models ({sides.get('above', 0)} above the line, {sides.get('below', 0)} below, "
                    f"{sides.get('on', 0)} on it within their interval); best {best['model']} "
                    f"({points(best['effective_robustness'], n)}){apart}.")
    return text


def correlation_text(result: Analysis) -> list[str]:
    """What the synthetic-vs-natural correlation table can and cannot say, in one honest paragraph or two."""
    table = result.shift_correlation
    if table.empty:
        return []
    identified = table.loc[table["identified"].astype(bool)]
    excluding = identified.loc[(identified["ci_low"] > 0) | (identified["ci_high"] < 0)]
    text = ["Which synthetic condition predicts natural robustness? Spearman's rho across the run's models between "
            "their effective robustness on a synthetic condition and on a natural shift, with a 95 % percentile "
            f"interval from {CORRELATION_BOOTSTRAP} paired resamples of the models. A synthetic condition's effective "
            "robustness is against its published testbed line where it has one (synthetic_reference names it), else "
            f"against the run's own line where that is identified (>= {IDENTIFIED_MODELS} models spanning >= "
            f"{IDENTIFIED_SPAN:g} pp of clean top-1); a shift's is against its published line. A pair with fewer than "
            f"{IDENTIFIED_MODELS} models (the model count of that rule) is not identified: no rho, no interval."]
    if identified.empty:
        n = int(table["n_models"].max())
        text.append(f"None of the {len(table)} pairs is identified (at most {n} models with both; needs >= "
                    f"{IDENTIFIED_MODELS}): this run cannot say which synthetic condition predicts natural robustness. "
                    "The testbed's finding (Taori et al. 2020) is that robustness to most synthetic shifts does not "
                    "predict robustness to natural ones.")
        return text
    found = ", ".join(f"{r.synthetic} ~ {r.shift} (rho {r.spearman:+.2f})" for r in excluding.itertuples())
    text.append(f"{len(identified)} of {len(table)} pairs are identified; {len(excluding)} of them have an interval that "
                f"excludes 0{': ' + found if found else ''}. The testbed's finding (Taori et al. 2020) is that "
                "robustness to most synthetic shifts does not predict robustness to natural ones; with "
                f"{int(identified['n_models'].max())} models an interval is wide, so a rho here is a weak test of it.")
    return text
