"""Whole runs on real photos: seeded determinism, plug-ins end to end, greyscale against PIL, real reports."""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from robustbench_lite import run
from robustbench_lite.data.datasets import open_dataset, select_samples
from robustbench_lite.models import load_model, resolve_models
from robustbench_lite.conditions.registry import unregister_transform

KEYS = ["model", "transform", "severity", "image_id"]
PLUGINS = Path(__file__).parent / "plugins_data"


def records(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "records.parquet").sort_values(KEYS).reset_index(drop=True)


def test_batch_size_and_workers_never_change_results(shared_sample, tmp_path):
    common = dict(data=str(shared_sample), models="efficientnet_lite0", transforms="border_shift,elastic,gaussian_noise",
                  severities="3", limit=32, device="cpu", report=False)
    run(**common, batch_size=1, workers=0, out=str(tmp_path / "b1w0"))
    run(**common, batch_size=32, workers=2, out=str(tmp_path / "b32w2"))
    a, b = records(tmp_path / "b1w0"), records(tmp_path / "b32w2")
    assert len(a) == 32 * 4 and a[KEYS].equals(b[KEYS])
    assert (a["top5"].map(list) == b["top5"].map(list)).mean() >= 0.99  # float sums may order differently by batch
    assert (a["top5"].map(lambda t: t[0]) == b["top5"].map(lambda t: t[0])).all()
    assert (a["confidence"] - b["confidence"]).abs().max() < 1e-4


def test_plugin_file_runs_end_to_end(cli_run, shared_sample, tmp_path):
    out = tmp_path / "run"
    try:
        code, _, err = cli_run("run", "--data", shared_sample, "--models", "efficientnet_lite0", "--limit", "8",
                               "--plugin", PLUGINS / "invert_colours.py", "--transforms", "invert_colours",
                               "--no-report", "--out", out, "--device", "cpu")
    finally:
        unregister_transform("invert_colours")
    assert code == 0, err
    recs = records(out)
    assert set(zip(recs["transform"], recs["severity"])) == {("clean", 0), ("invert_colours", 1)}
    summary = pd.read_csv(out / "summary.csv")
    row = summary[summary["transform"] == "invert_colours"].iloc[0]
    assert row["n"] == 8 and row["severity"] == 1 and row["level"] == 1.0 and row["family"] == "test_plugins"


def test_entry_point_plugin_runs_end_to_end(shared_sample, tmp_path, monkeypatch):
    shutil.copytree(PLUGINS / "fakeplug", tmp_path / "site", dirs_exist_ok=True)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    sys.modules.pop("fakeplug_mod", None)
    try:
        run(data=str(shared_sample), models="efficientnet_lite0", limit=6, transforms="fakeplug_halve",
            out=str(tmp_path / "run"), device="cpu", report=False)
    finally:
        for name in ("fakeplug_halve", "fakeplug_black"):
            unregister_transform(name)
    recs = records(tmp_path / "run")
    assert set(recs["transform"]) == {"clean", "fakeplug_halve"} and len(recs) == 12


def test_greyscale_level5_matches_pil_convert_L(shared_sample, tmp_path):
    """Our batched BT.601 greyscale vs PIL's convert("L") at the model's input geometry, with lite0."""
    from timm.data import create_transform, resolve_data_config

    n = 200
    summary = run(data=str(shared_sample), models="efficientnet_lite0", transforms="greyscale", severities="5", limit=n,
                  out=str(tmp_path / "run"), device="cpu", report=False)
    ours = summary[(summary["transform"] == "greyscale") & (summary["severity"] == 5)]["top1"].item()
    model = load_model(resolve_models("efficientnet_lite0")[0], torch.device("cpu"))
    pipeline = create_transform(**resolve_data_config({}, model=model.module))
    geometry, finish = pipeline.transforms[:2], pipeline.transforms[2:]
    samples = select_samples(open_dataset(shared_sample), limit=n)
    correct = 0
    with torch.inference_mode():
        for start in range(0, n, 25):
            batch = []
            for s in samples[start:start + 25]:
                img = Image.open(s.path).convert("RGB")
                for op in geometry:
                    img = op(img)
                img = img.convert("L").convert("RGB")
                for op in finish:
                    img = op(img)
                batch.append(img)
            top1 = model.module(torch.stack(batch)).argmax(1)
            correct += sum(int(p == s.label) for p, s in zip(top1.tolist(), samples[start:start + 25]))
    theirs = 100 * correct / n
    print(f"\ngreyscale level 5, lite0, {n} photos: ours {ours:.1f}% vs PIL convert('L') {theirs:.1f}%")
    assert abs(ours - theirs) <= 1.5


@pytest.fixture(scope="module")
def three_model_report(shared_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "run"
    run(data=str(shared_sample), models="efficientnet_lite*", transforms="family:greyscale,rotate", severities="5", limit=16,
        out=str(out), device="cpu")
    return out


def test_three_model_run_writes_fits_and_an_html_report(three_model_report):
    out = three_model_report
    fit = pd.read_csv(out / "fit.csv")
    conditions = {"greyscale@5", "greyscale_contrast@5", "posterise@5", "rotate@5"}
    assert conditions <= set(fit["condition"])
    rows = fit[fit["condition"].isin(conditions)]
    assert ((rows["n"] + rows["n_excluded"]) == 3).all()  # models at 0 or 100 % are left out of a logit fit
    # three models of 85-86 % clean top-1 identify no line of their own: it is reported, and used nowhere
    assert rows[rows["n"] == 3]["status"].str.startswith("not identified: 3 models spanning").all()
    er = pd.read_csv(out / "effective_robustness.csv")
    assert (er["reference"] != "run").all()
    published = er[er["condition"] == "greyscale@5"]
    assert len(published) == 3 and (published["reference"] == "testbed:greyscale").all()
    assert (published["reference_n"] == 85).all() and (published["placement"] == "indicative").all()
    references = pd.read_csv(out / "references.csv").set_index("condition")
    assert list(references.index) == ["greyscale@5"]  # rotate and the other greyscale transforms have no counterpart
    assert "No published counterpart (no population drawn, no line): greyscale_contrast@5" in (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html)) == 5  # 4 figures + the example grid
    assert 'alt="trouble"' in html  # label-free estimates and risk-coverage curves
    assert (out / "plots" / "examples.png").exists()
    # only what the report shows is drawn: no own line is identified (no reproducibility panels) and every
    # transform has one severity (the heatmap shows them; no accuracy-vs-severity panels)
    assert {p.name for p in (out / "plots").glob("*.png")} == {"drop_heatmap.png", "confidence.png", "published.png",
                                                             "examples.png", "trouble.png"}


def test_two_model_report_says_the_fit_is_unavailable(cli_run, three_model_report, tmp_path):
    records_ = pd.read_parquet(three_model_report / "records.parquet")
    two = tmp_path / "two"
    two.mkdir()
    records_[records_["model"] != "efficientnet_lite2"].to_parquet(two / "records.parquet")
    import json

    manifest = json.loads((three_model_report / "manifest.json").read_text())
    manifest["models"].pop("efficientnet_lite2")
    (two / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = cli_run("report", two)
    assert code == 0, err
    fit = pd.read_csv(two / "fit.csv")
    assert fit["status"].str.startswith("unavailable: needs >= 3 models").all()
    assert "unavailable" in (two / "report.md").read_text()


def test_checkpoint_models_get_short_unique_names_and_the_manifest_keeps_the_path(shared_sample, tmp_path, cli_run):
    """Two checkpoints with one stem (lite0's packaged weights saved as .pth in two folders): the tables name them
    ARCH@FOLDER/FILE, never the full path; a unique one is ARCH@STEM; the manifest keeps each full path."""
    import json

    from robustbench_lite.models import packaged_weights_path

    state = torch.load(packaged_weights_path("efficientnet_lite0"), map_location="cpu", weights_only=True)
    paths = [tmp_path / "first" / "best.pth", tmp_path / "second" / "best.pth", tmp_path / "second" / "lite0.pth"]
    for path in paths:
        path.parent.mkdir(exist_ok=True)
        torch.save(state, path)
    out = tmp_path / "run"
    models = ",".join(f"tf_efficientnet_lite0@{p}" for p in paths)
    code, _, err = cli_run("run", "--data", shared_sample, "--models", models, "--transforms", "none", "--limit", "4",
                           "--device", "cpu", "--no-report", "--out", out)
    assert code == 0, err
    names = ["tf_efficientnet_lite0@first/best.pth", "tf_efficientnet_lite0@second/best.pth", "tf_efficientnet_lite0@lite0"]
    assert sorted(pd.read_csv(out / "summary.csv")["model"]) == sorted(names)
    assert sorted(pd.read_parquet(out / "records.parquet")["model"].unique()) == sorted(names)
    manifest = json.loads((out / "manifest.json").read_text())
    assert {name: manifest["models"][name]["weights"] for name in names} == dict(zip(names, map(str, paths)))
    assert str(tmp_path) not in " ".join(names)
    top1 = pd.read_csv(out / "summary.csv").set_index("model")["top1"]
    assert top1.nunique() == 1  # the same weights three times: the same accuracy under each name


def test_checkpoint_display_names_lengthen_only_where_they_collide(tmp_path):
    tokens = [f"tf_efficientnet_lite0@{tmp_path}/r1/best.pth", f"tf_efficientnet_lite0@{tmp_path}/r2/best.pth",
              f"tf_efficientnet_lite0@{tmp_path}/r2/best.safetensors", f"resnet18@{tmp_path}/r1/best.pth", "efficientnet_lite0"]
    entries = resolve_models(",".join(tokens))
    assert [e.name for e in entries] == ["tf_efficientnet_lite0@r1/best.pth", "tf_efficientnet_lite0@r2/best.pth",
                                         "tf_efficientnet_lite0@best.safetensors", "resnet18@best", "efficientnet_lite0"]
    assert [e.path for e in entries[:2]] == [f"{tmp_path}/r1/best.pth", f"{tmp_path}/r2/best.pth"]
    variants = resolve_models(f"tf_efficientnet_lite0@{tmp_path}/w.pth", [160, 224])
    assert [(e.name, e.base, e.input_size) for e in variants] == [
        ("tf_efficientnet_lite0@w@160px", "tf_efficientnet_lite0@w", 160), ("tf_efficientnet_lite0@w@224px", "tf_efficientnet_lite0@w", 224)]


def test_run_prints_the_top1_and_effective_robustness_tables(shared_sample, tmp_path, cli_run):
    """`run` prints what `demo` prints (one function): top-1 per condition as in summary.csv, effective robustness
    against the published line (greyscale@5 is placed) as in effective_robustness.csv, and the report's path."""
    out = tmp_path / "run"
    code, stdout, err = cli_run("run", "--data", shared_sample, "--models", "efficientnet_lite0",
                                "--transforms", "greyscale@5,rotate@3", "--limit", "8", "--device", "cpu", "--out", out)
    assert code == 0, err
    lines = stdout.splitlines()
    assert "top-1 (%):" in lines, stdout
    from robustbench_lite.cli.results_table import results_text

    summary = pd.read_csv(out / "summary.csv")
    assert stdout == results_text(summary, out) + "\n"
    top = lines.index("top-1 (%):")
    assert lines[top + 1].split() == ["condition", "clean", "greyscale@5", "rotate@3"]
    want = summary.set_index("transform")["top1"]
    assert lines[top + 3].split() == ["efficientnet_lite0", *(f"{want[t]:.1f}" for t in ("clean", "greyscale", "rotate"))]
    er = pd.read_csv(out / "effective_robustness.csv")
    row = er.loc[(er["reference"] != "run") & (er["condition"] == "greyscale@5")].iloc[0]
    shown = f"({row['effective_robustness']:.1f})" if row["versus_line"] == "extrapolated" else f"{row['effective_robustness']:.1f}"
    at = next(i for i, line in enumerate(lines) if line.startswith("effective robustness against the published lines"))
    assert lines[at + 3].split() == ["efficientnet_lite0", shown]
    assert lines[-1] == f"report: {out / 'report.html'}"


def test_the_printed_effective_robustness_marks_extrapolated_rows_and_leaves_them_out_of_means(tmp_path):
    from robustbench_lite.cli.results_table import MAX_COLUMNS, effective_robustness_table

    def table(conditions):
        rows = [{"condition": c, "model": m, "reference": "testbed:x", "placement": "indicative",
                 "effective_robustness": er, "versus_line": "extrapolated" if m == "a" and i == 0 else "below"}
                for i, c in enumerate(conditions) for m, er in (("a", -31.84 - i), ("b", 7.26 + i))]
        path = tmp_path / f"er{len(conditions)}.csv"
        pd.DataFrame(rows).to_csv(path, index=False)
        return effective_robustness_table(path).splitlines(), pd.DataFrame(rows)

    lines, _ = table(["gaussian_noise@3", "fog@3"])
    assert lines[3].split() == ["a", "(-31.8)", "-32.8"] and lines[4].split() == ["b", "7.3", "8.3"]
    assert lines[-1].startswith("(in parentheses: extrapolated")
    many = [f"c{i}@3" for i in range(MAX_COLUMNS + 1)]
    lines, rows = table(many)
    placed = rows.loc[(rows["model"] == "a") & (rows["versus_line"] != "extrapolated"), "effective_robustness"]
    assert lines[3].split() == ["a", f"{placed.mean():.1f}", str(len(many) - 1), "1"]


def test_the_result_table_stays_short_for_many_conditions_and_models():
    from robustbench_lite.cli.results_table import MAX_ROWS, top1_table

    rng = np.random.default_rng(2)
    rows = [{"model": f"m{i:02d}", "transform": "clean", "family": "clean", "severity": 0, "top1": 80.0 + i / 10}
            for i in range(25)]
    rows += [{"model": f"m{i:02d}", "transform": t, "family": fam, "severity": s, "top1": float(rng.uniform(0, 80))}
             for i in range(25) for t, fam in (("fog", "corruptions"), ("contrast", "corruptions"), ("rotate", "distortions"))
             for s in range(1, 6)]
    summary = pd.DataFrame(rows)
    lines = top1_table(summary).splitlines()
    assert lines[0] == "top-1 (%), clean and each family's mean over its conditions (16 conditions in summary.csv):"
    assert lines[1].split() == ["family", "clean", "corruptions", "distortions"]
    m3 = summary[summary["model"] == "m03"]
    want = [m3.loc[m3["family"] == f, "top1"].mean() for f in ("clean", "corruptions", "distortions")]
    assert lines[6].split() == ["m03", *(f"{v:.1f}" for v in want)]
    assert len(lines) == 3 + MAX_ROWS + 1 and lines[-1].startswith("... and 5 more models")
