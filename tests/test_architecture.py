"""The layout's promises: one-way imports at run time, no oversized modules, and unchanged results.

The golden records (tests/data/golden_lite0_records.csv) were written by the code before the
Architecture rework: 12 shared photos, lite0, clean + five transforms at severity 3, seed 0.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import REPO

GOLDEN = Path(__file__).parent / "data" / "golden_lite0_records.csv"


def _modules_loaded_by(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(m for m in sys.modules if m.startswith('robustbench_lite')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return set(out.split())


RUN_MACHINERY = {"robustbench_lite.run", "robustbench_lite.run.plan", "robustbench_lite.run.evaluate",
                 "robustbench_lite.run.engine", "robustbench_lite.models.loaded", "robustbench_lite.api",
                 "robustbench_lite.cli", "robustbench_lite.cli.commands"}
STAGES = ("cli", "run", "report", "analysis", "results", "models", "data", "conditions")


@pytest.mark.parametrize("module", ["robustbench_lite.report.document", "robustbench_lite.analysis.tables",
                                    "robustbench_lite.report.figures", "robustbench_lite.analysis.metrics",
                                    "robustbench_lite.analysis.fit", "robustbench_lite.analysis.run_fit",
                                    "robustbench_lite.report.findings", "robustbench_lite.analysis.references",
                                    "robustbench_lite.analysis.humans", "robustbench_lite.report.population_figure"])
def test_analysis_side_loads_no_run_machinery(module):
    loaded = _modules_loaded_by(f"import {module}")
    assert module in loaded
    assert not loaded & RUN_MACHINERY, sorted(loaded & RUN_MACHINERY)


def test_plugin_face_and_builtins_load_no_run_machinery():
    loaded = _modules_loaded_by("from robustbench_lite import register_transform, PhotoRNG; "
                                "from robustbench_lite.conditions.registry import all_transforms; all_transforms()")
    assert "robustbench_lite.conditions.registry" in loaded
    assert not loaded & RUN_MACHINERY, sorted(loaded & RUN_MACHINERY)
    bare = _modules_loaded_by("import robustbench_lite")
    assert bare == {"robustbench_lite", "robustbench_lite.version"}  # the face alone imports nothing heavy


def test_stage_packages_and_a_small_top():
    """Eight stage packages, each with a docstring and a thin face; at most six modules at the top."""
    package = REPO / "robustbench_lite"
    assert {p.name for p in package.iterdir() if (p / "__init__.py").is_file()} == set(STAGES)
    top = sorted(p.name for p in package.glob("*.py"))
    assert len(top) <= 6, top
    for stage in STAGES:
        loaded = _modules_loaded_by(f"import robustbench_lite.{stage} as s; assert len(s.__doc__.splitlines()) >= 2")
        assert loaded <= {"robustbench_lite", "robustbench_lite.version", f"robustbench_lite.{stage}"}, (stage, loaded)


def test_the_python_api_survives_the_run_stage_package():
    """`robustbench_lite.run` is the run stage and the Python API at once: importing the stage's modules
    first must not take the callable away."""
    code = ("import robustbench_lite.run.engine, robustbench_lite.run.plan; from robustbench_lite import run; "
            "assert callable(run) and run is robustbench_lite.run and run.__name__ == 'robustbench_lite.run'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_import_rules_tool_finds_no_problem():
    tool = REPO.parent / "shared" / "tools" / "import_rules.py"
    if not tool.is_file():
        pytest.skip("../shared/tools/import_rules.py is not beside the checkout")
    result = subprocess.run([sys.executable, str(tool)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_no_module_over_400_lines():
    files = [*(REPO / "robustbench_lite").rglob("*.py"), *(REPO / "transforms").rglob("*.py")]
    long = {str(p.relative_to(REPO)): n for p in files if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


@pytest.mark.slow
def test_records_equal_those_before_the_rework(cli_run, shared_sample, tmp_path):
    code, _, err = cli_run("run", "--data", shared_sample, "--limit", 12, "--models", "efficientnet_lite0",
                           "--transforms", "rotate,border_black,edges,gaussian_noise,posterise", "--severities", 3,
                           "--seed", 0, "--out", tmp_path / "run", "--no-report")
    assert code == 0, err
    records = pq.read_table(tmp_path / "run" / "records.parquet").to_pandas()
    golden = pd.read_csv(GOLDEN)
    merged = golden.merge(records, on=["transform", "severity", "image_id"], how="outer", indicator=True,
                          suffixes=("_golden", ""))
    assert (merged["_merge"] == "both").all() and len(merged) == 6 * 12
    for row in merged.itertuples():
        assert [int(v) for v in row.top5_golden.split()] == list(row.top5), (row.transform, row.image_id)
        np.testing.assert_allclose([float(v) for v in row.top5_prob_golden.split()], row.top5_prob, atol=1e-6)


def test_selection_exclusions():
    from robustbench_lite.errors import UserError
    from robustbench_lite.conditions.registry import all_transforms
    from robustbench_lite.conditions.selection import CORE_FAMILIES, select_transforms

    corruptions = [s.name for s in all_transforms() if s.family == "corruptions"]
    chosen = [s.name for s in select_transforms("corruptions,-glass_blur")]
    assert chosen == [n for n in corruptions if n != "glass_blur"] and len(chosen) == len(corruptions) - 1
    assert [s.name for s in select_transforms("-glass_blur,corruptions")] == chosen  # exclusions apply last
    core = [s.name for s in select_transforms(None)]
    assert {s.family for s in select_transforms(None)} == set(CORE_FAMILIES)
    assert [s.name for s in select_transforms("-outlines")] == [
        n for n in core if n not in {s.name for s in all_transforms() if s.family == "outlines"}]
    with pytest.raises(UserError, match="no_such"):
        select_transforms("corruptions,-no_such")
