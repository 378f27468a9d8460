"""Photo-for-photo comparisons on model-vs-human's own stimuli: error consistency and shape bias.

Error consistency (Geirhos, Meding & Wichmann, NeurIPS 2020): over the same trials, c_obs is the fraction
both decision makers got right or both wrong, c_exp = p1 p2 + (1 - p1)(1 - p2) from their accuracies, and
kappa = (c_obs - c_exp) / (1 - c_exp) (1 where c_obs = 1). As model-vs-human's `ErrorConsistency`
(modelvshuman/plotting/analyses.py) a model's value at a condition is the mean kappa over human subjects;
its benchmark score per set is the mean over the set's benchmark conditions. Shape bias (Geirhos et al.,
ICLR 2019; analyses.py `ShapeBias`): over cue-conflict photos whose shape and texture categories differ,
the answers naming the shape over those naming either.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from typing import Sequence

import numpy as np
import pandas as pd

from ..data.mvh_stimuli import CONDITIONS, experiment_of, parse_stimulus
from ..data.mvh_trials import read_human_trials
from ..errors import UserError

EC_COLUMNS = ["model", "experiment", "condition", "n_trials", "n_subjects", "model_accuracy", "human_accuracy",
              "observed_consistency", "expected_consistency", "error_consistency", "in_benchmark"]
SB_COLUMNS = ["model", "n_trials", "n_conflict_trials", "fraction_shape", "fraction_texture", "shape_bias"]


def kappa(observed: float, expected: float) -> float:
    """Cohen's kappa of two decision makers' right/wrong: (c_obs - c_exp) / (1 - c_exp); 1 when c_obs = 1."""
    return 1.0 if observed == 1.0 else (observed - expected) / (1.0 - expected)


def consistency(right_a: Sequence[bool], right_b: Sequence[bool]) -> tuple[float, float, float]:
    """(observed, expected, error consistency) of two right/wrong sequences over the same trials."""
    a, b = np.asarray(right_a, dtype=bool), np.asarray(right_b, dtype=bool)
    if len(a) != len(b) or not len(a):
        raise UserError("error consistency needs the same, non-empty trials for both decision makers")
    p1, p2 = a.mean(), b.mean()
    observed = float((a == b).mean())
    expected = float(p1 * p2 + (1 - p1) * (1 - p2))
    return observed, expected, kappa(observed, expected)


def _stimulus_rows(records: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """The run's records on the untransformed stimuli, with each photo's pairing key and condition."""
    rows = records.loc[(records["transform"] == "clean") & records["sixteen_class_correct"].notna()].copy()
    parsed = {i: parse_stimulus(experiment, i) for i in rows["image_id"].unique()}
    rows["key"] = rows["image_id"].map(lambda i: parsed[i].key if parsed[i] else None)
    if "stimulus_condition" not in rows.columns or rows["stimulus_condition"].isna().all():
        rows["stimulus_condition"] = rows["image_id"].map(lambda i: parsed[i].condition if parsed[i] else None)
    return rows.dropna(subset=["key", "stimulus_condition"])


def _paired(mine: pd.Series, theirs: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    common = mine.index.intersection(theirs.index)
    return (mine.loc[common].to_numpy(bool), theirs.loc[common].to_numpy(bool)) if len(common) else None


def _row(who: str, experiment: str, condition: str, pairs: list[tuple[np.ndarray, np.ndarray]], benchmark: bool,
         n_trials: int, n_subjects: int) -> dict:
    """One table row: means over `pairs` (one per subject, or per pair of subjects) of accuracy and kappa."""
    values = np.array([consistency(a, b) for a, b in pairs])
    mine, theirs = float(np.mean([a.mean() for a, _ in pairs])), float(np.mean([b.mean() for _, b in pairs]))
    if who == "humans":  # subjects paired with each other: both columns are the subjects' mean accuracy
        mine = theirs = (mine + theirs) / 2
    return {"model": who, "experiment": experiment, "condition": condition, "n_trials": n_trials,
            "n_subjects": n_subjects, "model_accuracy": mine, "human_accuracy": theirs,
            "observed_consistency": float(values[:, 0].mean()), "expected_consistency": float(values[:, 1].mean()),
            "error_consistency": float(values[:, 2].mean()), "in_benchmark": benchmark}


def error_consistency_table(records: pd.DataFrame, models: Sequence[str], experiment: str,
                            trials: list[dict]) -> pd.DataFrame:
    """RUN_DIR/error_consistency.csv: per model and condition, the mean over subjects of kappa on the
    trials both saw (photos paired by model-vs-human's short image name), then `humans` (mean over pairs
    of subjects). A subject's missed response (`na`) is wrong, as in model-vs-human."""
    from .humans import human_table

    table = human_table()
    flags = {c: f != "no" for c, f in zip(table.loc[table["experiment"] == experiment, "condition"],
                                          table.loc[table["experiment"] == experiment, "in_benchmark_ood_subset"])}
    humans = pd.DataFrame(trials, columns=["subj", "condition", "key", "object_response", "category"])
    humans["right"] = humans["object_response"] == humans["category"]
    rows_of = _stimulus_rows(records, experiment)
    out = []
    for condition in CONDITIONS[experiment]:
        subjects = {s: part.drop_duplicates("key").set_index("key")["right"]
                    for s, part in humans.loc[humans["condition"] == condition].groupby("subj", sort=True)}
        mine = rows_of.loc[rows_of["stimulus_condition"] == condition]
        for model in models:
            right = mine.loc[mine["model"] == model].drop_duplicates("key").set_index("key")["sixteen_class_correct"]
            pairs = [p for p in (_paired(right.astype(bool), s) for s in subjects.values()) if p is not None]
            if pairs:
                seen = int(right.index.isin(set().union(*(set(s.index) for s in subjects.values()))).sum())
                out.append(_row(model, experiment, condition, pairs, flags.get(condition, True), seen, len(pairs)))
        names = sorted(subjects)
        if len(mine) and len(names) > 1:
            pairs = [p for i, a in enumerate(names) for b in names[i + 1:] if (p := _paired(subjects[a], subjects[b]))]
            if pairs:
                out.append(_row("humans", experiment, condition, pairs, flags.get(condition, True),
                                int(np.mean([len(a) for a, _ in pairs])), len(names)))
    return pd.DataFrame(out, columns=EC_COLUMNS)


@lru_cache(maxsize=1)
def human_shape_bias() -> dict:
    """Humans' pooled shape bias on cue-conflict (bundled human_shape_bias.csv, 10 subjects)."""
    with (files("robustbench_lite") / "human_data" / "human_shape_bias.csv").open("r") as f:
        table = pd.read_csv(f)
    row = table.loc[table["scope"] == "all subjects pooled"].iloc[0]
    return {"model": "humans", "n_trials": int(row["n_trials"]), "n_conflict_trials": int(row["n_conflict_trials"]),
            "fraction_shape": float(row["fraction_shape"]), "fraction_texture": float(row["fraction_texture"]),
            "shape_bias": float(row["shape_bias"])}


def shape_bias_table(records: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """RUN_DIR/shape_bias.csv: per model on the cue-conflict photos, the shape and texture answers' fractions
    of all its trials (as model-vs-human divides) and shape bias = shape / (shape + texture), then humans."""
    rows = records.loc[records["transform"] == "clean"]
    parsed = {i: parse_stimulus("cue-conflict", i) for i in rows["image_id"].unique()}
    out = []
    for model in models:
        mine = rows.loc[rows["model"] == model]
        stimuli = [parsed[i] for i in mine["image_id"]]
        answers = mine["sixteen_class_answer"].astype(str).tolist()
        kept = [(s, a) for s, a in zip(stimuli, answers) if s is not None]
        conflict = [(s, a) for s, a in kept if s.texture != s.category]
        shape = sum(a == s.category for s, a in conflict)
        texture = sum(a == s.texture for s, a in conflict)
        if kept:
            out.append({"model": model, "n_trials": len(kept), "n_conflict_trials": len(conflict),
                        "fraction_shape": shape / len(kept), "fraction_texture": texture / len(kept),
                        "shape_bias": shape / (shape + texture) if shape + texture else float("nan")})
    return pd.DataFrame(out + [human_shape_bias()], columns=SB_COLUMNS) if out else pd.DataFrame(columns=SB_COLUMNS)


@dataclass
class StimulusTables:
    """What a run on model-vs-human's stimuli adds: error consistency per condition, its benchmark score,
    shape bias on cue-conflict, and notes (e.g. why a table is missing)."""

    experiment: str
    error_consistency: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=EC_COLUMNS))
    shape_bias: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SB_COLUMNS))
    notes: list[str] = field(default_factory=list)

    @property
    def scores(self) -> pd.DataFrame:
        """Per model: observed and error consistency, means over the set's benchmark conditions."""
        ec = self.error_consistency.loc[self.error_consistency["in_benchmark"].astype(bool)]
        if ec.empty:
            return pd.DataFrame(columns=["model", "experiment", "n_conditions", "observed_consistency",
                                         "error_consistency"])
        grouped = ec.groupby(["model", "experiment"], sort=False)
        return grouped.agg(n_conditions=("condition", "size"), observed_consistency=("observed_consistency", "mean"),
                           error_consistency=("error_consistency", "mean")).reset_index()

    def csvs(self) -> dict[str, pd.DataFrame]:
        """The tables RUN_DIR gets: error_consistency.csv, and shape_bias.csv on cue-conflict."""
        out = {"error_consistency": self.error_consistency} if len(self.error_consistency) else {}
        return {**out, **({"shape_bias": self.shape_bias} if len(self.shape_bias) else {})}


def stimulus_tables(data_spec: str, records: pd.DataFrame, models: Sequence[str]) -> StimulusTables | None:
    """The photo-for-photo tables of a run whose --data is `mvh:NAME` (None for any other run)."""
    experiment = experiment_of(data_spec)
    if experiment is None:
        return None
    tables = StimulusTables(experiment)
    try:
        trials = read_human_trials(experiment)
    except UserError as exc:
        tables.notes.append(f"No error consistency: the human trials of {experiment} could not be read ({exc}).")
        trials = None
    if trials is not None:
        tables.error_consistency = error_consistency_table(records, models, experiment, trials)
    if experiment == "cue-conflict":
        tables.shape_bias = shape_bias_table(records, models)
    return tables


def stimuli_text(tables: StimulusTables) -> list[str]:
    """The report's sentences on a run over model-vs-human's stimuli."""
    from .humans import human_benchmark

    text = [f"The models saw model-vs-human's own {tables.experiment} stimuli (Geirhos et al. 2021, release v0.1), "
            "the photos its human subjects saw, so the comparison is photo for photo. Error consistency "
            "(Geirhos et al. 2020) is Cohen's kappa of right/wrong between a model and each subject over the "
            "trials both saw, averaged over subjects (model-vs-human's rule); 0 = no more agreement than their "
            "accuracies imply, 1 = the same errors. The `humans` rows pair subjects with each other."]
    for row in tables.scores.itertuples():
        text.append(f"{row.model} on {row.experiment}: error consistency {row.error_consistency:.3f}, observed "
                    f"consistency {row.observed_consistency:.3f} (means over {row.n_conditions} benchmark conditions).")
    published = human_benchmark().get("humans_per_dataset_error_consistency", {}).get(tables.experiment)
    if published is not None:
        text.append(f"model-vs-human's humans on {tables.experiment} (all subjects, published raw data): error "
                    f"consistency {published:.3f} with each other.")
    for row in tables.shape_bias.itertuples():
        text.append(f"Shape bias of {row.model}: {row.shape_bias:.3f} ({row.n_conflict_trials} cue-conflict photos "
                    f"whose shape and texture differ; 1 = always the shape).")
    return text + tables.notes


def is_stimulus_run(manifest: dict) -> bool:
    """Whether a run's --data is one of model-vs-human's stimulus sets."""
    return experiment_of(str(manifest.get("config", {}).get("data", ""))) is not None
