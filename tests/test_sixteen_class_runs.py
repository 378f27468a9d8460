"""16-class answers in records and humans beside the models, checked against the shared model-vs-human files."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED

MVH = SHARED / "data" / "model-vs-human"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not MVH.is_dir(), reason="../shared/data/model-vs-human is absent")]


def shared_categories() -> dict[str, list[int]]:
    return json.loads((MVH / "sixteen_classes.json").read_text())["sixteen_class_imagenet_indices"]


@pytest.fixture(scope="module")
def mvh_run(shared_sample, tmp_path_factory):
    from robustbench_lite.cli.commands import main

    out = tmp_path_factory.mktemp("mvh") / "run"
    code = main(["run", "--data", str(shared_sample), "--models", "efficientnet_lite0", "--protocol", "sixteen-class",
                 "--transforms", "mvh_contrast", "--severities", "1,4,6", "--limit", "24", "--save-logits",
                 "--out", str(out)])
    assert code == 0
    return out


def test_sixteen_class_answers_equal_an_independent_computation_from_saved_logits(mvh_run):
    records = pd.read_parquet(mvh_run / "records.parquet")
    categories = shared_categories()
    names = sorted(categories)
    members = {i: name for name, indices in categories.items() for i in indices}
    assert records["label"].map(members).notna().all()  # --protocol sixteen-class: only photos of the 16
    logits = np.stack(records["logits"].to_numpy()).astype(np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    means = np.stack([probs[:, categories[name]].mean(axis=1) for name in names], axis=1)
    expected = [names[i] for i in means.argmax(axis=1)]
    assert records["sixteen_class_answer"].tolist() == expected
    assert (records["sixteen_class_correct"] == (records["sixteen_class_answer"] == records["label"].map(members))).all()
    assert len(records) == 24 * 4


def test_humans_csv_pairs_each_condition_with_its_human_row(mvh_run):
    humans = pd.read_csv(mvh_run / "humans.csv")
    assert list(humans.columns) == ["experiment", "condition", "condition_value", "transform", "severity",
                                    "human_accuracy", "efficientnet_lite0"]
    table = pd.read_csv(MVH / "human_accuracy.csv")
    contrast = table[table["experiment"] == "contrast"].reset_index(drop=True)
    assert humans["condition"].tolist() == [contrast.loc[i, "condition"] for i in (0, 3, 5)]
    np.testing.assert_allclose(humans["human_accuracy"], contrast.loc[[0, 3, 5], "accuracy"], atol=1e-12)
    records = pd.read_parquet(mvh_run / "records.parquet")
    for row in humans.itertuples():
        mine = records[(records["transform"] == "mvh_contrast") & (records["severity"] == row.severity)]
        assert row.efficientnet_lite0 == pytest.approx(mine["sixteen_class_correct"].mean(), abs=1e-12)
    report = (mvh_run / "report.md").read_text()
    assert "## Humans beside the models" in report and "per condition, not per photo" in report
    assert (mvh_run / "plots" / "psychometric.png").is_file()


def test_the_headline_puts_humans_beside_the_same_16_class_test_only(mvh_run):
    from test_claims import check_headline_against_tables

    lines = check_headline_against_tables(mvh_run)
    humans = pd.read_csv(mvh_run / "humans.csv")
    contrast = pd.read_csv(MVH / "human_accuracy.csv").query("experiment == 'contrast'").reset_index(drop=True)
    people = contrast.loc[[0, 3, 5], "accuracy"].mean()  # the run's three contrast levels, from the shared table
    said = [line for line in lines if "humans" in line]
    assert said == [f"16-class accuracy on the same 3 model-vs-human condition(s) (humans on their stimuli, the models "
                    f"on this run's photos of the 16 categories), means: humans {people:.3f}; efficientnet_lite0 "
                    f"{humans['efficientnet_lite0'].mean():.3f}."]
    table = (mvh_run / "report.md").read_text().split("### Humans vs models per condition", 1)[1]
    assert f"| {contrast.loc[0, 'accuracy']:.3f} |" in table  # proportions to 3 decimals, as in the prose
