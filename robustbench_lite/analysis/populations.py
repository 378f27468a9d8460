"""Published populations: a source of rows with a line-fit rule, and the two read from timm's results.

`references.py` holds the testbed and the functions that read any population (`reference_line`,
`population_points`, `bootstrap_band`). timm's populations map the four natural shifts timm measures
(ImageNetV2 matched-frequency, Sketch, R and A; R and A against their 200-class clean runs):

- `timm`: every (model, img_size) row; its line is OLS over all rows with both values;
- `timm-in1k`: the same rows, the line fitted on the in1k-only ones (`timm_population.IN1K_RULE`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

from .timm_population import IN1K_RULE, SHIFTS, population_frame, timm_meta  # noqa: F401  (timm_meta: re-exported)


@dataclass(frozen=True)
class Population:
    """A published population: its rows (`model`, `model_type`, settings in percent, NaN = not run), the
    natural shifts it maps (dataset -> (clean setting, shifted setting); None: the testbed's whole table) and
    its line-fit rule (rows, clean setting, shifted setting) -> mask of the rows the line is fitted on."""

    name: str
    description: str
    rows: Callable[[], pd.DataFrame]
    line_fit: Callable[[pd.DataFrame, str, str], pd.Series]
    shifts: dict[str, tuple[str, str]] | None = None


def every_row(frame: pd.DataFrame, clean_column: str, column: str) -> pd.Series:
    """timm's rule: every row with both values."""
    return frame[clean_column].notna() & frame[column].notna()


def in1k_rows(frame: pd.DataFrame, clean_column: str, column: str) -> pd.Series:
    """timm-in1k's rule: the rows with both values whose pretrained tag is in1k only."""
    return every_row(frame, clean_column, column) & frame["in1k_only"]


_TIMM = "timm's published results (huggingface/pytorch-image-models results/, 1,556 (model, img_size) rows)"
TIMM_POPULATIONS = {
    "timm": Population("timm", f"{_TIMM}; lines over every row", population_frame, every_row, SHIFTS),
    "timm-in1k": Population("timm-in1k", f"{_TIMM}; lines over the {IN1K_RULE}", population_frame, in1k_rows,
                            SHIFTS),
}
