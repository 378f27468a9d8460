"""Build the bundled timm population (robustbench_lite/reference_data/timm_*) from timm's results CSVs.

Reads the eight `results-*.csv` of huggingface/pytorch-image-models (ImageNet val, ReaL, ImageNetV2
matched-frequency, Sketch, ImageNet-R and -A with their 200-class clean runs; copied verbatim into
tools/data/timm-results/) and joins them on (model, img_size), the key timm's own
`results/generate_csv_results.py` pairs rows on, anchored on results-imagenet.csv's rows and order.
Writes, deterministically (same inputs, same bytes):

- `timm_results.csv.gz`: one row per (model, img_size), every value copied verbatim as text (empty = no row
  in that file);
- `timm.json`: source repository and commits, licence, citation, the sha256 of every input, and what the
  join left out;
- `SOURCE_timm.md` for people, and `timm_LICENSE.txt` (timm's Apache-2.0 licence, which the data is under).

    python tools/build_timm_population.py [--src DIR] [--out DIR]
"""
from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SRC = REPO / "tools" / "data" / "timm-results"
DEFAULT_OUT = REPO / "robustbench_lite" / "reference_data"
DATA_NAME = "timm_results.csv.gz"
LICENSE_NAME = "timm_LICENSE.txt"
BASE = "results-imagenet.csv"
# output column <- input file (its `top1`); the base file also gives param_count, crop_pct, interpolation
COLUMNS = {
    "top1": BASE,
    "real": "results-imagenet-real.csv",
    "imagenetv2_matched_frequency": "results-imagenetv2-matched-frequency.csv",
    "sketch": "results-sketch.csv",
    "imagenet_r_clean": "results-imagenet-r-clean.csv",
    "imagenet_r": "results-imagenet-r.csv",
    "imagenet_a_clean": "results-imagenet-a-clean.csv",
    "imagenet_a": "results-imagenet-a.csv",
}
BASE_EXTRAS = ("param_count", "crop_pct", "interpolation")
# the 200-class clean runs are the bases of R and A in generate_csv_results.py: they must list val's rows
SAME_ROWS_AS_BASE = ("results-imagenet-r-clean.csv", "results-imagenet-a-clean.csv")

META = {
    "population": "timm",
    "source_repository": "https://github.com/huggingface/pytorch-image-models",
    "source_commit": "aa4b5850c1543fa488abf260f18390eda46cf85d",
    "results_commit": "4e5207c7bb6592474ca56e28b2cf85be8f1a550f",
    "results_commit_note": "the last commit before source_commit that changed results/results-*.csv "
                           "('Update result csvs (#2603)', 2025-10-30)",
    "licence": "Apache-2.0",
    "licence_file": LICENSE_NAME,
    "citation": ["Wightman, R. PyTorch Image Models. GitHub repository, 2019. "
                 "https://github.com/huggingface/pytorch-image-models, doi:10.5281/zenodo.4414861"],
    "how_measured": "results/README.md of the source: timm's validate.py on each pretrained model at its own "
                    "preprocessing; ImageNet-R and -A against val restricted to the same 200 classes "
                    "(imagenet_r_clean, imagenet_a_clean)",
    "join": "rows of results-imagenet.csv, in its order; every other file's top1 by (model, img_size), as "
            "results/generate_csv_results.py pairs them",
    "unit": "top-1 accuracy in percent, as published (empty = no row in that file)",
}


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"model", "img_size", "top1"} <= set(rows[0]):
        raise SystemExit(f"{path}: expected timm's results columns (model, img_size, top1, ...)")
    return rows


def _keyed(name: str, rows: list[dict[str, str]]) -> dict[tuple[str, str], dict[str, str]]:
    keyed = {(r["model"], r["img_size"]): r for r in rows}
    if len(keyed) != len(rows):
        raise SystemExit(f"{name}: a (model, img_size) pair appears twice")
    return keyed


def join(src: Path) -> tuple[list[list[str]], dict[str, list[str]], dict[str, list[str]]]:
    """The joined table as text rows (header first), and per file the rows it left out / lacked ('model@size')."""
    files = {name: _keyed(name, _read(src / name)) for name in dict.fromkeys(COLUMNS.values())}
    base = files[BASE]
    for name in SAME_ROWS_AS_BASE:
        if set(files[name]) != set(base):
            raise SystemExit(f"{name}: its (model, img_size) rows differ from {BASE}'s")
    header = ["model", "img_size", *COLUMNS, *BASE_EXTRAS]
    rows = [header]
    for key, row in base.items():
        values = [files[name][key]["top1"] if key in files[name] else "" for name in COLUMNS.values()]
        rows.append([*key, *values, *(row[c] for c in BASE_EXTRAS)])
    left_out = {name: [f"{m}@{s}" for m, s in keyed if (m, s) not in base] for name, keyed in files.items()}
    lacking = {name: [f"{m}@{s}" for m, s in base if (m, s) not in keyed] for name, keyed in files.items()}
    return rows, {k: v for k, v in left_out.items() if v}, {k: v for k, v in lacking.items() if v}


def build(src: Path, out: Path) -> Path:
    """Write the package data into `out`; returns the data file's path."""
    rows, left_out, lacking = join(src)
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as z:
        z.write(text.getvalue().encode("utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    data = out / DATA_NAME
    data.write_bytes(buffer.getvalue())
    inputs = sorted(dict.fromkeys(COLUMNS.values()))
    meta = dict(META, data_file=DATA_NAME, rows=len(rows) - 1, columns=rows[0],
                source_files=[f"results/{name}" for name in inputs],
                sha256={name: hashlib.sha256((src / name).read_bytes()).hexdigest() for name in inputs},
                left_out_rows={name: items for name, items in left_out.items()},
                rows_without_a_value={name: items for name, items in lacking.items()})
    (out / "timm.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    (out / "SOURCE_timm.md").write_text(_source_md(meta), encoding="utf-8")
    (out / LICENSE_NAME).write_bytes((src / "LICENSE").read_bytes())
    return data


def _source_md(meta: dict) -> str:
    digests = "\n".join(f"  - `{name}` {digest}" for name, digest in meta["sha256"].items())
    gaps = [f"  - {name}: {', '.join(items)} (no row in results-imagenet.csv: left out)"
            for name, items in meta["left_out_rows"].items()]
    gaps += [f"  - {name}: no row for {', '.join(items)} (empty in the table)"
             for name, items in meta["rows_without_a_value"].items()]
    return f"""# Bundled reference population: timm's published results

`{meta['data_file']}`: {meta['rows']} (model, img_size) rows, {meta['unit']}; columns
{', '.join(meta['columns'])}. Generated by `tools/build_timm_population.py`; do not edit by hand.

- Source: {meta['source_repository']} at commit `{meta['source_commit']}` (its results files last changed in
  `{meta['results_commit']}`): {', '.join(meta['source_files'])}.
- Join: {meta['join']}.
- How measured: {meta['how_measured']}.
- Licence: {meta['licence']} (timm's; the text is in `{meta['licence_file']}`).
- sha256 of the inputs:
{digests}
- Gaps:
{chr(10).join(gaps) or '  - none'}

Please cite:

{chr(10).join(f'- {c}' for c in meta['citation'])}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC,
                        help="folder holding timm's results-*.csv and its LICENSE (default: tools/data/timm-results)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the package data")
    args = parser.parse_args(argv)
    data = build(args.src, args.out)
    print(f"wrote {data} ({data.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
