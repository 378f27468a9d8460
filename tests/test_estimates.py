"""Does the model know when it is in trouble? selective.csv, accuracy_estimates.csv, the report section and
`estimate` on unlabelled photos, each checked against an independent computation from the records of real runs."""
from __future__ import annotations

import math
import shutil
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy import stats

from conftest import SHARED_SAMPLE, make_subset_folder
from robustbench_lite.analysis.accuracy_estimates import aline, estimate_table, mean_absolute_errors
from robustbench_lite.analysis.selective import aurc, optimal_aurc
from robustbench_lite.data.unlabelled import unlabelled_dataset

MODELS = ["efficientnet_lite0@128px", "efficientnet_lite1@128px", "efficientnet_lite2@128px"]
PHOTOS = 80


@pytest.fixture(scope="module")
def run_dir(shared_sample, tmp_path_factory):
    """Three packaged models at 128 px on 80 real photos: clean, greyscale@5, gaussian_noise@3, contrast@4, with the report."""
    from robustbench_lite.cli.commands import main

    out = tmp_path_factory.mktemp("trouble") / "run"
    code = main(["run", "--data", str(shared_sample), "--models", "efficientnet_lite0,efficientnet_lite1,efficientnet_lite2",
                 "--resolutions", "128", "--transforms", "greyscale@5,gaussian_noise@3,contrast@4", "--limit", str(PHOTOS),
                 "--device", "cpu", "--out", str(out)])
    assert code == 0
    return out


def records_of(run_dir: Path) -> pd.DataFrame:
    """records.parquet in file order, read without the package, with its condition key."""
    frame = pq.read_table(run_dir / "records.parquet").to_pandas()
    frame["condition"] = [t if s == 0 else f"{t}@{s}" for t, s in zip(frame["transform"], frame["severity"])]
    frame["top1"] = [int(t[0]) for t in frame["top5"]]
    return frame


def test_aurc_by_hand():
    # risks 0/1, 1/2, 1/3 over the three most confident photos; a perfect ranking of 2 right: 0, 0, 1/3
    assert aurc([0.9, 0.8, 0.7], [True, False, True]) == pytest.approx((0 + 1 / 2 + 1 / 3) / 3)
    assert optimal_aurc(3, 2) == pytest.approx((1 / 3) / 3)
    assert aurc([0.5, 0.5], [False, True]) == pytest.approx((1 + 1 / 2) / 2)  # a tie keeps the records' order


def test_selective_csv_equals_an_independent_computation(run_dir):
    records = records_of(run_dir)
    table = pd.read_csv(run_dir / "selective.csv")
    assert list(table.columns) == ["model", "condition", "n", "top1", "aurc", "optimal_aurc", "e_aurc",
                                   "accuracy_at_coverage_80", "accuracy_at_coverage_50"]
    assert len(table) == 3 * 4 and set(table["model"]) == set(MODELS)
    summary = pd.read_csv(run_dir / "summary.csv")
    summary["condition"] = [t if s == 0 else f"{t}@{s}" for t, s in zip(summary["transform"], summary["severity"])]
    for row in table.itertuples():
        part = records.loc[(records["model"] == row.model) & (records["condition"] == row.condition)]
        confidence, right = part["confidence"].tolist(), part["correct1"].tolist()
        order = sorted(range(len(confidence)), key=lambda i: -confidence[i])  # Python's sort is stable
        errors, risks = 0, []
        for k, i in enumerate(order, start=1):
            errors += not right[i]
            risks.append(errors / k)
        n_right = sum(right)
        best = sum(max(0, k - n_right) / k for k in range(1, len(right) + 1)) / len(right)
        assert row.n == len(right) == PHOTOS
        assert row.aurc == pytest.approx(sum(risks) / len(risks), abs=1e-6)
        assert row.optimal_aurc == pytest.approx(best, abs=1e-6)
        assert row.e_aurc == pytest.approx(sum(risks) / len(risks) - best, abs=1e-6)
        assert row.accuracy_at_coverage_80 == pytest.approx(100 * sum(right[i] for i in order[:64]) / 64)
        assert row.accuracy_at_coverage_50 == pytest.approx(100 * sum(right[i] for i in order[:40]) / 40)
        measured = summary.loc[(summary["model"] == row.model) & (summary["condition"] == row.condition), "top1"]
        assert row.top1 == pytest.approx(float(measured.iloc[0]))
    clean = table.loc[table["condition"] == "clean"]
    noisy = table.loc[table["condition"] == "gaussian_noise@3"]
    assert (clean["aurc"].to_numpy() < noisy["aurc"].to_numpy()).all()  # confident answers go wrong more under noise
    assert (table["e_aurc"] >= -1e-12).all()


def test_accuracy_estimates_equal_independent_computations(run_dir):
    records = records_of(run_dir)
    table = pd.read_csv(run_dir / "accuracy_estimates.csv")
    assert list(table.columns) == ["model", "condition", "method", "estimated_top1", "measured_top1", "error"]
    assert set(table["condition"]) == {"greyscale@5", "gaussian_noise@3", "contrast@4"}  # clean is the source, not a target
    assert set(table["method"]) == {"ac", "doc", "atc", "aline-s", "aline-d"}
    one_photo = 100 / PHOTOS
    by = table.set_index(["model", "condition", "method"])["estimated_top1"]

    def cell(model, condition):
        return records.loc[(records["model"] == model) & (records["condition"] == condition)]

    for condition in ["greyscale@5", "gaussian_noise@3", "contrast@4"]:
        for model in MODELS:
            clean, target = cell(model, "clean"), cell(model, condition)
            clean_accuracy, clean_conf = clean["correct1"].mean(), clean["confidence"].astype(float)
            target_conf = target["confidence"].astype(float)
            assert by[model, condition, "ac"] == pytest.approx(100 * target_conf.mean(), abs=1e-4)
            doc = 100 * min(1.0, max(0.0, clean_accuracy + target_conf.mean() - clean_conf.mean()))
            assert by[model, condition, "doc"] == pytest.approx(doc, abs=1e-4)
            threshold = np.quantile(clean_conf, 1 - clean_accuracy, method="inverted_cdf")  # the clean error's quantile
            assert abs(by[model, condition, "atc"] - 100 * (target_conf > threshold).mean()) <= one_photo
            measured = table.loc[(table["model"] == model) & (table["condition"] == condition), "measured_top1"]
            assert np.allclose(measured, 100 * target["correct1"].mean())
        # ALine-S: probit OLS of target agreement on clean agreement over the model pairs
        answers = {key: records.loc[records["condition"] == key].pivot(index="image_id", columns="model", values="top1")
                   for key in ("clean", condition)}
        pairs = [(a, b) for a, b in combinations(MODELS, 2)]
        x = [(answers["clean"][a] == answers["clean"][b]).mean() for a, b in pairs]
        y = [(answers[condition][a] == answers[condition][b]).mean() for a, b in pairs]
        assert all(0.05 <= v <= 0.98 for v in x + y)  # every pair is in the line here
        slope, intercept = np.polyfit(stats.norm.ppf(x), stats.norm.ppf(y), 1)
        for model in MODELS:
            accuracy = cell(model, "clean")["correct1"].mean()
            expected = 100 * stats.norm.cdf(slope * stats.norm.ppf(accuracy) + intercept)
            assert abs(by[model, condition, "aline-s"] - expected) <= one_photo
    assert np.allclose(table["error"], table["estimated_top1"] - table["measured_top1"])


def test_aline_d_solves_the_papers_pairwise_system_by_hand():
    # Baek et al.: for each pair, (q_i + q_j)/2 = probit(agr_ood_ij) + a[(probit acc_i + probit acc_j)/2 - probit agr_id_ij]
    acc = np.array([0.80, 0.70, 0.60])
    agree_id = {(0, 1): 0.78, (0, 2): 0.70, (1, 2): 0.66}
    agree_ood = {(0, 1): 0.55, (0, 2): 0.50, (1, 2): 0.40}
    matrix = lambda d: np.array([[1.0 if i == j else d[tuple(sorted((i, j)))] for j in range(3)] for i in range(3)])  # noqa: E731
    ppf = stats.norm.ppf
    slope, intercept = np.polyfit(ppf(list(agree_id.values())), ppf(list(agree_ood.values())), 1)
    r = {p: ppf(agree_ood[p]) + slope * ((ppf(acc[p[0]]) + ppf(acc[p[1]])) / 2 - ppf(agree_id[p])) for p in agree_id}
    # three pairs, three unknowns: q_0 = r01 + r02 - r12, and so on
    q = np.array([r[0, 1] + r[0, 2] - r[1, 2], r[0, 1] + r[1, 2] - r[0, 2], r[0, 2] + r[1, 2] - r[0, 1]])
    aline_s, aline_d, (a, b) = aline(acc, matrix(agree_id), matrix(agree_ood))
    assert (a, b) == pytest.approx((slope, intercept))
    assert aline_d == pytest.approx(stats.norm.cdf(q), abs=1e-12)
    assert aline_s == pytest.approx(stats.norm.cdf(slope * ppf(acc) + intercept), abs=1e-12)
    # agreements exactly on a line (slope 0.9, bias -0.4) give back accuracies on the same line
    on_line = {p: stats.norm.cdf(0.9 * ppf(v) - 0.4) for p, v in agree_id.items()}
    _, exact, line = aline(acc, matrix(agree_id), matrix(on_line))
    assert line == pytest.approx((0.9, -0.4))
    assert exact == pytest.approx(stats.norm.cdf(0.9 * ppf(acc) - 0.4), abs=1e-12)


def test_a_natural_shift_is_estimated_from_its_own_counterpart():
    rng = np.random.default_rng(0)
    rows = []
    for model in ("a", "b", "c"):
        for key, n, mean_conf, right in (("clean", 200, 0.8, 0.75), ("clean@r-classes", 100, 0.7, 0.6),
                                         ("imagenet-r", 150, 0.5, 0.35), ("imagenet-sketch", 120, 0.4, 0.3)):
            conf = np.clip(rng.normal(mean_conf, 0.1, n), 0.01, 1.0)
            rows.append(pd.DataFrame({"model": model, "transform": key, "severity": 0, "image_id": [f"{key}/{i}" for i in range(n)],
                                      "top1": rng.integers(0, 3, n), "confidence": conf, "correct1": rng.random(n) < right}))
    records = pd.concat(rows, ignore_index=True)
    table = estimate_table(records, ["a", "b", "c"])
    assert set(table["condition"]) == {"imagenet-r", "imagenet-sketch"}
    for condition, source in (("imagenet-r", "clean@r-classes"), ("imagenet-sketch", "clean")):
        src = records.loc[(records["model"] == "a") & (records["transform"] == source)]
        tgt = records.loc[(records["model"] == "a") & (records["transform"] == condition)]
        doc = table.loc[(table["model"] == "a") & (table["condition"] == condition) & (table["method"] == "doc"),
                        "estimated_top1"].iloc[0]
        assert doc == pytest.approx(100 * (src["correct1"].mean() + tgt["confidence"].mean() - src["confidence"].mean()))


def test_report_section_reads_the_numbers(run_dir):
    estimates = pd.read_csv(run_dir / "accuracy_estimates.csv")
    mae = mean_absolute_errors(estimates)
    best = mae.idxmin()
    names = {"ac": "AC", "doc": "DoC", "atc": "ATC", "aline-s": "ALine-S", "aline-d": "ALine-D"}
    markdown = (run_dir / "report.md").read_text()
    section = markdown.split("## Does it know when it is in trouble?")[1].split("\n## ")[0]
    assert f"{names[best]}'s estimate of top-1 came closest to the measured one (mean absolute error {mae[best]:.1f} points" \
        in section
    worst = estimates.loc[estimates["method"] == "ac"].sort_values("error").iloc[-1]
    assert f"Its confidence misleads most on {worst['condition']}: {worst['model']} averages" in section
    assert "![trouble](plots/trouble.png)" in section and (run_dir / "plots" / "trouble.png").stat().st_size > 10_000


def test_unlabelled_folders_never_read_labels(tmp_path):
    make_subset_folder(tmp_path / "synsets", [{"path": "n01440764/n01440764_tench.JPEG"},
                                              {"path": "n01484850/n01484850_great_white_shark.JPEG"}])
    (tmp_path / "synsets" / "n01440764" / "deeper").mkdir()
    shutil.copy(SHARED_SAMPLE / "n01440764" / "n01440764_tench.JPEG", tmp_path / "synsets" / "n01440764" / "deeper" / "x.jpg")
    (tmp_path / "synsets" / "readme.txt").write_text("not a photo")
    dataset = unlabelled_dataset(tmp_path / "synsets")
    assert [s.id for s in dataset.samples] == ["n01440764/deeper/x.jpg", "n01440764/n01440764_tench.JPEG",
                                               "n01484850/n01484850_great_white_shark.JPEG"]
    assert {s.label for s in dataset.samples} == {-1}
    assert dataset.ignored == [{"path": "readme.txt", "reason": "not an image file type"}]


def test_estimate_on_unlabelled_flat_photos_is_close_to_their_measured_top1(cli_run, shared_sample, shared_manifest,
                                                                             tmp_path):
    """Half the shared photos (labelled) are the reference; the other half, renamed into one flat folder with
    no label anywhere, is estimated; a labelled run of those same photos measures their top-1."""
    reference_rows, target_rows = shared_manifest[0::2], shared_manifest[1::2]
    reference = make_subset_folder(tmp_path / "reference", reference_rows)
    labelled = make_subset_folder(tmp_path / "labelled", target_rows)
    flat = tmp_path / "flat"
    flat.mkdir()
    for i, row in enumerate(target_rows):
        (flat / f"photo_{i:03d}.jpg").symlink_to(shared_sample / row["path"])
    (flat / "broken.jpg").write_bytes(b"not a jpeg")
    code, out, err = cli_run("estimate", "--data", flat, "--models", "efficientnet_lite0", "--reference-data", reference,
                             "--device", "cpu", "--out", tmp_path / "estimate")
    assert code == 0, err
    assert "skipped 1 undecodable photo(s): unlabelled/broken.jpg" in err
    estimates = pd.read_csv(tmp_path / "estimate" / "estimates.csv")
    assert list(estimates.columns) == ["model", "method", "estimated_top1", "n_photos", "source_top1", "source_n_photos"]
    assert list(estimates["method"]) == ["ac", "doc", "atc"]  # one model: no agreement methods
    assert (estimates["n_photos"] == len(target_rows)).all() and (estimates["source_n_photos"] == len(reference_rows)).all()
    assert "efficientnet_lite0" in out and "atc" in out
    code, _, err = cli_run("run", "--data", labelled, "--models", "efficientnet_lite0", "--transforms", "none",
                           "--device", "cpu", "--no-report", "--out", tmp_path / "labelled-run")
    assert code == 0, err
    summary = pd.read_csv(tmp_path / "labelled-run" / "summary.csv")
    measured = float(summary["top1"].iloc[0])
    atc = float(estimates.loc[estimates["method"] == "atc", "estimated_top1"].iloc[0])
    print(f"\nlite0 on {len(target_rows)} unlabelled photos: ATC {atc:.1f} % vs measured {measured:.1f} %")
    assert abs(atc - measured) <= 6
    reference_run = pq.read_table(tmp_path / "estimate" / "records.parquet").to_pandas()
    clean = reference_run.loc[reference_run["transform"] == "clean"]
    assert estimates["source_top1"].iloc[0] == pytest.approx(100 * clean["correct1"].mean())


def test_estimate_with_three_models_adds_agreement_on_the_line(cli_run, shared_sample, shared_manifest, tmp_path):
    flat = tmp_path / "nested" / "a" / "b"
    flat.mkdir(parents=True)
    for i, row in enumerate(shared_manifest[1:120:4]):
        (flat / f"{i}.JPEG").symlink_to(shared_sample / row["path"])
    code, out, err = cli_run("estimate", "--data", tmp_path / "nested", "--models", "efficientnet_lite0",
                             "--resolutions", "96,128,160", "--reference-limit", "60", "--device", "cpu",
                             "--out", tmp_path / "estimate")
    assert code == 0, err
    estimates = pd.read_csv(tmp_path / "estimate" / "estimates.csv")
    assert set(estimates["method"]) == {"ac", "doc", "atc", "aline-s", "aline-d"}
    assert estimates["model"].nunique() == 3 and (estimates["n_photos"] == 30).all()
    assert estimates["estimated_top1"].between(0, 100).all()
    records = pq.read_table(tmp_path / "estimate" / "records.parquet").to_pandas()
    target = records.loc[records["transform"] == "unlabelled"]
    assert (target["label"] == -1).all() and not target["correct1"].any()
    for model, part in target.groupby("model"):
        ac = estimates.loc[(estimates["model"] == model) & (estimates["method"] == "ac"), "estimated_top1"].iloc[0]
        assert ac == pytest.approx(100 * part["confidence"].astype(float).mean(), abs=1e-4)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "no such folder"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no photos found"),
])
def test_estimate_names_a_bad_folder_in_one_line(cli_run, tmp_path, make, message):
    code, _, err = cli_run("estimate", "--data", make(tmp_path), "--models", "efficientnet_lite0")
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
