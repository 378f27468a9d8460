"""`--shifts objectnet=DIR` on a small folder in ObjectNet's release layout made from the shared photos:
the border is cropped, only the 113 overlapping classes are scored, a prediction counts when it falls in
an ImageNet class of the photo's ObjectNet class (checked against lite0 run here by hand), the counterpart
clean@objectnet-classes is added and both sit on the testbed's ObjectNet line."""
from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest
import pyarrow.parquet as pq
import torch
from PIL import Image, ImageOps

from robustbench_lite.data import objectnet
from robustbench_lite.errors import UserError
from robustbench_lite.run.config import RunConfig
from robustbench_lite.run.engine import run_benchmark
from conftest import SHARED_SAMPLE

SAMPLE = SHARED_SAMPLE


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """images/<class folder>/<photo>.png: a shared photo of a mapped ImageNet class, framed by 1 red pixel
    as the release frames them; plus a class ObjectNet has and ImageNet lacks."""
    if not (SAMPLE / "MANIFEST.csv").exists():
        pytest.skip("shared photos not found")
    root = tmp_path_factory.mktemp("objectnet") / "objectnet-1.0"
    by_label = {int(r["imagenet_index"]): SAMPLE / r["path"] for r in csv.DictReader(open(SAMPLE / "MANIFEST.csv"))}
    made = 0
    for name, info in objectnet.mapping()["classes"].items():
        for index in info["imagenet"]:
            if index in by_label and made < 12:
                target = root / "images" / name / f"{by_label[index].stem}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                with Image.open(by_label[index]) as photo:
                    ImageOps.expand(photo.convert("RGB"), border=1, fill=(255, 0, 0)).save(target)
                made += 1
    other = root / "images" / "air_freshener"
    other.mkdir(parents=True)
    Image.new("RGB", (64, 64)).save(other / "a.png")
    return root


def test_objectnet_is_scored_on_its_classes_and_placed_on_its_line(folder, tmp_path):
    classes = sorted(objectnet.scored_classes() & {int(r["imagenet_index"]) for r in csv.DictReader(open(SAMPLE / "MANIFEST.csv"))})
    out = tmp_path / "run"
    config = RunConfig(data=str(SAMPLE), models="efficientnet_lite0", transforms="none", out=str(out),
                       classes=",".join(map(str, classes)), shifts=[f"objectnet={folder}"])
    assert run_benchmark(config, echo=lambda _: None).exit_code == 0
    summary = pd.read_csv(out / "summary.csv").set_index("transform")
    assert {"objectnet", "clean@objectnet-classes"} <= set(summary.index)
    records = pq.read_table(out / "records.parquet").to_pandas()
    shift = records[records["transform"] == "objectnet"]
    assert len(shift) == 12 and shift["image_id"].str.startswith("objectnet/").all()  # air_freshener left out

    # by hand: border cropped, timm's preprocessing, logits on the 125 classes, right if in the photo's group
    import timm

    from robustbench_lite.models import load_models, resolve_models

    model = load_models(resolve_models("efficientnet_lite0"), torch.device("cpu"))[0]
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model.module))
    scored = sorted(objectnet.scored_classes())  # argmax over the 125 = the merged argmax over 113
    group_of = {i: g for g in objectnet.groups() for i in g}
    right = {}
    for row in shift.itertuples():
        name, file = row.image_id.split("/")[1:]
        with Image.open(folder / "images" / name / file) as photo:
            x = transform(ImageOps.crop(photo.convert("RGB"), border=2))[None]
        with torch.inference_mode():
            logits = model.module(x)[0]
        answer = scored[int(logits[scored].argmax())]
        right[row.image_id] = answer in group_of[row.label]
    assert dict(zip(shift["image_id"], shift["correct1"])) == right
    assert summary.loc["objectnet", "top1"] == pytest.approx(100 * np.mean(list(right.values())))

    effective = pd.read_csv(out / "effective_robustness.csv")
    placed = effective[(effective["condition"] == "objectnet") & (effective["reference"] != "run")]
    assert len(placed) == 1 and placed["reference"].iloc[0] == "testbed:objectnet-1.0-beta"
    shifts = pd.read_csv(out / "shifts.csv")
    assert shifts.loc[shifts["shift"] == "objectnet", "counterpart"].iloc[0] == "clean@objectnet-classes"


def test_objectnet_is_never_downloaded():
    with pytest.raises(UserError, match="objectnet.dev"):
        run_benchmark(RunConfig(data=str(SAMPLE), shifts=["objectnet"], dry_run=True), echo=lambda _: None)


def test_the_mapping_is_the_testbeds():
    data = objectnet.mapping()
    ids = [i for c in data["classes"].values() for i in c["imagenet"]]
    assert len(data["classes"]) == 113 and len(ids) == len(set(ids)) == 125
    assert data["classes"]["alarm_clock"]["imagenet"] == [409, 530]  # analog clock; digital clock
    assert data["source"]["licence"] == "MIT" and data["border"] == 2
