"""torchrun on CPU (gloo): two ranks give the records of one process, photo for photo, also after a kill."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

KEYS = ["model", "transform", "severity", "image_id"]
TORCHRUN = Path(sys.executable).with_name("torchrun")


def run_args(shared_sample, out):
    return ["run", "--data", str(shared_sample), "--models", "efficientnet_lite0", "--transforms", "rotate",
            "--severities", "3", "--limit", "96", "--chunk-size", "2", "--batch-size", "2", "--device", "cpu",
            "--no-report", "--out", str(out)]


def torchrun_cmd(shared_sample, out):
    return [str(TORCHRUN), "--standalone", "--nproc-per-node", "2", "-m", "robustbench_lite", *run_args(shared_sample, out)]


def records(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "records.parquet").sort_values(KEYS).reset_index(drop=True)


def assert_same_records(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert len(a) == len(b) == 96 * 2
    assert not a.duplicated(KEYS).any() and not b.duplicated(KEYS).any()
    assert a[KEYS].equals(b[KEYS])
    assert (a["top5"].map(lambda t: t[0]) == b["top5"].map(lambda t: t[0])).all()
    assert (a["confidence"] - b["confidence"]).abs().max() < 1e-4
    assert (a["label_prob"] - b["label_prob"]).abs().max() < 1e-4


@pytest.fixture(scope="module")
def single_process(shared_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "run"
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "robustbench_lite", *run_args(shared_sample, out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    print(f"\n1 process: {time.perf_counter() - t0:.1f}s")
    return records(out)


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun not installed beside this python")
def test_two_ranks_equal_one_process(shared_sample, single_process, tmp_path):
    out = tmp_path / "two"
    t0 = time.perf_counter()
    done = subprocess.run(torchrun_cmd(shared_sample, out), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"\n2 processes (torchrun): {time.perf_counter() - t0:.1f}s")
    assert_same_records(records(out), single_process)
    assert len(list((out / "chunks").glob("*.parquet"))) == 48 * 2  # 48 blocks x 2 conditions, each written once


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun not installed beside this python")
def test_killing_one_rank_then_resuming(shared_sample, single_process, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen(torchrun_cmd(shared_sample, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None and not list((out / "chunks").glob("*.parquet")):
            time.sleep(0.05)
        workers = _children(proc.pid)
        assert workers, "torchrun has no worker processes"
        os.kill(max(workers), signal.SIGKILL)  # one rank dies mid-run
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    assert not (out / "records.parquet").exists()  # nothing half-merged
    done = subprocess.run(torchrun_cmd(shared_sample, out), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming:" in done.stderr
    assert_same_records(records(out), single_process)
