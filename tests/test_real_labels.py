"""ImageNet ReaL labels (--labels): a prediction is right if it is in the photo's set; empty sets are left out."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from robustbench_lite.errors import UserError
from robustbench_lite.data.imagenet import read_real_labels, val_index


def test_real_scoring_equals_a_hand_computation(cli_run, shared_sample, shared_manifest, tmp_path):
    rows = shared_manifest[:6]
    folder = tmp_path / "val"
    folder.mkdir()
    for i, row in enumerate(rows, start=1):
        (folder / f"ILSVRC2012_val_{i:08d}.JPEG").symlink_to(shared_sample / row["path"])
    lines = ["ImageId,PredictionString"] + [f"ILSVRC2012_val_{i:08d},{r['synset']} 1 2 3 4" for i, r in enumerate(rows, start=1)]
    (folder / "LOC_val_solution.csv").write_text("\n".join(lines) + "\n")
    first = cli_run("run", "--data", folder, "--models", "efficientnet_lite0", "--transforms", "rotate@3",
                    "--out", tmp_path / "plain", "--no-report")
    assert first[0] == 0, first[2]
    plain = pd.read_parquet(tmp_path / "plain" / "records.parquet")
    top1 = {(r.transform, r.image_id): int(r.top5[0]) for r in plain.itertuples()}
    # a hand-made label file: photo 1 its own label, 2 a set without its prediction, 3 empty (left out),
    # 4 its prediction plus another class, 5 and 6 their true labels
    labels = [[int(rows[0]["imagenet_index"])], [999], [], [top1[("clean", "ILSVRC2012_val_00000004.JPEG")], 5],
              [int(rows[4]["imagenet_index"])], [int(rows[5]["imagenet_index"])]]
    (tmp_path / "real.json").write_text(json.dumps(labels))
    code, _, err = cli_run("run", "--data", folder, "--models", "efficientnet_lite0", "--transforms", "rotate@3",
                           "--labels", tmp_path / "real.json", "--out", tmp_path / "real", "--no-report")
    assert code == 0, err
    summary = pd.read_csv(tmp_path / "real" / "summary.csv").set_index("transform")
    for transform in ("clean", "rotate"):
        counted = [i for i in range(6) if labels[i]]
        right = [top1[(transform, f"ILSVRC2012_val_{i + 1:08d}.JPEG")] in labels[i] for i in counted]
        assert summary.loc[transform, "real_n"] == 5
        assert summary.loc[transform, "real"] == pytest.approx(100 * sum(right) / len(right), abs=1e-9)


def test_real_labels_read_and_refuse():
    real = read_real_labels("real")
    assert len(real) == 50_000 and all(isinstance(x, list) for x in real[:10])
    assert val_index("val/ILSVRC2012_val_00000001.JPEG") == 0 and val_index("n01440764/x.JPEG") is None
    with pytest.raises(UserError, match="no such file"):
        read_real_labels("/nowhere.json")
