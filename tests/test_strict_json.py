"""model-vs-human's high-pass starts at sigma = inf: manifests and listings stay strict JSON, and resume still works."""
from __future__ import annotations

import json


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"non-strict JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_an_infinite_level_is_written_as_strict_json_and_resumes(cli_run, shared_sample, tmp_path):
    args = ("run", "--data", shared_sample, "--models", "efficientnet_lite0", "--transforms", "high_pass@1",
            "--limit", 2, "--out", tmp_path / "run", "--no-report")
    code, _, err = cli_run(*args)
    assert code == 0, err
    manifest = _strict((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["transforms"]["high_pass"]["severities"][0] == "inf"
    code, _, err = cli_run(*args)  # the same run again: comparable to its own manifest, nothing to do
    assert code == 0 and "differs" not in err
    code, out, _ = cli_run("transforms", "--format", "json")
    listed = {t["name"]: t for t in _strict(out)}
    assert listed["high_pass"]["severities"][0] == "inf" and listed["low_pass"]["severities"][-1] == 40.0
