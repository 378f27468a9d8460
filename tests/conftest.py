"""Shared fixtures: the real photos in ../shared and small helpers to run the real CLI."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# ../shared beside the checkout; ROBUSTBENCH_LITE_SHARED points elsewhere (e.g. photos carried to a GPU machine)
SHARED = Path(os.environ.get("ROBUSTBENCH_LITE_SHARED", REPO.parent / "shared"))
SHARED_SAMPLE = SHARED / "data" / "imagenet-sample"
PUBLISHED = SHARED / "data" / "published-accuracies"


def pytest_configure(config) -> None:
    """Transforms called directly on CUDA get the arithmetic every CUDA run sets (run/engine.py): no TF32."""
    import torch

    torch.backends.cudnn.allow_tf32 = False


def manifest_rows() -> list[dict]:
    with open(SHARED_SAMPLE / "MANIFEST.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def shared_sample() -> Path:
    if not SHARED_SAMPLE.is_dir():
        pytest.skip("../shared/data/imagenet-sample is not beside the checkout")
    return SHARED_SAMPLE


@pytest.fixture(scope="session")
def shared_manifest() -> list[dict]:
    return manifest_rows()


def make_subset_folder(dest: Path, rows: list[dict]) -> Path:
    """A synset-folder dataset of symlinks to some shared photos (nothing copied)."""
    for row in rows:
        target = dest / row["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(SHARED_SAMPLE / row["path"])
    return dest


@pytest.fixture
def cli_run(capsys):
    """Call the real CLI in-process; returns (exit code, stdout, stderr)."""
    from robustbench_lite.cli.commands import main

    def run(*args: str):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run
