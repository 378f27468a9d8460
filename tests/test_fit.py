"""The linear fit: published testbed constants, effective robustness, the bootstrap, the `fit` command."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from robustbench_lite.cli import analysis as cli_analysis
from robustbench_lite.analysis import fit, run_fit
from robustbench_lite.errors import UserError
from conftest import PUBLISHED

# (intercept, slope) of logit(shifted) on logit(clean), as published by the testbed's users
CONSTANTS = {
    "testbed_val_vs_imagenetv2-matched-frequency.csv": (-0.4813069457734013, 0.9113725552359271),
    "testbed_val_vs_imagenet-sketch.csv": (-2.370072912552283, 1.0709154135668684),
    "testbed_val-on-imagenet-r-classes_vs_imagenet-r.csv": (-2.1077156197680713, 0.636843984281646),
}
WHERE = "use_for_line_fit == 1"
needs_data = pytest.mark.skipif(not PUBLISHED.is_dir(), reason="shared/data/published-accuracies not present")


@needs_data
@pytest.mark.parametrize("name", sorted(CONSTANTS))
def test_published_constants_python(name):
    result = fit.fit_table(PUBLISHED / name, "clean_top1", "shifted_top1", scale="logit", where=WHERE)
    intercept, slope = CONSTANTS[name]
    assert abs(result.line.intercept - intercept) < 1e-9
    assert abs(result.line.slope - slope) < 1e-9
    assert result.unit == "percent" and result.line.n_excluded == 0
    assert result.line.n == (80 if "imagenet-r" in name else 85)


@needs_data
@pytest.mark.parametrize("name", sorted(CONSTANTS))
def test_published_constants_cli(name):
    result = CliRunner().invoke(cli_analysis.fit_command, [
        str(PUBLISHED / name), "--x", "clean_top1", "--y", "shifted_top1", "--scale", "logit",
        "--where", WHERE, "--format", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)  # stdout holds the JSON object only; notes went to stderr
    intercept, slope = CONSTANTS[name]
    assert abs(payload["intercept"] - intercept) < 1e-9
    assert abs(payload["slope"] - slope) < 1e-9
    assert payload["scale"] == "logit" and payload["n_excluded"] == 0
    assert 0 < payload["r2"] <= 1
    assert "note:" in result.stderr


@needs_data
def test_published_effective_robustness_follows_the_testbed_definition():
    """ER = shifted - inverse_logit(slope * logit(clean) + intercept), in points, for every row."""
    table = pd.read_csv(PUBLISHED / "testbed_val_vs_imagenetv2-matched-frequency.csv")
    result = fit.fit_table(table, scale="logit", where=WHERE)
    intercept, slope = CONSTANTS["testbed_val_vs_imagenetv2-matched-frequency.csv"]
    clean = table["clean_top1"] / 100
    expected = table["shifted_top1"] - 100 * stats.logistic.cdf(slope * np.log(clean / (1 - clean)) + intercept)
    assert np.allclose(result.rows["effective_robustness"], expected, atol=1e-8)
    assert result.rows["in_fit"].sum() == 85 and len(result.rows) == len(table)


def test_line_and_effective_robustness_hand_worked():
    # linear scale; points (.2,.1) (.4,.3) (.6,.5) (.5,.5): sxy = .095, sxx = .0875
    clean, shifted = np.array([0.2, 0.4, 0.6, 0.5]), np.array([0.1, 0.3, 0.5, 0.5])
    line = fit.fit_line(clean, shifted, "linear")
    assert line.slope == pytest.approx(38 / 35) and line.intercept == pytest.approx(-3.9 / 35)
    assert line.n == 4 and line.status == "ok"
    assert fit.effective_robustness(clean, shifted, line)[3] == pytest.approx(2.4 / 35)


def test_probit_fit_recovers_an_exact_line():
    clean = np.array([0.3, 0.5, 0.7, 0.9])
    shifted = stats.norm.cdf(0.8 * stats.norm.ppf(clean) - 0.5)
    line = fit.fit_line(clean, shifted, "probit")
    assert (line.scale, line.slope, line.intercept, line.r2) == ("probit", pytest.approx(0.8), pytest.approx(-0.5),
                                                                 pytest.approx(1.0))
    assert np.allclose(fit.effective_robustness(clean, shifted, line), 0, atol=1e-12)


def test_too_few_points_is_unavailable_not_invented():
    line = fit.fit_line([0.5, 0.7], [0.4, 0.6])
    assert line.status == "unavailable: needs >= 3 models, got 2" and np.isnan(line.slope)
    line = fit.fit_line([0.5, 0.7, 1.0], [0.4, 0.6, 0.9], "logit")
    assert line.status == "unavailable: needs >= 3 models, got 2 (1 at 0 or 100 % left out)"


def test_table_fit_leaves_out_and_counts_rows_at_0_or_100(tmp_path):
    path = tmp_path / "acc.csv"
    pd.DataFrame({"model": list("abcde"), "clean": [30, 50, 70, 100, 90], "shifted": [20, 40, 60, 95, 0]}).to_csv(path, index=False)
    result = fit.fit_table(path, "clean", "shifted", "probit")
    assert (result.line.n, result.line.n_excluded, result.unit) == (3, 2, "percent")
    assert result.rows["in_fit"].tolist() == [True, True, True, False, False]
    linear = fit.fit_table(path, "clean", "shifted", "linear")
    assert (linear.line.n, linear.line.n_excluded) == (5, 0)


def test_fractions_are_detected(tmp_path):
    path = tmp_path / "acc.csv"
    pd.DataFrame({"x": [0.2, 0.4, 0.6], "y": [0.1, 0.3, 0.5]}).to_csv(path, index=False)
    result = fit.fit_table(path, "x", "y", "linear")
    assert result.unit == "fraction" and result.line.slope == pytest.approx(1.0)
    assert result.line.intercept == pytest.approx(-0.1)


@pytest.mark.parametrize("args, message", [
    (["missing.csv"], "no such CSV file"),
    (["{csv}", "--x", "nope"], "unknown column 'nope'"),
    (["{csv}", "--where", "clean >>> 3"], "bad --where expression"),
    (["{csv}", "--where", "nothing == 1"], "bad --where expression"),
])
def test_fit_command_user_errors(tmp_path, args, message):
    path = tmp_path / "acc.csv"
    pd.DataFrame({"clean_top1": [30, 50, 70], "shifted_top1": [20, 40, 60]}).to_csv(path, index=False)
    args = [a.format(csv=path) for a in args]
    if args[0] == "missing.csv":
        args[0] = str(tmp_path / "missing.csv")
    result = CliRunner().invoke(cli_analysis.fit_command, args)
    assert isinstance(result.exception, UserError)
    assert message in str(result.exception) and "\n" not in str(result.exception)


def test_fit_command_table_format(tmp_path):
    path = tmp_path / "acc.csv"
    pd.DataFrame({"model": ["a", "b", "c"], "clean_top1": [30, 50, 70], "shifted_top1": [20, 40, 60]}).to_csv(path, index=False)
    result = CliRunner().invoke(cli_analysis.fit_command, [str(path), "--scale", "linear"])
    assert result.exit_code == 0, result.output
    assert "slope=1.0" in result.stdout and "n=3" in result.stdout
    assert [line.split()[0] for line in result.stdout.splitlines()[-3:]] == ["a", "b", "c"]


def test_cli_scale_names_match_fit():
    assert set(cli_analysis.SCALE_NAMES) == set(fit.SCALES) | {"identity"}
    assert cli_analysis.DEFAULT_BOOTSTRAP == fit.DEFAULT_BOOTSTRAP
    assert cli_analysis.DEFAULT_SCALE == fit.DEFAULT_SCALE == "logit"


def test_fit_and_the_report_default_to_the_same_logit_line(tmp_path):
    """The same models' accuracies: `fit` without --scale gives the report's line (logit, the testbed's scale),
    both equal to least squares of logit(shifted) on logit(clean) computed here; `--help` says so."""
    rng = np.random.default_rng(4)
    n = 300
    correct = {}
    for model, (p_clean, p_shift) in {"a": (.55, .25), "b": (.65, .38), "c": (.72, .41), "d": (.80, .55),
                                      "e": (.88, .62), "f": (.60, .35)}.items():
        correct[(model, "clean")] = rng.random(n) < p_clean
        correct[(model, "t@1")] = rng.random(n) < p_shift
    acc = pd.DataFrame([{"model": m, "key": k, "top1": 100 * v.mean()} for (m, k), v in correct.items()])
    table = acc.pivot(index="model", columns="key", values="top1").rename(
        columns={"clean": "clean_top1", "t@1": "shifted_top1"}).reset_index()
    path = tmp_path / "acc.csv"
    table.to_csv(path, index=False)
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    want_slope, want_intercept = np.polyfit(logit(table["clean_top1"] / 100), logit(table["shifted_top1"] / 100), 1)

    result = CliRunner().invoke(cli_analysis.fit_command, [str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout)
    assert line["scale"] == "logit"
    assert line["slope"] == pytest.approx(want_slope, abs=1e-9) and line["intercept"] == pytest.approx(want_intercept, abs=1e-9)
    report = run_fit.fit_run(run_records(correct), CONDITIONS, n_boot=20, seed=0).lines
    assert report.loc[0, "scale"] == "logit" and report.loc[0, "slope"] == pytest.approx(want_slope, abs=1e-9)
    assert fit.fit_table(path).line.slope == pytest.approx(want_slope, abs=1e-9)

    probit = CliRunner().invoke(cli_analysis.fit_command, [str(path), "--format", "json", "--scale", "probit"])
    assert abs(json.loads(probit.stdout)["slope"] - want_slope) > 0.01  # the default is not probit in disguise
    helped = CliRunner().invoke(cli_analysis.fit_command, ["--help"]).stdout
    assert "[default: logit" in " ".join(helped.split())


# ---------------------------------------------------------------- run fits with the photo bootstrap

def run_records(correct: dict[tuple[str, str], np.ndarray]) -> pd.DataFrame:
    """Records from per-(model, condition key) correctness vectors over the same photos."""
    frames = []
    for (model, key), right in correct.items():
        transform, severity = ("clean", 0) if key == "clean" else (key.split("@")[0], int(key.split("@")[1]))
        frames.append(pd.DataFrame({"model": model, "transform": transform, "severity": severity,
                                    "image_id": [f"p{i}" for i in range(len(right))], "correct1": right.astype(bool)}))
    return pd.concat(frames, ignore_index=True)


CONDITIONS = [{"transform": "clean", "family": "clean", "severity": 0, "level": 0},
              {"transform": "t", "family": "fam", "severity": 1, "level": 1}]


def test_run_fit_hand_worked_effective_robustness():
    # 10 photos; clean accuracies .2 .4 .6 .5 .8 and shifted .1 .3 .5 .5 .7 (first k photos right):
    # mean x .5, mean y .42, sxy = sxx = .2, so slope 1 and intercept -.08; m4 is predicted .42, has .5
    first = lambda k: np.arange(10) < k  # noqa: E731
    correct = {}
    for model, c, s in [("m1", 2, 1), ("m2", 4, 3), ("m3", 6, 5), ("m4", 5, 5), ("m5", 8, 7)]:
        correct[(model, "clean")], correct[(model, "t@1")] = first(c), first(s)
    result = run_fit.fit_run(run_records(correct), CONDITIONS, scale="linear", n_boot=50, seed=1)
    line = result.lines.set_index("condition").loc["t@1"]
    assert line["slope"] == pytest.approx(1.0) and line["intercept"] == pytest.approx(-0.08)
    assert line["n"] == 5 and line["status"] == "ok"
    er = result.effective.set_index(["condition", "model"])
    assert er.loc[("t@1", "m4"), "effective_robustness"] == pytest.approx(8.0)
    assert er.loc[("t@1", "m4"), "predicted_top1"] == pytest.approx(42.0)
    assert (result.effective["reference"] == "run").all() and (result.effective["reference_n"] == 5).all()
    assert set(result.lines["condition"]) == {"t@1", "family:fam"}


def test_run_fit_of_too_few_or_too_close_models_is_not_identified_and_used_nowhere():
    first = lambda k: np.arange(10) < k  # noqa: E731
    four = {}
    for model, c, s in [("m1", 2, 1), ("m2", 4, 3), ("m3", 6, 5), ("m4", 5, 5)]:
        four[(model, "clean")], four[(model, "t@1")] = first(c), first(s)
    result = run_fit.fit_run(run_records(four), CONDITIONS, scale="linear", n_boot=50, seed=1)
    line = result.lines.set_index("condition").loc["t@1"]
    assert line["status"] == "not identified: 4 models spanning 40.0 pp of clean top-1 (needs >= 5 spanning >= 10 pp)"
    assert line["slope"] == pytest.approx(38 / 35)  # the estimate is reported, its interval is not
    assert np.isnan(line["slope_low"]) and result.effective.empty
    rng = np.random.default_rng(1)
    close = {(m, key): rng.random(400) < p for m, p in [("a", .80), ("b", .82), ("c", .84), ("d", .86), ("e", .88)]
             for key in ("clean", "t@1")}
    lines = run_fit.fit_run(run_records(close), CONDITIONS, n_boot=20).lines
    assert lines["status"].str.startswith("not identified: 5 models spanning").all()


def test_bootstrap_resamples_photos_jointly():
    """Shifted answers equal to clean ones on every photo: every replicate, drawn jointly, gives
    y = x exactly, so the intervals collapse (independent draws per condition would not)."""
    rng = np.random.default_rng(0)
    n = 200
    correct = {}
    for model, p in [("a", 0.8), ("b", 0.65), ("c", 0.5), ("d", 0.35), ("e", 0.9)]:
        right = rng.random(n) < p
        correct[(model, "clean")] = right
        correct[(model, "t@1")] = right.copy()
    result = run_fit.fit_run(run_records(correct), CONDITIONS, n_boot=200, seed=3)
    line = result.lines.set_index("condition").loc["t@1"]
    for name, value in [("slope", 1.0), ("intercept", 0.0)]:
        assert line[name] == pytest.approx(value, abs=1e-9)
        assert line[f"{name}_low"] == pytest.approx(value, abs=1e-6)
        assert line[f"{name}_high"] == pytest.approx(value, abs=1e-6)
    er = result.effective.loc[result.effective["condition"] == "t@1"]
    assert np.allclose(er[["effective_robustness", "er_low", "er_high"]].to_numpy(), 0, atol=1e-4)
    assert result.replicates["t@1"].shape == (200, 2)


def test_bootstrap_accuracy_interval_matches_binomial_spread_and_seed():
    """One model's bootstrap accuracy interval is about p +- 1.96 sqrt(p(1-p)/n); the seed fixes it."""
    n = 400
    correct = {}
    for model, k in [("a", 200), ("b", 280), ("c", 320)]:
        correct[(model, "clean")] = np.arange(n) < k
        correct[(model, "t@1")] = np.arange(n) < k - 40
    records = run_records(correct)
    result = run_fit.fit_run(records, CONDITIONS, n_boot=1000, seed=5)
    point = result.points.set_index(["condition", "model"]).loc[("t@1", "a")]
    p = 160 / n
    half = 100 * 1.96 * np.sqrt(p * (1 - p) / n)
    assert point["top1"] == pytest.approx(40.0)
    assert point["top1_low"] == pytest.approx(40.0 - half, abs=1.0)
    assert point["top1_high"] == pytest.approx(40.0 + half, abs=1.0)
    again = run_fit.fit_run(records, CONDITIONS, n_boot=1000, seed=5)
    pd.testing.assert_frame_equal(result.lines, again.lines)
    other = run_fit.fit_run(records, CONDITIONS, n_boot=1000, seed=6)
    assert other.lines.loc[0, "slope_low"] != result.lines.loc[0, "slope_low"]


def test_run_fit_with_two_models_is_unavailable():
    correct = {(m, key): np.arange(20) < k for m, k in [("a", 12), ("b", 15)] for key in ("clean", "t@1")}
    result = run_fit.fit_run(run_records(correct), CONDITIONS, n_boot=20)
    assert result.lines["status"].tolist() == ["unavailable: needs >= 3 models, got 2"] * 2
    assert result.lines["slope"].isna().all() and result.lines["slope_low"].isna().all()
    assert result.effective.empty


def test_main_cli_turns_user_errors_into_exit_2(tmp_path, capsys):
    from robustbench_lite.cli.commands import main

    assert main(["fit", str(tmp_path / "missing.csv")]) == 2
    assert capsys.readouterr().err.strip() == f"error: no such CSV file: {tmp_path / 'missing.csv'}"
