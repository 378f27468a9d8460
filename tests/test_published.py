"""The published line in a run: effective robustness against the testbed's line, placement, variants,
conditions named in --transforms, and the `reference` / `fit --population` commands."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import special

from conftest import PUBLISHED

from robustbench_lite.analysis.tables import analyse, load_runs
from robustbench_lite.errors import UserError

needs_published = pytest.mark.skipif(not PUBLISHED.is_dir(), reason="../shared/data/published-accuracies is absent")


def published_line(csv: str) -> tuple[float, float, int]:
    """The testbed's line written again: OLS on logit of the use_for_line_fit rows of a shared CSV."""
    table = pd.read_csv(PUBLISHED / csv)
    fit = table[table["use_for_line_fit"] == 1]
    slope, intercept = np.polyfit(special.logit(fit["clean_top1"] / 100), special.logit(fit["shifted_top1"] / 100), 1)
    return float(slope), float(intercept), len(fit)


def greyscale_run(run_dir, clean=(0.9, 0.8, 0.7, 0.6, 0.5), grey=(0.85, 0.7, 0.55, 0.45, 0.3), n=400,
                  val_structure=False):
    """Records of five models on n photos, clean and greyscale@5 (the first k photos right)."""
    frames = []
    for i, (c, g) in enumerate(zip(clean, grey)):
        for transform, severity, accuracy in (("clean", 0, c), ("greyscale", 5, g)):
            right = np.arange(n) < round(accuracy * n)
            frames.append(pd.DataFrame({"model": f"m{i}", "transform": transform, "severity": severity,
                                        "image_id": [f"p{j:04d}" for j in range(n)], "label": 1,
                                        "top5": [[1 if r else 2, 3, 4, 5, 6] for r in right],
                                        "confidence": np.float32(0.7), "label_prob": np.float32(0.5),
                                        "correct1": right, "correct5": right}))
    run_dir.mkdir(parents=True)
    pd.concat(frames, ignore_index=True).to_parquet(run_dir / "records.parquet")
    conditions = [{"transform": "clean", "family": "clean", "severity": 0, "level": 0.0},
                  {"transform": "greyscale", "family": "greyscale", "severity": 5, "level": 1.0}]
    manifest = {"config": {"seed": 0}, "models": {f"m{i}": {} for i in range(5)}, "conditions": conditions,
                "dataset": {"fingerprint": "x", "n_samples": n, "n_classes": 1000, "val_structure": val_structure}}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir


@needs_published
def test_effective_robustness_against_the_published_line_is_computed_from_the_shared_table(tmp_path):
    slope, intercept, n = published_line("testbed_val_vs_greyscale.csv")
    result = analyse(load_runs([greyscale_run(tmp_path / "run")]), n_boot=300, seed=1)
    rows = result.fit.effective.set_index(["reference", "model"]).loc["testbed:greyscale"]
    clean, grey = np.array([0.9, 0.8, 0.7, 0.6, 0.5]), np.array([0.85, 0.7, 0.55, 0.45, 0.3])
    expected = 100 * (grey - special.expit(slope * special.logit(clean) + intercept))
    np.testing.assert_allclose(rows["effective_robustness"].to_numpy(), expected, atol=1e-9)
    assert (rows["reference_n"] == n).all() and n == 85
    assert ((rows["er_low"] <= rows["effective_robustness"]) & (rows["effective_robustness"] <= rows["er_high"])).all()
    versus = np.where(rows["er_low"] > 0, "above", np.where(rows["er_high"] < 0, "below", "on"))
    # a model beyond the clean top-1 of the line's fit models is extrapolated (90 % and 50 % here), the others placed
    fitted = pd.read_csv(PUBLISHED / "testbed_val_vs_greyscale.csv").query("use_for_line_fit == 1")["clean_top1"]
    inside = (100 * clean >= fitted.min()) & (100 * clean <= fitted.max())
    assert inside.tolist() == [False, True, True, True, False]
    assert rows["versus_line"].tolist() == np.where(inside, versus, "extrapolated").tolist()
    np.testing.assert_allclose(rows[["fit_clean_min", "fit_clean_max"]].to_numpy(),
                               [[fitted.min(), fitted.max()]] * 5, atol=1e-4)
    assert (rows["placement"] == "indicative").all()  # 400 synthetic photos are not ImageNet val
    line = result.published.set_index("condition").loc["greyscale@5"]
    assert (line["slope"], line["intercept"], line["n"]) == (pytest.approx(slope, abs=1e-9),
                                                              pytest.approx(intercept, abs=1e-9), 85)
    # five models over 40 pp identify the run's own line too (the condition and its family): rows say `run`
    own = result.fit.effective[result.fit.effective["reference"] == "run"]
    assert own["condition"].value_counts().to_dict() == {"greyscale@5": 5, "family:greyscale": 5}
    assert result.fit.lines.set_index("condition").loc["greyscale@5", "status"] == "ok"


@needs_published
def test_placement_is_val_only_for_data_laid_out_like_imagenet_val(tmp_path):
    placed = analyse(load_runs([greyscale_run(tmp_path / "val", val_structure=True)]), n_boot=20)
    assert placed.placement[0] == "val"
    assert set(placed.fit.effective["placement"]) == {"val"}
    other = analyse(load_runs([greyscale_run(tmp_path / "other")]), n_boot=20)
    assert other.placement[0] == "indicative" and "not ImageNet val" in other.placement[1]


def test_a_condition_without_a_published_counterpart_gets_no_line(tmp_path):
    run = greyscale_run(tmp_path / "run")
    manifest = json.loads((run / "manifest.json").read_text())
    records = pd.read_parquet(run / "records.parquet")
    records.loc[records["transform"] == "greyscale", "severity"] = 3  # greyscale@3: no testbed column
    records.to_parquet(run / "records.parquet")
    manifest["conditions"][1]["severity"] = 3
    (run / "manifest.json").write_text(json.dumps(manifest))
    result = analyse(load_runs([run]), n_boot=20)
    assert result.published.empty and (result.fit.effective["reference"] == "run").all()


def test_conditions_named_in_transforms_pin_their_severity():
    from robustbench_lite.conditions.keys import build_conditions
    from robustbench_lite.conditions.selection import pinned_severities, select_transforms

    text = "greyscale@5,rotate@3,edges"
    specs = select_transforms(text)
    assert [s.name for s in specs] == ["greyscale", "rotate", "edges"]  # greyscale@5 is the transform, not the family
    keys = [c.key for c in build_conditions(specs, [1], pinned_severities(text))]
    assert keys == ["clean", "greyscale@5", "rotate@3", "edges@1"]
    with pytest.raises(UserError, match="rotate has 5 levels"):
        pinned_severities("rotate@9")


def test_variants_are_named_by_resolution_and_share_one_network():
    from robustbench_lite.models import load_models, parse_resolutions, resolve_models

    assert [e.name for e in resolve_models("efficientnet_lite0@160px")] == ["efficientnet_lite0@160px"]
    entries = resolve_models("efficientnet_lite0,efficientnet_lite1", parse_resolutions("128,192px"))
    assert [e.name for e in entries] == ["efficientnet_lite0@128px", "efficientnet_lite0@192px",
                                         "efficientnet_lite1@128px", "efficientnet_lite1@192px"]
    models = load_models(entries[:2], torch.device("cpu"))
    assert models[0].module is models[1].module
    assert [m.geometry.input_size for m in models] == [(128, 128), (192, 192)]
    assert {(m.geometry.crop_pct, m.geometry.interpolation) for m in models} == {(0.875, "bicubic")}
    with pytest.raises(UserError, match="--resolutions"):
        parse_resolutions("big")


@pytest.mark.slow
def test_a_variant_predicts_like_timm_at_that_input_size(cli_run, shared_sample, shared_manifest, tmp_path):
    """lite0@128px on 8 photos equals an independent timm pipeline at input size 128 (crop 0.875, bicubic)."""
    import timm
    from PIL import Image
    from timm.data import create_transform, resolve_data_config

    from robustbench_lite.models import packaged_weights_path

    code, _, err = cli_run("run", "--data", shared_sample, "--models", "efficientnet_lite0@128px", "--limit", 8,
                           "--transforms", "none", "--out", tmp_path / "run", "--no-report")
    assert code == 0, err
    records = pd.read_parquet(tmp_path / "run" / "records.parquet").set_index("image_id")
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    state = torch.load(packaged_weights_path("efficientnet_lite0"), map_location="cpu", weights_only=True)
    net.load_state_dict(dict(zip(net.state_dict().keys(), state.values())))
    pipeline = create_transform(**resolve_data_config({"input_size": (3, 128, 128)}, model=net))
    with torch.inference_mode():
        for image_id, row in records.iterrows():
            x = pipeline(Image.open(shared_sample / image_id).convert("RGB"))[None]
            assert int(net.eval()(x).argmax()) == int(row["top5"][0]), image_id
    assert set(records["model"]) == {"efficientnet_lite0@128px"}


@needs_published
def test_reference_command_prints_the_line_as_json(cli_run):
    slope, intercept, n = published_line("testbed_val_vs_greyscale.csv")
    code, out, _ = cli_run("reference", "greyscale@5", "--scale", "logit", "--format", "json")
    line = json.loads(out)
    assert code == 0 and set(line) == {"condition", "population", "column", "n", "slope", "intercept", "scale"}
    assert (line["n"], line["column"], line["population"]) == (85, "greyscale", "testbed")
    assert line["slope"] == pytest.approx(slope, abs=1e-9) and line["intercept"] == pytest.approx(intercept, abs=1e-9)
    code, out, _ = cli_run("reference", "--list")
    assert code == 0 and "gaussian_noise@3" in out and "imagenet-r" in out
    code, _, err = cli_run("reference", "rotate@3")
    assert code == 2 and err.count("\n") == 1 and "no published counterpart" in err


@needs_published
def test_fit_population_draws_the_seeds_figure(cli_run, tmp_path):
    slope, intercept, _ = published_line("testbed_val_vs_imagenetv2-matched-frequency.csv")
    code, out, err = cli_run("fit", "--population", "testbed", "--shift", "imagenetv2-matched-frequency",
                             "-o", tmp_path / "fickle.png")
    assert code == 0, err
    assert (tmp_path / "fickle.png").stat().st_size > 20_000
    assert f"{slope:.4f}" in out and f"{abs(intercept):.4f}" in out


def test_a_users_table_can_be_tied_to_one_condition(tmp_path):
    from robustbench_lite.analysis.fit import fit_table

    table = pd.DataFrame({"model": list("abcde"), "clean_top1": [60, 70, 80, 75, 85], "shifted_top1": [30, 42, 55, 50, 62]})
    table.to_csv(tmp_path / "paper.csv", index=False)
    run = greyscale_run(tmp_path / "run")
    result = analyse(load_runs([run]), n_boot=50, reference=fit_table(tmp_path / "paper.csv", scale="logit"),
                     reference_condition="greyscale@5")
    slope, intercept = np.polyfit(special.logit(table["clean_top1"] / 100), special.logit(table["shifted_top1"] / 100), 1)
    rows = result.fit.effective.set_index(["reference", "model"]).loc["table:paper.csv"]
    clean, grey = np.array([0.9, 0.8, 0.7, 0.6, 0.5]), np.array([0.85, 0.7, 0.55, 0.45, 0.3])
    np.testing.assert_allclose(rows["effective_robustness"], 100 * (grey - special.expit(slope * special.logit(clean) + intercept)),
                               atol=1e-9)
    assert result.published.set_index("condition").loc["greyscale@5", "reference"] == "table:paper.csv"
    with pytest.raises(UserError, match="not a condition of the run"):
        analyse(load_runs([run]), n_boot=5, reference=fit_table(tmp_path / "paper.csv"), reference_condition="rotate@3")
