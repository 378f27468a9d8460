"""The linear reproducibility fit: f(shifted accuracy) = slope * f(clean accuracy) + intercept.

Fitted by ordinary least squares across models, f = probit (default), logit or identity of the
accuracy as a fraction (Recht et al. 2019; Taori et al. 2020; Miller et al. 2021). A model's
effective robustness is its shifted accuracy minus the line's prediction at its clean accuracy.
For a run, 95% intervals come from a bootstrap over photos, drawn once per replicate for all
models and conditions together, since every model saw the same photos.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import special

from .errors import UserError
from .conditions import condition_key, condition_rank, condition_table
from .metrics import correctness_cube

MIN_MODELS = 3
DEFAULT_BOOTSTRAP = 1000
_BOOT_CELLS = 4_000_000  # replicate x photo cells drawn at once (memory bound)

Scale = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]
SCALES: dict[str, Scale] = {
    "probit": (special.ndtri, special.ndtr),
    "logit": (special.logit, special.expit),
    "linear": (lambda p: np.asarray(p, dtype=float), lambda z: np.asarray(z, dtype=float)),
}
_ALIASES = {"identity": "linear"}

FIT_COLUMNS = [
    "condition", "kind", "transform", "family", "severity", "scale", "n", "n_excluded",
    "slope", "slope_low", "slope_high", "intercept", "intercept_low", "intercept_high",
    "r2", "r2_low", "r2_high", "n_boot", "status",
]
ER_COLUMNS = [
    "condition", "kind", "transform", "family", "severity", "model", "clean_top1", "top1",
    "predicted_top1", "effective_robustness", "er_low", "er_high", "in_fit",
]


def scale_name(scale: str) -> str:
    """The canonical name of a scale (`identity` is `linear`), or a one-line error."""
    name = _ALIASES.get(scale, scale)
    if name not in SCALES:
        raise UserError(f"unknown scale {scale!r}; use one of: {', '.join(SCALES)}")
    return name


def scale_accuracy(p, scale: str) -> np.ndarray:
    """f(p) for accuracies p given as fractions (+-inf at 0 and 1 for probit and logit)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return SCALES[scale_name(scale)][0](np.asarray(p, dtype=float))


def unscale_accuracy(z, scale: str) -> np.ndarray:
    """f^-1(z): back from the fit's scale to accuracy as a fraction."""
    return SCALES[scale_name(scale)][1](np.asarray(z, dtype=float))


def unavailable(n: int, n_excluded: int = 0, noun: str = "models") -> str:
    """The status line of a fit that has too few points."""
    extra = f" ({n_excluded} at 0 or 100 % left out)" if n_excluded else ""
    return f"unavailable: needs >= {MIN_MODELS} {noun}, got {n}{extra}"


def line_stats(fx: np.ndarray, fy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares (slope, intercept, r2, n) of fy on fx along the last axis, over finite pairs.

    Works on any leading shape (e.g. bootstrap replicates x models); NaN where n < MIN_MODELS.
    """
    fx, fy = np.asarray(fx, dtype=float), np.asarray(fy, dtype=float)
    use = np.isfinite(fx) & np.isfinite(fy)
    n = use.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_mean = np.where(use, fx, 0).sum(axis=-1) / n
        y_mean = np.where(use, fy, 0).sum(axis=-1) / n
        dx = np.where(use, fx - x_mean[..., None], 0)
        dy = np.where(use, fy - y_mean[..., None], 0)
        sxx, syy, sxy = (dx * dx).sum(axis=-1), (dy * dy).sum(axis=-1), (dx * dy).sum(axis=-1)
        slope = sxy / sxx
        intercept = y_mean - slope * x_mean
        r2 = sxy * sxy / (sxx * syy)
    enough = n >= MIN_MODELS
    return (np.where(enough, slope, np.nan), np.where(enough, intercept, np.nan),
            np.where(enough, r2, np.nan), n)


@dataclass(frozen=True)
class LineFit:
    """A fitted line on one scale; `status` is "ok" or why no line could be fitted."""

    scale: str
    slope: float
    intercept: float
    r2: float
    n: int
    n_excluded: int
    status: str = "ok"

    @property
    def available(self) -> bool:
        return self.status == "ok"

    def predict(self, clean) -> np.ndarray:
        """The line's shifted accuracy (fraction) at clean accuracies given as fractions."""
        return unscale_accuracy(self.slope * scale_accuracy(clean, self.scale) + self.intercept, self.scale)


def fit_line(clean, shifted, scale: str = "probit", noun: str = "models") -> LineFit:
    """Fit f(shifted) on f(clean), accuracies as fractions; points at 0 or 1 (infinite under
    probit/logit) or missing are left out and counted in `n_excluded`."""
    scale = scale_name(scale)
    fx, fy = scale_accuracy(clean, scale), scale_accuracy(shifted, scale)
    slope, intercept, r2, n = line_stats(fx, fy)
    n, n_excluded = int(n), int(len(fx) - n)
    status = "ok" if n >= MIN_MODELS else unavailable(n, n_excluded, noun)
    return LineFit(scale, float(slope), float(intercept), float(r2), n, n_excluded, status)


def effective_robustness(clean, shifted, line: LineFit) -> np.ndarray:
    """Shifted accuracy minus the line's prediction at the clean accuracy (fractions in, fraction out)."""
    return np.asarray(shifted, dtype=float) - line.predict(clean)


# ---------------------------------------------------------------- fitting a published table

@dataclass
class TableFit:
    """A line fitted on a table's rows; `rows` holds every row's x, y and effective robustness
    in the table's own unit (`percent` or `fraction`), `in_fit` marking the fitted ones."""

    line: LineFit
    unit: str
    x: str
    y: str
    where: str | None
    rows: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV of accuracies, or a one-line error naming the path."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such CSV file: {path}")
    try:
        return pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path} as CSV: {str(exc).splitlines()[0]}") from None


def _numeric_column(table: pd.DataFrame, column: str) -> pd.Series:
    if column not in table.columns:
        raise UserError(f"unknown column {column!r}; the table has: {', '.join(map(str, table.columns))}")
    values = pd.to_numeric(table[column], errors="coerce")
    if values.notna().sum() == 0:
        raise UserError(f"column {column!r} holds no numbers")
    return values


def select_rows(table: pd.DataFrame, where: str | None) -> np.ndarray:
    """Boolean mask of the rows a pandas query selects (all rows when `where` is empty)."""
    if not where:
        return np.ones(len(table), dtype=bool)
    try:
        chosen = table.query(where)
    except Exception as exc:  # pandas raises many types for a bad expression
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"bad --where expression {where!r}: {reason}") from None
    return np.asarray(table.index.isin(chosen.index), dtype=bool)


def fit_table(table: pd.DataFrame | str | Path, x: str = "clean_top1", y: str = "shifted_top1",
              scale: str = "probit", where: str | None = None, noun: str = "rows") -> TableFit:
    """Fit y on x over the rows `where` selects; accuracies in percent when any value exceeds 1.

    Effective robustness is given for every row (fitted or not), in the table's unit.
    """
    scale = scale_name(scale)
    frame = read_table(table) if isinstance(table, (str, Path)) else table
    xs, ys = _numeric_column(frame, x), _numeric_column(frame, y)
    percent = bool((xs > 1).any() or (ys > 1).any())
    unit_factor = 100.0 if percent else 1.0
    clean, shifted = xs.to_numpy(float) / unit_factor, ys.to_numpy(float) / unit_factor
    chosen = select_rows(frame, where)
    line = fit_line(clean[chosen], shifted[chosen], scale, noun)
    notes = [f"accuracies read as {'percent' if percent else 'fractions'}",
             f"{int(chosen.sum())} of {len(frame)} rows selected" + (f" by {where!r}" if where else "")]
    if line.n_excluded:
        notes.append(f"{line.n_excluded} selected rows left out: missing, or at 0 or 100 % "
                     f"(infinite on the {scale} scale)")
    if not line.available:
        raise UserError(f"cannot fit {y} on {x}: {line.status}")
    fx, fy = scale_accuracy(clean, scale), scale_accuracy(shifted, scale)
    rows = frame.copy()
    rows["in_fit"] = chosen & np.isfinite(fx) & np.isfinite(fy)
    rows["predicted"] = unit_factor * line.predict(clean)
    rows["effective_robustness"] = unit_factor * effective_robustness(clean, shifted, line)
    return TableFit(line, "percent" if percent else "fraction", x, y, where, rows, notes)


# ---------------------------------------------------------------- fitting a run (with bootstrap)

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


def _targets(records: pd.DataFrame, conditions, models: list[str]) -> tuple[_Target, list[_Target]]:
    """The clean target and every condition and family target, as photo x model matrices."""
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
    targets, families = [], {}
    for name, i in by_key.items():
        if name == "clean":
            continue
        transform, severity = pairs[i]
        family = family_of.get(name, transform)
        targets.append(_Target(name, "condition", transform, family, int(severity), cube_right[i], cube_present[i]))
        families.setdefault(family, []).append(i)
    for family, index in families.items():  # a photo counts for a model only if it has every condition
        complete = (cube_present[index].sum(axis=0) == len(index)).astype(np.float32)
        share = cube_right[index].mean(axis=0) * complete
        targets.append(_Target(f"family:{family}", "family", "", family, np.nan, share, complete))
    return clean, targets


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


def fit_run(records: pd.DataFrame, conditions=None, model_order: Sequence[str] | None = None,
            scale: str = "probit", n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0, ci: float = 0.95) -> RunFit:
    """Fit every condition and family aggregate of a run across its models, with bootstrap intervals."""
    scale = scale_name(scale)
    present = set(records["model"].astype(str).unique())
    models = [m for m in dict.fromkeys([*(model_order or []), *sorted(present)]) if m in present]
    clean, targets = _targets(records, conditions, models)
    columns, m = [clean, *targets], len(models)
    point_all, boot_all = _accuracy_table(columns, n_boot, seed)
    point = {t.key: point_all[i * m:(i + 1) * m] for i, t in enumerate(columns)}
    boot = {t.key: boot_all[:, i * m:(i + 1) * m] for i, t in enumerate(columns)}
    lines, effective, points, replicates = [], [], [], {}
    for t in targets:
        line_row, er_rows, point_rows, reps = _fit_target(t, models, point, boot, scale, ci)
        lines.append(line_row)
        effective.extend(er_rows)
        points.extend(point_rows)
        replicates[t.key] = reps
    lines_frame = pd.DataFrame(lines, columns=FIT_COLUMNS).assign(n_boot=n_boot)
    effective_frame = pd.DataFrame(effective, columns=ER_COLUMNS)
    for frame in (lines_frame, effective_frame):  # families have no severity: a nullable integer column
        frame["severity"] = frame["severity"].astype("Int64")
    return RunFit(scale, lines_frame, effective_frame, pd.DataFrame(points), replicates)


def _fit_target(t: _Target, models: list[str], point: dict, boot: dict, scale: str, ci: float):
    """fit.csv row, effective-robustness rows, plot points and (slope, intercept) replicates of one target."""
    x, y = point["clean"], point[t.key]
    has = np.isfinite(x) & np.isfinite(y)
    line = fit_line(x[has], y[has], scale)
    fx_b, fy_b = scale_accuracy(boot["clean"], scale), scale_accuracy(boot[t.key], scale)
    fx_b[:, ~has], fy_b[:, ~has] = np.nan, np.nan
    slope_b, intercept_b, r2_b, _ = line_stats(fx_b, fy_b)
    if not line.available:
        slope_b[:], intercept_b[:], r2_b[:] = np.nan, np.nan, np.nan
    ident = {"condition": t.key, "kind": t.kind, "transform": t.transform, "family": t.family, "severity": t.severity}
    bounds = {name: _interval(values[:, None], ci) for name, values in
              [("slope", slope_b), ("intercept", intercept_b), ("r2", r2_b)]}
    row = {**ident, "scale": scale, "n": line.n, "n_excluded": line.n_excluded, "status": line.status,
           "slope": line.slope, "intercept": line.intercept, "r2": line.r2}
    for name, (low, high) in bounds.items():
        row[f"{name}_low"], row[f"{name}_high"] = float(low[0]), float(high[0])
    y_low, y_high = _interval(boot[t.key], ci)
    points = [{"condition": t.key, "kind": t.kind, "family": t.family, "model": m, "clean_top1": 100 * x[i],
               "top1": 100 * y[i], "top1_low": 100 * y_low[i], "top1_high": 100 * y_high[i]}
              for i, m in enumerate(models) if has[i]]
    er_rows = []
    if line.available:
        er = 100 * effective_robustness(x, y, line)
        with np.errstate(invalid="ignore", over="ignore"):
            pred_b = unscale_accuracy(slope_b[:, None] * fx_b + intercept_b[:, None], scale)
        er_low, er_high = _interval(100 * (boot[t.key] - pred_b), ci)
        in_fit = np.isfinite(scale_accuracy(x, scale)) & np.isfinite(scale_accuracy(y, scale))
        er_rows = [{**ident, "model": m, "clean_top1": 100 * x[i], "top1": 100 * y[i],
                    "predicted_top1": 100 * float(line.predict(x[i])), "effective_robustness": er[i],
                    "er_low": er_low[i], "er_high": er_high[i], "in_fit": bool(in_fit[i])}
                   for i, m in enumerate(models) if has[i]]
    return row, er_rows, points, np.column_stack([slope_b, intercept_b])
