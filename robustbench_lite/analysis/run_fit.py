"""A run's reproducibility fits: every condition and family across the run's models, with a bootstrap over photos.

The photos are drawn once per replicate for all models and conditions together, since every model saw
the same photos. A run's own line is used only where it is identified (>= 5 models spanning >= 10 pp
of clean top-1); conditions with a published line also get effective robustness against it. A natural
shift (kind `shift`) is placed on its counterpart's accuracy (`clean@r-classes` for ImageNet-R; else
`clean`); counterparts are x axes only, never fitted, and shifts enter no family.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import pandas as pd

from ..conditions.keys import condition_key, condition_rank, condition_table
from ..errors import UserError
from ..results.records import correctness_cube
from .fit import (DEFAULT_BOOTSTRAP, DEFAULT_SCALE, LineFit, TwoPieceLine, fit_line, line_stats, scale_accuracy, scale_name,
                  unscale_accuracy)
from .references import counterpart, is_counterpart, is_natural_shift

IDENTIFIED_MODELS = 5  # a run's own line says something only with >= 5 models ...
IDENTIFIED_SPAN = 10.0  # ... spanning >= 10 points of clean top-1 (the Reference populations rule)
_BOOT_CELLS = 4_000_000  # replicate x photo cells drawn at once (memory bound)

FIT_COLUMNS = [
    "condition", "kind", "transform", "family", "severity", "scale", "n", "n_excluded",
    "slope", "slope_low", "slope_high", "intercept", "intercept_low", "intercept_high",
    "r2", "r2_low", "r2_high", "n_boot", "status",
]
ER_COLUMNS = [
    "condition", "kind", "transform", "family", "severity", "model", "clean_top1", "top1",
    "predicted_top1", "effective_robustness", "er_low", "er_high", "versus_line", "fit_clean_min", "fit_clean_max",
    "in_fit",
    "reference", "reference_n", "placement", "counterpart",
]



@dataclass
class RunFit:
    """A run's fits: `lines` (fit.csv), `effective` (effective_robustness.csv), `points` (each
    model's clean and shifted top-1 per target with bootstrap bounds, percent) and, per target
    key, the bootstrap replicates of (slope, intercept) for drawing the line's band."""

    scale: str
    lines: pd.DataFrame
    effective: pd.DataFrame
    points: pd.DataFrame
    replicates: dict[str, np.ndarray]


@dataclass
class _Target:
    """What one line is fitted on: a condition or a family's mean over its conditions."""

    key: str
    kind: str
    transform: str
    family: str
    severity: float
    right: np.ndarray  # photos x models: share of the target's conditions answered right
    present: np.ndarray  # photos x models: 1 where the model has the photo
    x_key: str = "clean"  # the clean condition it is placed against (a shift's counterpart)


def _targets(records: pd.DataFrame, conditions, models: list[str]) -> tuple[_Target, list[_Target], list[_Target]]:
    """The clean target, every condition, shift and family target, and the shifts' clean counterparts
    (x axes only), as photo x model matrices."""
    table = condition_table(conditions if conditions is not None else [])
    family_of = {condition_key(t, s): f for t, s, f in zip(table["transform"], table["severity"], table["family"])}
    pairs, cube_right, cube_present = correctness_cube(records, models)
    key_names = [condition_key(t, s) for t, s in pairs]
    rank = condition_rank(conditions)
    ordered = sorted(range(len(key_names)), key=lambda i: (rank.get(key_names[i], len(rank)), key_names[i]))
    by_key = {key_names[i]: i for i in ordered}
    if "clean" not in by_key:
        raise UserError("the records have no clean condition: nothing to fit against")
    clean = _Target("clean", "clean", "clean", "clean", 0, cube_right[by_key["clean"]], cube_present[by_key["clean"]])
    targets, families, counterparts = [], {}, []
    for name, i in by_key.items():
        if name == "clean":
            continue
        transform, severity = pairs[i]
        if is_counterpart(transform):
            counterparts.append(_Target(name, "counterpart", transform, "clean", int(severity), cube_right[i],
                                        cube_present[i]))
            continue
        shift = is_natural_shift(transform)
        family = family_of.get(name, transform)
        targets.append(_Target(name, "shift" if shift else "condition", transform, family, int(severity),
                               cube_right[i], cube_present[i], counterpart(transform) if shift else "clean"))
        if not shift:
            families.setdefault(family, []).append(i)
    for family, index in families.items():  # a photo counts for a model only if it has every condition
        complete = (cube_present[index].sum(axis=0) == len(index)).astype(np.float32)
        share = cube_right[index].mean(axis=0) * complete
        targets.append(_Target(f"family:{family}", "family", "", family, np.nan, share, complete))
    return clean, targets, counterparts


def _ratio(hits: np.ndarray, seen: np.ndarray) -> np.ndarray:
    return np.divide(hits, seen, out=np.full(hits.shape, np.nan), where=seen > 0)


def _accuracy_table(columns: list[_Target], n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Every model's accuracy (fraction) on every target: the point estimate (targets*models,) and
    the bootstrap replicates (n_boot, targets*models), all targets side by side in one matrix product."""
    hits = np.concatenate([t.right for t in columns], axis=1)  # already 0 where a photo is missing
    seen = np.concatenate([t.present for t in columns], axis=1)
    point = _ratio(hits.sum(axis=0, dtype=np.float64), seen.sum(axis=0, dtype=np.float64))
    boot = np.empty((n_boot, hits.shape[1]))
    start = 0
    for weights in _bootstrap_weights(hits.shape[0], n_boot, seed):
        boot[start:start + len(weights)] = _ratio(weights @ hits, weights @ seen)
        start += len(weights)
    return point, boot


def _bootstrap_weights(n_photos: int, n_boot: int, seed: int):
    """Yield blocks of replicate x photo counts: photos drawn with replacement, once per replicate."""
    rng = np.random.default_rng(seed)
    block = max(1, min(n_boot, _BOOT_CELLS // max(n_photos, 1)))
    for start in range(0, n_boot, block):
        size = min(block, n_boot - start)
        draws = rng.integers(0, n_photos, size=(size, n_photos)) + (np.arange(size) * n_photos)[:, None]
        yield np.bincount(draws.ravel(), minlength=size * n_photos).reshape(size, n_photos).astype(np.float32)


def _interval(values: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval along axis 0 over finite replicates (NaN where none is finite)."""
    if values.shape[0] == 0:
        nan = np.full(values.shape[1:], np.nan)
        return nan, nan
    tail = 100 * (1 - ci) / 2
    finite = np.where(np.isfinite(values), values, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, as wanted
        low, high = np.nanpercentile(finite, [tail, 100 - tail], axis=0)
    return low, high


def not_identified(x: np.ndarray) -> str | None:
    """Why a line across models of clean accuracies `x` (fractions) says nothing, or None when it is identified."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    span = 100 * float(x.max() - x.min()) if len(x) else 0.0
    if len(x) >= IDENTIFIED_MODELS and span >= IDENTIFIED_SPAN:
        return None
    return (f"not identified: {len(x)} models spanning {span:.1f} pp of clean top-1 "
            f"(needs >= {IDENTIFIED_MODELS} spanning >= {IDENTIFIED_SPAN:g} pp)")


def fit_run(records: pd.DataFrame, conditions=None, model_order: Sequence[str] | None = None,
            scale: str = DEFAULT_SCALE, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0, ci: float = 0.95,
            published: dict[str, tuple[str, LineFit | TwoPieceLine]] | None = None,
            placement: str = "indicative") -> RunFit:
    """Fit every condition and family aggregate of a run across its models, with bootstrap intervals.

    A run's own line is used (effective robustness rows, reference `run`) only where it is identified.
    `published` maps a condition key to (reference name, its published LineFit): those conditions
    also get effective robustness against that line, with intervals from the same bootstrap over
    photos; `placement` (`val` or `indicative`) says whether the run's clean accuracy is on the
    published line's x axis (ImageNet val) and is written on every row.
    """
    scale = scale_name(scale)
    present = set(records["model"].astype(str).unique())
    models = [m for m in dict.fromkeys([*(model_order or []), *sorted(present)]) if m in present]
    clean, targets, counterparts = _targets(records, conditions, models)
    columns, m = [clean, *counterparts, *targets], len(models)
    point_all, boot_all = _accuracy_table(columns, n_boot, seed)
    point = {t.key: point_all[i * m:(i + 1) * m] for i, t in enumerate(columns)}
    boot = {t.key: boot_all[:, i * m:(i + 1) * m] for i, t in enumerate(columns)}
    for t in targets:  # a shift whose counterpart the run lacks (an older run) is placed nowhere
        point.setdefault(t.x_key, np.full(m, np.nan))
        boot.setdefault(t.x_key, np.full((n_boot, m), np.nan))
    lines, effective, points, replicates = [], [], [], {}
    for t in targets:
        line_row, er_rows, point_rows, reps = _fit_target(t, models, point, boot, scale, ci, placement)
        lines.append(line_row)
        effective.extend(er_rows)
        if t.key in (published or {}):
            effective.extend(_published_rows(t, models, point, boot, ci, *published[t.key], placement))
        points.extend(point_rows)
        replicates[t.key] = reps
    lines_frame = pd.DataFrame(lines, columns=FIT_COLUMNS).assign(n_boot=n_boot)
    effective_frame = pd.DataFrame(effective, columns=ER_COLUMNS)
    for frame in (lines_frame, effective_frame):  # families have no severity: a nullable integer column
        frame["severity"] = frame["severity"].astype("Int64")
    return RunFit(scale, lines_frame, effective_frame, pd.DataFrame(points), replicates)


def _ident(t: _Target) -> dict:
    return {"condition": t.key, "kind": t.kind, "transform": t.transform, "family": t.family, "severity": t.severity}


def _fitted_range(line: LineFit | TwoPieceLine, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per model, the clean accuracies (fractions) the line (the piece it falls on) was fitted over."""
    if isinstance(line, TwoPieceLine):
        above = line.is_above(x)
        return (np.where(above, line.above.x_low, line.below.x_low), np.where(above, line.above.x_high, line.below.x_high))
    return np.full(len(x), line.x_low), np.full(len(x), line.x_high)


def _er_rows(t: _Target, models: list[str], x, y, has, pred, pred_b, boot_y, ci: float, in_fit,
             reference: str | list[str], reference_n: int | list[int], placement: str,
             line: LineFit | TwoPieceLine) -> list[dict]:
    """Effective-robustness rows (points) of one target against one line's predictions (or, for a
    two-piece line, the piece each model is on: `reference` and `reference_n` per model). A model whose
    clean accuracy lies outside the clean range of the line's fitted points is `extrapolated`: its number
    stays, but it is above, below or on nothing."""
    if isinstance(reference, str):
        reference, reference_n = [reference] * len(models), [reference_n] * len(models)
    er = 100 * (y - pred)
    er_low, er_high = _interval(100 * (boot_y - pred_b), ci)
    versus = np.where(er_low > 0, "above", np.where(er_high < 0, "below", "on"))
    versus = np.where(line.covers(x), versus, "extrapolated")
    low, high = _fitted_range(line, x)
    return [{**_ident(t), "model": m, "clean_top1": 100 * x[i], "top1": 100 * y[i], "predicted_top1": 100 * pred[i],
             "effective_robustness": er[i], "er_low": er_low[i], "er_high": er_high[i], "versus_line": versus[i],
             "fit_clean_min": 100 * low[i], "fit_clean_max": 100 * high[i],
             "in_fit": bool(in_fit[i]), "reference": reference[i], "reference_n": int(reference_n[i]),
             "placement": placement, "counterpart": t.x_key}
            for i, m in enumerate(models) if has[i]]


def _published_rows(t: _Target, models: list[str], point: dict, boot: dict, ci: float, reference: str,
                    line: LineFit | TwoPieceLine, placement: str) -> list[dict]:
    """Effective robustness of every model against a published line (fixed), bootstrapped over photos.

    On a two-piece line each model is placed on the piece its clean (counterpart) accuracy falls on.
    """
    x, y = point[t.x_key], point[t.key]
    has = np.isfinite(x) & np.isfinite(y)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        pred, pred_b = line.predict(x), line.predict(boot[t.x_key])
    labels, counts = reference, line.n
    if isinstance(line, TwoPieceLine):
        above = line.is_above(x)
        labels = [f"{reference} ({'above' if a else 'below'} {100 * line.split:g} %)" for a in above]
        counts = [line.above.n if a else line.below.n for a in above]
    return _er_rows(t, models, x, y, has, pred, pred_b, boot[t.key], ci, np.zeros(len(models), bool),
                    labels, counts, placement, line)


def _fit_target(t: _Target, models: list[str], point: dict, boot: dict, scale: str, ci: float, placement: str):
    """fit.csv row, effective-robustness rows, plot points and (slope, intercept) replicates of one target."""
    x, y = point[t.x_key], point[t.key]
    has = np.isfinite(x) & np.isfinite(y)
    line = fit_line(x[has], y[has], scale)
    if line.available:
        in_line = has & np.isfinite(scale_accuracy(x, scale)) & np.isfinite(scale_accuracy(y, scale))
        why = not_identified(x[in_line])
        if why:
            line = replace(line, status=why)
    fx_b, fy_b = scale_accuracy(boot[t.x_key], scale), scale_accuracy(boot[t.key], scale)
    fx_b[:, ~has], fy_b[:, ~has] = np.nan, np.nan
    slope_b, intercept_b, r2_b, _ = line_stats(fx_b, fy_b)
    if not line.available:
        slope_b[:], intercept_b[:], r2_b[:] = np.nan, np.nan, np.nan
    ident = _ident(t)
    bounds = {name: _interval(values[:, None], ci) for name, values in
              [("slope", slope_b), ("intercept", intercept_b), ("r2", r2_b)]}
    row = {**ident, "scale": scale, "n": line.n, "n_excluded": line.n_excluded, "status": line.status,
           "slope": line.slope, "intercept": line.intercept, "r2": line.r2}
    for name, (low, high) in bounds.items():
        row[f"{name}_low"], row[f"{name}_high"] = float(low[0]), float(high[0])
    y_low, y_high = _interval(boot[t.key], ci)
    points = [{"condition": t.key, "kind": t.kind, "family": t.family, "model": m, "clean_top1": 100 * x[i],
               "top1": 100 * y[i], "top1_low": 100 * y_low[i], "top1_high": 100 * y_high[i], "counterpart": t.x_key}
              for i, m in enumerate(models) if has[i]]
    er_rows = []
    if line.available:
        with np.errstate(invalid="ignore", over="ignore"):
            pred_b = unscale_accuracy(slope_b[:, None] * fx_b + intercept_b[:, None], scale)
        in_fit = np.isfinite(scale_accuracy(x, scale)) & np.isfinite(scale_accuracy(y, scale))
        er_rows = _er_rows(t, models, x, y, has, line.predict(x), pred_b, boot[t.key], ci, in_fit, "run", line.n,
                           placement, line)
    return row, er_rows, points, np.column_stack([slope_b, intercept_b])
