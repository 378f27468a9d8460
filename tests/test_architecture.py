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


RUN_MACHINERY = {"robustbench_lite.plan", "robustbench_lite.evaluate", "robustbench_lite.engine",
                 "robustbench_lite.models", "robustbench_lite.api", "robustbench_lite.cli"}


@pytest.mark.parametrize("module", ["robustbench_lite.report", "robustbench_lite.analysis", "robustbench_lite.plots",
                                    "robustbench_lite.metrics", "robustbench_lite.fit", "robustbench_lite.run_fit",
                                    "robustbench_lite.findings", "robustbench_lite.references",
                                    "robustbench_lite.humans", "robustbench_lite.population_plot"])
def test_analysis_side_loads_no_run_machinery(module):
    loaded = _modules_loaded_by(f"import {module}")
    assert module in loaded
    assert not loaded & RUN_MACHINERY, sorted(loaded & RUN_MACHINERY)


def test_plugin_face_and_builtins_load_no_run_machinery():
    loaded = _modules_loaded_by("from robustbench_lite import register_transform, PhotoRNG; "
                                "from robustbench_lite.registry import all_transforms; all_transforms()")
    assert "robustbench_lite.registry" in loaded
    assert not loaded & RUN_MACHINERY, sorted(loaded & RUN_MACHINERY)
    bare = _modules_loaded_by("import robustbench_lite")
    assert bare == {"robustbench_lite", "robustbench_lite.version"}  # the face alone imports nothing heavy


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
    from robustbench_lite.registry import all_transforms
    from robustbench_lite.selection import CORE_FAMILIES, select_transforms

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
