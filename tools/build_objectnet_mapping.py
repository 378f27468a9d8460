"""Build robustbench_lite/reference_data/objectnet_mapping.json: ObjectNet's 113 classes that overlap
ImageNet-1k, by release folder name, with the ImageNet indices each maps to.

Source: the imagenet-testbed (Taori et al. 2020; MIT licence), `src/eval_settings/objectnet_metadata/`
(`folder_to_objectnet_label.json`, `objectnet_to_imagenet_1k.json`, `imagenet_to_labels.json`; the
first two are the ObjectNet release's own `mappings/` files), at the commit pinned below: the mapping its
`objectnet.py` scores ObjectNet and `val-on-objectnet-classes` with. Run from a clone of
github.com/modestyachts/imagenet-testbed:

    python tools/build_objectnet_mapping.py --testbed /path/to/imagenet-testbed
"""
from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

COMMIT = "0170eec658d664289d9f61de8f90f967f49abca0"
METADATA = "src/eval_settings/objectnet_metadata"
OUT = Path(__file__).resolve().parents[1] / "robustbench_lite" / "reference_data" / "objectnet_mapping.json"


def read(testbed: Path, name: str) -> dict:
    """A metadata file at the pinned commit (a bare git directory or a work tree)."""
    text = subprocess.run(["git", "--git-dir", str(testbed if (testbed / "HEAD").exists() else testbed / ".git"),
                           "show", f"{COMMIT}:{METADATA}/{name}"], check=True, capture_output=True, text=True).stdout
    return json.loads(text)


def build(testbed: Path) -> dict:
    folder_to_label = read(testbed, "folder_to_objectnet_label.json")
    label_to_folder = {label: folder for folder, label in folder_to_label.items()}
    objectnet_to_imagenet = read(testbed, "objectnet_to_imagenet_1k.json")
    imagenet_names = {name: int(index) for index, name in read(testbed, "imagenet_to_labels.json").items()}
    classes = {}
    for label, names in objectnet_to_imagenet.items():  # as the testbed's objectnet.py: names split on '; '
        classes[label_to_folder[label]] = {"label": label, "imagenet": [imagenet_names[n] for n in names.split("; ")]}
    return {
        "source": {"repository": "modestyachts/imagenet-testbed", "commit": COMMIT, "path": METADATA,
                   "licence": "MIT", "citation": "Taori et al. 2020, Measuring Robustness to Natural Distribution "
                   "Shifts in Image Classification; ObjectNet: Barbu et al. 2019"},
        "border": 2,
        "border_note": "the release frames every photo with a 1-pixel border; the testbed crops 2 px "
                       "(PIL ImageOps.crop(border=2)) before its preprocessing",
        "classes": dict(sorted(classes.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--testbed", type=Path, required=True, help="a clone of modestyachts/imagenet-testbed")
    args = parser.parse_args()
    data = build(args.testbed)
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    ids = [i for c in data["classes"].values() for i in c["imagenet"]]
    print(f"{OUT}: {len(data['classes'])} ObjectNet classes, {len(ids)} ImageNet classes ({len(set(ids))} distinct)")


if __name__ == "__main__":
    main()
