"""Faulty plug-ins and models fail their own conditions only: the message is in manifest.json's
`failed` list, the clean rows and the good conditions are in records and summary, exit code 3."""
from __future__ import annotations

import json
import textwrap

import pandas as pd
import pytest
import torch

FAULTY_PLUGIN = '''
import torch
from robustbench_lite import register_transform

CALLS = {"fails_later": 0}


@register_transform("raises", family="faulty", severities=(1,))
def raises(x, level, rng):
    """Raises an exception."""
    raise RuntimeError("boom from the plug-in")


@register_transform("exits", family="faulty", severities=(1,))
def exits(x, level, rng):
    """Calls sys.exit."""
    raise SystemExit(4)


@register_transform("returns_none", family="faulty", severities=(1,))
def returns_none(x, level, rng):
    """Forgets to return."""


@register_transform("wrong_shape", family="faulty", severities=(1,))
def wrong_shape(x, level, rng):
    """Crops without resizing back."""
    return x[:, :, :100].contiguous()


@register_transform("wrong_dtype", family="faulty", severities=(1,))
def wrong_dtype(x, level, rng):
    """Returns 8-bit pixels."""
    return (x * 255).to(torch.uint8)


@register_transform("makes_nan", family="faulty", severities=(1,))
def makes_nan(x, level, rng):
    """Divides by zero somewhere."""
    out = x.clone()
    out[:, :, 0, 0] = float("nan")
    return out


@register_transform("out_of_range", family="faulty", severities=(1,))
def out_of_range(x, level, rng):
    """Forgets to clamp."""
    return x * 3.0


@register_transform("fails_later", family="faulty", severities=(1,))
def fails_later(x, level, rng):
    """Works on the first block, raises on the second."""
    CALLS["fails_later"] += 1
    if CALLS["fails_later"] > 1:
        raise ValueError("second block went wrong")
    return x
'''

EXPECTED_MESSAGE = {
    "raises": "raised RuntimeError: boom from the plug-in",
    "exits": "raised SystemExit",
    "returns_none": "returned NoneType, not a tensor",
    "wrong_shape": "returned shape (4, 3, 100, 224), expected (4, 3, 224, 224)",
    "wrong_dtype": "returned dtype torch.uint8, expected torch.float32",
    "makes_nan": "NaN or infinite values",
    "out_of_range": "outside [0, 1]",
    "fails_later": "raised ValueError: second block went wrong",
}
GOOD = "efficientnet_lite0"


def nan_classifier_checkpoint(path) -> str:
    """lite0's packaged weights with the classifier's weights set to NaN: every logit is NaN."""
    from robustbench_lite.models import load_model, resolve_models

    state = load_model(resolve_models(GOOD)[0], torch.device("cpu")).module.state_dict()
    state["classifier.weight"].fill_(float("nan"))
    torch.save(state, path)
    return f"tf_efficientnet_lite0@{path}"


@pytest.fixture(scope="module")
def faulty_run(shared_sample, tmp_path_factory):
    """Two models (one with NaN weights) x clean, posterise and eight faulty plug-in transforms."""
    from robustbench_lite.cli.commands import main

    tmp = tmp_path_factory.mktemp("faulty")
    plugin = tmp / "faulty_plugin.py"
    plugin.write_text(textwrap.dedent(FAULTY_PLUGIN))
    bad_model = nan_classifier_checkpoint(tmp / "nan_classifier.pth")
    out = tmp / "run"
    code = main(["run", "--data", str(shared_sample), "--models", f"{GOOD},{bad_model}", "--plugin", str(plugin),
                 "--transforms", "faulty,posterise", "--severities", "1", "--limit", "8", "--chunk-size", "4",
                 "--device", "cpu", "--no-report", "--out", str(out)])
    manifest = json.loads((out / "manifest.json").read_text())
    failed = {(f["model"], f["transform"]): f["error"] for f in manifest["failed"]}
    return code, out, failed, "tf_efficientnet_lite0@nan_classifier"  # the checkpoint's display name: ARCH@STEM


def test_the_run_completes_with_exit_code_3(faulty_run):
    code, out, _, _ = faulty_run
    assert code == 3
    assert (out / "records.parquet").exists() and (out / "summary.csv").exists()
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


@pytest.mark.parametrize("transform", list(EXPECTED_MESSAGE))
def test_each_faulty_transform_fails_its_condition_with_its_message(faulty_run, transform):
    _, _, failed, _ = faulty_run
    assert EXPECTED_MESSAGE[transform] in failed[(GOOD, transform)]


def test_nan_logits_fail_that_model_on_every_condition_it_reached(faulty_run):
    _, _, failed, bad_model = faulty_run
    for condition in ("clean", "posterise", "fails_later"):
        assert "produced NaN or infinite logits" in failed[(bad_model, condition)]
    # a transform that fails before the forward pass fails for every model
    assert "raised RuntimeError" in failed[(bad_model, "raises")]
    assert len(failed) == 2 * len(EXPECTED_MESSAGE) + 2


def test_clean_and_good_conditions_are_in_records_and_summary_and_nothing_else(faulty_run):
    _, out, _, _ = faulty_run
    records = pd.read_parquet(out / "records.parquet")
    assert set(zip(records.model, records["transform"])) == {(GOOD, "clean"), (GOOD, "posterise")}
    assert len(records) == 2 * 8
    summary = pd.read_csv(out / "summary.csv")
    assert sorted(zip(summary.model, summary["transform"])) == [(GOOD, "clean"), (GOOD, "posterise")]
    assert (summary.n == 8).all()
    assert summary.set_index("transform").loc["clean", "top1"] > 50


def test_a_condition_that_fails_midway_leaves_no_partial_rows(faulty_run):
    """fails_later worked on the first block of four photos: those rows must not be reported."""
    _, out, failed, _ = faulty_run
    assert (GOOD, "fails_later") in failed
    chunks = [p.name for p in (out / "chunks").glob("*fails_later*.parquet")]
    assert len(chunks) == 1, "the first block's chunk exists on disk..."
    records = pd.read_parquet(out / "records.parquet")
    assert "fails_later" not in set(records["transform"]), "...but is left out of the records"
