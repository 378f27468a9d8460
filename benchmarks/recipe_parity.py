"""Recipe parity (issue #21): EfficientNet-Lite0's corrupted/clean top-1 ratio against the testbed population's.

Runs `robustbench_lite run` with efficientnet_lite0 over the first `--photos` shared photos and all 19
corruptions x 5 severities, once per corruption protocol (skipped where DIR/<protocol>/summary.csv
exists), then for every corruption and severity prints lite0's ratio (top-1 under the corruption /
clean top-1 on the same photos) beside the mean ratio of the testbed's line-fit models whose full-val
clean top-1 is within 2 points of lite0's published 74.85 (`native` against the `_in-memory` columns,
glass_blur and `imagenet-c` against `_on-disk`; the CSV of ../shared/data/published-accuracies).
Comparing ratios with models of the same full-val accuracy removes the easier-photos bias of a sample.

    .venv/bin/python benchmarks/recipe_parity.py --photos 100 --out /tmp/parity --json parity.json
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
LITE0_PUBLISHED = 74.85
WITHIN_PP = 2.0
PROTOCOLS = ("native", "imagenet-c")
ACCEPTANCE = {"native": {"elastic_transform": 5, "glass_blur": 3, "defocus_blur": 5}, "imagenet-c": {"frost": 5}}


def run(protocol: str, photos: int, out: Path) -> pd.DataFrame:
    folder = out / protocol
    if not (folder / "summary.csv").exists():
        command = [sys.executable, "-m", "robustbench_lite", "run", "--data", str(SHARED / "imagenet-sample"),
                   "--models", "efficientnet_lite0", "--limit", str(photos), "--transforms", "family:corruptions",
                   "--corruption-protocol", protocol, "--out", str(folder), "--no-report"]
        subprocess.run(command, check=True, cwd=REPO)
    return pd.read_csv(folder / "summary.csv")


def population() -> tuple[pd.DataFrame, list[str]]:
    """The testbed's line-fit models within WITHIN_PP of lite0's published clean top-1."""
    sys.path.insert(0, str(REPO))
    from robustbench_lite.analysis.references import LINE_FIT_EXCLUDED_NAMES, LINE_FIT_MIN_CLEAN, LINE_FIT_TYPE

    top1 = pd.read_csv(SHARED / "published-accuracies" / "testbed_robustness_top1s.csv")
    types = pd.read_csv(SHARED / "published-accuracies" / "testbed_model_types.csv")
    frame = top1.merge(types, on="model")
    names = frame["model"].astype(str)
    keep = (frame["model_type"].eq(LINE_FIT_TYPE) & (frame["val"] >= LINE_FIT_MIN_CLEAN)
            & ~names.apply(lambda n: any(s in n for s in LINE_FIT_EXCLUDED_NAMES))
            & ((frame["val"] - LITE0_PUBLISHED).abs() <= WITHIN_PP))
    return frame[keep], frame[keep]["model"].tolist()


def column(name: str, severity: int, protocol: str, header) -> str:
    memory = f"imagenet-c.{name}.{severity}_in-memory"
    return memory if protocol == "native" and memory in header else f"imagenet-c.{name}.{severity}_on-disk"


def table(summaries: dict[str, pd.DataFrame]) -> tuple[list[dict], dict]:
    models, names = population()
    rows = []
    for protocol, summary in summaries.items():
        clean = summary.loc[summary["transform"] == "clean", "top1"].iloc[0]
        for name in sorted(summary.loc[summary["family"] == "corruptions", "transform"].unique()):
            for severity in range(1, 6):
                col = column(name, severity, protocol, models.columns)
                part = models[["val", col]].dropna()
                hit = summary.loc[(summary["transform"] == name) & (summary["severity"] == severity), "top1"]
                if hit.empty:
                    continue
                top1 = hit.iloc[0]
                rows.append({"protocol": protocol, "corruption": name, "severity": severity, "lite0_ratio": top1 / clean,
                             "population_ratio": float((part[col] / part["val"]).mean()), "column": col,
                             "population_n": len(part)})
    frame = pd.DataFrame(rows)
    acceptance = {}
    for protocol, wanted in ACCEPTANCE.items():
        for name, last in wanted.items():
            part = frame[(frame["protocol"] == protocol) & (frame["corruption"] == name) & (frame["severity"] <= last)]
            if len(part):
                acceptance[f"{protocol}:{name}@1-{last}"] = {
                    "lite0": float(part["lite0_ratio"].mean()), "population": float(part["population_ratio"].mean()),
                    "gap": float(part["lite0_ratio"].mean() - part["population_ratio"].mean())}
    return rows, {"population_models": names, "acceptance": acceptance,
                  "clean_top1": {p: float(s.loc[s["transform"] == "clean", "top1"].iloc[0]) for p, s in summaries.items()}}


def markdown(rows: list[dict], meta: dict) -> str:
    frame = pd.DataFrame(rows)
    lines = [f"lite0 clean top-1: {meta['clean_top1']}; population: {len(meta['population_models'])} line-fit models "
             f"within {WITHIN_PP} pp of {LITE0_PUBLISHED}", "",
             "| corruption | severity | native lite0 | native population | imagenet-c lite0 | imagenet-c population |",
             "|---|---:|---:|---:|---:|---:|"]
    wide = frame.pivot_table(index=["corruption", "severity"], columns="protocol",
                             values=["lite0_ratio", "population_ratio"])
    for (name, severity), r in wide.iterrows():
        cells = [f"{r.get((v, p), float('nan')):.2f}" for p in PROTOCOLS for v in ("lite0_ratio", "population_ratio")]
        lines.append(f"| {name} | {severity} | " + " | ".join(cells) + " |")
    lines += ["", "| acceptance | lite0 | population | gap |", "|---|---:|---:|---:|"]
    for key, a in meta["acceptance"].items():
        lines.append(f"| {key} | {a['lite0']:.3f} | {a['population']:.3f} | {a['gap']:+.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    summaries = {p: run(p, args.photos, args.out) for p in args.protocols.split(",")}
    rows, meta = table(summaries)
    print(markdown(rows, meta))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, **meta}, indent=1))


if __name__ == "__main__":
    main()
