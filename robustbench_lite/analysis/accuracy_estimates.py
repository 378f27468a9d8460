"""Label-free accuracy estimates: how well will a model do on photos whose labels nobody has?

Every method sees the labelled source photos (the run's clean condition, or a natural shift's own
counterpart: `clean@r-classes` for ImageNet-R) and only the model outputs on the target photos:

- `ac`, average confidence: the mean max-softmax probability on the target (Hendrycks & Gimpel, ICLR 2017).
- `doc`, difference of confidences: source accuracy + (target AC - source AC) (Guillory et al.,
  "Predicting with confidence on unseen distributions", ICCV 2021), clipped to [0, 100].
- `atc`, average thresholded confidence (Garg et al., "Leveraging unlabeled data to predict
  out-of-distribution performance", ICLR 2022; their public ATC_code, `find_ATC_threshold`): the
  threshold t is the k-th smallest source confidence, k = the number of source errors, so the share of
  source photos at or below t equals the source error; the estimate is the share of target photos above t.
- `aline-s`, `aline-d`, agreement on the line (Baek et al., "Agreement-on-the-line: predicting the
  performance of neural networks under distribution shift", NeurIPS 2022; their public notebook
  agreement_trajectory.ipynb, `aline`), with >= 3 models: the agreement of every pair of models (share
  of photos with the same top-1 class) on source and target photos; as in their code, pairs agreeing on
  fewer than 5 % or more than 98 % of either set are left out, and OLS fits
  probit(target agreement) = a probit(source agreement) + b over the pairs. ALine-S puts each model's
  source accuracy on that line: Phi(a probit(source accuracy) + b). ALine-D solves, by least squares,
  one equation per pair (i, j) for the unknown probit target accuracies:
  (q_i + q_j) / 2 = probit(target agreement_ij) + a [(probit(acc_i) + probit(acc_j)) / 2 - probit(source agreement_ij)],
  and returns Phi(q); it needs the pairs to determine every q (else NaN).

accuracy_estimates.csv's units: estimated_top1, measured_top1 and error (estimated - measured) in percent.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import special

from ..conditions.keys import condition_key, is_counterpart
from .references import counterpart, is_natural_shift

SINGLE_MODEL_METHODS = ("ac", "doc", "atc")
AGREEMENT_METHODS = ("aline-s", "aline-d")
METHODS = SINGLE_MODEL_METHODS + AGREEMENT_METHODS
MIN_AGREEMENT_MODELS = 3
AGREEMENT_RANGE = (0.05, 0.98)  # pairs outside it on either set are left out of the line (Baek et al.'s code)
ESTIMATE_COLUMNS = ["model", "condition", "method", "estimated_top1", "measured_top1", "error"]


@dataclass
class Outputs:
    """One photo set's answers, photos x models: top-1 class, confidence and right (NaN where a model has no record)."""

    models: list[str]
    top1: np.ndarray
    confidence: np.ndarray
    correct: np.ndarray

    def column(self, model: str) -> tuple[np.ndarray, np.ndarray]:
        """(confidence, right as bool) of one model's photos."""
        j = self.models.index(model)
        present = ~np.isnan(self.confidence[:, j])
        return self.confidence[present, j], self.correct[present, j] == 1

    def accuracy(self, model: str) -> float:
        return float(np.mean(self.column(model)[1]))


def outputs_of(records: pd.DataFrame, models: Sequence[str] | None = None) -> Outputs:
    """The Outputs of some records of one photo set (one condition), photos aligned by image_id."""
    models = list(models) if models is not None else list(dict.fromkeys(records["model"].astype(str)))
    frame = records.loc[records["model"].isin(models)]
    wide = frame.pivot_table(index="image_id", columns="model", values=["top1", "confidence", "correct1"],
                             aggfunc="first", sort=False)

    def matrix(field: str) -> np.ndarray:
        block = wide[field] if field in wide.columns.get_level_values(0) else pd.DataFrame(index=wide.index)
        return block.reindex(columns=models).to_numpy(dtype=np.float64)

    return Outputs(models, matrix("top1"), matrix("confidence"), matrix("correct1"))


def atc_threshold(confidence: np.ndarray, correct: np.ndarray) -> float:
    """The source confidence t with as many source photos at or below it as the source has errors."""
    errors = int(np.sum(~np.asarray(correct, dtype=bool)))
    return -math.inf if errors == 0 else float(np.sort(np.asarray(confidence, dtype=np.float64))[errors - 1])


def single_model_estimates(source_confidence: np.ndarray, source_correct: np.ndarray,
                           target_confidence: np.ndarray) -> dict[str, float]:
    """AC, DoC and ATC of one model, as fractions."""
    source_accuracy = float(np.mean(source_correct))
    target_ac = float(np.mean(target_confidence))
    return {"ac": target_ac,
            "doc": min(1.0, max(0.0, source_accuracy + target_ac - float(np.mean(source_confidence)))),
            "atc": float(np.mean(target_confidence > atc_threshold(source_confidence, source_correct)))}


def probit(p, n: int | None = None) -> np.ndarray:
    """Phi^-1(p); with `n` photos, p first clipped to [1/(2n), 1 - 1/(2n)] so 0 % and 100 % stay finite."""
    p = np.asarray(p, dtype=np.float64)
    if n:
        p = np.clip(p, 0.5 / n, 1 - 0.5 / n)
    return special.ndtri(p)


def agreement_matrix(top1: np.ndarray) -> np.ndarray:
    """Share of photos (that both models answered) on which two models give the same top-1 class."""
    m = top1.shape[1]
    out = np.full((m, m), np.nan)
    for i, j in combinations(range(m), 2):
        both = ~np.isnan(top1[:, i]) & ~np.isnan(top1[:, j])
        if both.any():
            out[i, j] = out[j, i] = float(np.mean(top1[both, i] == top1[both, j]))
    return out


def usable_pairs(source_agreement: np.ndarray, target_agreement: np.ndarray) -> list[tuple[int, int]]:
    """The pairs i < j whose agreement on both sets lies in AGREEMENT_RANGE."""
    low, high = AGREEMENT_RANGE
    m = len(source_agreement)
    return [(i, j) for i, j in combinations(range(m), 2)
            if all(low <= a[i, j] <= high for a in (source_agreement, target_agreement))]


def aline(source_accuracy: Sequence[float], source_agreement: np.ndarray, target_agreement: np.ndarray,
          n_photos: int | None = None) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """ALine-S and ALine-D target accuracies (fractions) of every model, and the agreement line (slope, intercept).

    NaN where the usable pairs cannot fit a line (< 2 pairs) or, for ALine-D, determine every model.
    """
    accuracy = probit(source_accuracy, n_photos)
    m = len(accuracy)
    pairs = usable_pairs(source_agreement, target_agreement)
    nan = np.full(m, np.nan)
    if len(pairs) < 2:
        return nan, nan, (math.nan, math.nan)
    x = probit([source_agreement[i, j] for i, j in pairs])
    y = probit([target_agreement[i, j] for i, j in pairs])
    if np.ptp(x) == 0:
        return nan, nan, (math.nan, math.nan)
    slope, intercept = np.polyfit(x, y, 1)
    aline_s = special.ndtr(slope * accuracy + intercept)
    system = np.zeros((len(pairs), m))
    for row, (i, j) in enumerate(pairs):
        system[row, [i, j]] = 0.5
    mean_accuracy = np.array([(accuracy[i] + accuracy[j]) / 2 for i, j in pairs])
    rhs = y + slope * (mean_accuracy - x)
    if np.linalg.matrix_rank(system) < m:
        return aline_s, nan, (float(slope), float(intercept))
    solution = np.linalg.lstsq(system, rhs, rcond=None)[0]
    return aline_s, special.ndtr(solution), (float(slope), float(intercept))


def estimate_accuracy(source: Outputs, target: Outputs) -> pd.DataFrame:
    """Every method's estimate of every model's target top-1: model, method, estimated_top1 (percent).

    ALine only with >= 3 models having both sets.
    """
    models = [m for m in source.models if m in target.models and len(source.column(m)[0]) and len(target.column(m)[0])]
    rows = []
    for model in models:
        s_conf, s_right = source.column(model)
        for method, value in single_model_estimates(s_conf, s_right, target.column(model)[0]).items():
            rows.append({"model": model, "method": method, "estimated_top1": 100 * value})
    if len(models) >= MIN_AGREEMENT_MODELS:
        s_top1 = source.top1[:, [source.models.index(m) for m in models]]
        t_top1 = target.top1[:, [target.models.index(m) for m in models]]
        n = int(np.sum(~np.isnan(s_top1).any(axis=1)))
        aline_s, aline_d, _ = aline([source.accuracy(m) for m in models], agreement_matrix(s_top1),
                                    agreement_matrix(t_top1), n)
        for method, values in (("aline-s", aline_s), ("aline-d", aline_d)):
            rows += [{"model": m, "method": method, "estimated_top1": 100 * float(v)} for m, v in zip(models, values)]
    order = {m: i for i, m in enumerate(METHODS)}
    frame = pd.DataFrame(rows, columns=["model", "method", "estimated_top1"])
    return frame.sort_values(["model", "method"], key=lambda s: s.map(order) if s.name == "method"
                             else s.map({m: i for i, m in enumerate(models)}), kind="stable").reset_index(drop=True)


def source_condition(key: str, transform: str) -> str | None:
    """The labelled photos a condition is estimated from: a natural shift's counterpart, else clean;
    None for a source itself (clean, `clean@r-classes`)."""
    if key == "clean" or is_counterpart(key):
        return None
    return counterpart(transform) if is_natural_shift(transform) else "clean"


def estimate_table(records: pd.DataFrame, model_order: Sequence[str] = (),
                   condition_order: Sequence[str] = ()) -> pd.DataFrame:
    """accuracy_estimates.csv: every method per (model, condition) with a source in the records (ESTIMATE_COLUMNS)."""
    parts = {condition_key(t, s): part for (t, s), part in records.groupby(["transform", "severity"], sort=False)}
    transform_of = {key: str(part["transform"].iat[0]) for key, part in parts.items()}
    models = list(dict.fromkeys([*model_order, *records["model"].astype(str)]))
    ordered = list(dict.fromkeys([*(c for c in condition_order if c in parts), *parts]))
    sources: dict[str, Outputs] = {}
    frames = []
    for key in ordered:
        source = source_condition(key, transform_of[key])
        if source is None or source not in transform_of:
            continue
        if source not in sources:
            sources[source] = outputs_of(parts[source], models)
        target = outputs_of(parts[key], models)
        estimates = estimate_accuracy(sources[source], target)
        measured = {m: 100 * target.accuracy(m) for m in estimates["model"].unique()}
        estimates.insert(1, "condition", key)
        estimates["measured_top1"] = estimates["model"].map(measured)
        estimates["error"] = estimates["estimated_top1"] - estimates["measured_top1"]
        frames.append(estimates)
    if not frames:
        return pd.DataFrame(columns=ESTIMATE_COLUMNS)
    table = pd.concat(frames, ignore_index=True)[ESTIMATE_COLUMNS]
    rank = {m: i for i, m in enumerate(models)}
    return table.sort_values("model", key=lambda s: s.map(rank), kind="stable").reset_index(drop=True)


def mean_absolute_errors(table: pd.DataFrame) -> pd.Series:
    """Each method's mean |estimated - measured| top-1 in points over the table's rows (METHODS order)."""
    if table.empty:
        return pd.Series(dtype=float)
    mae = table.dropna(subset=["error"]).groupby("method")["error"].apply(lambda e: float(np.mean(np.abs(e))))
    return mae.reindex([m for m in METHODS if m in mae.index])


FOLDER_COLUMNS = ["model", "method", "estimated_top1", "n_photos", "source_top1", "source_n_photos"]


def folder_estimates(records: pd.DataFrame, models: Sequence[str], source: str, target: str) -> pd.DataFrame:
    """estimates.csv of `estimate`: every method's top-1 estimate on the unlabelled `target` photo set,
    with how many target photos each model answered and the model's measured top-1 on the labelled `source`."""
    keys = pd.Series([condition_key(t, s) for t, s in zip(records["transform"], records["severity"])], index=records.index)
    source_outputs = outputs_of(records.loc[keys == source], models)
    target_outputs = outputs_of(records.loc[keys == target], models)
    table = estimate_accuracy(source_outputs, target_outputs)
    table["n_photos"] = table["model"].map({m: len(target_outputs.column(m)[0]) for m in models}).astype(int)
    table["source_top1"] = table["model"].map({m: 100 * source_outputs.accuracy(m) for m in models})
    table["source_n_photos"] = table["model"].map({m: len(source_outputs.column(m)[0]) for m in models}).astype(int)
    return table[FOLDER_COLUMNS]
