"""Metrics on hand-worked cases: Wilson, ECE, AUROC, NLL, McNemar, CE/mCE, consistency, the summary."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from robustbench_lite.analysis import metrics, pairwise


def records_from_accuracies(spec: dict[str, dict[str, int]], n_photos: int = 10) -> pd.DataFrame:
    """Records where model m answers the first k photos right under condition 'transform@severity'."""
    rows = []
    for model, conditions in spec.items():
        for key, k in conditions.items():
            transform, severity = (key, 0) if key == "clean" else (key.split("@")[0], int(key.split("@")[1]))
            for i in range(n_photos):
                right = i < k
                rows.append({"model": model, "transform": transform, "severity": severity, "image_id": f"p{i}",
                             "label": 7, "top1": 7 if right else 100 + i, "confidence": 0.9 if right else 0.4,
                             "label_prob": 0.9 if right else 0.1, "correct1": right, "correct5": True})
    return pd.DataFrame(rows)


CONDITIONS = [
    {"transform": "clean", "family": "clean", "severity": 0, "level": 0.0, "description": "as is"},
    {"transform": "t", "family": "fam", "severity": 1, "level": 0.1, "description": "t"},
    {"transform": "t", "family": "fam", "severity": 2, "level": 0.2, "description": "t"},
]


def test_wilson_interval_matches_hand_computation():
    # k = 8 of n = 10, z = 1.96: centre 0.99208 / 1.38416, half-width 1.96 * sqrt(0.025604) / 1.38416
    low, high = metrics.wilson_interval(8, 10, z=1.96)
    centre, half = 0.99208 / 1.38416, 1.96 * math.sqrt(0.025604) / 1.38416
    assert low == pytest.approx(centre - half, abs=1e-12)
    assert high == pytest.approx(centre + half, abs=1e-12)
    assert (round(float(low), 4), round(float(high), 4)) == (0.4902, 0.9433)
    low0, high0 = metrics.wilson_interval(0, 10, z=1.96)
    assert low0 == pytest.approx(0.0, abs=1e-15) and high0 == pytest.approx(3.8416 / 13.8416)
    assert np.isnan(metrics.wilson_interval(0, 0)[0])


def test_confidence_bins_are_equal_width_and_right_closed():
    assert metrics.confidence_bin([0.0, 1 / 15, 0.5, 0.99, 1.0]).tolist() == [0, 0, 7, 14, 14]


def test_ece_hand_worked():
    # bins: {0.9, 0.9} acc 0.5 -> 0.4 * 2/4; {0.6} acc 1 -> 0.4 * 1/4; {0.3} acc 0 -> 0.3 * 1/4
    conf = [0.9, 0.9, 0.6, 0.3]
    right = [True, False, True, False]
    assert metrics.expected_calibration_error(conf, right) == pytest.approx(0.2 + 0.1 + 0.075)
    assert metrics.expected_calibration_error([0.7, 0.7], [True, False]) == pytest.approx(0.2)
    # grouped: each group matches its own ungrouped value
    grouped = metrics.expected_calibration_error(conf + [0.7, 0.7], right + [True, False], groups=[0, 0, 0, 0, 1, 1])
    assert grouped.tolist() == pytest.approx([0.375, 0.2])


def test_auroc_hand_worked():
    # positives 0.9 and 0.7 against negatives 0.8, 0.6, 0.5: 3 + 2 of 6 pairs ordered right
    assert metrics.auroc([0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 0, 0]) == pytest.approx(5 / 6)
    assert metrics.auroc([0.8, 0.8], [1, 0]) == pytest.approx(0.5)  # a tie counts half
    assert metrics.auroc([0.2, 0.9], [0, 1]) == pytest.approx(1.0)
    assert np.isnan(metrics.auroc([0.3, 0.9], [1, 1]))
    assert np.isnan(metrics.auroc([0.3, 0.9], [0, 0]))
    grouped = metrics.auroc([0.9, 0.8, 0.7, 0.6, 0.5, 0.3, 0.9], [1, 0, 1, 0, 0, 1, 1], groups=[0] * 5 + [1, 1])
    assert grouped[0] == pytest.approx(5 / 6) and np.isnan(grouped[1])


def test_nll_clips_zero_probability():
    expected = (0.0 + math.log(2) - math.log(1e-12)) / 3
    assert metrics.negative_log_likelihood([1.0, 0.5, 0.0]) == pytest.approx(expected)


def test_mcnemar_exact_for_few_discordant_pairs():
    # b = 2, c = 8: p = 2 * P(X <= 2 | 10, 1/2) = 2 * (1 + 10 + 45) / 1024
    statistic, p_value, test = pairwise.mcnemar_from_counts(2, 8)
    assert float(p_value) == pytest.approx(112 / 1024)
    assert float(p_value) == pytest.approx(stats.binomtest(2, 10, 0.5).pvalue)
    assert float(statistic) == pytest.approx(25 / 10) and str(test) == "exact"


def test_mcnemar_chi_square_with_continuity_correction():
    statistic, p_value, test = pairwise.mcnemar_from_counts(30, 10)
    assert float(statistic) == pytest.approx(19**2 / 40)
    assert float(p_value) == pytest.approx(math.erfc(math.sqrt(19**2 / 40 / 2)))  # chi2 1 df survival
    assert str(test) == "chi2"
    assert pairwise.mcnemar_from_counts(0, 0)[1] == 1.0


def test_mcnemar_counts_discordant_photos():
    result = pairwise.mcnemar([1, 1, 1, 0, 0, 1], [1, 0, 0, 1, 0, 1])
    assert (result.b, result.c) == (2, 1)
    assert result.p_value == pytest.approx(1.0)  # 2 * P(X <= 1 | 3) = 2 * 4/8


def test_pairwise_table():
    records = records_from_accuracies({"a": {"clean": 9}, "b": {"clean": 5}, "c": {"clean": 5}})
    table = pairwise.pairwise_mcnemar(records, ["a", "b", "c"], CONDITIONS)
    assert list(table.columns) == pairwise.PAIRWISE_COLUMNS
    assert list(zip(table["model_a"], table["model_b"])) == [("a", "b"), ("a", "c"), ("b", "c")]
    first = table.iloc[0]
    assert (first["b"], first["c"], first["acc_a"], first["acc_b"], first["n"]) == (4, 0, 90.0, 50.0, 10)
    assert first["p_value"] == pytest.approx(2 / 16)
    assert table.iloc[2]["p_value"] == 1.0


def ce_records() -> pd.DataFrame:
    # errors (percent): base clean 20, t@1 40, t@2 60; model a clean 10, t@1 20, t@2 40
    return records_from_accuracies({
        "base": {"clean": 8, "t@1": 6, "t@2": 4},
        "a": {"clean": 9, "t@1": 8, "t@2": 6},
    })


def test_corruption_error_hand_worked():
    assert metrics.corruption_error([20, 40], [40, 60]) == pytest.approx(60.0)
    summary = metrics.summarize(ce_records(), CONDITIONS, baseline="base", model_order=["base", "a"])
    a = summary.loc[summary["model"] == "a"].set_index("severity")
    assert a.loc[1, "ce"] == pytest.approx(100 * 20 / 40)
    assert a.loc[2, "ce"] == pytest.approx(100 * 40 / 60)
    assert a.loc[1, "relative_ce"] == pytest.approx(100 * (20 - 10) / (40 - 20))
    assert a.loc[2, "relative_ce"] == pytest.approx(100 * (40 - 10) / (60 - 20))
    assert np.isnan(a.loc[0, "ce"])
    family = metrics.family_summary(summary, "base").set_index("model")
    assert family.loc["a", "mce"] == pytest.approx(100 * (20 + 40) / (40 + 60))
    assert family.loc["a", "relative_mce"] == pytest.approx(100 * (10 + 30) / (20 + 40))
    assert family.loc["base", "mce"] == pytest.approx(100.0)
    assert family.loc["a", "top1"] == pytest.approx(70.0)  # mean of 80 and 60
    assert family.loc["a", "drop"] == pytest.approx(20.0)


def test_summary_rows_and_columns():
    summary = metrics.summarize(ce_records(), CONDITIONS, baseline="base", model_order=["base", "a"])
    assert list(summary.columns) == metrics.SUMMARY_COLUMNS
    assert len(summary) == 6 and not summary.duplicated(["model", "transform", "severity"]).any()
    assert summary["model"].tolist() == ["base"] * 3 + ["a"] * 3
    row = summary.set_index(["model", "transform", "severity"]).loc[("a", "t", 2)]
    assert row["family"] == "fam" and row["level"] == pytest.approx(0.2) and row["n"] == 10
    assert row["top1"] == pytest.approx(60.0) and row["drop"] == pytest.approx(30.0)
    assert row["relative_robustness"] == pytest.approx(60 / 90)
    low, high = metrics.wilson_interval(6, 10)
    assert (row["top1_low"], row["top1_high"]) == pytest.approx((100 * low, 100 * high))
    # photos 0-5 right both times and photo 9 wrong with the same class both times: 7 of 10 unchanged
    assert row["consistency"] == pytest.approx(70.0)
    assert row["mean_confidence"] == pytest.approx(100 * (0.6 * 0.9 + 0.4 * 0.4))
    assert row["ece"] == pytest.approx(100 * (0.6 * 0.1 + 0.4 * 0.4))
    assert row["overconfidence"] == pytest.approx(row["mean_confidence"] - 60.0)
    assert row["auroc"] == pytest.approx(1.0)
    assert row["nll"] == pytest.approx(-(0.6 * math.log(0.9) + 0.4 * math.log(0.1)), rel=1e-6)


def test_summary_without_baseline_leaves_ce_empty():
    summary = metrics.summarize(ce_records(), CONDITIONS, baseline=None)
    assert summary["ce"].isna().all() and summary["relative_ce"].isna().all()


def test_ranking_orders_by_mean_transformed_accuracy():
    summary = metrics.summarize(ce_records(), CONDITIONS, baseline="base")
    ranking = metrics.model_ranking(summary, "base")
    assert ranking["model"].tolist() == ["a", "base"]
    assert ranking.loc[0, "mean_top1"] == pytest.approx(70.0) and ranking.loc[1, "mean_top1"] == pytest.approx(50.0)
    assert ranking.loc[0, "mce"] == pytest.approx(60.0)
