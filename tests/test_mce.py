"""mCE as published: AlexNet-normalised corruption errors, computed again here from summary.csv and the shared table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import PUBLISHED

from robustbench_lite.analysis import metrics
from robustbench_lite.analysis.references import CORRUPTIONS

pytestmark = pytest.mark.skipif(not PUBLISHED.is_dir(), reason="../shared/data/published-accuracies is absent")


def records(models=("a", "b"), n=40, drop=(), seed=0) -> pd.DataFrame:
    """Random answers for clean + 15 corruptions x 5 severities (minus `drop` conditions) per model."""
    rng = np.random.default_rng(seed)
    keys = [("clean", 0)] + [(c, s) for c in CORRUPTIONS for s in range(1, 6) if (c, s) not in drop]
    frames = []
    for m, skill in zip(models, (0.8, 0.6)):
        for transform, severity in keys:
            p = skill if transform == "clean" else skill * (1 - 0.1 * severity)
            right = rng.random(n) < p
            frames.append(pd.DataFrame({"model": m, "transform": transform, "severity": severity,
                                        "image_id": [f"p{i}" for i in range(n)], "top1": np.where(right, 1, 2),
                                        "correct1": right, "correct5": right, "confidence": 0.6, "label_prob": 0.5}))
    return pd.concat(frames, ignore_index=True)


def conditions() -> list[dict]:
    return [{"transform": "clean", "family": "clean", "severity": 0}] + [
        {"transform": c, "family": "corruptions", "severity": s} for c in CORRUPTIONS for s in range(1, 6)]


def test_mce_equals_the_published_recipe_from_summary_csv(tmp_path):
    summary = metrics.summarize(records(), conditions(), baseline="a")
    summary.to_csv(tmp_path / "summary.csv", index=False)
    family = metrics.family_summary(summary, "a").set_index(["model", "family"])
    table = pd.read_csv(tmp_path / "summary.csv")
    alexnet = pd.read_csv(PUBLISHED / "imagenet-c_alexnet_errors.csv").set_index("corruption")
    for model in ("a", "b"):
        rows = table[table["model"] == model]
        clean_err = 1 - rows.loc[rows["transform"] == "clean", "top1"].iloc[0] / 100
        ce, rel = [], []
        for c in CORRUPTIONS:
            err = 1 - rows.loc[rows["transform"] == c].sort_values("severity")["top1"].to_numpy() / 100
            ref = alexnet.loc[c, [f"severity_{s}" for s in range(1, 6)]].to_numpy(dtype=float)
            ce.append(err.sum() / ref.sum())
            rel.append((err - clean_err).sum() / (ref - 0.4348).sum())
        got = family.loc[(model, "corruptions")]
        assert got["mce_alexnet"] == pytest.approx(100 * np.mean(ce), abs=1e-9)
        assert got["relative_mce_alexnet"] == pytest.approx(100 * np.mean(rel), abs=1e-9)
        one = rows[(rows["transform"] == "fog") & (rows["severity"] == 3)].iloc[0]
        assert one["ce_alexnet"] == pytest.approx(100 * (1 - one["top1"] / 100) / alexnet.loc["fog", "severity_3"], abs=1e-9)
    ranking = metrics.model_ranking(summary, "a").set_index("model")
    assert ranking.loc["b", "mce_alexnet"] == pytest.approx(family.loc[("b", "corruptions"), "mce_alexnet"], abs=1e-12)


def test_a_run_missing_a_severity_reports_no_mce_and_says_why():
    summary = metrics.summarize(records(drop={("fog", 4)}), conditions(), baseline="a")
    table = metrics.alexnet_mce(summary).set_index("model")
    assert table["mce_alexnet"].isna().all() and table["relative_mce_alexnet"].isna().all()
    assert (table["missing"] == "fog@4").all()
    family = metrics.family_summary(summary, "a")
    assert family["mce_alexnet"].isna().all()
