"""Clean evaluation matches timm's own pipeline photo for photo, on real photos and real weights."""
from __future__ import annotations

import pandas as pd
import pytest
import torch
from PIL import Image

from conftest import make_subset_folder

from robustbench_lite.data.datasets import open_dataset, select_samples
from robustbench_lite.models import load_model, resolve_models

N_PHOTOS = 100


def independent_correct(model_name: str, samples) -> dict[str, bool]:
    """What timm itself says: create_transform(**resolve_data_config({}, model=m)) on PIL photos."""
    from timm.data import create_transform, resolve_data_config

    loaded = load_model(resolve_models(model_name)[0], torch.device("cpu"))
    transform = create_transform(**resolve_data_config({}, model=loaded.module))
    correct = {}
    with torch.inference_mode():
        for start in range(0, len(samples), 25):
            batch = samples[start:start + 25]
            x = torch.stack([transform(Image.open(s.path).convert("RGB")) for s in batch])
            top1 = loaded.module(x).argmax(1)
            correct.update({s.id: bool(p == s.label) for s, p in zip(batch, top1.tolist())})
    return correct


@pytest.fixture(scope="module")
def clean_run(shared_sample, tmp_path_factory):
    """One real run: three packaged models, clean only, 100 photos spread over classes."""
    from robustbench_lite import run

    out = tmp_path_factory.mktemp("clean")
    summary = run(data=str(shared_sample), models="efficientnet_lite*", transforms="none", limit=N_PHOTOS,
                  out=str(out), device="cpu", report=False)
    records = pd.read_parquet(out / "records.parquet")
    return out, summary, records


@pytest.mark.parametrize("model", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_clean_predictions_match_timm_photo_for_photo(clean_run, shared_sample, model):
    _, _, records = clean_run
    samples = select_samples(open_dataset(shared_sample), limit=N_PHOTOS)
    ours = records[records.model == model].set_index("image_id")["correct1"].to_dict()
    theirs = independent_correct(model, samples)
    assert len(ours) == N_PHOTOS
    assert ours == theirs
    # the packaged weights are real ImageNet weights: well above chance on real photos
    assert sum(ours.values()) / N_PHOTOS > 0.6


def test_summary_has_one_row_per_model_and_condition(clean_run):
    _, summary, records = clean_run
    assert list(summary.model) == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    assert set(summary["transform"]) == {"clean"} and set(summary["severity"]) == {0}
    assert (summary.n == N_PHOTOS).all()
    for _, row in summary.iterrows():
        sub = records[records.model == row.model]
        assert row.top1 == pytest.approx(100 * sub.correct1.mean())
        assert row.top5 == pytest.approx(100 * sub.correct5.mean())
        assert row.top1_low < row.top1 < row.top1_high
    assert (records.label_prob <= records.confidence + 1e-6).all()
    assert records.columns.tolist()[:11] == ["model", "transform", "severity", "image_id", "label", "top5",
                                             "top5_prob", "label_prob", "confidence", "correct1", "correct5"]


def test_class_subset_folder_gives_the_same_predictions(clean_run, shared_manifest, tmp_path):
    from robustbench_lite import run

    _, _, records = clean_run
    lite0 = records[records.model == "efficientnet_lite0"].set_index("image_id")
    rows = [r for r in shared_manifest if r["path"] in lite0.index][:12]
    folder = make_subset_folder(tmp_path / "subset", rows)
    run(data=str(folder), models="efficientnet_lite0", transforms="none", out=str(tmp_path / "out"), device="cpu", report=False)
    subset = pd.read_parquet(tmp_path / "out" / "records.parquet").set_index("image_id")
    assert len(subset) == 12
    for image_id, row in subset.iterrows():
        assert list(row.top5) == list(lite0.loc[image_id, "top5"])
        assert row.label == lite0.loc[image_id, "label"]
        assert row.confidence == pytest.approx(lite0.loc[image_id, "confidence"], abs=1e-5)


def test_labels_are_canonical_imagenet_indices(shared_sample, shared_manifest):
    dataset = open_dataset(shared_sample)
    truth = {r["path"]: int(r["imagenet_index"]) for r in shared_manifest}
    assert len(dataset) == 500
    assert {s.id: s.label for s in dataset.samples} == truth
    assert {i["path"] for i in dataset.ignored} == {"MANIFEST.csv", "README.md"}


def test_limit_is_spread_over_classes_and_independent_of_seed(shared_sample):
    dataset = open_dataset(shared_sample)
    picked = select_samples(dataset, limit=50)
    assert len({s.label for s in picked}) == 50
    assert picked == select_samples(dataset, limit=50)
