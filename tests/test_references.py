"""The bundled testbed population, the condition -> setting table, and the published lines."""
from __future__ import annotations

import ast
import csv
import gzip
import math
import sys
from statistics import NormalDist

import numpy as np
import pytest

from conftest import PUBLISHED, REPO
from robustbench_lite.analysis import references as ref
from robustbench_lite.errors import UserError

needs_data = pytest.mark.skipif(not PUBLISHED.is_dir(), reason="shared/data/published-accuracies not present")
DATA = REPO / "robustbench_lite" / "reference_data"
CORRUPTIONS_15 = ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
                  "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
                  "jpeg_compression"]


def _shared_table() -> tuple[list[str], dict[str, dict[str, str]], dict[str, str]]:
    with open(PUBLISHED / "testbed_robustness_top1s.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(PUBLISHED / "testbed_model_types.csv", newline="") as f:
        types = {r["model"]: r["model_type"] for r in csv.DictReader(f)}
    return list(rows[0]), {r["model"]: r for r in rows}, types


def _expected_columns(header: list[str], protocol: str) -> dict[str, tuple[str, str]]:
    """Our own reading of the issue's table: condition -> (clean column, shifted column)."""
    out = {"greyscale@5": ("val", "greyscale")}
    names = sorted({c.split(".")[1] for c in header if c.startswith("imagenet-c.")})
    assert set(CORRUPTIONS_15) <= set(names) and len(names) == 19
    for name in names:
        for s in range(1, 6):
            disk, memory = f"imagenet-c.{name}.{s}_on-disk", f"imagenet-c.{name}.{s}_in-memory"
            out[f"{name}@{s}"] = ("val", memory if protocol == "native" and memory in header else disk)
    out.update({"imagenet-sketch": ("val", "imagenet-sketch"), "objectnet": ("val-on-objectnet-classes", "objectnet-1.0-beta"),
                "imagenet-r": ("val-on-imagenet-r-classes", "imagenet-r")})
    for v2 in ("imagenetv2-matched-frequency", "imagenetv2-matched-frequency-format-val", "imagenetv2-threshold0.7",
               "imagenetv2-topimages"):
        out[v2] = ("val", v2)
    return out


def _independent_line(rows, types, clean: str, column: str, scale: str) -> tuple[float, float, int]:
    """The testbed's rule and OLS written again: numpy polyfit on logit / probit of fractions."""
    threshold = 75.0 if column == "imagenet-r" else 55.0
    xs, ys = [], []
    for model, row in rows.items():
        if types[model] != "STANDARD" or any(s in model for s in ("aws", "batch64", "subsample")):
            continue
        if row[clean] == "" or row[column] == "" or float(row[clean]) < threshold:
            continue
        xs.append(float(row[clean]) / 100)
        ys.append(float(row[column]) / 100)
    f = (lambda p: math.log(p / (1 - p))) if scale == "logit" else NormalDist().inv_cdf
    slope, intercept = np.polyfit([f(x) for x in xs], [f(y) for y in ys], 1)
    return float(slope), float(intercept), len(xs)


def test_greyscale_line_is_the_published_one():
    line = ref.reference_line("greyscale@5", "logit")
    assert abs(line.slope - 1.2789711301286) < 1e-9
    assert abs(line.intercept - -0.7870540760681) < 1e-9
    assert line.n == 85 and line.column == "greyscale" and not line.indicative
    assert line.as_json() == {"condition": "greyscale@5", "population": "testbed", "column": "greyscale", "n": 85,
                              "slope": line.slope, "intercept": line.intercept, "scale": "logit"}


@pytest.mark.parametrize("condition, intercept, slope, n", [
    ("imagenetv2-matched-frequency", -0.4813069457734013, 0.9113725552359271, 85),
    ("imagenet-sketch", -2.370072912552283, 1.0709154135668684, 85),
    ("imagenet-r", -2.1077156197680713, 0.636843984281646, 80),
])
def test_published_natural_shift_constants(condition, intercept, slope, n):
    line = ref.reference_line(condition)
    assert abs(line.intercept - intercept) < 1e-9 and abs(line.slope - slope) < 1e-9 and line.n == n


def test_imagenet_a_two_published_lines():
    below, above = ref.imagenet_a_lines()
    assert abs(below.intercept - -5.14004617225444) < 1e-9 and abs(below.slope - 0.6894464990989362) < 1e-9
    assert abs(above.intercept - -10.27739708860645) < 1e-9 and abs(above.slope - 2.9559595169134285) < 1e-9
    with pytest.raises(UserError, match="not linear"):
        ref.reference_line("imagenet-a")


@needs_data
@pytest.mark.parametrize("protocol", ["native", "imagenet-c"])
@pytest.mark.parametrize("scale", ["logit", "probit"])
def test_every_mapped_line_matches_an_independent_fit(protocol, scale):
    header, rows, types = _shared_table()
    expected = _expected_columns(header, protocol)
    assert sorted(ref.mapped_conditions(protocol)) == sorted(expected)
    for condition, (clean, column) in expected.items():
        line = ref.reference_line(condition, scale, protocol)
        slope, intercept, n = _independent_line(rows, types, clean, column, scale)
        assert (line.column, line.clean_column, line.n) == (column, clean, n), condition
        assert abs(line.slope - slope) < 1e-9 and abs(line.intercept - intercept) < 1e-9, condition
        assert line.indicative == (protocol == "native" and column.endswith("_on-disk")), condition


def test_mapping_covers_the_issue():
    for protocol, store in (("native", "in-memory"), ("imagenet-c", "on-disk")):
        conditions = ref.mapped_conditions(protocol)
        assert len(conditions) == 1 + 19 * 5 + 7
        for name in CORRUPTIONS_15:
            for s in range(1, 6):
                line = ref.reference_line(f"{name}@{s}", protocol=protocol)
                want = "on-disk" if name == "glass_blur" else store
                assert line.column == f"imagenet-c.{name}.{s}_{want}"
    glass = ref.reference_line("glass_blur@3")
    assert glass.indicative and "indicative" in glass.note
    assert not ref.reference_line("glass_blur@3", protocol="imagenet-c").indicative
    assert not ref.reference_line("fog@3").indicative
    table = ref.mapping_table("native")
    assert list(table.columns) == ["condition", "column", "clean_column", "indicative", "note"]
    assert table["indicative"].sum() == 5


@pytest.mark.parametrize("call", [
    lambda: ref.reference_line("rotate@3"),
    lambda: ref.reference_line("greyscale@3"),
    lambda: ref.population_points("rotate@3"),
    lambda: ref.reference_line("fog@3", scale="linear"),
    lambda: ref.reference_line("fog@3", protocol="jpeg"),
    lambda: ref.mapped_conditions("jpeg"),
])
def test_unmapped_or_bad_requests_are_one_line_user_errors(call):
    with pytest.raises(UserError) as info:
        call()
    assert "\n" not in str(info.value)


def test_unmapped_condition_names_the_list_command():
    with pytest.raises(UserError, match=r"robustbench-lite reference --list"):
        ref.reference_line("rotate@3")


@needs_data
@pytest.mark.parametrize("name, condition", [
    ("testbed_val_vs_greyscale.csv", "greyscale@5"),
    ("testbed_val_vs_imagenetv2-matched-frequency.csv", "imagenetv2-matched-frequency"),
    ("testbed_val_vs_imagenetv2-matched-frequency-format-val.csv", "imagenetv2-matched-frequency-format-val"),
    ("testbed_val_vs_imagenet-sketch.csv", "imagenet-sketch"),
    ("testbed_val-on-imagenet-r-classes_vs_imagenet-r.csv", "imagenet-r"),
    ("testbed_val-on-objectnet-classes_vs_objectnet-1.0-beta.csv", "objectnet"),
])
def test_population_points_agree_with_the_published_per_setting_tables(name, condition):
    with open(PUBLISHED / name, newline="") as f:
        published = {r["model"]: r for r in csv.DictReader(f)}
    points = ref.population_points(condition).set_index("model")
    assert set(points.index) == set(published)
    for model, row in published.items():
        assert points.at[model, "in_fit"] == (row["use_for_line_fit"] == "1"), model
        assert points.at[model, "clean"] == float(row["clean_top1"]) / 100
        assert points.at[model, "shifted"] == float(row["shifted_top1"]) / 100
        assert points.at[model, "model_type"] == row["model_type"]


def test_predict_and_effective_robustness_follow_the_testbed_definition():
    line = ref.reference_line("greyscale@5")
    clean = np.array([0.6, 0.75, 0.9])
    expected = 1 / (1 + np.exp(-(line.slope * np.log(clean / (1 - clean)) + line.intercept)))
    np.testing.assert_allclose(ref.predict(line, clean), expected, rtol=0, atol=1e-12)
    assert ref.effective_robustness(line, 0.75, float(expected[1])) == pytest.approx(0, abs=1e-12)
    assert ref.effective_robustness(line, 0.75, 0.70) == pytest.approx(0.70 - expected[1], abs=1e-12)
    probit = ref.reference_line("greyscale@5", "probit")
    z = probit.slope * NormalDist().inv_cdf(0.75) + probit.intercept
    assert ref.predict(probit, 0.75) == pytest.approx(NormalDist().cdf(z), abs=1e-12)


def test_bootstrap_band_brackets_the_line_and_is_reproducible():
    line = ref.reference_line("gaussian_noise@3")
    clean = np.linspace(0.55, 0.9, 8)
    low, high = ref.bootstrap_band(line, clean)
    mid = ref.predict(line, clean)
    assert np.all(low < mid) and np.all(mid < high) and np.all(high - low < 0.2)
    again = ref.bootstrap_band(line, clean)
    assert np.array_equal(low, again[0]) and np.array_equal(high, again[1])
    low95, high95 = ref.bootstrap_band(line, clean, level=0.5)
    assert np.all(low95 >= low) and np.all(high95 <= high)


@needs_data
def test_build_is_deterministic_and_verbatim(tmp_path):
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import build_references
    finally:
        sys.path.remove(str(REPO / "tools"))
    built = build_references.build(PUBLISHED, tmp_path)
    for name in ("testbed_top1.csv.gz", "testbed.json", "SOURCE.md"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name
    assert built.stat().st_size < 300_000
    text = gzip.decompress(built.read_bytes()).decode()
    bundled = list(csv.reader(text.splitlines()))
    with open(PUBLISHED / "testbed_robustness_top1s.csv", newline="") as f:
        source = list(csv.reader(f))
    assert [[r[0], *r[2:]] for r in bundled] == source  # every accuracy copied as published text
    meta = ref.population_meta()
    assert meta["source_commit"] == "f4083a29524fe9a9e029bf34d1476cea5a497132" and meta["licence"] == "MIT"
    assert meta["models"] == 338 and meta["settings"] == 213


def test_references_module_imports_no_other_project_module():
    """The references stand alone: only errors and the condition vocabulary (itself importing only errors)."""
    tree = ast.parse((REPO / "robustbench_lite" / "analysis" / "references.py").read_text())
    imported = {("robustbench_lite." if n.level == 2 else "") + n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert {m for m in imported if m.startswith("robustbench_lite")} == {"robustbench_lite.errors", "robustbench_lite.conditions.keys"}
    conditions = ast.parse((REPO / "robustbench_lite" / "conditions" / "keys.py").read_text())
    assert {n.module for n in ast.walk(conditions) if isinstance(n, ast.ImportFrom) and n.level} == {"errors"}


@pytest.mark.parametrize("shift, scale", [("imagenetv2-matched-frequency", "logit"), ("imagenet-r", "probit")])
def test_population_figure_draws_the_published_line(tmp_path, shift, scale):
    from robustbench_lite.report.population_figure import draw_population_figure, readable_ticks

    drawn = draw_population_figure(shift, tmp_path / "fickle.png", scale=scale)
    line = ref.reference_line(shift, scale)
    assert (drawn["n"], drawn["slope"], drawn["intercept"], drawn["column"]) == (line.n, line.slope, line.intercept,
                                                                                line.column)
    points = ref.population_points(shift)
    assert drawn["n_points"] + drawn["n_hidden"] == len(points)
    assert drawn["n_points"] == int((points["clean"] >= 0.1).sum())
    assert (tmp_path / "fickle.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    f = ref._forward(scale)
    for ticks in (drawn["xticks"], drawn["yticks"]):
        assert len(ticks) >= 4
        gaps = np.diff(f(np.array(ticks)))
        assert np.all(gaps >= 0.085 * (f(ticks[-1]) - f(ticks[0])) - 1e-12)  # never crowded
    assert readable_ticks(0.55, 0.95) == [0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    assert readable_ticks(0.001, 0.999) == [0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999]


def test_is_mapped_answers_without_raising():
    assert ref.is_mapped("greyscale@5") and ref.is_mapped("glass_blur@1") and ref.is_mapped("objectnet", "imagenet-c")
    assert not ref.is_mapped("rotate@3") and not ref.is_mapped("imagenet-a") and not ref.is_mapped("clean")
