"""Build the bundled reference population (robustbench_lite/reference_data/) from the testbed's CSVs.

Reads `testbed_robustness_top1s.csv` (338 models x 213 settings, top-1 in percent) and
`testbed_model_types.csv` from --shared and writes, deterministically (same input, same bytes):

- `testbed_top1.csv.gz`: `model, model_type` then every setting, each value copied verbatim as text;
- `testbed.json`: source repository, commit, licence, citation and the sha256 of both inputs;
- `SOURCE.md`: the same for people;
- `alexnet_imagenet_c_errors.csv` and `alexnet.json`: AlexNet's published ImageNet-C top-1 errors
  (the mCE normaliser of Hendrycks & Dietterich 2019), copied verbatim, with their source.

    python tools/build_references.py [--shared DIR] [--out DIR]
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
DEFAULT_SHARED = REPO.parent / "shared" / "data" / "published-accuracies"
DEFAULT_OUT = REPO / "robustbench_lite" / "reference_data"
TOP1S = "testbed_robustness_top1s.csv"
TYPES = "testbed_model_types.csv"
DATA_NAME = "testbed_top1.csv.gz"
ALEXNET = "imagenet-c_alexnet_errors.csv"
ALEXNET_NAME = "alexnet_imagenet_c_errors.csv"
ALEXNET_META = {
    "what": "AlexNet top-1 error per ImageNet-C corruption, averaged and per severity (fractions)",
    "source_repository": "https://github.com/hendrycks/robustness",
    "source_commit": "76d9393",
    "source_files": ["README.md (the AlexNet errors table); the same averages are ALEXNET_ERR in "
                     "google-research/augmix imagenet.py"],
    "clean_error": 0.4348,
    "clean_error_source": "imagenet-testbed val: alexnet 56.52 % top-1",
    "licence": "Apache-2.0 (hendrycks/robustness)",
    "citation": ["Hendrycks, Dietterich. Benchmarking Neural Network Robustness to Common Corruptions and "
                 "Perturbations. ICLR 2019."],
}

META = {
    "population": "testbed",
    "source_repository": "https://github.com/modestyachts/imagenet-testbed",
    "source_commit": "f4083a29524fe9a9e029bf34d1476cea5a497132",
    "source_files": ["robustness_top1s.csv", "plotting/model_types.py (model_type, parsed as text)"],
    "licence": "MIT",
    "citation": [
        "Taori, Dave, Shankar, Carlini, Recht, Schmidt. Measuring Robustness to Natural Distribution "
        "Shifts in Image Classification. NeurIPS 2020.",
        "Miller, Taori, Raghunathan, Sagawa, Koh, Shankar, Liang, Carmon, Schmidt. Accuracy on the Line: "
        "On the Strong Correlation Between Out-of-Distribution and In-Distribution Generalization. ICML 2021.",
    ],
    "unit": "top-1 accuracy in percent, as published (empty = not evaluated)",
}


def _read(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def build_rows(shared: Path) -> list[list[str]]:
    """The merged table as text rows: header then one row per model, in the published order."""
    top1s, types = _read(shared / TOP1S), _read(shared / TYPES)
    if top1s[0][0] != "model" or types[0] != ["model", "model_type"]:
        raise SystemExit(f"unexpected headers in {shared}")
    model_type = dict(row for row in types[1:])
    if len(model_type) != len(types) - 1:
        raise SystemExit(f"{TYPES}: duplicate model names")
    missing = [row[0] for row in top1s[1:] if row[0] not in model_type]
    if missing:
        raise SystemExit(f"{TYPES} lacks {len(missing)} models, e.g. {missing[0]}")
    rows = [["model", "model_type", *top1s[0][1:]]]
    rows += [[row[0], model_type[row[0]], *row[1:]] for row in top1s[1:]]
    return rows


def build(shared: Path, out: Path) -> Path:
    """Write the package data into `out`; returns the data file's path."""
    rows = build_rows(shared)
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as z:
        z.write(text.getvalue().encode("utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    data = out / DATA_NAME
    data.write_bytes(buffer.getvalue())
    meta = dict(META, data_file=DATA_NAME, models=len(rows) - 1, settings=len(rows[0]) - 2,
                sha256={name: hashlib.sha256((shared / name).read_bytes()).hexdigest() for name in (TOP1S, TYPES)})
    (out / "testbed.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    (out / "SOURCE.md").write_text(_source_md(meta), encoding="utf-8")
    alexnet = (shared / ALEXNET).read_bytes()
    (out / ALEXNET_NAME).write_bytes(alexnet)
    alexnet_meta = dict(ALEXNET_META, data_file=ALEXNET_NAME, sha256=hashlib.sha256(alexnet).hexdigest())
    (out / "alexnet.json").write_text(json.dumps(alexnet_meta, indent=2) + "\n", encoding="utf-8")
    return data


def _source_md(meta: dict) -> str:
    cites = "\n".join(f"- {c}" for c in meta["citation"])
    return f"""# Bundled reference population: the ImageNet testbed

`{meta['data_file']}`: {meta['models']} models x {meta['settings']} evaluation settings, {meta['unit']},
with each model's `model_type`. Generated by `tools/build_references.py`; do not edit by hand.

- Source: {meta['source_repository']} at commit `{meta['source_commit']}`
  ({'; '.join(meta['source_files'])}).
- Licence: {meta['licence']} (the testbed's).
- sha256 of the inputs: `{TOP1S}` {meta['sha256'][TOP1S]}, `{TYPES}` {meta['sha256'][TYPES]}.

Please cite:

{cites}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="folder holding the testbed CSVs")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the package data")
    args = parser.parse_args(argv)
    data = build(args.shared, args.out)
    print(f"wrote {data} ({data.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
