"""model-vs-human's per-trial human data: every subject's CSV of a stimulus set, downloaded once and checked.

The files are `raw-data/<set>/<set>_subject-NN_session_1.csv` of bethgelab/model-vs-human at the commit the
bundled human data was built from (79ed7cd1), fetched from raw.githubusercontent.com (or $ROBUSTBENCH_LITE_MIRROR);
human_data/human_trials.json (tools/build_humans.py) names them with their sha256 and trial counts.
Columns used: subj, condition, imagename, object_response, category (`na` = no response, counted wrong).
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from ..errors import UserError
from .download import cache_dir, download, mirrored
from .mvh_stimuli import short_key


@lru_cache(maxsize=1)
def _trials_manifest() -> dict:
    return json.loads((files("robustbench_lite") / "human_data" / "human_trials.json").read_text())


@dataclass(frozen=True)
class TrialFile:
    """One subject's CSV of a set, at its pinned commit, with its checksum and row count."""

    experiment: str
    file: str
    url: str
    sha256: str | None
    trials: int


def human_trial_files(experiment: str) -> list[TrialFile]:
    """The subject CSVs of `experiment` (bundled list: raw-data/NAME/NAME_subject-NN_session_1.csv)."""
    manifest = _trials_manifest()
    if experiment not in manifest["experiments"]:
        raise UserError(f"no human trials for {experiment!r}; known: {', '.join(manifest['experiments'])}")
    return [TrialFile(experiment, f["file"], manifest["url"].format(commit=manifest["commit"], experiment=experiment,
                                                                    file=f["file"]), f["sha256"], f["trials"])
            for f in manifest["experiments"][experiment]]


def fetch_human_trials(experiment: str, root: Path | None = None) -> Path:
    """The folder of `experiment`'s subject CSVs, each downloaded once (checked by sha256, through the mirror)."""
    folder = (root or cache_dir()) / "model-vs-human" / "raw-data" / experiment
    for trial_file in human_trial_files(experiment):
        target = folder / trial_file.file
        if not target.is_file():
            download(mirrored(trial_file.url), target, trial_file.sha256)
    return folder


TRIAL_COLUMNS = ("subj", "condition", "imagename", "object_response", "category")


def read_human_trials(experiment: str, root: Path | None = None) -> list[dict]:
    """Every human trial of `experiment`: subj, condition, key, object_response, category (one dict each)."""
    folder = fetch_human_trials(experiment, root)
    rows = []
    for trial_file in human_trial_files(experiment):
        path = folder / trial_file.file
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            header = {c.lower(): c for c in reader.fieldnames or []}
            missing = [c for c in TRIAL_COLUMNS if c not in header]
            if missing:
                raise UserError(f"{path}: not a model-vs-human trial CSV (missing {', '.join(missing)})")
            for row in reader:
                rows.append({"subj": row[header["subj"]], "condition": str(row[header["condition"]]),
                             "key": short_key(row[header["imagename"]]),
                             "object_response": row[header["object_response"]], "category": row[header["category"]]})
    return rows
