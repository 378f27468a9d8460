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
