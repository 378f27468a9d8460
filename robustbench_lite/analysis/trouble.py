"""Does the model know when it is in trouble? A run's selective-prediction and label-free estimate tables.

Bundles selective.csv (selective.py), accuracy_estimates.csv (accuracy_estimates.py) and the
risk-coverage curves the report draws: clean's and those of the conditions with the lowest mean top-1.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import pandas as pd

from ..conditions.keys import condition_key, parse_condition_key
from .accuracy_estimates import estimate_table, source_condition
from .selective import risk_coverage_curves, selective_table

WORST_CONDITIONS = 3  # risk-coverage curves drawn besides clean's


@dataclass
class SelectiveTables:
    """selective.csv, accuracy_estimates.csv and the risk-coverage curves of the worst conditions."""

    selective: pd.DataFrame
    estimates: pd.DataFrame
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    worst: list[str] = field(default_factory=list)  # the conditions whose curves are kept, worst first

    def csvs(self) -> dict[str, pd.DataFrame]:
        return {"selective": self.selective, "accuracy_estimates": self.estimates}


def worst_conditions(selective: pd.DataFrame, count: int = WORST_CONDITIONS) -> list[str]:
    """The estimated conditions (not a source) with the lowest top-1 averaged over models, worst first."""
    table = selective.loc[[source_condition(c, parse_condition_key(c)[0]) is not None for c in selective["condition"]]]
    mean = table.groupby("condition", sort=False)["top1"].mean().sort_values(kind="stable")
    return list(mean.index[:count])


def selective_tables(records: pd.DataFrame, models: Sequence[str], summary: pd.DataFrame | None = None) -> SelectiveTables:
    """The run's tables, rows in the summary's order (models, then conditions as the manifest lists them)."""
    order = ([condition_key(t, s) for t, s in zip(summary["transform"], summary["severity"])]
             if summary is not None and len(summary) else [])
    order = list(dict.fromkeys(order))
    selective = selective_table(records, models, order)
    worst = worst_conditions(selective)
    shown = [c for c in ("clean", *worst) if c in set(selective["condition"])]
    return SelectiveTables(selective, estimate_table(records, models, order),
                           risk_coverage_curves(records, shown, models), worst)
