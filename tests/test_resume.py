"""Resume: a run killed (SIGKILL) or interrupted (Ctrl-C) finishes with the same records as one that
never stopped; new models and conditions add only their cells; a folder whose results would differ is
refused. Real photos, the real packaged lite0 weights, the real CLI."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import REPO

LIMIT, CHUNK = 12, 4
N_CHUNKS = (LIMIT // CHUNK) * 2  # blocks x (clean, posterise@1)
RESUMING = re.compile(r"resuming: (\d+) of (\d+) chunks already done")
RECORD_KEYS = ["model", "transform", "severity", "image_id"]


def run_args(data: Path, out: Path, *extra: str, transforms: str = "posterise", models: str = "efficientnet_lite0") -> list[str]:
    """One small, real run: 12 photos, clean + posterise@1, lite0, three chunks of four per condition."""
    return ["run", "--data", str(data), "--models", models, "--transforms", transforms, "--severities", "1",
            "--limit", str(LIMIT), "--chunk-size", str(CHUNK), "--device", "cpu", "--no-report", "--out", str(out), *extra]


def sorted_records(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "records.parquet").sort_values(RECORD_KEYS).reset_index(drop=True)


def assert_same_records(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same photos, same predicted classes, probabilities equal to 1e-5."""
    assert got[RECORD_KEYS + ["label"]].equals(want[RECORD_KEYS + ["label"]])
    assert np.array_equal(np.stack(got.top5), np.stack(want.top5))
    assert got.correct1.tolist() == want.correct1.tolist() and got.correct5.tolist() == want.correct5.tolist()
    np.testing.assert_allclose(np.stack(got.top5_prob), np.stack(want.top5_prob), atol=1e-5)
    np.testing.assert_allclose(got.label_prob, want.label_prob, atol=1e-5)


def chunk_files(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "chunks").glob("*.parquet"))


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


@pytest.fixture(scope="module")
def baseline(shared_sample, tmp_path_factory):
    """The uninterrupted run every resumed one must equal."""
    from robustbench_lite.cli.commands import main

    out = tmp_path_factory.mktemp("baseline") / "run"
    assert main(run_args(shared_sample, out)) == 0
    assert len(chunk_files(out)) == N_CHUNKS
    return out, sorted_records(out)


def start_cli(args: list[str], log: Path) -> subprocess.Popen:
    """The real command in its own process group (a signal to it never reaches pytest)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "robustbench_lite", *args], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=log.open("w"))


def wait_for_chunks(proc: subprocess.Popen, out: Path, timeout: float = 180.0) -> int:
    """Poll until the run has written at least one chunk; return how many exist."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = len(chunk_files(out)) if (out / "chunks").is_dir() else 0
        if found:
            return found
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before writing a chunk"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("no chunk written within the timeout")


def test_sigkill_mid_run_then_same_command_finishes_only_what_is_missing(shared_sample, baseline, tmp_path, cli_run):
    base_dir, want = baseline
    out = tmp_path / "run"
    args = run_args(shared_sample, out)
    proc = start_cli(args, tmp_path / "killed.log")
    wait_for_chunks(proc, out)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    survivors = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in chunk_files(out)}
    assert 1 <= len(survivors) < N_CHUNKS, "killed after the first chunk and before the last"
    assert not (out / "records.parquet").exists()

    code, _, err = cli_run(*args)
    assert code == 0, err
    match = RESUMING.search(err)
    assert match, err
    assert (int(match[1]), int(match[2])) == (len(survivors), N_CHUNKS)
    # the chunks that survived were reused as they were, not evaluated again
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in chunk_files(out)}
    assert {name: after[name] for name in survivors} == survivors
    assert len(after) == N_CHUNKS
    assert not list((out / "chunks").glob(".*.tmp")), "half-written chunks of the killed run are cleaned up"
    assert_same_records(sorted_records(out), want)
    assert manifest(out)["status"] == "complete"


def group_is_gone(pgid: int, timeout: float = 10.0) -> bool:
    """No process of the run's group (decode workers included) is left running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    os.killpg(pgid, signal.SIGKILL)
    return False


@pytest.mark.parametrize("signum, workers", [(signal.SIGINT, "0"), (signal.SIGINT, "2"), (signal.SIGTERM, "2")],
                         ids=["ctrl-c", "ctrl-c-with-decode-workers", "sigterm-with-decode-workers"])
def test_ctrl_c_or_preemption_stops_cleanly_with_exit_130_and_says_how_to_resume(signum, workers, shared_sample, tmp_path):
    """The signal goes to the whole process group, as Ctrl-C in a terminal or a scheduler's pre-emption does."""
    out = tmp_path / "run"
    log = tmp_path / "interrupted.log"
    # 400 photos: long enough (seconds) that the signal lands mid-run, not after it finished
    proc = start_cli(run_args(shared_sample, out, "--workers", workers, "--limit", "400"), log)
    wait_for_chunks(proc, out)
    os.killpg(proc.pid, signum)
    assert proc.wait(timeout=60) == 130, log.read_text()[-3000:]
    err = log.read_text()
    assert "run the same command again to resume" in err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert group_is_gone(proc.pid)
    assert manifest(out)["status"] == "interrupted"
    assert not (out / "records.parquet").exists()
    assert not list((out / "chunks").glob(".*.tmp"))


def test_a_chunk_is_written_atomically_and_readable_by_others(tmp_path):
    """No temporary file is left, the chunk is complete, and it is readable like any file open() makes."""
    import pyarrow.parquet as pq

    from robustbench_lite.results.records import record_schema
    from robustbench_lite.results.store import ChunkStore, cells_of

    store = ChunkStore(tmp_path)
    path = store.write(3, "posterise", 1, record_schema(False).empty_table(), models=["m"])
    assert cells_of(store.chunks()) == {(3, "posterise", 1, "m")}
    assert [p.name for p in (tmp_path / "chunks").iterdir()] == [path.name]
    assert pq.read_table(path).schema.names == record_schema(False).names
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_adding_a_condition_evaluates_only_the_new_cells(shared_sample, baseline, tmp_path, cli_run):
    _, want = baseline
    out = tmp_path / "run"
    code, _, err = cli_run(*run_args(shared_sample, out, transforms="none"))
    assert code == 0, err
    clean_chunks = {p.name: p.stat().st_mtime_ns for p in chunk_files(out)}
    assert len(clean_chunks) == LIMIT // CHUNK

    code, _, err = cli_run(*run_args(shared_sample, out))
    assert code == 0, err
    assert RESUMING.search(err).groups() == (str(LIMIT // CHUNK), str(N_CHUNKS))
    assert {n: t for n, t in ((p.name, p.stat().st_mtime_ns) for p in chunk_files(out)) if n in clean_chunks} == clean_chunks
    assert_same_records(sorted_records(out), want)


def test_adding_a_model_evaluates_only_its_cells(shared_sample, baseline, tmp_path, cli_run):
    """lite0's packaged weights re-saved as .safetensors: a second model whose records equal lite0's."""
    from safetensors.torch import save_file

    from robustbench_lite.models import packaged_weights_path

    base_dir, want = baseline
    out = tmp_path / "run"
    shutil.copytree(base_dir, out)
    weights = tmp_path / "lite0.safetensors"
    state = torch.load(packaged_weights_path("efficientnet_lite0"), map_location="cpu", weights_only=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(weights))
    second = "tf_efficientnet_lite0@lite0"  # the display name of tf_efficientnet_lite0@{weights}

    code, _, err = cli_run(*run_args(shared_sample, out, transforms="none", models=f"efficientnet_lite0,tf_efficientnet_lite0@{weights}"))
    assert code == 0, err
    blocks = LIMIT // CHUNK
    assert RESUMING.search(err).groups() == (str(blocks), str(2 * blocks))
    records = sorted_records(out)
    ours = records[records.model == "efficientnet_lite0"].reset_index(drop=True)
    assert_same_records(ours, want[want.model == "efficientnet_lite0"].reset_index(drop=True))
    added = records[records.model == second].reset_index(drop=True)
    assert len(added) == LIMIT and set(added["transform"]) == {"clean"}
    clean = want[want["transform"] == "clean"].reset_index(drop=True)
    assert_same_records(added.assign(model="efficientnet_lite0"), clean)


def test_a_damaged_chunk_is_set_aside_and_evaluated_again(shared_sample, baseline, tmp_path, cli_run):
    base_dir, want = baseline
    out = tmp_path / "run"
    shutil.copytree(base_dir, out)
    (out / "records.parquet").unlink()
    damaged = chunk_files(out)[-1]
    damaged.write_bytes(damaged.read_bytes()[:200])

    code, _, err = cli_run(*run_args(shared_sample, out))
    assert code == 0, err
    assert "set aside 1 unreadable chunk" in err
    assert RESUMING.search(err).groups() == (str(N_CHUNKS - 1), str(N_CHUNKS))
    assert (out / "chunks" / (damaged.name + ".unreadable")).exists()
    assert_same_records(sorted_records(out), want)


def _doctor(run_dir: Path, edit) -> None:
    """Edit the stored manifest as if the earlier run had used other weights, code or versions."""
    data = manifest(run_dir)
    edit(data)
    (run_dir / "manifest.json").write_text(json.dumps(data))


REFUSALS = {
    "seed": (["--seed", "1"], None, "seed: 0 -> 1"),
    "photos": (["--limit", "8"], None, "dataset fingerprint"),
    "chunk size": (["--chunk-size", "6"], None, "chunk_size: 4 -> 6"),
    "logits": (["--save-logits"], None, "save_logits: False -> True"),
    "weights": ([], lambda m: m["models"]["efficientnet_lite0"].update(weights_sha256="0" * 64), "model efficientnet_lite0: weights changed"),
    "preprocessing": ([], lambda m: m["models"]["efficientnet_lite0"]["preprocessing"].update(crop_pct=0.95), "model efficientnet_lite0: preprocessing changed"),
    "levels": ([], lambda m: m["transforms"]["posterise"].update(severities=[32, 16, 8, 4, 2]), "transform posterise: severities changed"),
    "parameters": ([], lambda m: m["transforms"]["posterise"].update(params={"level": "other"}), "transform posterise: params changed"),
    "transform package": ([], lambda m: m["transforms"]["posterise"].update(version="albumentations==0.1"), "transform posterise: version changed"),
    "tool version": ([], lambda m: m.update(version="0.0.1"), "robustbench-lite version: 0.0.1 ->"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_folder_whose_results_would_differ_is_refused_naming_the_difference(case, shared_sample, baseline, tmp_path, cli_run):
    flags, edit, named = REFUSALS[case]
    out = tmp_path / "run"
    shutil.copytree(baseline[0], out)
    if edit:
        _doctor(out, edit)
    before = {p.name for p in chunk_files(out)}
    args = run_args(shared_sample, out)
    if "--limit" in flags or "--chunk-size" in flags:
        for flag in ("--limit", "--chunk-size"):
            if flag in flags:
                i = args.index(flag)
                del args[i:i + 2]
    code, _, err = cli_run(*args, *flags)
    assert code == 2, err
    assert named in err and "--force" in err
    assert len(err.strip().splitlines()) <= 2 and "Traceback" not in err
    assert {p.name for p in chunk_files(out)} == before


def test_force_starts_the_folder_afresh(shared_sample, baseline, tmp_path, cli_run):
    out = tmp_path / "run"
    shutil.copytree(baseline[0], out)
    args = ["run", "--data", str(shared_sample), "--models", "efficientnet_lite0", "--transforms", "none", "--limit", "4",
            "--chunk-size", "4", "--device", "cpu", "--no-report", "--out", str(out), "--seed", "7"]
    assert cli_run(*args)[0] == 2
    code, _, err = cli_run(*args, "--force")
    assert code == 0, err
    assert "afresh" in err and not RESUMING.search(err)
    assert len(chunk_files(out)) == 1
    records = sorted_records(out)
    assert len(records) == 4 and set(records["transform"]) == {"clean"}
    assert manifest(out)["config"]["seed"] == 7


def test_an_unreadable_manifest_is_a_one_line_error(shared_sample, tmp_path, cli_run):
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text('{"config": {"seed": ')
    code, _, err = cli_run(*run_args(shared_sample, out, transforms="none"))
    assert code == 2
    assert "manifest.json is unreadable" in err and "--force" in err and "Traceback" not in err


def test_chunks_of_an_earlier_version_merge_with_the_new_fields_null(tmp_path):
    """A run interrupted under 0.2.0 (no stimulus_condition or frame column) still merges after an upgrade."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from robustbench_lite.results.records import record_schema
    from robustbench_lite.results.store import ChunkStore

    schema = record_schema(False)
    old = pa.schema([f for f in schema if f.name not in ("stimulus_condition", "frame")])
    n = 3
    table = pa.table({
        "model": ["m"] * n, "transform": ["clean"] * n, "severity": pa.array([0] * n, pa.int16()),
        "image_id": [f"p{i}" for i in range(n)], "label": pa.array([1, 2, 3], pa.int16()),
        "top5": pa.array([[1, 0, 4, 5, 6], [0, 2, 4, 5, 6], [3, 0, 4, 5, 6]], pa.list_(pa.int16(), 5)),
        "top5_prob": pa.array([[.5, .1, .1, .1, .1]] * n, pa.list_(pa.float32(), 5)),
        "label_prob": pa.array([.5, .1, .5], pa.float32()), "confidence": pa.array([.5] * n, pa.float32()),
        "correct1": [True, False, True], "correct5": [True, True, True],
        "sixteen_class_answer": pa.array([None] * n, pa.string()), "sixteen_class_correct": pa.array([None] * n, pa.bool_()),
    }, schema=old)
    store = ChunkStore(tmp_path)
    path = store.write(0, "clean", 0, table)  # what 0.2.0 left on disk: no stimulus_condition column
    assert "stimulus_condition" not in pq.read_schema(path).names
    rows = store.merge(tmp_path / "records.parquet", with_logits=False)
    merged = pq.read_table(tmp_path / "records.parquet")
    assert rows == 3 and merged.schema.equals(schema, check_metadata=False)
    assert merged.column("stimulus_condition").null_count == 3
    assert merged.column("frame").null_count == 3
    assert merged.column("correct1").to_pylist() == [True, False, True]


STALL_PLUGIN = '''
import os
import time
from pathlib import Path

from robustbench_lite import register_transform


@register_transform("stall", family="stall", severities=(1.0,))
def stall(x, level, rng):
    """The photo as it is; with RBL_STALL_MARKER set it first touches that file and waits (to be interrupted)."""
    marker = os.environ.get("RBL_STALL_MARKER")
    if marker:
        Path(marker).touch()
        time.sleep(300)
    return x
'''


def test_ctrl_c_keeps_every_finished_condition_and_the_resume_redoes_only_the_rest(shared_sample, tmp_path, cli_run):
    """Ctrl-C while the third condition (stall) runs: clean and posterise@1 finished and are both kept; the same
    command then evaluates only stall@1, whose records (the photos as they are) equal clean's."""
    plugin = tmp_path / "stall.py"
    plugin.write_text(STALL_PLUGIN)
    out, marker = tmp_path / "run", tmp_path / "stalled"
    args = ["run", "--data", str(shared_sample), "--models", "efficientnet_lite0", "--transforms", "posterise,stall",
            "--severities", "1", "--limit", "4", "--chunk-size", "4", "--device", "cpu", "--workers", "0", "--no-report",
            "--plugin", str(plugin), "--out", str(out)]
    log = tmp_path / "interrupted.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RBL_STALL_MARKER": str(marker)}
    proc = subprocess.Popen([sys.executable, "-m", "robustbench_lite", *args], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=log.open("w"))
    deadline = time.monotonic() + 180
    while not marker.exists():
        assert proc.poll() is None, log.read_text()[-3000:]
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("the stalling condition never started")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 130, log.read_text()[-3000:]
    assert group_is_gone(proc.pid)
    kept = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in chunk_files(out)}
    assert sorted(name.split("-")[1] for name in kept) == ["clean", "posterise"], kept
    assert manifest(out)["status"] == "interrupted"

    code, _, err = cli_run(*args)
    assert code == 0, err
    assert RESUMING.search(err).groups() == ("2", "3")
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in chunk_files(out)}
    assert {name: after[name] for name in kept} == kept and len(after) == 3
    records = sorted_records(out)
    assert records.groupby("transform").size().to_dict() == {"clean": 4, "posterise": 4, "stall": 4}
    clean = records[records["transform"] == "clean"].reset_index(drop=True)
    stalled = records[records["transform"] == "stall"].reset_index(drop=True)
    assert_same_records(stalled.assign(transform="clean", severity=clean["severity"]), clean)
