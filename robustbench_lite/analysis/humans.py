"""Human reference data of model-vs-human (Geirhos et al. 2018, 2021) and its benchmark scores.

The bundled table (human_data/human_accuracy.csv) holds human 16-class accuracy per experiment
and condition. Humans saw model-vs-human's photos; a run's models see the run's photos, so the
comparison is per condition, not per photo.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files

import numpy as np
import pandas as pd

from ..errors import UserError

CHANCE = 1 / 16

TRANSFORM_EXPERIMENTS: dict[str, str] = {
    "mvh_greyscale": "colour",
    "mvh_contrast": "contrast",
    "low_pass": "low-pass",
    "high_pass": "high-pass",
    "phase_scramble": "phase-scrambling",
    "power_equalisation": "power-equalisation",
    "false_colour": "false-colour",
    "mvh_rotation": "rotation",
    "uniform_noise": "uniform-noise",
}
"""The modelvshuman transforms and the experiment each reproduces (level = condition_value)."""

BINARY_CONDITIONS: dict[str, tuple[str, str]] = {
    "colour": ("cr", "bw"),
    "power-equalisation": ("0", "pow"),
    "false-colour": ("true", "false"),
}
"""Experiments without a numeric condition_value: level 0 and level 1 name these conditions."""


def _resource(name: str):
    return files("robustbench_lite") / "human_data" / name


@lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    with _resource("human_accuracy.csv").open("r") as f:
        table = pd.read_csv(f, dtype={"condition": str, "condition_value": str}, keep_default_na=False)
    table["condition_value"] = pd.to_numeric(table["condition_value"].replace("", np.nan))
    return table


def human_table() -> pd.DataFrame:
    """The bundled human table (78 rows, 17 experiments); condition_value is NaN where not numeric."""
    return _table().copy()


@lru_cache(maxsize=1)
def human_benchmark() -> dict:
    """Humans' published benchmark scores and each dataset's subject-variance term."""
    return json.loads(_resource("benchmark.json").read_text())


def _row(experiment: str, condition_value: float | str) -> pd.Series:
    table = _table()
    rows = table[table["experiment"] == experiment]
    if rows.empty:
        raise UserError(f"no human data for experiment {experiment!r}; known: {', '.join(rows_experiments())}")
    if isinstance(condition_value, str):
        match = rows[rows["condition"] == condition_value]
    else:
        value = float(condition_value)
        if experiment in BINARY_CONDITIONS and value in (0.0, 1.0):
            match = rows[rows["condition"] == BINARY_CONDITIONS[experiment][int(value)]]
        else:
            match = rows[np.isclose(rows["condition_value"], value, rtol=0, atol=1e-9)]  # inf == inf
    if len(match) != 1:
        known = ", ".join(rows["condition"])
        raise UserError(f"no human condition {condition_value!r} in {experiment!r}; conditions: {known}")
    return match.iloc[0]


def rows_experiments() -> list[str]:
    """The 17 experiment names, in table order."""
    return list(dict.fromkeys(_table()["experiment"]))


def human_accuracy(experiment: str, condition_value: float | str) -> float:
    """Human 16-class accuracy (0-1) at a condition: a numeric condition_value, or the condition string."""
    return float(_row(experiment, condition_value)["accuracy"])


def human_condition(transform: str, level: float) -> tuple[str, str] | None:
    """(experiment, condition) a modelvshuman transform's level reproduces; None for other transforms."""
    experiment = TRANSFORM_EXPERIMENTS.get(transform)
    if experiment is None:
        return None
    return experiment, str(_row(experiment, float(level))["condition"])


def condition_rows(transform_levels: dict[str, tuple[float, ...]]) -> pd.DataFrame:
    """One row per modelvshuman condition of a run, beside its human row (for RUN_DIR/humans.csv).

    `transform_levels` maps transform names to their levels (e.g. {s.name: s.severities});
    others are skipped. Columns: experiment, condition, condition_value, transform, severity
    (1-based), human_accuracy (0-1), in_benchmark_ood_subset.
    """
    rows = []
    for transform, levels in transform_levels.items():
        experiment = TRANSFORM_EXPERIMENTS.get(transform)
        for severity, level in enumerate(levels, start=1):
            if experiment is None:
                continue
            row = _row(experiment, float(level))
            rows.append({"experiment": experiment, "condition": row["condition"],
                         "condition_value": row["condition_value"], "transform": transform,
                         "severity": severity, "human_accuracy": float(row["accuracy"]),
                         "in_benchmark_ood_subset": row["in_benchmark_ood_subset"]})
    columns = ["experiment", "condition", "condition_value", "transform", "severity", "human_accuracy",
               "in_benchmark_ood_subset"]
    return pd.DataFrame(rows, columns=columns)


def _is_ood(flag: str) -> bool:
    return flag != "no"  # 'yes', or '' for the five one-condition datasets


def _with_human(accuracies: pd.DataFrame) -> pd.DataFrame:
    """Join per-condition accuracies onto the human table (only the benchmark's OOD rows)."""
    missing = {"experiment", "condition", "accuracy"} - set(accuracies.columns)
    if missing:
        raise UserError(f"per-condition accuracies need columns experiment, condition, accuracy; missing {sorted(missing)}")
    table = _table()
    table = table[table["in_benchmark_ood_subset"].map(_is_ood)]
    given = accuracies[["experiment", "condition", "accuracy"]].astype({"condition": str})
    merged = table.merge(given, on=["experiment", "condition"], suffixes=("_human", ""))
    if merged.duplicated(["experiment", "condition"]).any():
        raise UserError("per-condition accuracies name a condition twice")
    return merged


def covered_datasets(accuracies: pd.DataFrame) -> list[str]:
    """Datasets whose every benchmark (OOD) condition has an accuracy in `accuracies`."""
    table = _table()
    ood = table[table["in_benchmark_ood_subset"].map(_is_ood)]
    have = _with_human(accuracies).groupby("experiment").size()
    need = ood.groupby("experiment").size()
    return [d for d in rows_experiments() if have.get(d, 0) == need.get(d, -1)]


def ood_accuracy(accuracies: pd.DataFrame, datasets: list[str] | None = None) -> float:
    """model-vs-human's OOD accuracy: per dataset the mean over its OOD conditions, then the mean.

    `accuracies` has columns experiment, condition (the human table's strings), accuracy (0-1).
    Only `datasets` (default: those fully covered) count.
    """
    merged = _with_human(accuracies)
    datasets = covered_datasets(accuracies) if datasets is None else datasets
    if not datasets:
        raise UserError("no model-vs-human dataset is covered by these accuracies")
    per_dataset = merged[merged["experiment"].isin(datasets)].groupby("experiment")["accuracy"].mean()
    return float(per_dataset.reindex(datasets).mean())


def accuracy_difference(accuracies: pd.DataFrame, datasets: list[str] | None = None) -> float:
    """model-vs-human's accuracy difference to humans (lower is more human-like).

    Per dataset the mean over OOD conditions of (model - subject)^2 averaged over subjects, which
    is (model - pooled human)^2 plus the subjects' variance (bundled per dataset); then the mean.
    """
    merged = _with_human(accuracies)
    datasets = covered_datasets(accuracies) if datasets is None else datasets
    if not datasets:
        raise UserError("no model-vs-human dataset is covered by these accuracies")
    merged = merged[merged["experiment"].isin(datasets)]
    squared = (merged["accuracy"] - merged["accuracy_human"]) ** 2
    per_dataset = squared.groupby(merged["experiment"]).mean().reindex(datasets)
    variance = pd.Series(human_benchmark()["subject_variance_per_dataset"]).reindex(datasets)
    return float((per_dataset + variance).mean())


def benchmark_summary(accuracies: pd.DataFrame) -> dict:
    """OOD accuracy and accuracy difference over the covered datasets, and which those are."""
    datasets = covered_datasets(accuracies)
    if not datasets:
        return {"datasets": [], "OOD accuracy": None, "accuracy difference": None}
    return {
        "datasets": datasets,
        "OOD accuracy": ood_accuracy(accuracies, datasets),
        "accuracy difference": accuracy_difference(accuracies, datasets),
    }


def human_scores(datasets: list[str] | None = None) -> dict:
    """The humans' own OOD accuracy over `datasets` (all 17 by default) from the bundled table."""
    table = _table()
    return {"OOD accuracy": ood_accuracy(table[["experiment", "condition", "accuracy"]], datasets)}


# ---------------------------------------------------------------- a run's models beside the humans

HUMANS_COLUMNS = ["experiment", "condition", "condition_value", "transform", "severity", "human_accuracy"]
def sixteen_class_accuracy(records: pd.DataFrame) -> pd.DataFrame:
    """Per (model, transform, severity): 16-class accuracy (0-1) over the photos of the 16 categories, and n."""
    if "sixteen_class_correct" not in records.columns:
        return pd.DataFrame(columns=["model", "transform", "severity", "accuracy16", "n16"])
    counted = records.loc[records["sixteen_class_correct"].notna()]
    grouped = counted.groupby(["model", "transform", "severity"], sort=False)["sixteen_class_correct"]
    return pd.DataFrame({"accuracy16": grouped.mean().astype(float), "n16": grouped.size()}).reset_index()


def humans_table(records: pd.DataFrame, conditions: list[dict], models: list[str]) -> pd.DataFrame:
    """RUN_DIR/humans.csv: each modelvshuman condition of the run beside its human row, then one
    16-class accuracy column (0-1) per model, computed on the run's photos of the 16 categories."""
    levels: dict[str, dict[int, float]] = {}
    for c in conditions:
        if c["transform"] in TRANSFORM_EXPERIMENTS:
            levels.setdefault(c["transform"], {})[int(c["severity"])] = float(c["level"])
    rows = []
    for transform, by_severity in levels.items():
        table = condition_rows({transform: tuple(by_severity[s] for s in sorted(by_severity))})
        table["severity"] = sorted(by_severity)
        rows.append(table)
    if not rows:
        return pd.DataFrame(columns=HUMANS_COLUMNS + list(models))
    out = pd.concat(rows, ignore_index=True)[HUMANS_COLUMNS]
    accuracy = sixteen_class_accuracy(records)
    for model in models:
        mine = accuracy.loc[accuracy["model"] == model].set_index(["transform", "severity"])["accuracy16"]
        out[model] = [mine.get((t, int(s)), np.nan) for t, s in zip(out["transform"], out["severity"])]
    return out


def benchmark_scores(humans: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """model-vs-human's summary metrics per model over the datasets the run fully covers (and humans')."""
    rows = []
    for who, column in [("humans", "human_accuracy"), *[(m, m) for m in models]]:
        given = humans[["experiment", "condition", column]].rename(columns={column: "accuracy"}).dropna()
        scores = benchmark_summary(given) if len(given) else {"datasets": [], "OOD accuracy": None,
                                                                "accuracy difference": None}
        rows.append({"model": who, "datasets": ", ".join(scores["datasets"]),
                     "ood_accuracy": scores["OOD accuracy"],
                     "accuracy_difference": None if who == "humans" else scores["accuracy difference"]})
    return pd.DataFrame(rows)
