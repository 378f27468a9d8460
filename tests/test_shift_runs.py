"""`run --shifts`: natural-shift datasets as conditions beside the transforms, in the same records and summary.

Local shift folders are made here from the shared photos in the release layouts (ImageNetV2's class-index
folders 0-999, ImageNet-R's synset folders of its 200 classes); the run is the real CLI with the real
packaged lite0 weights, and every prediction is checked against an independent forward (timm's own
preprocessing of each photo with PIL): arg-max over all 1,000 logits for V2, over ImageNet-R's 200 only
for ImageNet-R and its clean counterpart `clean@r-classes`.
"""
from __future__ import annotations

import json
import shutil
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from robustbench_lite.cli.commands import main
from robustbench_lite.errors import UserError
from robustbench_lite.conditions.keys import SHIFT_COUNTERPART, condition_key, counterpart_of, parse_condition_key
from robustbench_lite.data.shifts import shift_classes

MODEL = "efficientnet_lite0"
R_INDICES = [int(i) for i in (files("timm") / "data" / "_info" / "imagenet_r_indices.txt").read_text().split()]


def r_classes() -> set[int]:
    return set(R_INDICES)


def place(dest: Path, shared: Path, row: dict, folder: str) -> Path:
    target = dest / folder / Path(row["path"]).name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(shared / row["path"])
    return target


def command(val: Path, shifts: str, out: Path, *extra: str) -> list[str]:
    return ["run", "--data", str(val), "--models", MODEL, "--transforms", "greyscale@5", "--shifts", shifts,
            "--chunk-size", "4", "--device", "cpu", "--save-logits", "--out", str(out), *extra]


@pytest.fixture(scope="module")
def shift_run(shared_sample, shared_manifest, tmp_path_factory):
    """val: 8 photos of R classes + 6 others; V2: 10 other photos by class index; R: 10 more R-class photos + 1 broken."""
    base = tmp_path_factory.mktemp("shifts")
    in_r = [r for r in shared_manifest if int(r["imagenet_index"]) in r_classes()]
    not_r = [r for r in shared_manifest if int(r["imagenet_index"]) not in r_classes()]
    val_rows, r_rows, v2_rows = in_r[:8] + not_r[:6], in_r[-10:], not_r[100:110]
    for row in val_rows:
        place(base / "val", shared_sample, row, row["synset"])
    for row in v2_rows:
        place(base / "v2", shared_sample, row, row["imagenet_index"])
    for row in r_rows:
        place(base / "r", shared_sample, row, row["synset"])
    (base / "r" / r_rows[0]["synset"] / "broken.jpg").write_bytes(b"\xff\xd8 not a photo")
    out = base / "run"
    shifts = f"imagenetv2-matched-frequency={base / 'v2'},imagenet-r={base / 'r'}"
    assert main(command(base / "val", shifts, out)) == 0
    return {"base": base, "out": out, "shifts": shifts, "val": val_rows, "v2": v2_rows, "r": r_rows}


def independent_logits(paths: list[Path]) -> np.ndarray:
    """lite0's logits of each photo, preprocessed by timm's own pipeline (PIL resize and crop)."""
    from timm.data import create_transform, resolve_data_config

    from robustbench_lite.models import load_model, resolve_models

    model = load_model(resolve_models(MODEL)[0], torch.device("cpu"))
    pipeline = create_transform(**resolve_data_config({}, model=model.module))
    with torch.inference_mode():
        batch = torch.stack([pipeline(Image.open(p).convert("RGB")) for p in paths])
        return model.module(batch).numpy()


def test_shift_records_and_summary_equal_an_independent_forward(shift_run, shared_sample):
    out = shift_run["out"]
    records = pd.read_parquet(out / "records.parquet")
    summary = pd.read_csv(out / "summary.csv")
    assert set(zip(records["transform"], records["severity"])) == {
        ("clean", 0), ("greyscale", 5), ("imagenetv2-matched-frequency", 0), ("imagenet-r", 0), ("clean@r-classes", 0)}
    expected = {  # condition -> {image_id: (photo on disk, label)}
        "imagenetv2-matched-frequency": {f"imagenetv2-matched-frequency/{r['imagenet_index']}/{Path(r['path']).name}":
                                         (shared_sample / r["path"], int(r["imagenet_index"])) for r in shift_run["v2"]},
        "imagenet-r": {f"imagenet-r/{r['path']}": (shared_sample / r["path"], int(r["imagenet_index"]))
                       for r in shift_run["r"]},
        "clean@r-classes": {r["path"]: (shared_sample / r["path"], int(r["imagenet_index"]))
                            for r in shift_run["val"] if int(r["imagenet_index"]) in r_classes()},
    }
    assert len(expected["clean@r-classes"]) == 8
    measured = {}
    for condition, photos in expected.items():
        rows = records[records["transform"] == condition].set_index("image_id").loc[list(photos)]
        assert len(rows) == len(records[records["transform"] == condition]) == len(photos)  # exactly these photos
        assert rows["label"].tolist() == [label for _, label in photos.values()]
        logits = independent_logits([path for path, _ in photos.values()])
        np.testing.assert_allclose(np.stack(rows["logits"]).astype(np.float32), logits, atol=0.02)
        if condition == "imagenetv2-matched-frequency":
            predicted = logits.argmax(1)
        else:  # ImageNet-R's protocol: the arg-max over its 200 logits only
            predicted = np.array(R_INDICES)[logits[:, R_INDICES].argmax(1)]
            if condition == "imagenet-r":  # these photos tell the protocols apart: 1,000-class answers differ
                assert (logits.argmax(1) != predicted).any()
            assert all(set(map(int, top5)) <= r_classes() for top5 in rows["top5"])
        assert [int(t[0]) for t in rows["top5"]] == predicted.tolist()
        right = predicted == np.array([label for _, label in photos.values()])
        assert rows["correct1"].tolist() == right.tolist()
        row = summary[summary["transform"] == condition]
        assert len(row) == 1 and int(row["severity"].item()) == 0 and int(row["n"].item()) == len(photos)
        assert row["top1"].item() == pytest.approx(100 * right.mean(), abs=1e-9)
        measured[condition] = (len(photos), 100 * right.mean())
    print("\n" + "; ".join(f"{c}: {n} photos, top-1 {a:.1f} %" for c, (n, a) in measured.items()))


def test_manifest_describes_each_shift(shift_run):
    manifest = json.loads((shift_run["out"] / "manifest.json").read_text())
    base = shift_run["base"]
    assert manifest["config"]["shifts"] == [f"imagenetv2-matched-frequency={base / 'v2'}", f"imagenet-r={base / 'r'}"]
    shifts = manifest["shifts"]
    assert shifts["imagenetv2-matched-frequency"] | {"fingerprint": None} == {
        "root": str(base / "v2"), "n_samples": 10, "n_classes": 10, "fingerprint": None, "counterpart": "clean",
        "classes": 1000}
    assert shifts["imagenet-r"]["n_samples"] == 11 and shifts["imagenet-r"]["classes"] == 200  # the broken file counts
    assert shifts["imagenet-r"]["counterpart"] == "clean@r-classes"
    broken = f"imagenet-r/{shift_run['r'][0]['synset']}/broken.jpg"
    assert [s["path"] for s in manifest["skipped"]] == [broken]  # undecodable: skipped and recorded, by its shift id
    keys = [condition_key(c["transform"], c["severity"]) for c in manifest["conditions"]]
    assert keys == ["clean", "greyscale@5", "imagenetv2-matched-frequency", "imagenet-r", "clean@r-classes"]
    assert (shift_run["out"] / "report.html").is_file()


def test_a_half_done_shift_run_resumes_to_the_same_records(shift_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(shift_run["out"], out)
    (out / "records.parquet").unlink()
    dropped = [p for p in (out / "chunks").glob("*.parquet")
               if "imagenet-r" in p.name and not p.name.startswith("b000000") or "clean_r-classes" in p.name]
    assert len(dropped) == 2 + 2  # R's blocks 1-2 and both blocks of its counterpart: 8 photos in chunks of 4
    for path in dropped:
        path.unlink()
    from robustbench_lite.cli.commands import main as cli_main

    assert cli_main(command(shift_run["base"] / "val", shift_run["shifts"], out, "--no-report")) == 0
    keys = ["model", "transform", "severity", "image_id"]
    got = pd.read_parquet(out / "records.parquet").sort_values(keys).reset_index(drop=True)
    want = pd.read_parquet(shift_run["out"] / "records.parquet").sort_values(keys).reset_index(drop=True)
    assert got[keys + ["label", "correct1"]].equals(want[keys + ["label", "correct1"]])
    assert np.array_equal(np.stack(got["top5"]), np.stack(want["top5"]))
    # the same folder without --shifts keeps the shifts' records and says so in its manifest
    plain = ["run", "--data", str(shift_run["base"] / "val"), "--models", MODEL, "--transforms", "greyscale@5",
             "--chunk-size", "4", "--device", "cpu", "--save-logits", "--out", str(out), "--no-report"]
    assert cli_main(plain) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["shifts"]) == {"imagenetv2-matched-frequency", "imagenet-r"}
    assert len(manifest["config"]["shifts"]) == 2 and manifest["config"]["transforms"] == "greyscale@5"
    assert len(pd.read_parquet(out / "records.parquet")) == len(want)


def test_resume_with_other_shift_photos_is_refused(shift_run, tmp_path, cli_run):
    out = tmp_path / "run"
    shutil.copytree(shift_run["out"], out)
    other = tmp_path / "r2"
    shutil.copytree(shift_run["base"] / "r", other, symlinks=True)
    next(p for p in other.rglob("*") if p.is_symlink()).unlink()
    code, _, err = cli_run(*command(shift_run["base"] / "val", f"imagenet-r={other}", out, "--no-report"))
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "shift imagenet-r: fingerprint" in errors[0]


def test_limit_classes_and_dry_run_count_each_shift(shift_run, cli_run):
    from robustbench_lite.run.config import RunConfig
    from robustbench_lite.run.plan import plan_run

    base = shift_run["base"]
    config = RunConfig(data=str(base / "val"), models=MODEL, transforms="none", limit=6, device="cpu",
                       shifts=f"imagenetv2-matched-frequency={base / 'v2'},imagenet-r={base / 'r'}")
    plan = plan_run(config, echo=lambda _: None)
    v2, r = plan.shifts
    assert len(v2.samples) == 6 and len({s.label for s in v2.samples}) == 6  # --limit per shift, spread over classes
    assert len(r.samples) == 6 and len({s.label for s in r.samples}) == 6
    counterpart = next(p for p in plan.photo_sets if p.tag == "clean@r-classes")
    assert [s.id for s in counterpart.samples] == [s.id for s in plan.samples if s.label in r_classes()]
    wanted = [int(shift_run["val"][0]["imagenet_index"])] + [int(row["imagenet_index"]) for row in shift_run["r"][1:3]]
    plan = plan_run(RunConfig(data=str(base / "val"), models=MODEL, transforms="none", device="cpu",
                              classes=",".join(map(str, wanted)), shifts=f"imagenet-r={base / 'r'}"), echo=lambda _: None)
    assert {s.label for s in plan.samples} == set(wanted[:1])
    assert {s.label for s in plan.shifts[0].samples} == set(wanted[1:])  # --classes intersects each shift too
    code, _, err = cli_run("run", "--data", base / "val", "--models", MODEL, "--transforms", "none", "--device", "cpu",
                           "--shifts", f"imagenet-r={base / 'r'}", "--dry-run")
    assert code == 0, err
    # 14 val photos x clean + 11 R photos + 8 counterpart photos
    assert "= 33 forward passes" in err and "shift imagenet-r: 11 photos" in err and "clean@r-classes (8 photos" in err


def test_bad_shift_name_and_missing_folder_are_one_line_errors(shift_run, cli_run, tmp_path):
    val = shift_run["base"] / "val"
    code, _, err = cli_run("run", "--data", val, "--models", MODEL, "--shifts", "imagenet-x", "--out", tmp_path / "a")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "unknown shift dataset 'imagenet-x'" in err and "imagenetv2-matched-frequency" in err and "imagenet-a" in err
    code, _, err = cli_run("run", "--data", val, "--models", MODEL, "--shifts", f"imagenet-r={tmp_path / 'nowhere'}",
                           "--out", tmp_path / "b")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no such folder" in err and "nowhere" in err
    code, _, err = cli_run("run", "--data", val, "--models", MODEL, "--shifts", f"imagenet-r={shift_run['base'] / 'v2'}",
                           "--out", tmp_path / "c")
    assert code == 2 and "outside imagenet-r's 200 classes" in err  # a V2 folder is not ImageNet-R


def test_toml_and_api_take_shifts(tmp_path):
    from robustbench_lite.run.config import RunConfig, read_config_file

    (tmp_path / "bench.toml").write_text('shifts = ["imagenet-r=r", "imagenet-sketch"]\n')
    assert read_config_file(tmp_path / "bench.toml")["shifts"] == [f"imagenet-r={(tmp_path / 'r').resolve()}",
                                                                    "imagenet-sketch"]  # beside the file
    assert RunConfig.from_dict({"shifts": "imagenet-a, imagenetv2-top-images"}).shifts == ["imagenet-a", "imagenetv2-top-images"]
    with pytest.raises(UserError, match="named twice"):
        RunConfig.from_dict({"shifts": "imagenet-a,imagenet-a=/x"})


def test_condition_keys_of_shifts_and_counterparts():
    assert condition_key("clean", 0) == "clean" and condition_key("rotate", 3) == "rotate@3"
    for name in ("imagenet-r", "imagenetv2-matched-frequency", "clean@r-classes", "clean@a-classes"):
        assert condition_key(name, 0) == name and parse_condition_key(name) == (name, 0)
    assert parse_condition_key("rotate@3") == ("rotate", 3)
    assert counterpart_of("imagenet-r") == "clean@r-classes" and counterpart_of("imagenet-a") == "clean@a-classes"
    assert counterpart_of("imagenet-sketch") == "clean" and SHIFT_COUNTERPART["imagenet-r"] == "clean@r-classes"
    a_indices = [int(i) for i in (files("timm") / "data" / "_info" / "imagenet_a_indices.txt").read_text().split()]
    assert shift_classes("imagenet-r") == frozenset(R_INDICES) and shift_classes("imagenet-a") == frozenset(a_indices)
    assert len(R_INDICES) == len(a_indices) == 200 and shift_classes("imagenet-sketch") is None


def test_imagenet_a_brings_its_own_counterpart_and_classes(shift_run, shared_sample, shared_manifest, tmp_path):
    from robustbench_lite.run.config import RunConfig
    from robustbench_lite.run.plan import plan_run

    a_classes = shift_classes("imagenet-a")
    for row in [r for r in shared_manifest if int(r["imagenet_index"]) in a_classes][:3]:
        place(tmp_path / "a", shared_sample, row, row["synset"])
    plan = plan_run(RunConfig(data=str(shift_run["base"] / "val"), models=MODEL, transforms="none", device="cpu",
                              shifts=f"imagenet-a={tmp_path / 'a'}"), echo=lambda _: None)
    sets = {p.tag: p for p in plan.photo_sets}
    assert list(sets) == ["", "imagenet-a", "clean@a-classes"]
    assert sets["imagenet-a"].logit_classes == sets["clean@a-classes"].logit_classes == a_classes
    assert [s.id for s in sets["clean@a-classes"].samples] == [s.id for s in plan.samples if s.label in a_classes]
    assert sets[""].logit_classes is None and "clean@r-classes" not in sets  # a counterpart only with its shift
    assert [c["transform"] for c in plan.shift_conditions()] == ["imagenet-a", "clean@a-classes"]


def test_an_undecodable_photo_in_two_photo_sets_is_listed_once(tmp_path):
    from robustbench_lite.results.store import ChunkStore

    store = ChunkStore(tmp_path)
    broken = {"path": "n01443537/x.JPEG", "reason": "cannot identify image file"}
    store.write_skipped(0, [broken])
    store.write_skipped(0, [broken, {"path": "imagenet-r/n01443537/y.jpg", "reason": "truncated"}], part="clean@r-classes")
    assert [s["path"] for s in store.skipped()] == ["n01443537/x.JPEG", "imagenet-r/n01443537/y.jpg"]
    assert len(list((tmp_path / "chunks").glob("b000000*-skipped.json"))) == 2  # the val block's file is not overwritten


def test_a_name_alone_uses_the_cached_dataset(shift_run, shared_sample, shared_manifest, tmp_path, monkeypatch):
    from robustbench_lite.run.config import RunConfig
    from robustbench_lite.run.plan import plan_run

    monkeypatch.setenv("ROBUSTBENCH_LITE_CACHE", str(tmp_path))
    for row in shared_manifest[300:304]:  # laid out in the cache as fetch_named_dataset leaves it: synset folders
        place(tmp_path / "imagenet-sketch", shared_sample, row, row["synset"])
    plan = plan_run(RunConfig(data=str(shift_run["base"] / "val"), models=MODEL, transforms="none", device="cpu",
                              shifts="imagenet-sketch"), echo=lambda _: None)
    assert plan.config.shifts == ["imagenet-sketch"] and plan.shifts[0].root == tmp_path / "imagenet-sketch"
    assert sorted(s.id for s in plan.shifts[0].samples) == sorted(f"imagenet-sketch/{r['path']}" for r in shared_manifest[300:304])
    assert plan.shifts[0].describe()["counterpart"] == "clean" and plan.shifts[0].classes is None
