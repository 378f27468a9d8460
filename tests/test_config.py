"""Config files, the Python API, the manifest's round trip and --dry-run."""
from __future__ import annotations

import json

import pandas as pd

from robustbench_lite.run.config import RunConfig, read_config_file

KEYS = ["model", "transform", "severity", "image_id"]


def test_toml_keys_and_cli_override(tmp_path):
    path = tmp_path / "bench.toml"
    path.write_text('models = ["efficientnet_lite0", "efficientnet_lite1"]\nbatch-size = 16\nseverities = [1, 3]\nlimit = 7\n')
    values = read_config_file(path)
    assert values == {"models": "efficientnet_lite0,efficientnet_lite1", "batch_size": "16", "severities": "1,3", "limit": 7}
    assert RunConfig.from_dict(values).limit == 7


def test_manifest_config_reproduces_the_run(cli_run, shared_sample, tmp_path):
    bench = tmp_path / "bench.toml"
    bench.write_text(f'data = "{shared_sample}"\nmodels = "efficientnet_lite0"\ntransforms = "rotate,border_noise"\n'
                     'severities = "5"\nlimit = 6\nseed = 7\nreport = false\nbatch_size = 4\n')
    first = tmp_path / "first"
    code, _, err = cli_run("run", "--config", bench, "--out", first, "--device", "cpu")
    assert code == 0, err
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["config"]["seed"] == 7 and manifest["config"]["batch_size"] == "4"
    # rerun from the manifest, with a different batch size: same records
    second = tmp_path / "second"
    code, _, err = cli_run("run", "--config", first / "manifest.json", "--out", second, "--batch-size", "6")
    assert code == 0, err
    a = pd.read_parquet(first / "records.parquet").sort_values(KEYS).reset_index(drop=True)
    b = pd.read_parquet(second / "records.parquet").sort_values(KEYS).reset_index(drop=True)
    assert len(a) == 6 * 3 and set(a["transform"]) == {"clean", "border_noise", "rotate"}
    pd.testing.assert_frame_equal(a.drop(columns=["top5_prob", "label_prob", "confidence"]), b.drop(columns=["top5_prob", "label_prob", "confidence"]))
    assert (a["confidence"] - b["confidence"]).abs().max() < 1e-5


def test_dry_run_prints_the_work_and_writes_nothing(cli_run, shared_sample, tmp_path):
    code, _, err = cli_run("run", "--data", shared_sample, "--models", "efficientnet_lite0,efficientnet_lite1", "--transforms", "borders",
                           "--severities", "1,5", "--limit", "30", "--dry-run", "--out", tmp_path / "dry", "--device", "cpu")
    assert code == 0, err
    conditions = 1 + 2 * 5  # clean + five border transforms at two levels
    assert f"30 photos x {conditions} conditions x 2 models = {30 * conditions * 2:,} forward passes" in err
    assert "estimated time" in err
    assert not (tmp_path / "dry").exists()
