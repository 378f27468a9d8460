"""ImageNet val in its original flat layout, labelled by Kaggle's CSV or the devkit's files."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.io import savemat

from robustbench_lite.data.datasets import open_dataset
from robustbench_lite.data.imagenet import synset_to_index
from robustbench_lite.errors import UserError


def flat_val(tmp_path, shared_sample, rows):
    """Shared photos linked as ILSVRC2012_val_0000000N.JPEG in one flat folder."""
    folder = tmp_path / "val"
    folder.mkdir()
    for i, row in enumerate(rows, start=1):
        (folder / f"ILSVRC2012_val_{i:08d}.JPEG").symlink_to(shared_sample / row["path"])
    return folder


def test_kaggle_solution_csv(shared_sample, shared_manifest, tmp_path):
    rows = shared_manifest[:5]
    folder = flat_val(tmp_path, shared_sample, rows)
    lines = ["ImageId,PredictionString"] + [f"ILSVRC2012_val_{i:08d},{r['synset']} 1 2 3 4" for i, r in enumerate(rows, start=1)]
    (folder / "LOC_val_solution.csv").write_text("\n".join(lines) + "\n")
    dataset = open_dataset(folder)
    assert dataset.layout == "imagenet-val-flat"
    assert [s.label for s in dataset.samples] == [int(r["imagenet_index"]) for r in rows]


def test_devkit_ground_truth_with_meta_mat(shared_sample, shared_manifest, tmp_path):
    rows = shared_manifest[:4]
    folder = flat_val(tmp_path, shared_sample, rows)
    # the devkit numbers classes by ILSVRC2012_ID, an order of its own: here the reverse of synset order
    synsets = list(synset_to_index())
    ilsvrc_id = {wnid: 1000 - i for i, wnid in enumerate(synsets)}
    table = np.zeros(1000, dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O")])
    for i, wnid in enumerate(synsets):
        table[i] = (ilsvrc_id[wnid], wnid)
    savemat(folder / "meta.mat", {"synsets": table})
    (folder / "ILSVRC2012_validation_ground_truth.txt").write_text("\n".join(str(ilsvrc_id[r["synset"]]) for r in rows) + "\n")
    dataset = open_dataset(folder)
    assert [s.label for s in dataset.samples] == [int(r["imagenet_index"]) for r in rows]


def test_devkit_ground_truth_without_meta_mat_is_one_clear_error(shared_sample, shared_manifest, tmp_path):
    folder = flat_val(tmp_path, shared_sample, shared_manifest[:2])
    (folder / "ILSVRC2012_validation_ground_truth.txt").write_text("65\n970\n")
    with pytest.raises(UserError, match="meta.mat"):
        open_dataset(folder)
