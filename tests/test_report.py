"""The report on synthetic run folders: files, fits, embedded plots, escaping, merging and refusals."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from robustbench_lite.cli import analysis as cli_analysis
from robustbench_lite.errors import UserError
from robustbench_lite.analysis.tables import load_runs
from robustbench_lite.report.document import write_report
from conftest import PUBLISHED

TRANSFORMS = {"blur": ("blurry", (0.5, 1.0), 0.5), "grey": ("colour", (0.3, 0.6), 0.3)}


def make_run(run_dir: Path, models=("alpha", "beta", "gamma", "delta", "eps"), skills=(1.3, 0.9, 0.4, 0.0, -0.4),
             n_photos=200,
             fingerprint="fp-1", seed=0, description=None) -> Path:
    """A run folder with records for models x (clean + 2 transforms x 2 severities) x photos, and a manifest.

    A photo is answered right when skill - shift + difficulty + noise > 0 (a probit model), so
    accuracies fall with severity and lie near a line on probit axes.
    """
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(size=n_photos)
    labels = rng.integers(0, 1000, n_photos)
    conditions = [{"transform": "clean", "family": "clean", "severity": 0, "level": 0.0,
                   "description": "the photo as it is", "params": {}}]
    for name, (family, levels, _) in TRANSFORMS.items():
        for severity, level in enumerate(levels, start=1):
            conditions.append({"transform": name, "family": family, "severity": severity, "level": level,
                               "description": description or f"{name} the photo", "params": {"level": "strength"}})
    frames = []
    for model, skill in zip(models, skills):
        for c in conditions:
            shift = 0.0 if c["transform"] == "clean" else TRANSFORMS[c["transform"]][2] * c["severity"]
            z = skill - shift + difficulty + rng.normal(scale=0.5, size=n_photos)
            right = z > 0
            confidence = stats.norm.cdf(0.7 * z + 0.9 + rng.normal(scale=0.7, size=n_photos)).clip(0.05, 0.999)
            wrong_class = (labels + rng.integers(1, 999, n_photos)) % 1000
            top1 = np.where(right, labels, wrong_class)
            top5 = [[int(t), *[int((t + k) % 1000) for k in (1, 2, 3, 4)]] for t in top1]
            frames.append(pd.DataFrame({
                "model": model, "transform": c["transform"], "severity": c["severity"],
                "image_id": [f"n01440764/img{i:04d}.JPEG" for i in range(n_photos)], "label": labels,
                "top5": top5, "top5_prob": [[float(p), *[float((1 - p) / 5)] * 4] for p in confidence],
                "label_prob": np.where(right, confidence, (1 - confidence) / 50).astype(np.float32),
                "confidence": confidence.astype(np.float32), "correct1": right,
                "correct5": right | (rng.random(n_photos) < 0.5),
            }))
    run_dir.mkdir(parents=True, exist_ok=True)
    pd.concat(frames, ignore_index=True).to_parquet(run_dir / "records.parquet")
    manifest = {
        "version": "0.1.0", "config": {"seed": 0, "baseline": None}, "versions": {"python": "3"}, "device": "cpu",
        "dataset": {"root": "/data/photos", "fingerprint": fingerprint, "n_samples": n_photos, "n_classes": 1000},
        "models": {m: {"arch": m, "weights": "packaged", "preprocessing": {"input_size": [3, 224, 224]}} for m in models},
        "conditions": conditions, "skipped": [{"path": "bad.jpg", "reason": "unreadable"}],
        "failed": [{"model": models[0], "transform": "spin", "severity": 1, "error": "boom <b>"}],
        "timings": {}, "status": "complete",
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir


def embedded_pngs(text: str) -> list[str]:
    return re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)


@pytest.fixture(scope="module")
def five_model_report(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("run3") / "run")
    (run / "plots").mkdir()
    (run / "plots" / "examples.png").write_bytes(_tiny_png())
    out = tmp_path_factory.mktemp("report3")
    start = time.perf_counter()
    written = write_report([run], out)
    return run, out, written, time.perf_counter() - start


def _tiny_png() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(1, 1))
    ax.imshow(np.zeros((4, 4, 3)))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def test_five_model_report_writes_every_file(five_model_report):
    _, out, written, seconds = five_model_report
    for name in ("summary.csv", "family_summary.csv", "pairwise.csv", "fit.csv", "effective_robustness.csv",
                 "report.html", "report.md"):
        assert (out / name).is_file(), name
    for name in ("reproducibility", "severity", "drop_heatmap", "confidence", "examples"):
        assert written[f"plot:{name}"].is_file() and written[f"plot:{name}"].parent == out / "plots"
    assert seconds < 30  # a few seconds on 2 cores; generous for a shared machine
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 25 and not summary.duplicated(["model", "transform", "severity"]).any()
    assert (summary.loc[summary["transform"] == "clean", "drop"] == 0).all()
    pairwise = pd.read_csv(out / "pairwise.csv")
    assert len(pairwise) == 5 * 10  # 5 conditions x 10 pairs


def test_five_model_fit_has_a_row_per_condition_and_family(five_model_report):
    _, out, _, _ = five_model_report
    fits = pd.read_csv(out / "fit.csv")
    assert fits.loc[fits["kind"] == "condition", "condition"].tolist() == ["blur@1", "blur@2", "grey@1", "grey@2"]
    assert fits.loc[fits["kind"] == "family", "condition"].tolist() == ["family:blurry", "family:colour"]
    assert (fits["status"] == "ok").all() and (fits["n"] == 5).all() and (fits["n_boot"] == 1000).all()
    assert ((fits["slope_low"] <= fits["slope"]) & (fits["slope"] <= fits["slope_high"])).all()
    er = pd.read_csv(out / "effective_robustness.csv")
    assert len(er) == 6 * 5 and (er["reference"] == "run").all() and (er["placement"] == "indicative").all()
    assert ((er["er_low"] <= er["effective_robustness"]) & (er["effective_robustness"] <= er["er_high"])).all()
    # effective robustness is top1 minus the line's prediction, in points
    assert np.allclose(er["top1"] - er["predicted_top1"], er["effective_robustness"])


def test_five_model_html_is_self_contained(five_model_report):
    _, out, _, _ = five_model_report
    text = (out / "report.html").read_text()
    assert len(embedded_pngs(text)) >= 4
    assert "<script" not in text and 'src="plots/' not in text
    assert "Skipped files: 1. Failed conditions: 1." in text  # the count up front, the list folded
    assert "<summary>Command, folders, device and versions</summary>" in text
    assert "Skipped files: 1 (bad.jpg (unreadable))." in text
    assert "boom &lt;b&gt;" in text  # the failed condition's error, escaped
    markdown = (out / "report.md").read_text()
    assert "![reproducibility](plots/reproducibility.png)" in markdown
    assert "| model |" in markdown and "data:image" not in markdown


def test_two_model_run_says_the_fit_is_unavailable(tmp_path):
    run = make_run(tmp_path / "run2", models=("alpha", "beta"), skills=(1.2, 0.6))
    write_report([run], run, n_boot=50)
    fits = pd.read_csv(run / "fit.csv")
    assert fits["status"].tolist() == ["unavailable: needs >= 3 models, got 2"] * len(fits)
    assert len(fits) == 6 and fits["slope"].isna().all()
    assert pd.read_csv(run / "effective_robustness.csv").empty
    assert "unavailable: needs &gt;= 3 models, got 2" in (run / "report.html").read_text()


def test_user_strings_are_escaped(tmp_path):
    evil = "<script>alert(1)</script>"
    run = make_run(tmp_path / "evil", models=("alpha", "<i>beta</i>", "gam|ma"), description=evil)
    write_report([run], tmp_path / "out", n_boot=20)
    text = (tmp_path / "out" / "report.html").read_text()
    assert evil not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<i>beta</i>" not in text and "&lt;i&gt;beta&lt;/i&gt;" in text
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert evil not in markdown and "gam\\|ma" in markdown


def test_runs_on_different_photos_are_refused(tmp_path):
    a = make_run(tmp_path / "a", fingerprint="fp-1")
    b = make_run(tmp_path / "b", models=("delta", "eps", "zeta"), fingerprint="fp-2")
    with pytest.raises(UserError, match="dataset fingerprint: fp-1 -> fp-2"):
        write_report([a, b], tmp_path / "out")


def test_runs_with_other_conditions_merge_on_the_shared_ones(tmp_path):
    a = make_run(tmp_path / "a")
    b = make_run(tmp_path / "b", models=("delta",), skills=(0.1,))
    manifest = json.loads((b / "manifest.json").read_text())
    manifest["conditions"] = [c for c in manifest["conditions"] if (c["transform"], c["severity"]) != ("grey", 2)]
    (b / "manifest.json").write_text(json.dumps(manifest))
    data = load_runs([a, b])
    assert any("left out: grey@2" in n for n in data.notes)
    assert ("grey", 2) not in set(zip(data.records["transform"], data.records["severity"]))


def test_runs_on_the_same_photos_merge(tmp_path):
    a = make_run(tmp_path / "monday", models=("alpha", "beta", "delta"), skills=(1.3, 0.9, 0.0))
    b = make_run(tmp_path / "tuesday", models=("gamma", "alpha", "eps"), skills=(0.4, 5.0, -0.4), seed=1)
    data = load_runs([a, b])
    assert data.models == ["alpha", "beta", "delta", "gamma", "eps"]
    assert len(data.records) == 5 * 5 * 200 and any("alpha also in" in n for n in data.notes)
    result = CliRunner().invoke(cli_analysis.report_command, [str(a), str(b), "--out", str(tmp_path / "week"),
                                                              "--bootstrap", "50"])
    assert result.exit_code == 0, result.output
    fits = pd.read_csv(tmp_path / "week" / "fit.csv")
    assert (fits["status"] == "ok").all() and (fits["n"] == 5).all()


@pytest.mark.skipif(not PUBLISHED.is_dir(), reason="shared/data/published-accuracies not present")
def test_reference_population_is_drawn(tmp_path):
    run = make_run(tmp_path / "run")
    reference = PUBLISHED / "testbed_val_vs_greyscale.csv"
    written = write_report([run], tmp_path / "out", reference, n_boot=50, reference_where="use_for_line_fit == 1")
    text = written["html"].read_text()
    assert "reference population (335 rows" in text and len(embedded_pngs(text)) >= 4


def test_bad_baseline_is_a_user_error(tmp_path):
    run = make_run(tmp_path / "run")
    with pytest.raises(UserError, match="baseline model 'nobody'"):
        write_report([run], run, baseline="nobody", n_boot=10)


def test_report_through_the_main_cli(tmp_path, capsys):
    from robustbench_lite.cli.commands import main

    run = make_run(tmp_path / "run")
    assert main(["report", str(run), "--bootstrap", "20", "--out", str(tmp_path / "out")]) == 0
    assert f"wrote {tmp_path / 'out' / 'report.html'}" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nowhere")]) == 2
