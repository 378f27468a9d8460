"""Paired comparisons: McNemar's test between every two models on every condition, over shared photos."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import special

from ..conditions.keys import condition_key, condition_rank
from ..results.records import correctness_cube
from .metrics import safe_divide

MCNEMAR_EXACT_BELOW = 25  # discordant pairs b + c under this: exact binomial p-value
PAIRWISE_COLUMNS = [
    "condition", "transform", "severity", "model_a", "model_b", "n", "acc_a", "acc_b",
    "b", "c", "statistic", "p_value", "test",
]


@dataclass(frozen=True)
class McNemar:
    """McNemar's test of two models on the same photos: b = only A right, c = only B right."""

    b: int
    c: int
    statistic: float
    p_value: float
    test: str


def mcnemar_from_counts(b, c) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(statistic, p_value, test) for discordant counts b, c (vectorised).

    statistic is always the continuity-corrected chi-square (|b - c| - 1)^2 / (b + c). The p-value
    is the exact two-sided binomial test (b of b + c at p = 1/2, as scipy.stats.binomtest) when
    b + c < 25, else the chi-square's with 1 degree of freedom. No discordant pair: statistic 0, p 1.
    """
    b = np.asarray(b, dtype=float)
    c = np.asarray(c, dtype=float)
    total = b + c
    statistic = np.where(total > 0, np.maximum(np.abs(b - c) - 1, 0) ** 2 / np.where(total > 0, total, 1), 0.0)
    exact = np.minimum(1.0, 2 * special.bdtr(np.minimum(b, c), total.astype(np.int64), 0.5))
    chi2 = special.chdtrc(1, statistic)
    small = total < MCNEMAR_EXACT_BELOW
    p_value = np.where(total > 0, np.where(small, exact, chi2), 1.0)
    return statistic, p_value, np.where(small, "exact", "chi2")


def mcnemar(correct_a, correct_b) -> McNemar:
    """McNemar's test on two aligned boolean vectors of per-photo correctness."""
    a = np.asarray(correct_a, dtype=bool)
    other = np.asarray(correct_b, dtype=bool)
    b, c = int(np.sum(a & ~other)), int(np.sum(~a & other))
    statistic, p_value, test = mcnemar_from_counts(b, c)
    return McNemar(b, c, float(statistic), float(p_value), str(test))


def pairwise_mcnemar(records: pd.DataFrame, model_order: Sequence[str] | None = None,
                     conditions=None) -> pd.DataFrame:
    """McNemar's test between every two models on every condition, over the photos both have.

    b = photos model_a got right and model_b wrong, c = the reverse; acc_a/acc_b in percent over
    those shared photos. Rows follow the manifest's condition order, then model order.
    """
    found = set(records["model"].astype(str).unique())
    models = [m for m in dict.fromkeys([*(model_order or []), *sorted(found)]) if m in found]
    if len(models) < 2:
        return pd.DataFrame(columns=PAIRWISE_COLUMNS)
    pairs, cube_right, cube_present = correctness_cube(records, models)
    rank = condition_rank(conditions)
    ia, ib = np.triu_indices(len(models), k=1)
    rows = []
    for k in sorted(range(len(pairs)), key=lambda i: rank.get(condition_key(*pairs[i]), len(rank))):
        right, present = cube_right[k].astype(float), cube_present[k].astype(float)
        only_first = right.T @ ((1 - right) * present)  # [i, j]: right for model i, wrong for model j
        both = present.T @ present
        accuracy = safe_divide(right.T @ present, both)  # [i, j]: model i's accuracy on photos shared with j
        b, c = only_first[ia, ib], only_first[ib, ia]
        statistic, p_value, test = mcnemar_from_counts(b, c)
        keep = both[ia, ib] > 0
        transform, severity = pairs[k]
        rows.append(pd.DataFrame({
            "condition": condition_key(transform, severity), "transform": transform, "severity": severity,
            "model_a": [models[i] for i in ia], "model_b": [models[j] for j in ib],
            "n": both[ia, ib].astype(int), "acc_a": 100 * accuracy[ia, ib], "acc_b": 100 * accuracy[ib, ia],
            "b": b.astype(int), "c": c.astype(int), "statistic": statistic, "p_value": p_value, "test": test,
        }).loc[keep])
    return pd.concat(rows, ignore_index=True)[PAIRWISE_COLUMNS]
