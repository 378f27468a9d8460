"""Bundled human data of model-vs-human: its benchmark scores, the 16-class rule, the build."""
from __future__ import annotations

import ast
import json
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from robustbench_lite.analysis import humans
from robustbench_lite.data import sixteen_class
from robustbench_lite.errors import UserError

from conftest import REPO, SHARED

MVH = SHARED / "data" / "model-vs-human"
DATA = REPO / "robustbench_lite" / "human_data"


@pytest.fixture(scope="module")
def mvh() -> Path:
    if not MVH.is_dir():
        pytest.skip("../shared/data/model-vs-human is not beside the checkout")
    return MVH


# --- benchmark scores ---------------------------------------------------------------------


def test_humans_ood_accuracy_is_model_vs_humans_0_7228():
    assert humans.human_scores()["OOD accuracy"] == pytest.approx(0.7228, abs=5e-5)
    published = humans.human_benchmark()
    assert humans.human_scores()["OOD accuracy"] == pytest.approx(published["humans"]["OOD accuracy"], abs=1e-6)
    for dataset, value in published["humans_per_dataset_OOD_accuracy"].items():
        assert humans.human_scores([dataset])["OOD accuracy"] == pytest.approx(value, abs=1e-6), dataset


def test_models_scores_reproduce_benchmark_summary(mvh):
    """Their OOD accuracy and accuracy difference for nine models, from per-condition accuracies."""
    table = pd.read_csv(mvh / "humans_vs_models_per_condition.csv", dtype={"condition": str}, keep_default_na=False)
    summary = json.loads((mvh / "benchmark_summary.json").read_text())
    models = [c for c in table.columns if c in summary and c != "humans"]
    assert len(models) == 9
    for model in models:
        scores = humans.benchmark_summary(table.assign(accuracy=table[model].astype(float)))
        assert len(scores["datasets"]) == 17
        assert scores["OOD accuracy"] == pytest.approx(summary[model]["OOD accuracy"], abs=1e-6), model
        assert scores["accuracy difference"] == pytest.approx(summary[model]["accuracy difference"], abs=1e-6), model
    resnet = humans.benchmark_summary(table.assign(accuracy=table["resnet50"].astype(float)))
    assert (round(resnet["OOD accuracy"], 3), round(resnet["accuracy difference"], 3)) == (0.559, 0.087)


def test_partial_runs_score_only_fully_covered_datasets():
    rows = humans.human_table()
    contrast = rows[rows["experiment"] == "contrast"].assign(accuracy=0.5)
    assert humans.covered_datasets(contrast) == ["contrast"]
    assert humans.ood_accuracy(contrast) == pytest.approx(0.5)
    half = contrast[contrast["condition"] != "c50"]
    assert humans.benchmark_summary(half)["datasets"] == []
    with pytest.raises(UserError):
        humans.ood_accuracy(half)


def test_human_lookups():
    assert humans.human_accuracy("contrast", 5) == pytest.approx(0.353125)
    assert humans.human_accuracy("high-pass", float("inf")) == pytest.approx(0.882812)
    assert humans.human_accuracy("uniform-noise", 0.35) == pytest.approx(0.398438)
    assert humans.human_accuracy("false-colour", "false") == pytest.approx(0.873661)
    assert humans.human_condition("power_equalisation", 1) == ("power-equalisation", "pow")
    assert humans.human_condition("mvh_greyscale", 0) == ("colour", "cr")
    assert humans.human_condition("contrast", 0.5) is None  # ImageNet-C's contrast has no human row
    with pytest.raises(UserError):
        humans.human_accuracy("contrast", 7)
    with pytest.raises(UserError):
        humans.human_accuracy("no-such", 1)


def test_condition_rows_map_every_modelvshuman_level_once():
    from robustbench_lite.conditions.registry import all_transforms

    levels = {s.name: s.severities for s in all_transforms()}
    rows = humans.condition_rows(levels)
    assert len(rows) == sum(len(levels[n]) for n in humans.TRANSFORM_EXPERIMENTS) >= 40
    assert not rows.duplicated(["experiment", "condition"]).any()
    assert set(rows["transform"]) == set(humans.TRANSFORM_EXPERIMENTS)
    c5 = rows[(rows["transform"] == "mvh_contrast") & (rows["severity"] == 6)].iloc[0]
    assert (c5["condition"], c5["condition_value"], c5["human_accuracy"]) == ("c05", 5.0, 0.353125)


def test_bundled_table_is_the_shared_one(mvh):
    assert (DATA / "human_accuracy.csv").read_bytes() == (mvh / "human_accuracy.csv").read_bytes()
    assert len(humans.human_table()) == 78 and len(humans.rows_experiments()) == 17


# --- 16 classes ---------------------------------------------------------------------------


def test_sixteen_categories_match_the_shared_mapping(mvh):
    shared = json.loads((mvh / "sixteen_classes.json").read_text())["sixteen_class_imagenet_indices"]
    assert sixteen_class.CATEGORIES == tuple(sorted(shared))
    assert {k: list(v) for k, v in sixteen_class.MEMBERS.items()} == {k: sorted(v) for k, v in shared.items()}
    assert sum(len(v) for v in sixteen_class.MEMBERS.values()) == 207
    assert sixteen_class.category_of_label(404) == "airplane" and sixteen_class.category_of_label(0) is None
    assert sixteen_class.CATEGORIES[sixteen_class.category_index("truck")] == "truck"


def test_sixteen_class_decision_equals_an_independent_numpy_computation(mvh):
    shared = json.loads((mvh / "sixteen_classes.json").read_text())["sixteen_class_imagenet_indices"]
    names = sorted(shared)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 1000)) * rng.uniform(0.5, 8, size=(500, 1))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    expected = np.zeros(len(probs), dtype=int)
    for row, p in enumerate(probs):
        means = [np.mean([p[i] for i in shared[name]]) for name in names]
        expected[row] = int(np.argmax(means))
    assert np.array_equal(sixteen_class.sixteen_class_decision(probs), expected)
    as_torch = sixteen_class.sixteen_class_decision(torch.from_numpy(probs))
    assert isinstance(as_torch, torch.Tensor) and torch.equal(as_torch, torch.from_numpy(expected))
    answers = sixteen_class.sixteen_class_answers(torch.from_numpy(logits).float())
    assert answers == [names[i] for i in expected]
    labels = [404, 0, 152, 294]  # airplane, not one of the 16, dog, bear
    fields = sixteen_class.sixteen_class_fields(torch.from_numpy(logits[:4]).float(), labels)
    assert fields[0] == answers[:4]
    assert fields[1] == [answers[0] == "airplane", None, answers[2] == "dog", answers[3] == "bear"]
    dog_heavy = np.zeros((1, 1000))
    dog_heavy[0, shared["dog"]] = 0.9 / len(shared["dog"])
    dog_heavy[0, shared["knife"]] = 0.1  # one class, mean 0.1 beats dog's mean 0.0083
    assert sixteen_class.CATEGORIES[int(sixteen_class.sixteen_class_decision(dog_heavy)[0])] == "knife"
    with pytest.raises(UserError):
        sixteen_class.sixteen_class_decision(np.zeros((2, 16)))


# --- package data -------------------------------------------------------------------------


def test_rebuild_gives_identical_bytes(mvh, tmp_path, shared_sample):
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import build_humans
    finally:
        sys.path.pop(0)
    sizes = build_humans.build(mvh, shared_sample, tmp_path / "human_data", DATA / "monitor_gamma.npy")
    bundled = sorted(p.relative_to(DATA).as_posix() for p in DATA.rglob("*") if p.is_file())
    assert sorted(sizes) == bundled
    for name in bundled:
        assert (tmp_path / "human_data" / name).read_bytes() == (DATA / name).read_bytes(), name
    assert sizes["mean_amplitude_spectrum.npy"] <= 200_000
    source = (DATA / "meta" / "SOURCE").read_text()
    for needed in ("bethgelab/model-vs-human", "79ed7cd1d9ac3a114e71b6638f0a98bdd627316c", "MIT",
                   "Geirhos", "NeurIPS 2018", "NeurIPS 2021"):
        assert needed in source


def test_spectrum_is_a_224_amplitude_spectrum():
    spectrum = np.load(DATA / "mean_amplitude_spectrum.npy")
    assert spectrum.shape == (224, 224) and spectrum.dtype == np.float16
    assert np.unravel_index(np.argmax(spectrum), spectrum.shape) == (112, 112)  # DC at the centre
    assert 0.3 < spectrum[112, 112] / 224**2 < 0.6  # the photos' mean grey


def test_package_data_is_declared_in_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["robustbench_lite"]
    for path in DATA.rglob("*"):
        if path.is_file():
            relative = path.relative_to(REPO / "robustbench_lite")
            assert any(relative.match(p) for p in patterns), relative


@pytest.mark.parametrize("module,allowed", [
    ("data/sixteen_class.py", {"numpy", "torch", "json", "importlib", "functools", "__future__"}),
    ("analysis/humans.py", {"numpy", "pandas", "json", "importlib", "functools", "__future__"}),
])
def test_light_imports(module, allowed):
    tree = ast.parse((REPO / "robustbench_lite" / module).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert {a.name.split(".")[0] for a in node.names} <= allowed, module
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 2 and node.module == "errors" or node.module.split(".")[0] in allowed, module
