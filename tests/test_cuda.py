"""The CUDA path, exercised whenever a GPU is present (skipped on CPU-only machines)."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
KEYS = ["model", "transform", "severity", "image_id"]


def run_on(device: str, precision: str, out, shared_sample, batch_size="auto"):
    from robustbench_lite import run

    run(data=str(shared_sample), models="efficientnet_lite0", transforms="greyscale,rotate,gaussian_noise", severities="3",
        limit=48, device=device, precision=precision, batch_size=batch_size, out=str(out), report=False)
    return pd.read_parquet(out / "records.parquet").sort_values(KEYS).reset_index(drop=True)


def test_cuda_matches_cpu_and_amp_runs(shared_sample, tmp_path):
    cpu = run_on("cpu", "fp32", tmp_path / "cpu", shared_sample, batch_size=16)
    gpu = run_on("cuda", "fp32", tmp_path / "gpu", shared_sample)
    bf16 = run_on("cuda", "bf16", tmp_path / "bf16", shared_sample)
    assert cpu[KEYS].equals(gpu[KEYS]) and cpu[KEYS].equals(bf16[KEYS])
    fixed = ~cpu["transform"].isin(["rotate", "gaussian_noise"])  # seeded draws differ between CPU and CUDA generators
    top1 = lambda df: df["top5"].map(lambda t: t[0])
    assert (top1(cpu)[fixed] == top1(gpu)[fixed]).mean() >= 0.95
    assert (cpu["confidence"][fixed] - gpu["confidence"][fixed]).abs().max() < 0.02
    assert (top1(gpu) == top1(bf16)).mean() >= 0.9
    # random transforms are deterministic on CUDA too: a second run draws the same
    again = run_on("cuda", "fp32", tmp_path / "gpu2", shared_sample, batch_size=7)
    assert (top1(gpu) == top1(again)).all()
    assert (gpu["confidence"] - again["confidence"]).abs().max() < 1e-4
