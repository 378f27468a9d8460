"""model-vs-human's own stimuli as `--data mvh:NAME`: installed from a local release archive in the real layout
(served through $ROBUSTBENCH_LITE_MIRROR), run end to end, and compared photo for photo with human trials
written in the real raw-data CSV format; error consistency and shape bias checked against independent counts."""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFilter

from robustbench_lite.data import mvh_stimuli, mvh_trials
from robustbench_lite.data.datasets import open_dataset
from robustbench_lite.data.download import NAMED_DATASETS, fetch_named_dataset
from robustbench_lite.errors import UserError
from robustbench_lite.data.sixteen_class import CATEGORIES, category_of_label

from test_shift_downloads import mirror  # noqa: F401  (the local HTTP server fixture)

LOW_PASS = ("0", "3", "7", "40")  # four of low-pass's eight conditions (sigma in px at 224)
RIGHT = {"0": 0.9, "3": 0.8, "7": 0.5, "40": 0.1}  # the fake subjects' chance of a right answer per condition
HEADER = ["subj", "Session", "trial", "rt", "object_response", "category", "condition", "imagename"]  # as low-pass's


def sixteen_class_rows(shared_manifest: list[dict], n: int) -> list[dict]:
    """`n` shared photos of the 16 categories, round-robin over the categories."""
    by_category: dict[str, list[dict]] = {}
    for row in shared_manifest:
        category = category_of_label(int(row["imagenet_index"]))
        if category:
            by_category.setdefault(category, []).append(row)
    queues = [by_category[c] for c in sorted(by_category)]
    ordered = [q[i] for i in range(max(map(len, queues))) for q in queues if i < len(q)]
    return [dict(r, category=category_of_label(int(r["imagenet_index"]))) for r in ordered[:n]]


def png(path: Path, sigma: float = 0.0, grey: bool = True) -> bytes:
    """A 224 px stimulus made from a shared photo: greyscale, Gaussian low-pass of `sigma` px (as low-pass's)."""
    with Image.open(path) as photo:
        picture = photo.convert("L" if grey else "RGB").resize((224, 224), Image.BICUBIC)
    if sigma:
        picture = picture.filter(ImageFilter.GaussianBlur(sigma))
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def tar_gz(dest: Path, members: list[tuple[str, bytes]]) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return dest


def low_pass_stimuli(shared_sample: Path, shared_manifest: list[dict]) -> list[dict]:
    """16 stimuli, 4 per condition, named `<trial>_lp_dnn_<condition>_<category>_10_<synset>_<id>.png`."""
    stimuli = []
    for trial, row in enumerate(sixteen_class_rows(shared_manifest, 16), start=1):
        condition = LOW_PASS[(trial - 1) % len(LOW_PASS)]
        image = f"{row['synset']}_{1000 + trial}.png"
        stimuli.append({"condition": condition, "category": row["category"], "key": image,
                        "dnn": f"{trial:04d}_lp_dnn_{condition}_{row['category']}_10_{image}",
                        "data": png(shared_sample / row["path"], float(condition))})
    return stimuli


def cue_conflict_stimuli(shared_sample: Path, shared_manifest: list[dict]) -> list[dict]:
    """8 stimuli `<shape>N-<texture>M.png` in shape folders; the last has shape == texture (no conflict)."""
    stimuli = []
    rows = sixteen_class_rows(shared_manifest, 8)
    for n, row in enumerate(rows, start=1):
        shape = row["category"]
        texture = shape if n == len(rows) else rows[n % len(rows)]["category"]
        name = f"{shape}{n}-{texture}{n % 3 + 1}.png"
        stimuli.append({"condition": "0", "category": shape, "texture": texture, "key": name, "dnn": name,
                        "data": png(shared_sample / row["path"], grey=False)})
    return stimuli


def member(experiment: str, stimulus: dict) -> str:
    if experiment in mvh_stimuli.FOLDER_SETS:
        return f"{experiment}/{stimulus['category']}/{stimulus['dnn']}"
    return f"{experiment}/dnn/session-1/{stimulus['dnn']}"


def human_csvs(experiment: str, code: str, stimuli: list[dict], www: Path, seed: int) -> list[mvh_trials.TrialFile]:
    """Two subjects' raw-data CSVs (their own trial order and names), served where the real ones are."""
    rng = np.random.default_rng(seed)
    files = []
    for subject in (1, 2):
        order = rng.permutation(len(stimuli))
        lines = io.StringIO()
        writer = csv.writer(lines, lineterminator="\n")
        writer.writerow(HEADER)
        for trial, index in enumerate(order, start=1):
            s = stimuli[index]
            answer = s["category"] if rng.random() < RIGHT.get(s["condition"], 0.6) else str(rng.choice([c for c in CATEGORIES if c != s["category"]]))
            answer = "na" if trial == 3 and subject == 2 else answer  # a missed response: wrong
            name = f"{trial:04d}_{code}_s{subject:02d}_{s['condition']}_{s['category']}_10_{s['key']}"
            writer.writerow([f"subject-{subject:02d}", 1, trial, 0.8, answer, s["category"], s["condition"], name])
        data = lines.getvalue().encode()
        file = f"{experiment}_subject-{subject:02d}_session_1.csv"
        url = mvh_trials.human_trial_files(experiment)[0].url.rsplit("/", 1)[0] + "/" + file
        target = www / url.split("://", 1)[1].split("/", 1)[1]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        files.append(mvh_trials.TrialFile(experiment, file, url, hashlib.sha256(data).hexdigest(), len(stimuli)))
    return files


@pytest.fixture
def local_release(mirror, tmp_path, monkeypatch, shared_sample, shared_manifest):  # noqa: F811
    """low-pass and cue-conflict as release archives and human CSVs on the mirror; the cache in tmp_path."""
    www, state = mirror
    monkeypatch.setenv("ROBUSTBENCH_LITE_CACHE", str(tmp_path / "cache"))
    sets = {"low-pass": ("lp", low_pass_stimuli(shared_sample, shared_manifest)),
            "cue-conflict": ("s5n", cue_conflict_stimuli(shared_sample, shared_manifest))}
    trial_files = {}
    for experiment, (code, stimuli) in sets.items():
        spec = NAMED_DATASETS[f"mvh:{experiment}"]
        assert spec.url == f"https://github.com/bethgelab/model-vs-human/releases/download/v0.1/{experiment}.tar.gz"
        members = [(member(experiment, s), s["data"]) for s in stimuli] + [(f"{experiment}/README.txt", b"notes")]
        tar_gz(www / spec.url.split("github.com/", 1)[1], members)
        monkeypatch.setitem(NAMED_DATASETS, spec.name, dataclasses.replace(spec, expected_photos=len(stimuli)))
        trial_files[experiment] = human_csvs(experiment, code, stimuli, www, seed=len(code))
    monkeypatch.setattr(mvh_trials, "human_trial_files", lambda experiment: trial_files[experiment])
    return sets, trial_files, state


def independent_kappa(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Cohen's kappa of right/wrong from the 2 x 2 table of counts (not the package's formula)."""
    both, only_a, only_b, neither = [int(np.sum(x)) for x in (a & b, a & ~b, ~a & b, ~a & ~b)]
    n = both + only_a + only_b + neither
    observed = (both + neither) / n
    expected = ((both + only_a) * (both + only_b) + (only_b + neither) * (only_a + neither)) / n ** 2
    return observed, expected, 1.0 if observed == 1 else (observed - expected) / (1 - expected)


def subject_answers(www_files: list[mvh_trials.TrialFile], cache: Path, experiment: str) -> dict[str, pd.DataFrame]:
    out = {}
    for f in www_files:
        table = pd.read_csv(cache / "model-vs-human" / "raw-data" / experiment / f.file, dtype=str)
        table["key"] = table["imagename"].str.split("_").str[-2:].str.join("_")
        out[f.file] = table
    return out


@pytest.mark.slow
def test_low_pass_installs_and_runs_end_to_end_with_error_consistency(local_release, tmp_path, cli_run):
    sets, trial_files, state = local_release
    stimuli = sets["low-pass"][1]
    state["cut"] = True  # the archive's first transfer breaks off: the run says so, the next resumes it
    code, _, err = cli_run("run", "--data", "mvh:low-pass", "--models", "efficientnet_lite0", "--out", tmp_path / "x")
    assert code != 0 and "run the same command again to resume" in err.strip().splitlines()[-1]
    out = tmp_path / "run"
    code, stdout, err = cli_run("run", "--data", "mvh:low-pass", "--models", "efficientnet_lite0", "--out", out)
    assert code == 0, err
    folder = tmp_path / "cache" / "mvh-low-pass"
    installed = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert installed == sorted(f"{s['category']}/{s['dnn']}" for s in stimuli)  # README.txt left out
    for rel, s in zip(installed, sorted(stimuli, key=lambda s: f"{s['category']}/{s['dnn']}")):
        parsed = mvh_stimuli.parse_stimulus("low-pass", rel)
        assert (parsed.category, parsed.condition, parsed.key) == (s["category"], s["condition"], s["key"])
    records = pd.read_parquet(out / "records.parquet")
    assert len(records) == 16 and set(records["transform"]) == {"clean"}  # the stimuli are already manipulated
    truth = records["image_id"].str.split("/").str[0]
    assert (records["sixteen_class_correct"] == (records["sixteen_class_answer"] == truth)).all()
    assert records["stimulus_condition"].tolist() == [mvh_stimuli.parse_stimulus("low-pass", i).condition
                                                      for i in records["image_id"]]
    table = pd.read_csv(out / "error_consistency.csv", dtype={"condition": str})
    model = table.loc[table["model"] == "efficientnet_lite0"].set_index("condition")
    assert list(model.index) == list(LOW_PASS)
    subjects = subject_answers(trial_files["low-pass"], tmp_path / "cache", "low-pass")
    records["key"] = records["image_id"].str.split("_").str[-2:].str.join("_")
    for condition in LOW_PASS:
        mine = records.loc[records["stimulus_condition"] == condition].set_index("key")["sixteen_class_correct"]
        values = []
        for s in subjects.values():
            theirs = s.loc[s["condition"] == condition].set_index("key")
            right = (theirs["object_response"] == theirs["category"]).loc[mine.index].to_numpy(bool)
            values.append((*independent_kappa(mine.to_numpy(bool), right), right.mean()))
        expected = np.mean(values, axis=0)
        row = model.loc[condition]
        assert row["n_trials"] == 4 and row["n_subjects"] == 2
        assert row["model_accuracy"] == pytest.approx(mine.mean(), abs=1e-12)
        assert row["observed_consistency"] == pytest.approx(expected[0], abs=1e-12)
        assert row["expected_consistency"] == pytest.approx(expected[1], abs=1e-12)
        assert row["error_consistency"] == pytest.approx(expected[2], abs=1e-12)
        assert row["human_accuracy"] == pytest.approx(expected[3], abs=1e-12)
    print("low-pass error consistency:", model[["model_accuracy", "human_accuracy", "error_consistency"]].to_dict())
    report = (out / "report.md").read_text()
    assert "## Humans photo for photo (model-vs-human's stimuli)" in report and "error_consistency.csv" in report
    from test_claims import headline_lines  # humans beside the model in the headline: the same photos, its numbers

    bench = model.loc[model["in_benchmark"].astype(bool)]
    said = [line for line in headline_lines(report) if "humans" in line]
    assert said == [f"On model-vs-human's own low-pass stimuli, photo for photo, 16-class accuracy over {len(bench)} "
                    f"benchmark condition(s): humans {bench['human_accuracy'].mean():.3f}; efficientnet_lite0 "
                    f"{bench['model_accuracy'].mean():.3f} (error consistency {bench['error_consistency'].mean():.3f})."]
    assert not (out / "shape_bias.csv").exists()
    if os.environ.get("ROBUSTBENCH_LITE_KEEP"):
        import shutil
        shutil.copytree(out, os.environ["ROBUSTBENCH_LITE_KEEP"], dirs_exist_ok=True)


@pytest.mark.slow
def test_cue_conflict_run_gives_shape_bias_equal_to_an_independent_count(local_release, tmp_path, cli_run):
    sets, _, _ = local_release
    stimuli = {s["dnn"]: s for s in sets["cue-conflict"][1]}
    out = tmp_path / "run"
    code, _, err = cli_run("run", "--data", "mvh:cue-conflict", "--models", "efficientnet_lite0", "--out", out)
    assert code == 0, err
    records = pd.read_parquet(out / "records.parquet")
    assert len(records) == 8 and set(records["stimulus_condition"]) == {"0"}
    answers = dict(zip(records["image_id"].str.split("/").str[1], records["sixteen_class_answer"]))
    conflict = [n for n, s in stimuli.items() if s["texture"] != s["category"]]
    shape = sum(answers[n] == stimuli[n]["category"] for n in conflict)
    texture = sum(answers[n] == stimuli[n]["texture"] for n in conflict)
    bias = pd.read_csv(out / "shape_bias.csv").set_index("model")
    row = bias.loc["efficientnet_lite0"]
    assert (row["n_trials"], row["n_conflict_trials"]) == (8, 7)
    assert row["fraction_shape"] == pytest.approx(shape / 8) and row["fraction_texture"] == pytest.approx(texture / 8)
    if shape + texture:
        assert row["shape_bias"] == pytest.approx(shape / (shape + texture))
    assert bias.loc["humans", "shape_bias"] == pytest.approx(0.958688)  # model-vs-human's 10 subjects, bundled
    print("cue-conflict shape bias:", row.to_dict(), "shape", shape, "texture", texture)
    ec = pd.read_csv(out / "error_consistency.csv", dtype={"condition": str})
    assert list(ec["model"]) == ["efficientnet_lite0", "humans"] and (ec["n_trials"] == 8).all()


def test_a_damaged_or_short_stimulus_archive_is_refused_in_one_line(local_release, tmp_path):
    sets, _, _ = local_release
    spec = NAMED_DATASETS["mvh:low-pass"]
    www = tmp_path / "www"
    archive = www / spec.url.split("github.com/", 1)[1]
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError) as damaged:
        fetch_named_dataset(spec.name, root=tmp_path / "c1", spec=spec)
    assert "\n" not in str(damaged.value) and "damaged" in str(damaged.value)
    assert list((tmp_path / "c1").iterdir()) == []
    stimuli = sets["low-pass"][1]
    tar_gz(archive, [(member("low-pass", s), s["data"]) for s in stimuli[:-1]])
    with pytest.raises(UserError, match="expected 16 photos of low-pass named as its release names them, found 15"):
        fetch_named_dataset(spec.name, root=tmp_path / "c2", spec=spec)
    assert list((tmp_path / "c2").iterdir()) == []


def test_a_tampered_human_csv_is_refused(local_release, tmp_path):
    _, trial_files, _ = local_release
    target = tmp_path / "www" / trial_files["low-pass"][0].url.split("://", 1)[1].split("/", 1)[1]
    target.write_bytes(target.read_bytes().replace(b"subject-01", b"subject-09"))
    with pytest.raises(UserError, match="checksum mismatch"):
        mvh_trials.fetch_human_trials("low-pass", root=tmp_path / "c3")


def test_the_seventeen_sets_and_their_trial_files_are_named_as_model_vs_human_names_them():
    from robustbench_lite.analysis.humans import human_table

    names = [n for n in NAMED_DATASETS if n.startswith("mvh:")]
    table = human_table()
    assert [n[4:] for n in names] == list(dict.fromkeys(table["experiment"])) == list(mvh_stimuli.CONDITIONS)
    for experiment, conditions in mvh_stimuli.CONDITIONS.items():
        assert list(table.loc[table["experiment"] == experiment, "condition"]) == list(conditions)
        files = mvh_trials.human_trial_files(experiment)
        rows = table.loc[table["experiment"] == experiment]
        assert len(files) == rows["n_subjects"].iloc[0] and all(len(f.sha256) == 64 for f in files)
        assert sum(f.trials for f in files) == rows["n_trials"].sum()
        assert all(f.url.startswith("https://raw.githubusercontent.com/bethgelab/model-vs-human/79ed7cd1") for f in files)
    assert sum(mvh_stimuli.PHOTOS.values()) == 18_080
    assert mvh_stimuli.parse_stimulus("high-pass", "boat/0001_hp_dnn_0.7_boat_10_n03662601_12531.png").condition == "0.7"
    assert mvh_stimuli.parse_stimulus("cue-conflict", "airplane/airplane1-bicycle2.png").texture == "bicycle"
    assert mvh_stimuli.parse_stimulus("low-pass", "chair/0001_lp_dnn_2_chair_10_n04099969_7577.png") is None
    assert mvh_stimuli.short_key("0000_cl_s01_bw_boat_40_n02951358_5952.JPEG") == "n02951358_5952.JPEG"
    with pytest.raises(UserError, match="not one of model-vs-human's stimulus sets"):
        open_dataset("mvh:low_pass")


def test_kappa_equals_the_two_by_two_table_computation():
    from robustbench_lite.analysis.consistency import consistency

    rng = np.random.default_rng(1)
    for _ in range(50):
        a, b = rng.random(40) < rng.random(), rng.random(40) < rng.random()
        assert consistency(a, b) == pytest.approx(independent_kappa(a, b), abs=1e-12)
    assert consistency([True, False], [True, False])[2] == 1.0


@pytest.mark.skipif(not os.environ.get("ROBUSTBENCH_LITE_MVH_RAW_DATA"), reason="needs a model-vs-human raw-data/")
def test_humans_error_consistency_reproduces_model_vs_humans_published_values(tmp_path):
    """With $ROBUSTBENCH_LITE_MVH_RAW_DATA (a checkout's raw-data/): subjects paired with each other give
    benchmark_summary.json's humans' error consistency per set."""
    from robustbench_lite.analysis.consistency import StimulusTables, error_consistency_table
    from robustbench_lite.analysis.humans import human_benchmark

    raw = Path(os.environ["ROBUSTBENCH_LITE_MVH_RAW_DATA"])
    (tmp_path / "model-vs-human").mkdir()
    (tmp_path / "model-vs-human" / "raw-data").symlink_to(raw)
    published = human_benchmark()["humans_per_dataset_error_consistency"]
    for experiment in mvh_stimuli.CONDITIONS:
        trials = mvh_trials.read_human_trials(experiment, root=tmp_path)
        one = [t for t in trials if t["subj"] == trials[0]["subj"]]
        records = pd.DataFrame({"model": "one", "transform": "clean", "stimulus_condition": [t["condition"] for t in one],
                                "image_id": [f"{t['category']}/0_x_dnn_{t['condition']}_{t['category']}_0_{t['key']}"
                                             if experiment not in mvh_stimuli.FOLDER_SETS else f"{t['category']}/{t['key']}"
                                             for t in one],
                                "sixteen_class_correct": [t["object_response"] == t["category"] for t in one]})
        scores = StimulusTables(experiment, error_consistency_table(records, ["one"], experiment, trials)).scores
        assert scores.set_index("model").loc["humans", "error_consistency"] == pytest.approx(published[experiment], abs=1e-9)
