"""timm's published population (`--population timm|timm-in1k`) and every run's published.csv.

The inputs are timm's eight results CSVs, kept verbatim in tools/data/timm-results (their git blob ids at
huggingface/pytorch-image-models aa4b5850c1543fa488abf260f18390eda46cf85d are written below, read from that
commit's tree). Every expected line here is computed again from those files with the csv module and numpy's
polyfit, never through the package's loader.
"""
from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import math
import re
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, make_subset_folder
from robustbench_lite.analysis import references as ref
from robustbench_lite.analysis.timm_population import is_in1k_only, pretrained_tag
from robustbench_lite.errors import UserError

SRC = REPO / "tools" / "data" / "timm-results"
DATA = REPO / "robustbench_lite" / "reference_data"
BLOBS = {  # git ls-tree aa4b5850c1543fa488abf260f18390eda46cf85d results/
    "results-imagenet-a-clean.csv": "205b8cf02a0996aa961fdb92117f5b86339376f2",
    "results-imagenet-a.csv": "5cdb48d62d354adacd1ef38a7af2da527cd0797f",
    "results-imagenet-r-clean.csv": "9b3a49aecfd3567ca89e92505f84d5bbd5b17deb",
    "results-imagenet-r.csv": "2a2ceed9e024a9f0b39abc5dd71dc592507d4d34",
    "results-imagenet-real.csv": "6a90941b7659baf916cf729ed148711edc8c4dc4",
    "results-imagenet.csv": "a4e4627d6aa329e39354529e47569d8236bbaffd",
    "results-imagenetv2-matched-frequency.csv": "a494c6bbf4259b01058f37b175c43bd894f5e600",
    "results-sketch.csv": "91678f20caf02eb7a10f08348e8c0ee4eb24fbe9",
}
# shift -> (clean file, shifted file), as timm's results/README.md pairs them
PAIRS = {"imagenetv2-matched-frequency": ("results-imagenet.csv", "results-imagenetv2-matched-frequency.csv"),
         "imagenet-sketch": ("results-imagenet.csv", "results-sketch.csv"),
         "imagenet-r": ("results-imagenet-r-clean.csv", "results-imagenet-r.csv"),
         "imagenet-a": ("results-imagenet-a-clean.csv", "results-imagenet-a.csv")}
OTHER_DATA = {"in22k", "in21k", "in12k", "laion2b", "laiona", "openai", "clip", "jft", "ig1b", "sw", "swsl", "ssl", "wsl",
              "ssld", "ns", "swag", "seer", "m38m", "m30m", "webli", "yfcc100m", "mim"}  # the list


def _top1(name: str) -> dict[tuple[str, int], float]:
    with open(SRC / name, newline="") as f:
        return {(r["model"], int(r["img_size"])): float(r["top1"]) for r in csv.DictReader(f)}


def _in1k(model: str) -> bool:
    """The issue's rule, written again: the tag after the dot ends in in1k and none of its words is other data."""
    tag = model.partition(".")[2]
    return tag.endswith("in1k") and not OTHER_DATA.intersection(re.split(r"_", tag))


def _independent_line(shift: str, scale: str = "logit", in1k: bool = False) -> tuple[float, float, int]:
    clean_file, shifted_file = PAIRS[shift]
    val, clean, shifted = _top1("results-imagenet.csv"), _top1(clean_file), _top1(shifted_file)
    keys = [k for k in val if k in clean and k in shifted and (not in1k or _in1k(k[0]))]
    f = (lambda p: math.log(p / (1 - p))) if scale == "logit" else NormalDist().inv_cdf
    slope, intercept = np.polyfit([f(clean[k] / 100) for k in keys], [f(shifted[k] / 100) for k in keys], 1)
    return float(slope), float(intercept), len(keys)


def _builder():
    spec = importlib.util.spec_from_file_location("build_timm_population", REPO / "tools" / "build_timm_population.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_inputs_are_timms_files_at_the_pinned_commit():
    for name, blob in BLOBS.items():
        data = (SRC / name).read_bytes()
        assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == blob, name
        assert len(data) < 1 << 20
    assert "Apache License" in (SRC / "LICENSE").read_text() and "Version 2.0" in (SRC / "LICENSE").read_text()


def test_rebuild_gives_the_same_bytes(tmp_path):
    _builder().build(SRC, tmp_path)
    for name in ("timm_results.csv.gz", "timm.json", "SOURCE_timm.md", "timm_LICENSE.txt"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name
    meta = json.loads((DATA / "timm.json").read_text())
    assert meta["source_commit"] == "aa4b5850c1543fa488abf260f18390eda46cf85d"
    assert meta["results_commit"] == "4e5207c7bb6592474ca56e28b2cf85be8f1a550f"
    assert meta["licence"] == "Apache-2.0" and meta["rows"] == 1556
    assert meta["sha256"] == {name: hashlib.sha256((SRC / name).read_bytes()).hexdigest() for name in BLOBS}


def test_joined_table_holds_every_files_value_by_model_and_size():
    table = ref.population_table("timm")
    assert len(table) == 1556
    by_key = {m: row for m, row in zip(table["model"], table.to_dict("records"))}
    columns = {"results-imagenet.csv": "val", "results-imagenetv2-matched-frequency.csv": "imagenetv2-matched-frequency",
               "results-sketch.csv": "imagenet-sketch", "results-imagenet-r-clean.csv": "val-on-imagenet-r-classes",
               "results-imagenet-r.csv": "imagenet-r", "results-imagenet-a-clean.csv": "val-on-imagenet-a-classes",
               "results-imagenet-a.csv": "imagenet-a"}
    val = _top1("results-imagenet.csv")
    for name, column in columns.items():
        values = _top1(name)
        for model, size in val:
            got = by_key[f"{model}@{size}px"][column]
            if (model, size) in values:
                assert got == values[(model, size)], (name, model, size)
            else:
                assert math.isnan(got), (name, model, size)
    assert math.isnan(by_key["resnet50.tv_in1k@224px"]["imagenet-a"])  # timm's A file lacks this one row
    lite0 = by_key["tf_efficientnet_lite0.in1k@224px"]
    assert lite0["val"] == 74.846 and lite0["imagenet-sketch"] == 24.392


@pytest.mark.parametrize("shift", list(PAIRS))
def test_reference_json_is_the_ols_line_of_every_row(cli_run, shift):
    code, out, _ = cli_run("reference", shift, "--population", "timm", "--format", "json")
    assert code == 0
    line = json.loads(out)
    slope, intercept, n = _independent_line(shift)
    assert line["population"] == "timm" and line["scale"] == "logit"
    assert line["n"] == n == (1555 if shift == "imagenet-a" else 1556)
    assert abs(line["slope"] - slope) < 1e-9 and abs(line["intercept"] - intercept) < 1e-9


@pytest.mark.parametrize("shift", list(PAIRS))
def test_reference_timm_in1k_is_the_line_of_the_in1k_rows(cli_run, shift):
    code, out, _ = cli_run("reference", shift, "--population", "timm-in1k", "--format", "json")
    assert code == 0
    line = json.loads(out)
    slope, intercept, n = _independent_line(shift, in1k=True)
    assert line["population"] == "timm-in1k" and line["n"] == n == (1161 if shift == "imagenet-a" else 1162)
    assert abs(line["slope"] - slope) < 1e-9 and abs(line["intercept"] - intercept) < 1e-9


@pytest.mark.parametrize("population", ["timm", "timm-in1k"])
def test_fit_population_draws_timms_population_and_its_line(cli_run, tmp_path, population):
    from robustbench_lite.report.population_figure import draw_population_figure

    slope, intercept, n = _independent_line("imagenet-sketch", in1k=population == "timm-in1k")
    code, out, err = cli_run("fit", "--population", population, "--shift", "imagenet-sketch", "-o", tmp_path / "f.png")
    assert code == 0, err
    assert f"{population} rows ({n} on the line)" in out and f"{slope:.4f}" in out and f"{abs(intercept):.4f}" in out
    drawn = draw_population_figure("imagenet-sketch", tmp_path / "g.png", population=population, min_clean=None)
    assert drawn["n_points"] == 1556 and drawn["n"] == n and drawn["population"] == population
    assert abs(drawn["slope"] - slope) < 1e-9


def test_probit_on_request_and_the_table_form(cli_run):
    line = ref.reference_line("imagenet-sketch", "probit", population="timm")
    slope, intercept, n = _independent_line("imagenet-sketch", "probit")
    assert line.n == n and abs(line.slope - slope) < 1e-9 and abs(line.intercept - intercept) < 1e-9
    code, out, _ = cli_run("reference", "imagenet-r", "--population", "timm")
    assert code == 0 and "timm:imagenet-r (x: val-on-imagenet-r-classes), n = 1556" in out
    code, out, _ = cli_run("reference", "--list", "--population", "timm-in1k")
    assert code == 0 and len(out.splitlines()) == 4 and "timm-in1k:imagenet-a" in out


def test_timm_has_no_line_for_a_corruption(cli_run):
    code, _, err = cli_run("reference", "fog@3", "--population", "timm")
    assert code == 2 and "'fog@3': the timm population has no line for it" in err and "--population testbed" in err
    with pytest.raises(UserError, match="population 'laion'"):
        ref.reference_line("imagenet-r", population="laion")


def test_the_testbed_stays_the_default():
    assert ref.reference_line("imagenet-sketch") == ref.reference_line("imagenet-sketch", population="testbed")
    assert ref.reference_line("imagenet-sketch").n == 85
    assert ref.shift_population("imagenetv2-topimages", "timm") == "testbed"  # timm does not publish it
    assert ref.shift_population("imagenet-sketch", "timm-in1k") == "timm-in1k"


@pytest.mark.parametrize("name, in1k", [
    ("tf_efficientnet_lite0.in1k", True), ("resnet50.a1_in1k", True), ("deit_base_distilled_patch16_224.fb_in1k", True),
    ("convnext_base.fb_in22k_ft_in1k", False), ("vit_base_patch16_clip_224.openai_ft_in1k", False),
    ("eva02_large_patch14_448.mim_m38m_ft_in22k_in1k", False), ("resnext101_32x16d.fb_swsl_ig1b_ft_in1k", False),
    ("tf_efficientnet_b0.ns_jft_in1k", False), ("seresnextaa101d_32x8d.sw_in12k_ft_in1k", False),
    ("vit_base_patch16_224.augreg2_in21k_ft_in1k", False), ("regnety_1280.swag_ft_in1k", False),
    ("tresnet_l.miil_in1k_448", False),  # the tag ends in 448, not in1k: the rule as stated leaves it out
    ("resmlp_24_224.fb_dino", False)])
def test_in1k_rule(name, in1k):
    assert is_in1k_only(name) is in1k is _in1k(name)
    assert pretrained_tag(name) == name.split(".", 1)[1]


# ------------------------------------------------------------------- runs: published.csv, the report, the figure

def test_config_takes_the_population(tmp_path):
    from robustbench_lite.run.config import RunConfig, read_config_file

    assert RunConfig().population == "testbed"
    toml = tmp_path / "bench.toml"
    toml.write_text('population = "timm-in1k"\n')
    assert RunConfig.from_dict(read_config_file(toml)).population == "timm-in1k"
    with pytest.raises(UserError, match=r"robustbench_lite.run\(\): population must be one of testbed, timm, timm-in1k"):
        RunConfig.from_dict({"population": "laion"}, origin="robustbench_lite.run()")


def test_a_run_without_report_writes_published_csv(cli_run, shared_sample, shared_manifest, tmp_path):
    val = make_subset_folder(tmp_path / "val", shared_manifest[:4])
    out = tmp_path / "run"
    code, _, err = cli_run("run", "--data", val, "--models", "efficientnet_lite0,efficientnet_lite0@192px",
                           "--transforms", "none", "--device", "cpu", "--workers", "0", "--no-report", "--out", out)
    assert code == 0, err
    rows = list(csv.DictReader(open(out / "published.csv")))
    assert len(rows) == 1  # timm publishes lite0 at 224 px only: the 192 px variant has no row
    row = rows[0]
    assert (row["model"], row["source"], row["published_model"], row["img_size"]) == \
        ("efficientnet_lite0", "timm", "tf_efficientnet_lite0.in1k", "224")
    assert (row["top1"], row["sketch"], row["imagenet_r"], row["imagenet_a"]) == ("74.846", "24.392", "36.033", "3.053")
    assert row["placement"] == "indicative" and row["measured_top1"] == "" and row["difference"] == ""


def _place(dest: Path, shared: Path, row: dict, folder: str) -> None:
    target = dest / folder / Path(row["path"]).name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(shared / row["path"])


@pytest.fixture(scope="module")
def timm_run(shared_sample, shared_manifest, tmp_path_factory):
    """lite0 with --population timm on 100 val photos, ImageNetV2 (10, class-index folders) and Sketch (10)."""
    from robustbench_lite.cli.commands import main

    base = tmp_path_factory.mktemp("timm")
    for row in shared_manifest[:100]:
        _place(base / "val", shared_sample, row, row["synset"])
    for row in shared_manifest[300:310]:
        _place(base / "v2", shared_sample, row, row["imagenet_index"])
    for row in shared_manifest[400:410]:
        _place(base / "sketch", shared_sample, row, row["synset"])
    out = base / "run"
    assert main(["run", "--data", str(base / "val"), "--models", "efficientnet_lite0", "--transforms", "none",
                 "--shifts", f"imagenetv2-matched-frequency={base / 'v2'},imagenet-sketch={base / 'sketch'}",
                 "--population", "timm", "--device", "cpu", "--workers", "0", "--out", str(out)]) == 0
    return out


def test_a_timm_run_reads_its_shifts_on_timms_lines(timm_run):
    lines = pd.read_csv(timm_run / "references.csv").set_index("condition")
    for shift in ("imagenetv2-matched-frequency", "imagenet-sketch"):
        slope, intercept, n = _independent_line(shift)
        assert lines.loc[shift, "population"] == "timm" and lines.loc[shift, "n"] == n == 1556
        assert abs(lines.loc[shift, "slope"] - slope) < 1e-9 and abs(lines.loc[shift, "intercept"] - intercept) < 1e-9
    assert json.loads((timm_run / "manifest.json").read_text())["config"]["population"] == "timm"
    published = pd.read_csv(timm_run / "published.csv")
    assert published["published_model"].tolist() == ["tf_efficientnet_lite0.in1k"]
    report = (timm_run / "report.md").read_text()
    assert "Population timm: timm's published results (1556 (model, img_size) rows" in report
    assert "| efficientnet_lite0 | tf_efficientnet_lite0.in1k | 224 | 74.846 |" in report


def test_the_natural_shift_panels_draw_timms_rows_and_the_testbed_line(timm_run):
    from robustbench_lite.analysis.tables import analyse, load_runs
    from robustbench_lite.report.drawing import model_colours
    from robustbench_lite.report.shift_panels import plot_natural_shifts

    result = analyse(load_runs([timm_run]), n_boot=20)
    figure = plot_natural_shifts(result, model_colours(result.data.models))
    for ax, shift in zip(figure.axes, ("imagenetv2-matched-frequency", "imagenet-sketch")):
        labels = ax.get_legend_handles_labels()[1]
        assert "timm, line-fit rows" in labels and "imagenet-testbed's line (comparison)" in labels
        grey = [c for c in ax.collections if c.get_label() == "timm, line-fit rows"]
        assert len(grey[0].get_offsets()) == 1556
        assert "line fitted on 1556 timm rows" in ax.get_title(loc="left")
    in1k = analyse(load_runs([timm_run]), n_boot=20, population="timm-in1k")
    figure = plot_natural_shifts(in1k, model_colours(in1k.data.models))
    counts = {c.get_label(): len(c.get_offsets()) for c in figure.axes[0].collections if "timm-in1k" in str(c.get_label())}
    assert counts == {"timm-in1k, line-fit rows": 1162, "timm-in1k, other rows": 1556 - 1162}
    plain = analyse(load_runs([timm_run]), n_boot=20, population="testbed")
    assert set(plain.published["population"]) == {"testbed"}


def test_headline_warns_when_a_val_clean_top1_misses_its_published_value(timm_run):
    """The shared photos are easier than val: lite0 is right on far more of them than 74.846 %, so read as a
    val run (placement forced) its interval excludes the published value and the headline says so."""
    from robustbench_lite.analysis.published_rows import published_rows
    from robustbench_lite.analysis.tables import analyse, load_runs
    from robustbench_lite.report.published_models import published_warnings

    result = analyse(load_runs([timm_run]), n_boot=20)
    assert published_warnings(result) == []  # indicative placement: no comparison
    records = pd.read_parquet(timm_run / "records.parquet")
    clean = records.loc[records["transform"] == "clean"]
    k, n = sum(int(top[0]) == int(label) for top, label in zip(clean["top5"], clean["label"])), len(clean)
    z = NormalDist().inv_cdf(0.975)
    p, denom = k / n, 1 + z * z / n
    centre, half = (p + z * z / (2 * n)) / denom, z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low, high = 100 * (centre - half), 100 * (centre + half)
    assert not low <= 74.846 <= high, (k, n, low, high)  # the premise of this test, on these 100 photos
    result.published_models = published_rows(result.data.manifests, result.summary, "val")
    row = result.published_models.iloc[0]
    assert row["measured_top1"] == pytest.approx(100 * k / n) and row["difference"] == pytest.approx(100 * k / n - 74.846)
    assert row["measured_top1_low"] == pytest.approx(low) and row["measured_top1_high"] == pytest.approx(high)
    warning, = published_warnings(result)
    assert warning.startswith(f"Check preprocessing and weights: efficientnet_lite0 scored {100 * k / n:.2f} %")
    assert "timm publishes 74.846 % for tf_efficientnet_lite0.in1k at 224 px" in warning


def test_published_name_of_a_timm_model_without_tag_is_its_default():
    import timm

    from robustbench_lite.analysis.published_rows import published_name

    assert published_name({"source": "timm", "arch": "resnet50"}) == timm.list_pretrained("resnet50.*")[0]
    assert published_name({"source": "timm", "arch": "convnext_atto.d2_in1k"}) == "convnext_atto.d2_in1k"
    assert published_name({"source": "packaged", "arch": "tf_efficientnet_lite2"}) == "tf_efficientnet_lite2.in1k"
    assert published_name({"source": "checkpoint", "arch": "resnet50"}) is None
