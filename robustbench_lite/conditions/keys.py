"""Conditions: a transform at one severity number, or clean. One vocabulary for the whole package.

- a *level* is a transform's parameter value at a severity (e.g. 15 degrees for `rotate`);
- a *severity* is a 1-based number into a transform's levels (`--severities 1,3,5`, records, keys);
- a condition's *key* is `TRANSFORM@SEVERITY` (e.g. `rotate@3`), or the name alone for the
  severity-0 conditions that show photos as they are: `clean`, a natural-shift dataset
  (`imagenet-r`, `imagenetv2-matched-frequency`) and a shift's clean counterpart (`clean@r-classes`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from ..errors import UserError

if TYPE_CHECKING:
    import pandas as pd

CLEAN_NAME = "clean"
SHIFT_COUNTERPART = {"imagenet-r": "clean@r-classes", "imagenet-a": "clean@a-classes",
                     "objectnet": "clean@objectnet-classes"}
"""Shifts scored on their own classes (ImageNet-R/A's 200, ObjectNet's 113) and the clean condition they are
compared with (val photos of those classes, scored the same way); every other shift's counterpart is `clean`."""
SHIFT_FAMILY = "natural-shift"  # the manifest's family of a shift dataset's condition


def counterpart_of(shift: str) -> str:
    """The clean condition a natural-shift dataset is compared with: `clean@r-classes`, `clean@a-classes` or `clean`."""
    return SHIFT_COUNTERPART.get(shift, CLEAN_NAME)


def is_counterpart(key: str) -> bool:
    """Whether a condition key is a 200-class clean counterpart (`clean@r-classes`), not a transform of clean."""
    return key in SHIFT_COUNTERPART.values()


def condition_key(transform: str, severity: int) -> str:
    """`transform@severity`, or the transform's name alone at severity 0 (`clean`, `imagenet-r`, `clean@r-classes`)."""
    return str(transform) if int(severity) == 0 else f"{transform}@{int(severity)}"


def parse_condition_key(key: str) -> tuple[str, int]:
    """(transform, severity) of a condition key: `rotate@3` -> (rotate, 3); `clean@r-classes` -> itself at 0."""
    name, at, number = key.rpartition("@")
    return (name, int(number)) if at and number.isdigit() else (key, 0)


@dataclass(frozen=True)
class Condition:
    """One evaluation condition: a transform at one severity number, with its level value."""

    transform: str
    severity: int
    level: float

    @property
    def is_clean(self) -> bool:
        return self.transform == CLEAN_NAME

    @property
    def is_plain(self) -> bool:
        """Photos as they are, no transform: clean, a natural-shift dataset or a clean counterpart."""
        return self.severity == 0

    @property
    def key(self) -> str:
        return condition_key(self.transform, self.severity)


CLEAN = Condition(CLEAN_NAME, 0, 0.0)


def parse_severities(text: str | Sequence[int] | None) -> list[int] | None:
    """`--severities 1,3,5` -> [1, 3, 5] (severity numbers, 1-based); None means every level."""
    if text is None or text == "" or text == "all":
        return None
    items = [str(i).strip() for i in (text.split(",") if isinstance(text, str) else list(text))]
    try:
        numbers = set()
        for item in filter(None, items):
            low, _, high = item.partition("-")
            numbers.update(range(int(low), int(high or low) + 1))
        numbers = sorted(numbers)
    except ValueError:
        raise UserError(f"--severities takes severity numbers like 1,3,5 or 1-3, not {text!r}") from None
    if any(number < 1 for number in numbers):
        raise UserError("--severities are 1-based severity numbers")
    return numbers


def build_conditions(specs: Sequence, severities: Sequence[int] | None,
                     pinned: dict[str, set[int]] | None = None) -> list[Condition]:
    """Clean plus every (transform, severity) asked for; severities a transform lacks are skipped.

    `specs` are registry TransformSpecs (anything with `name` and `levels`); a transform with a
    single level runs at it whatever `severities` says; `pinned` gives some transforms their own
    severity numbers (`--transforms rotate@3`).
    """
    conditions = [CLEAN]
    for spec in specs:
        wanted = (pinned or {}).get(spec.name, severities)
        for number, level in enumerate(spec.levels, start=1):
            if wanted is None or number in wanted or len(spec.levels) == 1:
                conditions.append(Condition(spec.name, number, level))
    return conditions


# ---------------------------------------------------------------- conditions as the manifest lists them

CONDITION_COLUMNS = ["transform", "family", "severity", "level", "description", "params"]


def condition_table(conditions) -> "pd.DataFrame":
    """The manifest's conditions (list of dicts or a frame) as a frame of CONDITION_COLUMNS, one row each."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(list(conditions) if not isinstance(conditions, pd.DataFrame) else conditions)
    if frame.empty:
        return pd.DataFrame(columns=CONDITION_COLUMNS)
    for column, default in [("family", None), ("level", np.nan), ("description", ""), ("params", None)]:
        if column not in frame.columns:
            frame[column] = default
    frame["family"] = frame["family"].fillna(frame["transform"])
    frame["severity"] = frame["severity"].astype(int)
    return frame.drop_duplicates(["transform", "severity"]).reset_index(drop=True)


def condition_rank(conditions=None) -> dict[str, int]:
    """Position of each condition key in the manifest's order, clean first."""
    table = condition_table(conditions if conditions is not None else [])
    order = {condition_key(t, s): i for i, (t, s) in enumerate(zip(table["transform"], table["severity"]))}
    order[CLEAN_NAME] = -1
    return order


def order_rows(frame: "pd.DataFrame", conditions=None, model_order: Sequence[str] | None = None) -> "pd.DataFrame":
    """Rows in model order, then the manifest's condition order (clean first; unknown ones last)."""
    import pandas as pd

    models = list(dict.fromkeys(list(model_order or []) + list(frame["model"])))
    rank = condition_rank(conditions)
    keys = [condition_key(t, s) for t, s in zip(frame["transform"], frame["severity"])]
    sort = pd.DataFrame({"m": frame["model"].map({m: i for i, m in enumerate(models)}).to_numpy(),
                         "c": [rank.get(k, len(rank)) for k in keys],
                         "t": frame["transform"].to_numpy(), "s": frame["severity"].to_numpy()})
    index = sort.sort_values(["m", "c", "t", "s"], kind="stable").index
    return frame.iloc[index].reset_index(drop=True)
