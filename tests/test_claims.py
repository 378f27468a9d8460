"""What the report claims: extrapolated rows are never placed, humans only beside the same test, a headline of at
most five sentences whose every number is its table's, numbers rounded to their photo count.

The demo's configuration is run for real (lite0 and lite0@128px on the demo's 100 shared photos); the other
cases are synthetic run folders in the real record schema."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from conftest import PUBLISHED
from test_shift_report import CONDITIONS, make_shift_run, records_accuracy

from robustbench_lite.analysis import references
from robustbench_lite.analysis.fit import fit_line
from robustbench_lite.analysis.tables import analyse, load_runs
from robustbench_lite.report.document import render_report
from robustbench_lite.report.numbers import as_text, fractions_table, pct, points, proportion

DEMO_CONDITIONS = "greyscale@5,gaussian_noise@3,mvh_contrast@4"


def section(markdown: str, title: str) -> str:
    """The text of one `## title` section of report.md."""
    return markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def headline_lines(markdown: str) -> list[str]:
    return [line for line in section(markdown, "Headline").splitlines() if line.strip()]


def line_fit_range(column: str) -> tuple[float, float]:
    """The clean top-1 range (percent) of the testbed's line-fit models for a column, from the shared tables:
    STANDARD models, clean >= 55 %, no excluded substring, both values present."""
    table = pd.read_csv(PUBLISHED / "testbed_robustness_top1s.csv")
    types = pd.read_csv(PUBLISHED / "testbed_model_types.csv").set_index("model")["model_type"]
    rows = table.loc[table["model"].map(types).eq("STANDARD") & (table["val"] >= 55) & table[column].notna()
                     & table["val"].notna() & ~table["model"].str.contains("aws|batch64|subsample")]
    return float(rows["val"].min()), float(rows["val"].max())


def check_headline_against_tables(out) -> list[str]:
    """Every sentence of the headline checked against the CSVs written beside it; returns the lines."""
    lines = headline_lines((out / "report.md").read_text())
    assert 1 <= len(lines) <= 5, lines
    summary = pd.read_csv(out / "summary.csv")
    effective = pd.read_csv(out / "effective_robustness.csv")
    n = summary.set_index(["model", "transform", "severity"])["n"]
    text = "\n".join(lines)
    # the largest drop, from the summary
    shifted = summary.loc[summary["transform"] != "clean"]
    row = shifted.loc[shifted["drop"].idxmax()]
    cell = n[(row["model"], row["transform"], row["severity"])]
    said = (f"Largest drop: {row['model']} on {row['transform']}@{row['severity']}, top-1 "
            f"{pct(row['top1'] + row['drop'], cell)} % (clean) → {pct(row['top1'], cell)} % "
            f"({pct(row['drop'], cell)} points)")
    ties = int((shifted["drop"].map(lambda d: pct(d, cell)) == pct(row["drop"], cell)).sum()) - 1
    assert said + (f"; {ties} other model x condition cell(s) drop as much." if ties else ".") in lines
    # most and least robust: mean effective robustness over the placed rows against published lines
    published = effective.loc[effective["reference"] != "run"]
    placed = published.loc[published["versus_line"] != "extrapolated"]
    means = placed.groupby("model")["effective_robustness"].agg(["mean", "size"])
    if len(means) >= 2:
        best, worst = means["mean"].idxmax(), means["mean"].idxmin()
        found = re.search(r"by mean effective robustness: (\S+) \(([−+]?\d+) points over (\d+) placed row\(s\)\); "
                          r"least: (\S+) \(([−+]?\d+) points over (\d+)", text)
        assert found, text
        assert found.group(1) == best and found.group(4) == worst
        assert float(found.group(2).replace("−", "-")) == float(f"{means.loc[best, 'mean']:.0f}")
        assert float(found.group(5).replace("−", "-")) == float(f"{means.loc[worst, 'mean']:.0f}")
        assert (int(found.group(3)), int(found.group(6))) == (means.loc[best, "size"], means.loc[worst, "size"])
    # verdicts: only placed rows beyond their interval, each with its number and interval
    held = placed.loc[placed["versus_line"].isin(["above", "below"])]
    for row in held.itertuples():
        cell = n[(row.model, row.transform, row.severity)]
        said = f"{row.model} {row.versus_line} the {row.condition} line ({points(row.effective_robustness, cell)} points"
        assert said in text or len(held) > 3, (said, text)
    if len(held):
        assert f"Beyond the 95 % interval of {len(held)} of {len(placed)} placed rows" in text
    # nothing extrapolated is called above, below or on
    for row in published.loc[published["versus_line"] == "extrapolated"].itertuples():
        assert not re.search(rf"{re.escape(row.model)} (above|below|on) the", text)
    return lines


@pytest.fixture(scope="module")
def demo_run(shared_sample, tmp_path_factory):
    """The demo's photos and models (lite0 at its own size and at 128 px) on two mapped conditions and a
    model-vs-human condition, without the 16-class protocol."""
    from robustbench_lite import run

    out = tmp_path_factory.mktemp("demo") / "run"
    run(data=str(shared_sample), models="efficientnet_lite0,efficientnet_lite0@128px", limit=100,
        transforms=DEMO_CONDITIONS, out=str(out), device="cpu")
    return out


@pytest.mark.slow
@pytest.mark.skipif(not PUBLISHED.is_dir(), reason="../shared/data/published-accuracies is absent")
def test_the_demo_places_only_the_models_inside_their_lines_range(demo_run):
    records = pd.read_parquet(demo_run / "records.parquet", columns=["model", "transform", "correct1"])
    clean = records.loc[records["transform"] == "clean"].groupby("model")["correct1"].mean() * 100
    assert clean["efficientnet_lite0"] == 87.0 and clean["efficientnet_lite0@128px"] == 72.0
    er = pd.read_csv(demo_run / "effective_robustness.csv")
    er = er.loc[er["reference"] != "run"].set_index(["condition", "model"])
    for condition, column in (("greyscale@5", "greyscale"), ("gaussian_noise@3", "imagenet-c.gaussian_noise.3_in-memory")):
        low, high = line_fit_range(column)
        assert high == pytest.approx(84.726, abs=1e-3) and er.loc[(condition, "efficientnet_lite0"), "fit_clean_max"] \
            == pytest.approx(high, abs=1e-6) and er.loc[(condition, "efficientnet_lite0"), "fit_clean_min"] \
            == pytest.approx(low, abs=1e-6)
        assert er.loc[(condition, "efficientnet_lite0"), "versus_line"] == "extrapolated"  # 87 % > 84.7 %
        inside = er.loc[(condition, "efficientnet_lite0@128px")]  # 72 %: placed as before
        expected = "above" if inside["er_low"] > 0 else "below" if inside["er_high"] < 0 else "on"
        assert inside["versus_line"] == expected
    markdown = (demo_run / "report.md").read_text()
    published = section(markdown, "Published lines")
    assert not re.search(r"efficientnet_lite0 (above|below|on)\b", published)
    assert re.search(r"efficientnet_lite0@128px (above|below|on) \(", published)
    assert "Extrapolated, so not placed (2 rows)" in published and "efficientnet_lite0 (87 %)" in published
    lines = check_headline_against_tables(demo_run)
    text = "\n".join(lines)
    assert "efficientnet_lite0 (clean 87 %) not placed on greyscale@5, gaussian_noise@3" in text
    # humans.csv has its model-vs-human condition, but without the 16-class protocol no human number is headlined
    assert len(pd.read_csv(demo_run / "humans.csv")) == 1
    assert "humans" not in text.lower() and "16-class" not in text


def test_a_shift_beyond_its_line_fit_models_is_extrapolated(tmp_path):
    conditions = dict(CONDITIONS)
    # m0's val on the 200 R classes at 97 %: beyond the testbed's R line-fit models (76.9-96.5 %)
    conditions["clean@r-classes"] = ("clean@r-classes", 0, "val", 200, (0.97, 0.90, 0.86, 0.84, 0.80, 0.78))
    run = make_shift_run(tmp_path / "run", conditions=conditions)
    result = analyse(load_runs([run]), n_boot=100)
    render_report(result, run)
    shifts = pd.read_csv(run / "shifts.csv").set_index(["shift", "model"])
    fitted = pd.read_csv(PUBLISHED / "testbed_val-on-imagenet-r-classes_vs_imagenet-r.csv").query("use_for_line_fit == 1")
    assert 97 > fitted["clean_top1"].max() and fitted["clean_top1"].min() < 78
    r = shifts.loc["imagenet-r"]
    assert r.loc["m0", "versus_line"] == "extrapolated"
    assert r.loc["m0", "fit_clean_max"] == pytest.approx(fitted["clean_top1"].max(), abs=1e-4)
    assert (r.drop(index="m0")["versus_line"] != "extrapolated").all()
    # the shift's text: the mean over the placed models only, m0 listed apart
    x, y = records_accuracy(run, "clean@r-classes"), records_accuracy(run, "imagenet-r")
    er = 100 * (y - references.predict(references.reference_line("imagenet-r"), x))
    text = section((run / "report.md").read_text(), "Natural shifts")
    assert (f"imagenet-r: mean effective robustness {points(er.drop('m0').mean(), 300)} points over 5 placed models"
            in text)
    assert "1 extrapolated, not placed (m0:" in text
    # and the shift correlation reads no extrapolated row: 5 models with both
    correlation = pd.read_csv(run / "shift_correlation.csv").set_index(["synthetic", "shift"])
    assert correlation.loc[("greyscale@5", "imagenet-r"), "n_models"] == 5


def test_the_runs_own_line_is_extrapolated_beyond_its_fitted_points():
    """A model at 100 % transformed top-1 is left out of a logit fit; its clean top-1, above every fitted
    model's, is then beyond the line."""
    line = fit_line([0.5, 0.6, 0.7, 0.8, 0.95], [0.3, 0.4, 0.5, 0.6, 1.0], "logit")
    assert (line.n, line.x_low, line.x_high) == (4, 0.5, 0.8)
    assert line.covers([0.5, 0.65, 0.8, 0.95, 0.49]).tolist() == [True, True, True, False, False]


def test_numbers_are_as_precise_as_their_photo_count():
    assert (pct(87.04, 100), pct(87.04, 1000), pct(87.04, 1001)) == ("87", "87", "87.0")
    assert (points(-14.43, 100), points(7.3, 100), points(-0.2, 100), points(0.45, 5000)) == ("−14", "+7", "0", "+0.5")
    assert (proportion(0.875), proportion(0.275)) == ("0.875", "0.275")
    humans = fractions_table(pd.DataFrame({"condition": ["c100", "c3"], "human_accuracy": [0.875, 0.275],
                                           "efficientnet_lite0": [0.661, 0.55]}))
    text = as_text(humans)
    assert text["efficientnet_lite0"].tolist() == ["0.661", "0.550"]  # a model's column, named by the model
    assert text["human_accuracy"].tolist() == ["0.875", "0.275"]


def test_a_synthetic_headline_equals_its_tables(tmp_path):
    run = make_shift_run(tmp_path / "run")
    render_report(analyse(load_runs([run]), n_boot=100), run)
    lines = check_headline_against_tables(run)
    assert not any("humans" in line for line in lines)
    assert any(line.startswith("Not concluded:") and "indicative" in line for line in lines)


def test_figures_are_for_a_paper(tmp_path):
    """200 dpi, at most a page (7 in) wide, a legend naming every line and model, the run's own slope named as
    the run's, the published one as published, axes that hold every point and its error bars; PDF on request."""
    from PIL import Image
    from scipy import special

    from robustbench_lite.cli.commands import main
    from robustbench_lite.report.drawing import model_colours
    from robustbench_lite.report.line_panels import plot_published

    run = make_shift_run(tmp_path / "run")
    assert main(["report", str(run), "--bootstrap", "50", "--vector", "pdf"]) == 0
    for png in (run / "plots").glob("*.png"):
        if png.name == "examples.png":
            continue
        with Image.open(png) as image:
            assert image.info["dpi"] == pytest.approx((200, 200), abs=0.01) and image.width <= 7 * 200 + 2, png.name
        assert png.with_suffix(".pdf").read_bytes()[:4] == b"%PDF"
    assert "plots/published.pdf" in (run / "report.md").read_text()
    result = analyse(load_runs([run]), n_boot=50)
    figure = plot_published(result, model_colours(result.data.models))
    panels = [ax for ax in figure.axes if ax.axison]
    legend = next(ax.get_legend() for ax in figure.axes if ax.get_legend() is not None)
    labels = {text.get_text() for text in legend.get_texts()}
    assert {"published line (95 % band)", "run's own line (95 % band)", "y = x", *result.data.models} <= labels
    slopes = result.published.set_index("condition")["slope"]
    own = result.fit.lines.set_index("condition")
    for ax in panels:
        condition = ax.get_title(loc="left").splitlines()[0]
        assert ax.get_title(loc="left").splitlines()[1:] == [
            f"published slope {slopes[condition]:.2f} ({result.published.set_index('condition').loc[condition, 'n']} models)",
            f"run's own slope {own.loc[condition, 'slope']:.2f} ({own.loc[condition, 'n']} models)"]
        rows = result.summary.loc[result.summary["transform"] == "clean"]
        low, high = ax.get_xlim()
        assert low < special.logit(rows["top1_low"].min() / 100) and special.logit(rows["top1_high"].max() / 100) < high


def test_models_at_the_same_point_are_drawn_as_concentric_markers():
    """Two models with the same accuracies (lite0 and lite1 on the demo's photos) must both show: the first drawn
    is larger than the one on top of it; a model alone keeps the plain size."""
    from robustbench_lite.report.drawing import (STACKED_MARKER_STEP, AccuracyAxis, draw_models, model_colours,
                                                 new_figure)

    points = pd.DataFrame({"model": ["a", "b", "c"], "condition": ["fog@3"] * 3, "clean_top1": [87.0, 87.0, 72.0],
                           "top1": [69.0, 69.0, 45.0], "top1_low": [60.0, 60.0, 35.0], "top1_high": [77.0, 77.0, 55.0]})
    bounds = pd.DataFrame(columns=["low", "high"], index=pd.MultiIndex.from_tuples([], names=["condition", "model"]))
    ax = new_figure(3, 3).add_subplot()
    axis = AccuracyAxis("logit", [0.4, 0.9])
    draw_models(ax, axis, axis, points, bounds, model_colours(["a", "b", "c"]))
    sizes = {line.get_label(): line.get_markersize() for line in ax.lines}
    assert sizes["a"] == pytest.approx(sizes["b"] + STACKED_MARKER_STEP) and sizes["c"] == sizes["b"]
    order = {line.get_label(): line.get_zorder() for line in ax.lines}
    assert order["b"] > order["a"]
