"""Natural shifts in the report: counterpart placement, effective robustness against the testbed's lines
(ImageNet-A's two pieces), the synthetic-vs-natural Spearman table, the panels and the report's text.

The run folders are synthesised in the real record schema (records.record_schema, written as the
store writes records.parquet): model m answers the first round(accuracy * n) photos of a condition right.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import special, stats

from robustbench_lite.analysis import references
from robustbench_lite.analysis.tables import analyse, load_runs
from robustbench_lite.results.records import record_schema
from robustbench_lite.report.document import write_report
from robustbench_lite.analysis.shifts import shift_lines

MODELS = ("m0", "m1", "m2", "m3", "m4", "m5")
# condition key -> (transform, severity, photo-id prefix, n photos, accuracy per model)
CONDITIONS = {
    "clean": ("clean", 0, "val", 400, (0.84, 0.80, 0.75, 0.70, 0.65, 0.60)),  # within the testbed fit models
    "clean@r-classes": ("clean@r-classes", 0, "val", 200, (0.92, 0.90, 0.86, 0.84, 0.80, 0.78)),
    "imagenet-r": ("imagenet-r", 0, "imagenet-r", 300, (0.45, 0.30, 0.36, 0.25, 0.28, 0.18)),
    "imagenetv2-matched-frequency": ("imagenetv2-matched-frequency", 0, "imagenetv2-matched-frequency", 300,
                                     (0.75, 0.69, 0.62, 0.58, 0.52, 0.47)),
    "greyscale@5": ("greyscale", 5, "val", 400, (0.80, 0.72, 0.69, 0.62, 0.58, 0.50)),
    "fog@3": ("fog", 3, "val", 400, (0.55, 0.52, 0.40, 0.42, 0.33, 0.30)),
    "edges@1": ("edges", 1, "val", 400, (0.20, 0.12, 0.15, 0.08, 0.10, 0.05)),
    "rotate@3": ("rotate", 3, "val", 400, (0.70, 0.66, 0.58, 0.57, 0.50, 0.46)),
}
SYNTHETIC = ["greyscale@5", "fog@3", "edges@1", "rotate@3"]
SHIFTS = ["imagenet-r", "imagenetv2-matched-frequency"]
FAMILY = {"greyscale": "colour", "fog": "corruptions", "edges": "outlines", "rotate": "geometric"}


def _records(model: str, transform: str, severity: int, prefix: str, n: int, accuracy: float) -> pa.Table:
    right = np.arange(n) < round(accuracy * n)
    labels = np.arange(n) % 200
    top1 = np.where(right, labels, (labels + 1) % 1000)
    top5 = np.stack([top1, *[(top1 + k) % 1000 for k in (2, 3, 4, 5)]], axis=1).astype(np.int16)
    probs = np.tile(np.array([0.6, 0.1, 0.1, 0.1, 0.1], np.float32), (n, 1))
    return pa.table({
        "model": pa.array([model] * n, pa.string()), "transform": pa.array([transform] * n, pa.string()),
        "severity": pa.array(np.full(n, severity, np.int16)),
        "image_id": pa.array([f"{prefix}/p{j:04d}.JPEG" for j in range(n)], pa.string()),
        "label": pa.array(labels.astype(np.int16)),
        "top5": pa.FixedSizeListArray.from_arrays(pa.array(top5.reshape(-1)), 5),
        "top5_prob": pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), 5),
        "label_prob": pa.array(np.where(right, 0.6, 0.01).astype(np.float32)),
        "confidence": pa.array(np.full(n, 0.6, np.float32)), "correct1": pa.array(right),
        "correct5": pa.array(right), "sixteen_class_answer": pa.array(["dog"] * n, pa.string()),
        "sixteen_class_correct": pa.array(np.zeros(n, bool), mask=np.ones(n, bool)),
        "stimulus_condition": pa.nulls(n, pa.string()), "frame": pa.nulls(n, pa.int16()),
    }, schema=record_schema(False))


def make_shift_run(run_dir: Path, models=MODELS, conditions=CONDITIONS, list_shifts: bool = True) -> Path:
    """A run folder: records.parquet in the record schema and a manifest with the run side's `shifts`."""
    index = {m: i for i, m in enumerate(MODELS)}
    tables = [_records(m, t, s, prefix, n, acc[index[m]]) for m in models
              for t, s, prefix, n, acc in conditions.values()]
    run_dir.mkdir(parents=True)
    pq.write_table(pa.concat_tables(tables), run_dir / "records.parquet")
    listed = [c for c in conditions.values() if list_shifts or not (references.is_natural_shift(c[0])
                                                                      or references.is_counterpart(c[0]))]
    shifts = {t: {"root": f"/data/{t}", "n_samples": n, "n_classes": 200, "fingerprint": "fp", "classes": 200
                  if references.counterpart(t) != "clean" else 1000, "counterpart": references.counterpart(t)}
              for t, _, _, n, _ in conditions.values() if references.is_natural_shift(t)}
    manifest = {
        "config": {"seed": 0, "shifts": list(shifts)}, "models": {m: {} for m in models}, "status": "complete",
        "conditions": [{"transform": t, "family": FAMILY.get(t, "natural shifts" if s == 0 and t != "clean" else t),
                        "severity": s, "level": float(s)} for t, s, *_ in listed],
        "dataset": {"root": "/data/val", "fingerprint": "x", "n_samples": 400, "n_classes": 200, "val_structure": False},
        "shifts": shifts,
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir


def accuracy(key: str, model: str) -> float:
    """An accuracy computed here from the pattern the records were made with (first k of n right)."""
    _, _, _, n, acc = CONDITIONS[key]
    return round(acc[MODELS.index(model)] * n) / n


def _close(figure) -> None:
    import matplotlib.pyplot as plt

    plt.close(figure)


def records_accuracy(run_dir: Path, transform: str) -> pd.Series:
    """Top-1 per model (fraction) read straight from records.parquet, not through the package."""
    table = pq.read_table(run_dir / "records.parquet", columns=["model", "transform", "correct1"]).to_pandas()
    return table.loc[table["transform"] == transform].groupby("model")["correct1"].mean()


def logit_line(intercept: float, slope: float, clean):
    """The testbed's line, written out: expit(slope * logit(clean) + intercept)."""
    return special.expit(slope * special.logit(np.asarray(clean, dtype=float)) + intercept)


@pytest.fixture(scope="module")
def six_models(tmp_path_factory):
    from robustbench_lite.report.document import render_report

    run = make_shift_run(tmp_path_factory.mktemp("shifts") / "run")
    result = analyse(load_runs([run]), n_boot=200)
    written = render_report(result, run)
    return run, result, written


def test_condition_keys_and_shift_names():
    from robustbench_lite.conditions.keys import condition_key

    assert [condition_key("imagenet-r", 0), condition_key("clean@r-classes", 0), condition_key("clean", 0),
            condition_key("rotate", 3)] == ["imagenet-r", "clean@r-classes", "clean", "rotate@3"]
    assert references.testbed_shift("imagenetv2-top-images") == "imagenetv2-topimages"
    assert references.testbed_shift("imagenetv2-topimages") == "imagenetv2-topimages"
    assert references.testbed_shift("rotate") is None and not references.is_natural_shift("rotate")
    assert references.is_natural_shift("objectnet")  # measured from a local copy (--shifts objectnet=DIR)
    assert [references.counterpart(s) for s in ("imagenet-r", "imagenet-a", "imagenet-sketch")] == [
        "clean@r-classes", "clean@a-classes", "clean"]
    lines, rows = shift_lines(["imagenetv2-top-images"], "logit", "val")
    assert lines["imagenetv2-top-images"][0] == "testbed:imagenetv2-topimages" and rows[0]["n"] == 85


def test_imagenet_r_is_placed_on_its_counterpart(six_models):
    run, _, _ = six_models
    r_classes, clean = records_accuracy(run, "clean@r-classes"), records_accuracy(run, "clean")
    assert r_classes["m0"] == 0.92 and clean["m0"] == 0.84
    er = pd.read_csv(run / "effective_robustness.csv")
    rows = er.loc[(er["condition"] == "imagenet-r") & (er["reference"] == "testbed:imagenet-r")].set_index("model")
    np.testing.assert_allclose(rows["clean_top1"], 100 * r_classes[rows.index], atol=1e-9)
    assert (rows["counterpart"] == "clean@r-classes").all() and (rows["kind"] == "shift").all()
    v2 = er.loc[(er["condition"] == "imagenetv2-matched-frequency") & (er["reference"] != "run")].set_index("model")
    np.testing.assert_allclose(v2["clean_top1"], 100 * clean[v2.index], atol=1e-9)
    shifts = pd.read_csv(run / "shifts.csv")
    assert list(shifts.columns) == ["model", "shift", "counterpart", "counterpart_top1", "top1", "drop",
                                    "effective_robustness", "er_low", "er_high", "versus_line", "fit_clean_min",
                                    "fit_clean_max", "reference", "reference_n", "placement"]
    r = shifts.loc[shifts["shift"] == "imagenet-r"].set_index("model")
    np.testing.assert_allclose(r["counterpart_top1"], 100 * r_classes[r.index], atol=1e-9)
    summary = pd.read_csv(run / "summary.csv").set_index(["model", "transform"])
    assert summary.loc[("m0", "imagenet-r"), "counterpart"] == "clean@r-classes"
    assert summary.loc[("m0", "imagenet-r"), "drop"] == pytest.approx(92.0 - 45.0)  # from clean@r-classes
    assert summary.loc[("m0", "imagenetv2-matched-frequency"), "drop"] == pytest.approx(84.0 - 75.0)  # from clean
    assert summary.loc[("m0", "fog"), "counterpart"] == "clean"
    family = pd.read_csv(run / "family_summary.csv").set_index(["model", "family"])
    assert family.loc[("m0", "natural shifts"), "n_conditions"] == 2  # the counterpart is no condition


def test_effective_robustness_against_the_published_lines(six_models):
    run, _, _ = six_models
    er = pd.read_csv(run / "effective_robustness.csv")
    for shift, (intercept, slope), counterpart in [("imagenet-r", (-2.1077156197680713, 0.636843984281646),
                                                    "clean@r-classes"),
                                                   ("imagenetv2-matched-frequency",
                                                    (-0.4813069457734013, 0.9113725552359271), "clean")]:
        x, y = records_accuracy(run, counterpart), records_accuracy(run, shift)
        rows = er.loc[(er["condition"] == shift) & (er["reference"] != "run")].set_index("model").loc[list(MODELS)]
        line = references.reference_line(shift)
        expected = 100 * (y[rows.index] - references.predict(line, x[rows.index]))
        np.testing.assert_allclose(rows["effective_robustness"], expected, atol=1e-9)
        np.testing.assert_allclose(rows["effective_robustness"], 100 * (y[rows.index] - logit_line(
            intercept, slope, x[rows.index])), atol=1e-6)  # the README's published constants
        assert (rows["reference_n"] == line.n).all()
    imagenet_r = er.set_index(["condition", "reference", "model"]).loc[("imagenet-r", "testbed:imagenet-r", "m0")]
    assert imagenet_r["effective_robustness"] == pytest.approx(8.4674, abs=1e-4)


def _own_line_er(run: Path, key: str) -> pd.Series:
    """Effective robustness against the run's own logit line, fitted here with numpy across the six models."""
    transform, severity = key.split("@")
    x, y = records_accuracy(run, "clean")[list(MODELS)], records_accuracy(run, transform)[list(MODELS)]
    slope, intercept = np.polyfit(special.logit(x), special.logit(y), 1)
    return 100 * (y - logit_line(intercept, slope, x))


def test_spearman_across_models_matches_scipy(six_models):
    run, _, _ = six_models
    table = pd.read_csv(run / "shift_correlation.csv")
    assert list(table.columns) == ["synthetic", "synthetic_reference", "shift", "shift_reference", "n_models",
                                   "spearman", "ci_low", "ci_high", "identified", "note"]
    assert len(table) == 8 and table["identified"].all() and (table["n_models"] == 6).all()
    assert table["synthetic"].drop_duplicates().tolist() == SYNTHETIC
    er = {}
    for key, testbed in (("greyscale@5", "greyscale@5"), ("fog@3", "fog@3")):
        transform = key.split("@")[0]
        x, y = records_accuracy(run, "clean")[list(MODELS)], records_accuracy(run, transform)[list(MODELS)]
        er[key] = 100 * (y - references.predict(references.reference_line(testbed), x))
    er["edges@1"], er["rotate@3"] = _own_line_er(run, "edges@1"), _own_line_er(run, "rotate@3")
    for shift, counterpart in (("imagenet-r", "clean@r-classes"), ("imagenetv2-matched-frequency", "clean")):
        x, y = records_accuracy(run, counterpart)[list(MODELS)], records_accuracy(run, shift)[list(MODELS)]
        er[shift] = 100 * (y - references.predict(references.reference_line(shift), x))
    for row in table.itertuples():
        expected = stats.spearmanr(er[row.synthetic].to_numpy(), er[row.shift].to_numpy()).statistic
        assert row.spearman == pytest.approx(expected, abs=1e-12), (row.synthetic, row.shift)
        assert row.ci_low - 1e-12 <= row.spearman <= row.ci_high + 1e-12
    refs = table.drop_duplicates("synthetic").set_index("synthetic")["synthetic_reference"]
    assert refs.to_dict() == {"greyscale@5": "testbed:greyscale", "fog@3": "testbed:imagenet-c.fog.3_in-memory",
                              "edges@1": "run's own line", "rotate@3": "run's own line"}
    pair = table.set_index(["synthetic", "shift"]).loc[("greyscale@5", "imagenet-r"), "spearman"]
    # ranks 2 1 3 4 6 5 against 6 2 5 3 4 1: squared rank differences sum to 42, rho = 1 - 6 * 42 / (6 * 35)
    assert pair == pytest.approx(1 - 6 * 42 / 210, abs=1e-12)


def test_the_report_shows_the_shift_panels_and_the_correlation_table(six_models):
    from robustbench_lite.report.drawing import model_colours
    from robustbench_lite.report.shift_panels import plot_natural_shifts

    run, result, written = six_models
    assert written["plot:natural_shifts"] == run / "plots" / "natural_shifts.png"
    assert written["plot:natural_shifts"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    figure = plot_natural_shifts(result, model_colours(result.data.models))
    titles = [ax.get_title(loc="left") for ax in figure.axes if ax.get_visible() and ax.axison]
    assert titles == ["ImageNet-R\nline fitted on 80 testbed models",
                      "ImageNetV2 MatchedFrequency\nline fitted on 85 testbed models",
                      "ObjectNet 1.0 beta, line fitted on\n85 models; reference only:\nnot measured by this run"]
    r_panel = figure.axes[0]
    assert r_panel.get_xlim()[0] < special.logit(0.76) and special.logit(0.92) < r_panel.get_xlim()[1]
    _close(figure)
    markdown = (run / "report.md").read_text()
    assert "## Natural shifts" in markdown and "![natural_shifts](plots/natural_shifts.png)" in markdown
    assert "| synthetic | synthetic_reference | shift | n_models | spearman | ci_low | ci_high | identified | note |" \
        in markdown
    assert "8 of 8 pairs are identified" in markdown and "most synthetic shifts does not predict" in markdown
    assert "| m0 | imagenet-r | clean@r-classes | 92.0 | 45.0 | 47.0 | 8.5 |" in markdown
    html = (run / "report.html").read_text()
    assert '<img alt="natural_shifts"' in html and '<h2 id="natural-shifts">Natural shifts</h2>' in html


def test_three_models_are_not_identified(tmp_path, capsys):
    from robustbench_lite.cli.commands import main

    run = make_shift_run(tmp_path / "run", models=MODELS[:3])
    assert main(["report", str(run), "--bootstrap", "50"]) == 0
    table = pd.read_csv(run / "shift_correlation.csv")
    assert len(table) == 8 and not table["identified"].any() and table["spearman"].isna().all()
    assert table["ci_low"].isna().all() and table["ci_high"].isna().all()
    notes = table.set_index(["synthetic", "shift"])["note"]
    assert notes[("greyscale@5", "imagenet-r")] == "not identified: 3 models (needs >= 5)"
    assert notes[("edges@1", "imagenet-r")].startswith("not identified: no effective robustness on this condition")
    markdown = (run / "report.md").read_text()
    assert "None of the 8 pairs is identified" in markdown and "| not identified: 3 models (needs >= 5) |" in markdown


def test_imagenet_a_is_read_on_the_piece_its_counterpart_falls_on(tmp_path):
    conditions = {key: CONDITIONS[key] for key in ("clean", "greyscale@5")}
    conditions["clean@a-classes"] = ("clean@a-classes", 0, "val", 200, (0.95, 0.93, 0.90, 0.88, 0.84, 0.80))
    conditions["imagenet-a"] = ("imagenet-a", 0, "imagenet-a", 300, (0.40, 0.22, 0.12, 0.09, 0.05, 0.03))
    run = make_shift_run(tmp_path / "run", conditions=conditions, list_shifts=False)  # an older manifest
    result = analyse(load_runs([run]), n_boot=100)
    rows = result.fit.effective.loc[result.fit.effective["condition"] == "imagenet-a"]
    rows = rows.loc[rows["reference"] != "run"].set_index("model")
    split = "91.86 %"
    assert rows["reference"].tolist() == [f"testbed:imagenet-a (above {split})"] * 2 + \
        [f"testbed:imagenet-a (below {split})"] * 4
    below, above = references.imagenet_a_lines()
    assert rows["reference_n"].tolist() == [above.n] * 2 + [below.n] * 4
    x, y = records_accuracy(run, "clean@a-classes")[rows.index], records_accuracy(run, "imagenet-a")[rows.index]
    pieces = np.where(x >= 0.9186, logit_line(-10.27739708860645, 2.9559595169134285, x),
                      logit_line(-5.14004617225444, 0.6894464990989362, x))
    np.testing.assert_allclose(rows["effective_robustness"], 100 * (y - pieces), atol=1e-6)
    np.testing.assert_allclose(rows["clean_top1"], 100 * x, atol=1e-9)
    lines = result.published.loc[result.published["condition"] == "imagenet-a"]
    assert lines["reference"].tolist() == [f"testbed:imagenet-a (below {split})", f"testbed:imagenet-a (above {split})"]
    assert result.shift_names == ["imagenet-a"]
    from robustbench_lite.report.drawing import model_colours
    from robustbench_lite.report.shift_panels import plot_natural_shifts

    figure = plot_natural_shifts(result, model_colours(result.data.models))
    assert figure.axes[0].get_title(loc="left") == f"ImageNet-A\ntwo lines fitted on {below.n} + {above.n} testbed models"
    _close(figure)


def test_a_shift_without_its_counterpart_is_not_placed(tmp_path):
    conditions = {key: CONDITIONS[key] for key in ("clean", "imagenet-r", "fog@3")}
    run = make_shift_run(tmp_path / "run", conditions=conditions)
    written = write_report([run], run, n_boot=20)
    shifts = pd.read_csv(run / "shifts.csv")
    assert shifts["effective_robustness"].isna().all() and shifts["drop"].isna().all()
    note = pd.read_csv(run / "shift_correlation.csv")["note"].iloc[0]
    assert note == "not identified: no effective robustness on this shift (its counterpart is missing)"
    assert "imagenet-r: not placed on its line: the run has no clean@r-classes records" in written["markdown"].read_text()
