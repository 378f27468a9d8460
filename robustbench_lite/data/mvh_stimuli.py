"""model-vs-human's own stimuli as named datasets (`--data mvh:NAME`) and their per-trial human data.

Source: bethgelab/model-vs-human @ 79ed7cd1 (Geirhos et al. 2021). Its release v0.1 publishes one
archive per set, `releases/download/v0.1/{NAME}.tar.gz` (`modelvshuman/utils.py`, `dataset_base_url`),
unpacking to `NAME/dnn/session-N/<file>` for the 14 sets with sessions (`datasets/noise_generalisation.py`,
`sketch.py`, `stylized.py`: `contains_sessions=True`) and to `NAME/<category>/<file>` for edge, silhouette
and cue-conflict (`datasets/texture_shape.py`, `ImageNetInfoMapping`). A session file is named
`<trial>_<code>_dnn_<condition>_<category>_<nn>_<image>` (`datasets/info_mappings.py`,
`InfoMappingWithSessions`: condition = 4th `_` field, category = 5th); a photo of the 12 parametric sets
ends in its ImageNet file name `n0xxxxxxx_<id>.png`. Installed here as `<category>/<file>`, the
stimulus's own name kept, so every photo's category and condition are read from its id.
"""
from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path

PREFIX = "mvh:"
RELEASE = "https://github.com/bethgelab/model-vs-human/releases/download/v0.1"
FOLDER_SETS = ("edge", "silhouette", "cue-conflict")  # NAME/<category>/<file>; the others NAME/dnn/session-N/
SINGLE_CONDITION = "0"  # how the human CSVs write the one condition of the five nonparametric sets

CONDITIONS: dict[str, tuple[str, ...]] = {
    "colour": ("cr", "bw"),
    "contrast": ("c100", "c50", "c30", "c15", "c10", "c05", "c03", "c01"),
    "high-pass": ("inf", "3", "1.5", "1", "0.7", "0.55", "0.45", "0.4"),
    "low-pass": ("0", "1", "3", "5", "7", "10", "15", "40"),
    "phase-scrambling": ("0", "30", "60", "90", "120", "150", "180"),
    "power-equalisation": ("0", "pow"),
    "false-colour": ("true", "false"),
    "rotation": ("0", "90", "180", "270"),
    "eidolonI": tuple(f"{2 ** i}-10-10" for i in range(8)),
    "eidolonII": tuple(f"{2 ** i}-3-10" for i in range(8)),
    "eidolonIII": tuple(f"{2 ** i}-0-10" for i in range(8)),
    "uniform-noise": ("0.00", "0.03", "0.05", "0.10", "0.20", "0.35", "0.60", "0.90"),
    "edge": (SINGLE_CONDITION,),
    "silhouette": (SINGLE_CONDITION,),
    "sketch": (SINGLE_CONDITION,),
    "stylized": (SINGLE_CONDITION,),
    "cue-conflict": (SINGLE_CONDITION,),
}
"""Each set's conditions as its file names and the human CSVs write them (human_accuracy.csv's strings and order)."""

PHOTOS: dict[str, int] = {
    "colour": 1280, "contrast": 1280, "high-pass": 1280, "low-pass": 1280, "phase-scrambling": 1120,
    "power-equalisation": 1120, "false-colour": 1120, "rotation": 1280, "eidolonI": 1280, "eidolonII": 1280,
    "eidolonIII": 1280, "uniform-noise": 1280, "edge": 160, "silhouette": 160, "sketch": 800, "stylized": 800,
    "cue-conflict": 1280,
}
"""Photos per set: the rows of model-vs-human's own model CSVs (raw-data/NAME/NAME_resnet50_session-1.csv at
93ee6766), one per stimulus. The archives' checksums are not published, so the count is the check."""


@dataclass(frozen=True)
class Stimulus:
    """What a stimulus's name says: its category, condition, the key pairing it with human trials, and more."""

    category: str
    condition: str
    key: str  # model-vs-human's `get_short_imagename`: the same for a photo in the DNN set and in every subject's
    synset: str | None = None  # the ImageNet synset its photo came from, where the name carries one
    texture: str | None = None  # cue-conflict: the texture's category (the shape's is `category`)


def experiment_of(data: str) -> str | None:
    """`mvh:low-pass` -> `low-pass`; None for any other --data."""
    text = str(data)
    return text[len(PREFIX):] if text.startswith(PREFIX) and text[len(PREFIX):] in CONDITIONS else None


def short_key(name: str) -> str:
    """The image part of a stimulus or trial name (`0001_lp_s01_40_chair_10_n04099969_7577.png` ->
    `n04099969_7577.png`; `..._bird3-bird2.png` -> `bird3-bird2.png`), as model-vs-human pairs trials."""
    parts = name.split("_")
    if len(parts) < 2:
        return name
    return f"{parts[-2]}_{parts[-1]}" if parts[-2].startswith("n0") else parts[-1]


def _categories() -> tuple[str, ...]:
    from .sixteen_class import CATEGORIES  # torch behind it: only when a stimulus is parsed

    return CATEGORIES


def _strip_digits(text: str) -> str:
    return "".join(c for c in text if not c.isdigit())


def parse_stimulus(experiment: str, path: str) -> Stimulus | None:
    """The stimulus a file of set `experiment` is (`path` ends in `<folder>/<file>`), or None if it is none."""
    parts = Path(path).parts
    if len(parts) < 2 or experiment not in CONDITIONS:
        return None
    folder, name = parts[-2], parts[-1]
    categories = _categories()
    if name.startswith(".") or not name.lower().endswith((".png", ".jpg", ".jpeg")):
        return None
    if experiment in FOLDER_SETS:
        if folder not in categories:
            return None
        texture = None
        if experiment == "cue-conflict":
            shape, _, rest = Path(name).stem.partition("-")
            texture = _strip_digits(rest)
            if _strip_digits(shape) != folder or texture not in categories:
                return None
        return Stimulus(folder, SINGLE_CONDITION, name, texture=texture)
    fields = name.split("_")
    if len(fields) < 6 or fields[4] not in categories or fields[3] not in CONDITIONS[experiment]:
        return None
    synset = fields[-2] if fields[-2].startswith("n0") else None
    return Stimulus(fields[4], fields[3], short_key(name), synset=synset)


def archive_place(experiment: str, member: str) -> tuple[str, str] | None:
    """Where a release archive's member goes: (category folder, file name), or None to leave it out."""
    parts = Path(member).parts
    if experiment not in FOLDER_SETS:
        if len(parts) < 4 or parts[-4] != experiment or parts[-3] != "dnn" or not parts[-2].startswith("session-"):
            return None
    elif len(parts) < 3 or parts[-3] != experiment:
        return None
    stimulus = parse_stimulus(experiment, member)
    return None if stimulus is None else (stimulus.category, parts[-1])


def release_url(experiment: str) -> str:
    return f"{RELEASE}/{urllib.parse.quote(experiment)}.tar.gz"
