"""Natural shifts in a run: their published lines, a table per (model, shift), and whether a synthetic
condition's effective robustness predicts a natural shift's (Spearman across the run's models).

A shift is placed on its clean counterpart (`references.counterpart`: the run's val photos of the 200
ImageNet-R / -A classes, else clean). ImageNet-A has the testbed's two-piece line, split at 91.86 % on
its counterpart; each model is read against the piece it falls on.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from .fit import LineFit, TwoPieceLine
from .references import (IMAGENET_A_SPLIT, POPULATION, ReferenceLine, fit_points, imagenet_a_lines,
                         imagenet_a_points, is_natural_shift, reference_line, shift_population, testbed_shift)
from .run_fit import IDENTIFIED_MODELS

SHIFT_COLUMNS = ["model", "shift", "counterpart", "counterpart_top1", "top1", "drop", "effective_robustness",
                 "er_low", "er_high", "versus_line", "fit_clean_min", "fit_clean_max", "reference", "reference_n",
                 "placement"]
CORRELATION_COLUMNS = ["synthetic", "synthetic_reference", "shift", "shift_reference", "n_models", "spearman",
                       "ci_low", "ci_high", "identified", "note"]
CORRELATION_BOOTSTRAP = 2000  # resamples of the run's models, paired


def run_shifts(transforms: Iterable[str]) -> list[str]:
    """The natural-shift datasets among a run's transforms, in order of first appearance (keys = names)."""
    return [t for t in dict.fromkeys(map(str, transforms)) if is_natural_shift(t)]


def published_fit(ref: ReferenceLine, clean: pd.Series | None = None) -> LineFit:
    """A published line as a LineFit whose range is its line-fit models' clean accuracies (`clean`, fractions;
    default: the line's own fit points), so a model beyond them is read as extrapolated."""
    clean = fit_points(ref)["clean"] if clean is None else clean
    return LineFit(ref.scale, ref.slope, ref.intercept, float("nan"), ref.n, 0, "ok", float(clean.min()),
                   float(clean.max()))


def _row(key: str, label: str, ref: ReferenceLine, placement: str) -> dict:
    return {"condition": key, "reference": label, "population": ref.population, "column": ref.column,
            "clean_column": ref.clean_column, "n": ref.n, "slope": ref.slope, "intercept": ref.intercept,
            "scale": ref.scale, "indicative": ref.indicative or placement != "val", "note": ref.note,
            "placement": placement}


def shift_lines(shifts: Iterable[str], scale: str, placement: str,
                population: str = POPULATION) -> tuple[dict, list[dict]]:
    """The published line of each shift ({key: (reference, line)}) and its references.csv rows (ImageNet-A: two).

    Each shift is read on `population`'s line where it has one, else the testbed's (`shift_population`)."""
    lines, rows = {}, []
    for key in shifts:
        name = testbed_shift(key)
        chosen = shift_population(name, population) if name is not None else POPULATION
        if name == "imagenet-a" and chosen == POPULATION:
            below, above = imagenet_a_lines(scale)
            label = f"{below.population}:{below.column}"
            fitted = imagenet_a_points().query("in_fit")["clean"]
            split = IMAGENET_A_SPLIT / 100
            lines[key] = (label, TwoPieceLine(split, published_fit(below, fitted[fitted < split]),
                                              published_fit(above, fitted[fitted >= split])))
            rows += [_row(key, f"{label} ({part} {IMAGENET_A_SPLIT:g} %)", ref, placement)
                     for part, ref in (("below", below), ("above", above))]
        elif name is not None:
            ref = reference_line(name, scale, population=chosen)
            label = f"{ref.population}:{ref.column}"
            lines[key] = (label, published_fit(ref))
            rows.append(_row(key, label, ref, placement))
    return lines, rows


def shift_table(summary: pd.DataFrame, effective: pd.DataFrame, shifts: list[str]) -> pd.DataFrame:
    """Per (model, shift): counterpart, its top-1, the shift's top-1, the drop and effective robustness
    against the published line (points; the piece a model is on for ImageNet-A)."""
    rows = summary.loc[summary["transform"].isin(shifts)]
    base = pd.DataFrame({"model": rows["model"], "shift": rows["transform"], "counterpart": rows["counterpart"],
                         "counterpart_top1": rows["top1"] + rows["drop"], "top1": rows["top1"], "drop": rows["drop"]})
    er = effective.loc[effective["condition"].isin(shifts) & (effective["reference"] != "run"),
                       ["model", "condition", "effective_robustness", "er_low", "er_high", "versus_line",
                        "fit_clean_min", "fit_clean_max",
                        "reference", "reference_n", "placement"]].rename(columns={"condition": "shift"})
    out = base.merge(er, on=["model", "shift"], how="left")
    order = {s: i for i, s in enumerate(shifts)}
    out = out.sort_values("shift", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)
    return out[SHIFT_COLUMNS]


def _er_source(effective: pd.DataFrame, condition: str) -> tuple[pd.Series, str]:
    """A condition's effective robustness per model: against its published line where it has one, else the
    run's own line where that is identified (empty otherwise), and which it is. Extrapolated rows (a model
    beyond the clean range the line was fitted on) are left out: they place no model."""
    rows = effective.loc[effective["condition"] == condition]
    published, own = rows.loc[rows["reference"] != "run"], rows.loc[rows["reference"] == "run"]
    if len(published):  # ImageNet-A's pieces share one name: testbed:imagenet-a
        chosen, label = published, str(published["reference"].iloc[0]).split(" (")[0]
    elif len(own):
        chosen, label = own, "run's own line"
    else:
        return pd.Series(dtype=float), "none"
    chosen = chosen.loc[chosen["versus_line"] != "extrapolated"]
    return chosen.drop_duplicates("model").set_index("model")["effective_robustness"], label


def spearman_interval(a: np.ndarray, b: np.ndarray, n_boot: int = CORRELATION_BOOTSTRAP, seed: int = 0,
                      level: float = 0.95) -> tuple[float, float, float]:
    """Spearman's rho of paired values and its percentile bootstrap interval, resampling the pairs (seeded)."""
    from scipy import stats  # imported here: a second to import, needed only with natural shifts
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rho = float(stats.spearmanr(a, b).statistic)
    idx = np.random.default_rng(seed).integers(0, len(a), size=(n_boot, len(a)))
    ra, rb = stats.rankdata(a[idx], axis=1), stats.rankdata(b[idx], axis=1)
    ra, rb = ra - ra.mean(axis=1, keepdims=True), rb - rb.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (ra * rb).sum(axis=1) / np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
    boot = boot[np.isfinite(boot)]  # a resample of tied values has no rank correlation
    if not len(boot):
        return rho, float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(boot, [tail, 100 - tail])
    return rho, float(low), float(high)


def shift_correlation(effective: pd.DataFrame, synthetic: list[str], shifts: list[str], models: list[str],
                      n_boot: int = CORRELATION_BOOTSTRAP, seed: int = 0) -> pd.DataFrame:
    """Per (synthetic condition, natural shift): Spearman's rho across models between their effective
    robustness on each, a 95 % bootstrap interval over models, or `identified` False with the reason
    (fewer than IDENTIFIED_MODELS models with both, no effective robustness, or no spread)."""
    rows = []
    for i, condition in enumerate(synthetic):
        x, x_ref = _er_source(effective, condition)
        for j, shift in enumerate(shifts):
            y, y_ref = _er_source(effective, shift)
            both = [m for m in models if m in x.index and m in y.index and np.isfinite(x[m]) and np.isfinite(y[m])]
            a, b = x.reindex(both).to_numpy(float), y.reindex(both).to_numpy(float)
            row = {"synthetic": condition, "synthetic_reference": x_ref, "shift": shift, "shift_reference": y_ref,
                   "n_models": len(both), "spearman": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                   "identified": False, "note": ""}
            if x.empty:
                row["note"] = ("not identified: no effective robustness on this condition (no published line, "
                               "and the run's own line is not identified)")
            elif y.empty:
                row["note"] = "not identified: no effective robustness on this shift (its counterpart is missing)"
            elif len(both) < IDENTIFIED_MODELS:
                row["note"] = f"not identified: {len(both)} models (needs >= {IDENTIFIED_MODELS})"
            elif np.ptp(a) == 0 or np.ptp(b) == 0:
                row["note"] = "not identified: every model has the same effective robustness on one side"
            else:
                rho, low, high = spearman_interval(a, b, n_boot, seed + 1000 * i + j)
                row.update(spearman=rho, ci_low=low, ci_high=high, identified=True,
                           note="interval excludes 0" if low > 0 or high < 0 else "interval includes 0")
            rows.append(row)
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)
