"""`run --stability imagenet-p` on real photos with the packaged lite0: records hold one row per frame,
stability.csv equals ImageNet-P's definitions computed here independently from the records, a resumed
run recomputes only a missing sequence, and the AlexNet normalisation is the plain ratio."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from robustbench_lite.analysis.stability import stability_table
from robustbench_lite.errors import UserError
from robustbench_lite.run.config import RunConfig
from robustbench_lite.run.engine import run_benchmark
from conftest import SHARED_SAMPLE

SAMPLE = SHARED_SAMPLE
PHOTOS = 2


def config(out: Path, **extra) -> RunConfig:
    return RunConfig(data=str(SAMPLE), models="efficientnet_lite0", transforms="none", limit=PHOTOS, out=str(out),
                     stability="imagenet-p", **extra)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if not (SAMPLE / "MANIFEST.csv").exists():
        pytest.skip("shared photos not found")
    out = tmp_path_factory.mktemp("stability")
    result = run_benchmark(config(out), echo=lambda _: None)
    assert result.exit_code == 0
    return out


def release_dist(first: list[int], second: list[int]) -> float:
    """hendrycks/robustness ImageNet-P/test.py `dist(sigma, 'top5')`, sigma = ranks in `second` of `first`'s
    top five (a class outside `second`'s top five ranks 6th or lower: all the same to the metric)."""
    cum_sum_top5 = np.cumsum(np.asarray([0] + [1] * 5 + [0] * (999 - 5)))
    sigma = np.array([second.index(c) + 1 if c in second else 7 for c in first])
    return float(np.sum(np.abs(cum_sum_top5[:5] - cum_sum_top5[sigma - 1][:5])))


def independent(records: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Flip probability and top-5 distance per sequence, as test.py's flip_prob and ranking_dist (difficulty 1)."""
    out = {}
    for transform, part in records.groupby("transform"):
        noise = "noise" in transform  # the release's own rule
        flips, distances = [], []
        for _, photo in part.groupby("image_id"):
            frames = [list(t) for t in photo.sort_values("frame")["top5"]]
            reference, per_flip, per_dist = frames[0], [], []
            for frame in frames[1:]:
                per_flip.append(int(reference[0] != frame[0]))
                per_dist.append(release_dist(reference, frame))
                if not noise:
                    reference = frame
            flips.append(np.mean(per_flip))
            distances.append(np.mean(per_dist))
        out[transform.split(".", 1)[1]] = (float(np.mean(flips)), float(np.mean(distances)))
    return out


def test_stability_csv_is_imagenet_p_from_the_records(run):
    records = pq.read_table(run / "records.parquet").to_pandas()
    frames = records[records["frame"].notna()]
    manifest = json.loads((run / "manifest.json").read_text())
    sequences = manifest["stability"]["sequences"]
    assert len(sequences) == 14 and sum(s["frames"] for s in sequences.values()) == 444
    assert len(frames) == PHOTOS * 444  # one record per (photo, frame)
    for transform, info in sequences.items():
        numbers = frames.loc[frames["transform"] == transform, "frame"]
        assert sorted(set(numbers)) == list(range(info["frames"]))
    table = pd.read_csv(run / "stability.csv")
    expected = independent(frames)
    rows = table[table["perturbation"] != "mean"].set_index("perturbation")
    assert set(rows.index) == set(expected)
    for name, (fp, t5d) in expected.items():
        assert abs(rows.loc[name, "flip_rate"] - fp) <= 1e-9 and abs(rows.loc[name, "top5_distance"] - t5d) <= 1e-9
        assert 0.0 <= rows.loc[name, "flip_rate"] <= 1.0 and rows.loc[name, "n_photos"] == PHOTOS
    mean = table[table["perturbation"] == "mean"].iloc[0]
    test_ten = manifest["stability"]["benchmark"]
    assert abs(mean["flip_rate"] - np.mean([expected[n][0] for n in test_ten])) <= 1e-9
    summary = pd.read_csv(run / "summary.csv")
    assert list(summary["transform"]) == ["clean"]  # frames are not accuracy conditions
    assert "## Stability" in (run / "report.md").read_text() and (run / "plots" / "stability.png").is_file()


def test_a_resumed_run_recomputes_only_the_missing_sequence(run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    chunk = next((copy / "chunks").glob("*imagenet-p_rotate*"))
    chunk.unlink()
    before = {p.name: p.stat().st_mtime_ns for p in (copy / "chunks").glob("*.parquet")}
    assert run_benchmark(config(copy), echo=lambda _: None).exit_code == 0
    after = {p.name: p.stat().st_mtime_ns for p in (copy / "chunks").glob("*.parquet")}
    assert {n: t for n, t in after.items() if n in before} == before and len(after) == len(before) + 1
    assert pd.read_csv(copy / "stability.csv").equals(pd.read_csv(run / "stability.csv"))  # seeded per photo


def test_alexnet_normalisation_is_the_ratio_in_percent(run):
    records = pq.read_table(run / "records.parquet").to_pandas()
    records = records[records["frame"].notna()]
    manifest = json.loads((run / "manifest.json").read_text())
    info = manifest["stability"]
    plain = stability_table(records, info["sequences"], info["benchmark"])
    alexnet = {r.perturbation: (0.5 + r.flip_rate, 1.0 + r.top5_distance) for r in plain.itertuples()}
    normalised = stability_table(records, info["sequences"], info["benchmark"], alexnet=alexnet)
    rows = normalised[normalised["perturbation"] != "mean"]
    assert np.allclose(rows["mfr"], [100 * r.flip_rate / alexnet[r.perturbation][0] for r in rows.itertuples()])
    assert np.allclose(rows["mt5d"], [100 * r.top5_distance / alexnet[r.perturbation][1] for r in rows.itertuples()])
    mean = normalised[normalised["perturbation"] == "mean"].iloc[0]
    assert np.isclose(mean["mfr"], rows[rows["perturbation"].isin(info["benchmark"])]["mfr"].mean())
    assert plain["mfr"].isna().all()  # no AlexNet figures published: left empty


def test_unknown_suite_is_one_line():
    with pytest.raises(UserError, match="--stability 'imagenet-q'"):
        run_benchmark(RunConfig(data=str(SAMPLE), stability="imagenet-q", dry_run=True), echo=lambda _: None)


FADE_PLUGIN = '''"""A plug-in perturbation sequence: the photo fades to grey over 6 frames."""
from robustbench_lite import PhotoRNG, register_sequence


@register_sequence("fade", "imagenet-p", 6)
def fade(x, rng: PhotoRNG):
    """The photo fades towards mid grey, a fifth more each frame."""
    for i in range(6):
        yield x * (1 - 0.2 * i) + 0.5 * 0.2 * i
'''


def test_a_plugin_sequence_joins_the_suite_and_is_scored_like_the_release(tmp_path):
    """A user's `register_sequence` plug-in (--plugin) runs beside ImageNet-P's 14 and gets its own row, equal to
    the release's definitions recomputed from its records; outside the suite's mean (not a test perturbation)."""
    import subprocess
    import sys

    if not (SAMPLE / "MANIFEST.csv").exists():
        pytest.skip("shared photos not found")
    plugin = tmp_path / "fade_seq.py"
    plugin.write_text(FADE_PLUGIN)
    out = tmp_path / "run"  # its own process: the plug-in's registration stays out of this one
    done = subprocess.run([sys.executable, "-m", "robustbench_lite", "run", "--data", str(SAMPLE), "--models",
                           "efficientnet_lite0", "--transforms", "none", "--limit", "2", "--stability", "imagenet-p",
                           "--plugin", str(plugin), "--no-report", "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    table = pd.read_csv(out / "stability.csv").set_index("perturbation")
    records = pq.read_table(out / "records.parquet").to_pandas()
    fade = records[records["transform"] == "imagenet-p.fade"]
    assert len(fade) == 2 * 6 and sorted(set(fade["frame"])) == list(range(6))
    flip, distance = independent(fade)["fade"]
    assert table.loc["fade", "flip_rate"] == pytest.approx(flip, abs=1e-9)
    assert table.loc["fade", "top5_distance"] == pytest.approx(distance, abs=1e-9)
    assert len(table) == 14 + 1 + 1  # ImageNet-P's 14, the plug-in's, the mean row
    benchmark = json.loads((out / "manifest.json").read_text())["stability"]["benchmark"]
    assert "fade" not in benchmark and table.loc["mean", "flip_rate"] == pytest.approx(
        table.loc[benchmark, "flip_rate"].mean(), abs=1e-12)
