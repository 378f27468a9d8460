"""timm's published results as a reference population, and the published row of one timm model.

The bundled table (`reference_data/timm_results.csv.gz`, built by `tools/build_timm_population.py` from
huggingface/pytorch-image-models `results/results-*.csv`) holds, per (model, img_size), top-1 in percent on
ImageNet val, ReaL, ImageNetV2 matched-frequency, Sketch, ImageNet-R and -A, and R's and A's 200-class
clean runs. `references.py` reads it as a population whose columns carry the testbed's setting names.
"""
from __future__ import annotations

import gzip
import io
import json
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

DATA_FILE = "timm_results.csv.gz"
META_FILE = "timm.json"
VALUES = ("top1", "real", "imagenetv2_matched_frequency", "sketch", "imagenet_r_clean", "imagenet_r",
          "imagenet_a_clean", "imagenet_a")
# the testbed's setting name -> timm's column: a population's x and y axes have the same names in both
SETTINGS = {"val": "top1", "imagenetv2-matched-frequency": "imagenetv2_matched_frequency",
            "imagenet-sketch": "sketch", "val-on-imagenet-r-classes": "imagenet_r_clean", "imagenet-r": "imagenet_r",
            "val-on-imagenet-a-classes": "imagenet_a_clean", "imagenet-a": "imagenet_a"}
# the natural shifts timm publishes: dataset -> (clean setting = x axis, shifted setting = y axis)
SHIFTS = {"imagenetv2-matched-frequency": ("val", "imagenetv2-matched-frequency"),
          "imagenet-sketch": ("val", "imagenet-sketch"),
          "imagenet-r": ("val-on-imagenet-r-classes", "imagenet-r"),
          "imagenet-a": ("val-on-imagenet-a-classes", "imagenet-a")}
# `timm-in1k`: a pretrained tag that ends in `in1k` and has none of these `_`-separated tokens (other data)
OTHER_DATA_TOKENS = ("in22k", "in21k", "in12k", "laion2b", "laiona", "openai", "clip", "jft", "ig1b", "sw", "swsl",
                     "ssl", "wsl", "ssld", "ns", "swag", "seer", "m38m", "m30m", "webli", "yfcc100m", "mim")
IN1K_RULE = ("rows whose pretrained tag (after the dot) ends in `in1k` and has none of the `_`-separated tokens "
             + ", ".join(OTHER_DATA_TOKENS) + " (other training data)")


@lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    raw = (resources.files("robustbench_lite") / "reference_data" / DATA_FILE).read_bytes()
    text = pd.read_csv(io.BytesIO(gzip.decompress(raw)), dtype=str, keep_default_na=False)
    values = text[list(VALUES)].replace("", np.nan).astype(float)  # Python's float() on the published text
    rest = text.drop(columns=list(VALUES))
    return pd.concat([rest[["model"]], rest["img_size"].astype(int), values,
                      rest.drop(columns=["model", "img_size"])], axis=1)


def timm_table() -> pd.DataFrame:
    """The bundled table (a copy): model, img_size, the eight top-1 columns in percent (NaN = no row), extras."""
    return _table().copy()


def timm_meta() -> dict:
    """Source repository and commits, licence, citation and input digests of the bundled table."""
    return json.loads((resources.files("robustbench_lite") / "reference_data" / META_FILE).read_text("utf-8"))


def pretrained_tag(name: str) -> str:
    """The pretrained tag of a timm name, after the dot (`tf_efficientnet_lite0.in1k` -> `in1k`; '' without)."""
    return name.split(".", 1)[1] if "." in name else ""


def is_in1k_only(name: str) -> bool:
    """The `timm-in1k` rule: the tag ends in `in1k` and names no other training data (OTHER_DATA_TOKENS)."""
    tag = pretrained_tag(name)
    return tag.endswith("in1k") and not set(tag.split("_")) & set(OTHER_DATA_TOKENS)


@lru_cache(maxsize=1)
def population_frame() -> pd.DataFrame:
    """The table as a population (shared: do not modify): `model` (NAME@SIZEpx), `model_type` (the tag), every
    setting in percent under the testbed's setting names, and `in1k_only`."""
    table = _table()
    frame = pd.DataFrame({"model": table["model"] + "@" + table["img_size"].astype(str) + "px",
                          "model_type": table["model"].map(pretrained_tag)})
    for setting, column in SETTINGS.items():
        frame[setting] = table[column]
    frame["in1k_only"] = table["model"].map(is_in1k_only)
    return frame


def published_row(name: str, img_size: int) -> dict | None:
    """timm's published row of `name` (with its tag) at input side `img_size`, or None when it has none."""
    table = _table()
    hit = table.loc[(table["model"] == name) & (table["img_size"] == int(img_size))]
    return hit.iloc[0].to_dict() if len(hit) else None
