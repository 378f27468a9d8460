"""Selective prediction: can the model's confidence tell which of its answers to trust?

The risk-coverage curve (Geifman & El-Yaniv, "Selective classification for deep neural networks",
NeurIPS 2017) keeps the k most confident photos for every k = 1..n; its risk at k is the share of
them answered wrongly. Its area, AURC, is the mean risk over k; the optimal AURC is that of a perfect
ranking (every right answer before every wrong one) at the same accuracy, and E-AURC = AURC - optimal
(Geifman et al., "Bias-reduced uncertainty estimation for deep neural classifiers", ICLR 2019).
Confidence is the max softmax probability of the records; ties keep the records' order (a stable sort).

selective.csv's units: aurc, optimal_aurc, e_aurc are fractions (0-1); top1 and accuracy_at_coverage_*
are percent, as in summary.csv.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from ..conditions.keys import condition_key

SELECTIVE_COLUMNS = ["model", "condition", "n", "top1", "aurc", "optimal_aurc", "e_aurc",
                     "accuracy_at_coverage_80", "accuracy_at_coverage_50"]
COVERAGES = {"accuracy_at_coverage_80": 0.8, "accuracy_at_coverage_50": 0.5}
CURVE_POINTS = 200  # points kept of each drawn risk-coverage curve


def confidence_order(confidence: np.ndarray) -> np.ndarray:
    """Indices from the most to the least confident photo; equal confidences keep their order (stable)."""
    return np.argsort(-np.asarray(confidence, dtype=np.float64), kind="stable")


def risk_coverage(confidence: Sequence[float], correct: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """(coverage k/n, risk = errors among the k most confident / k) for k = 1..n."""
    wrong = ~np.asarray(correct, dtype=bool)[confidence_order(np.asarray(confidence))]
    k = np.arange(1, len(wrong) + 1)
    return k / max(len(wrong), 1), np.cumsum(wrong) / k


def aurc(confidence: Sequence[float], correct: Sequence[bool]) -> float:
    """Area under the risk-coverage curve: mean over k = 1..n of the risk of the k most confident photos."""
    return float(np.mean(risk_coverage(confidence, correct)[1])) if len(correct) else math.nan


def optimal_aurc(n: int, n_right: int) -> float:
    """AURC of a perfect ranking with `n_right` of `n` right: risk max(0, k - n_right) / k at each k."""
    if n == 0:
        return math.nan
    k = np.arange(1, n + 1)
    return float(np.mean(np.maximum(0, k - n_right) / k))


def accuracy_at_coverage(confidence: Sequence[float], correct: Sequence[bool], coverage: float) -> float:
    """Percent right among the ceil(coverage x n) most confident photos."""
    right = np.asarray(correct, dtype=bool)[confidence_order(np.asarray(confidence))]
    keep = max(1, math.ceil(coverage * len(right) - 1e-9)) if len(right) else 0
    return 100 * float(right[:keep].mean()) if keep else math.nan


def _groups(records: pd.DataFrame, model_order: Sequence[str]):
    """(model, condition key, confidence, correct) per group in model order, then the records' condition order.

    Each group keeps the records' order (groupby does), which is what breaks confidence ties."""
    models = list(dict.fromkeys([*model_order, *records["model"].astype(str)]))
    grouped = records.groupby(["model", "transform", "severity"], sort=False)
    conditions = list(dict.fromkeys((t, s) for _, t, s in grouped.groups))
    for model, transform, severity in sorted(grouped.groups, key=lambda g: (models.index(str(g[0])),
                                                                           conditions.index((g[1], g[2])))):
        part = grouped.get_group((model, transform, severity))
        yield (str(model), condition_key(transform, severity), part["confidence"].to_numpy(dtype=np.float64),
               part["correct1"].to_numpy(dtype=bool))


def selective_table(records: pd.DataFrame, model_order: Sequence[str] = (),
                    condition_order: Sequence[str] = ()) -> pd.DataFrame:
    """selective.csv: one row per (model, condition) of the records (SELECTIVE_COLUMNS)."""
    rows = []
    for model, condition, confidence, correct in _groups(records, model_order):
        n, n_right = len(correct), int(correct.sum())
        area, best = aurc(confidence, correct), optimal_aurc(n, n_right)
        rows.append({"model": model, "condition": condition, "n": n, "top1": 100 * n_right / n, "aurc": area,
                     "optimal_aurc": best, "e_aurc": area - best,
                     **{column: accuracy_at_coverage(confidence, correct, c) for column, c in COVERAGES.items()}})
    table = pd.DataFrame(rows, columns=SELECTIVE_COLUMNS)
    if condition_order and len(table):
        rank = {c: i for i, c in enumerate(condition_order)}
        models = list(dict.fromkeys([*model_order, *table["model"]]))
        table = table.iloc[sorted(range(len(table)), key=lambda i: (models.index(table["model"].iat[i]),
                                                                    rank.get(table["condition"].iat[i], len(rank))))]
    return table.reset_index(drop=True)


def risk_coverage_curves(records: pd.DataFrame, conditions: Sequence[str], model_order: Sequence[str] = (),
                         points: int = CURVE_POINTS) -> pd.DataFrame:
    """The risk-coverage curves of some conditions (every model), each thinned to about `points` points."""
    wanted, rows = set(conditions), []
    for model, condition, confidence, correct in _groups(records, model_order):
        if condition not in wanted:
            continue
        coverage, risk = risk_coverage(confidence, correct)
        keep = np.unique(np.linspace(0, len(risk) - 1, min(points, len(risk))).round().astype(int))
        rows.append(pd.DataFrame({"model": model, "condition": condition, "coverage": coverage[keep],
                                  "risk": risk[keep]}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["model", "condition", "coverage", "risk"])
