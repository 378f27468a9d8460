"""The imagenet-c corruption protocol: the released dataset's recipe, computed again here step by step."""
from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

pytestmark = pytest.mark.slow


def release_input(path, name: str, severity: int, image_id: str) -> torch.Tensor:
    """PIL Resize(256) + CenterCrop(224), the release recipe at 224 px, uint8, JPEG 85 (4:2:0), back to [0, 1]."""
    import torchvision.transforms as T

    from robustbench_lite.conditions.registry import builtin_module
    from robustbench_lite.conditions.rng import PhotoRNG, photo_seed

    release = builtin_module("_release")
    photo = T.CenterCrop(224)(T.Resize(256, interpolation=T.InterpolationMode.BILINEAR)(Image.open(path).convert("RGB")))
    x = torch.from_numpy(np.asarray(photo).copy()).permute(2, 0, 1)[None].float() / 255
    y = release.release_corruption(name, x, severity, PhotoRNG([photo_seed(0, name, severity, image_id)]))
    saved = io.BytesIO()
    Image.fromarray(release.as_uint8(y)[0].permute(1, 2, 0).numpy()).save(saved, format="JPEG", quality=85,
                                                                          subsampling="4:2:0")
    decoded = np.asarray(Image.open(io.BytesIO(saved.getvalue())).convert("RGB")).copy()
    return torch.from_numpy(decoded).permute(2, 0, 1)[None].float() / 255


def test_imagenet_c_protocol_records_equal_the_release_recipe(cli_run, shared_sample, tmp_path):
    from robustbench_lite.models import load_model, resolve_models

    code, _, err = cli_run("run", "--data", shared_sample, "--models", "efficientnet_lite0,efficientnet_lite1",
                           "--limit", 4, "--transforms", "brightness@3,elastic_transform@3", "--corruption-protocol", "imagenet-c",
                           "--out", tmp_path / "run", "--save-logits", "--no-report")
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["config"]["corruption_protocol"] == "imagenet-c"
    records = pd.read_parquet(tmp_path / "run" / "records.parquet")
    models = {m: load_model(resolve_models(m)[0], torch.device("cpu")) for m in ("efficientnet_lite0", "efficientnet_lite1")}
    shifted = records[records["transform"] != "clean"]
    assert len(shifted) == 2 * 8
    with torch.inference_mode():
        for row in shifted.itertuples():
            model = models[row.model]
            mean = torch.tensor(model.preprocessing.mean).view(1, 3, 1, 1)
            std = torch.tensor(model.preprocessing.std).view(1, 3, 1, 1)
            x = release_input(shared_sample / row.image_id, row.transform, row.severity, row.image_id)
            if row.model == "efficientnet_lite1":  # 240 px: one bicubic resize of the 224 px JPEG, no crop
                x = torch.nn.functional.interpolate(x, size=(240, 240), mode="bicubic", antialias=True).clamp(0, 1)
            logits = model.module((x - mean) / std)
            np.testing.assert_allclose(np.asarray(row.logits, dtype=np.float32), logits[0].numpy(), atol=0.05)
            assert int(logits.argmax()) == int(row.top5[0]), (row.transform, row.image_id)


def test_the_run_names_the_on_disk_lines(shared_sample, tmp_path, cli_run):
    code, _, err = cli_run("run", "--data", shared_sample, "--models", "efficientnet_lite0", "--limit", 4,
                           "--transforms", "fog@3", "--corruption-protocol", "imagenet-c", "--out", tmp_path / "run")
    assert code == 0, err
    references = pd.read_csv(tmp_path / "run" / "references.csv")
    assert references["reference"].tolist() == ["testbed:imagenet-c.fog.3_on-disk"]


@pytest.fixture(scope="module")
def full_runs(tmp_path_factory, shared_sample):
    """lite0 over all 15 x 5 ImageNet-C conditions on 3 shared photos, under each protocol (with reports)."""
    from robustbench_lite.cli.commands import main

    folder = tmp_path_factory.mktemp("full-runs")
    for protocol in ("native", "imagenet-c"):
        code = main(["run", "--data", str(shared_sample), "--models", "efficientnet_lite0", "--limit", "3",
                     "--transforms", "imagenet-c", "--corruption-protocol", protocol, "--out", str(folder / protocol)])
        assert code == 0
    return folder


def test_native_run_has_no_alexnet_mce_and_says_why(full_runs):
    ranking = pd.read_csv(full_runs / "native" / "family_summary.csv")
    assert ranking.loc[ranking["family"] == "corruptions", ["mce_alexnet", "relative_mce_alexnet"]].isna().all().all()
    assert ranking["mce"].notna().all()  # the baseline-relative mCE stays
    report = (full_runs / "native" / "report.md").read_text()
    assert "mce_alexnet and relative_mce_alexnet are empty: this run's corruption protocol is native" in report
    references = pd.read_csv(full_runs / "native" / "references.csv")
    assert len(references) == 75
    parity = references.set_index("condition")["recipe"]
    assert (parity.drop("zoom_blur@1") == "release").all() and "a defect of the testbed's data" in parity["zoom_blur@1"]
    assert "Recipes: this run's corruption protocol is native" in report


def test_imagenet_c_run_mce_equals_an_independent_computation(full_runs, shared_sample):
    from conftest import PUBLISHED

    folder = full_runs / "imagenet-c"
    summary = pd.read_csv(folder / "summary.csv")
    alexnet = pd.read_csv(PUBLISHED / "imagenet-c_alexnet_errors.csv").set_index("corruption")
    clean_err = 1 - summary.loc[summary["transform"] == "clean", "top1"].iloc[0] / 100
    ce, rel = [], []
    for name in alexnet.index[:15] if len(alexnet) >= 15 else alexnet.index:
        err = 1 - summary.loc[summary["transform"] == name].sort_values("severity")["top1"].to_numpy() / 100
        ref = alexnet.loc[name, [f"severity_{s}" for s in range(1, 6)]].to_numpy(dtype=float)
        ce.append(err.sum() / ref.sum())
        rel.append((err - clean_err).sum() / (ref - 0.4348).sum())
    assert len(ce) == 15
    family = pd.read_csv(folder / "family_summary.csv").set_index("family").loc["corruptions"]
    assert family["mce_alexnet"] == pytest.approx(100 * np.mean(ce), abs=1e-6)
    assert family["relative_mce_alexnet"] == pytest.approx(100 * np.mean(rel), abs=1e-6)
    report = (folder / "report.md").read_text()
    assert "indicative: the run's photos are not ImageNet val" in report  # 3 shared photos are not val
    references = pd.read_csv(folder / "references.csv").set_index("condition")
    assert references.loc["snow@3", "recipe"].startswith("the release's ImageMagick motion blur")
    assert references.loc["motion_blur@1", "recipe"] != "release" and references.loc["frost@2", "recipe"] == "release"
    effective = pd.read_csv(folder / "effective_robustness.csv")
    placed = set(effective.loc[effective["reference"] != "run", "condition"])
    assert "snow@3" not in placed and "motion_blur@5" not in placed and "frost@2" in placed
