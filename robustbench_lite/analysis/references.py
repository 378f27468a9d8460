"""Published reference populations: the imagenet-testbed's models and the line a new model is placed on.

The bundled data (`reference_data/`, built by `tools/build_references.py`) holds the testbed's
top-1 accuracies (Taori et al. 2020; Miller et al. 2021) for 338 models x 213 settings. Each of
our conditions with a published counterpart maps to one testbed column; its line is the testbed's:
OLS of scale(shifted) on scale(clean), accuracies as fractions, over the line-fit models
(`line_fit_mask`). Accuracies here are fractions in [0, 1] unless a name says percent.

The mapping table (`mapping_table(protocol)` lists it row by row; x axis `val` unless noted):

| condition | protocol `native` | protocol `imagenet-c` |
|---|---|---|
| `greyscale@5` | `greyscale` | `greyscale` |
| `NAME@S`, NAME in CORRUPTIONS + EXTRA_CORRUPTIONS, S = 1..5 | `imagenet-c.NAME.S_in-memory` | `imagenet-c.NAME.S_on-disk` |
| `glass_blur@S` | `imagenet-c.glass_blur.S_on-disk`, indicative | `imagenet-c.glass_blur.S_on-disk` |
| a NATURAL_SHIFTS dataset, e.g. `imagenet-r` | its column (`imagenet-r`, x axis `val-on-imagenet-r-classes`) | same |

`imagenet-a` is left unmapped (two published lines, `imagenet_a_lines`); other greyscale levels and
our other transforms have no published counterpart.

A population is a source of rows with a line-fit rule (`POPULATIONS`): the testbed, or timm's published
results (`populations.py`); every function taking `population` defaults to the testbed.
"""
from __future__ import annotations

import gzip
import io
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd
from scipy import special  # not scipy.stats: a second to import, for one least-squares line

from ..conditions.keys import counterpart_of, is_counterpart  # noqa: F401  (one mapping, in conditions)
from ..errors import UserError
from .populations import TIMM_POPULATIONS, Population, timm_meta

POPULATION = "testbed"  # the default population
PROTOCOLS = ("native", "imagenet-c")
SCALES = ("logit", "probit")
LIST_HINT = "see `robustbench-lite reference --list`"

# The 15 ImageNet-C corruptions (our registry's names = the testbed's) and the four extras.
CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
               "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
               "jpeg_compression")
EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
SEVERITIES = (1, 2, 3, 4, 5)
# Corruptions the testbed never ran in memory: native runs borrow the on-disk (JPEG) line, indicative.
NO_IN_MEMORY = ("glass_blur",)

# Natural-shift datasets, keyed by dataset name: (clean column = x axis, shifted column = y axis).
NATURAL_SHIFTS = {
    "imagenetv2-matched-frequency": ("val", "imagenetv2-matched-frequency"),
    "imagenetv2-matched-frequency-format-val": ("val", "imagenetv2-matched-frequency-format-val"),
    "imagenetv2-threshold0.7": ("val", "imagenetv2-threshold0.7"),
    "imagenetv2-topimages": ("val", "imagenetv2-topimages"),
    "imagenet-sketch": ("val", "imagenet-sketch"),
    "imagenet-r": ("val-on-imagenet-r-classes", "imagenet-r"),
    "objectnet": ("val-on-objectnet-classes", "objectnet-1.0-beta"),
}
# Known but deliberately unmapped: no single published line exists.
UNMAPPED_WHY = {
    "imagenet-a": "ImageNet-A is not linear in the testbed population (two published lines, split at "
                  "91.86 % clean)",
}

# The testbed's line-fit rule (its paper scripts): STANDARD models, clean >= 55 % (75 % on ImageNet-R
# and ImageNet-A, on the x-axis column), none of these substrings in the model name.
LINE_FIT_TYPE = "STANDARD"
LINE_FIT_MIN_CLEAN = 55.0
LINE_FIT_MIN_CLEAN_BY_COLUMN = {"imagenet-r": 75.0, "imagenet-a": 75.0}
LINE_FIT_EXCLUDED_NAMES = ("aws", "batch64", "subsample")
IMAGENET_A_SPLIT = 91.86  # percent: resnet50 on val restricted to the 200 A classes (left out of both fits)

# A run's natural-shift datasets: the transform its records carry -> the testbed's condition name (the
# download is `imagenetv2-top-images`, the testbed column `imagenetv2-topimages`). ObjectNet is measured only
# from a local copy (`--shifts objectnet=DIR`); a run without it shows its line as a reference only.
RUN_SHIFTS = {**{name: name for name in NATURAL_SHIFTS},
              "imagenetv2-top-images": "imagenetv2-topimages", "imagenet-a": "imagenet-a"}
REFERENCE_ONLY_SHIFTS = ("objectnet",)


def testbed_shift(transform: str) -> str | None:
    """The testbed's condition name of a run's natural-shift transform, or None for any other transform."""
    return RUN_SHIFTS.get(transform)


def is_natural_shift(transform: str) -> bool:
    """Whether a transform (as records name it) is a natural-shift dataset."""
    return transform in RUN_SHIFTS


def counterpart(transform: str) -> str:
    """The clean condition a shift's accuracy is compared with (x axis, drop): `clean` unless noted."""
    return counterpart_of(RUN_SHIFTS.get(transform, transform))


@dataclass(frozen=True)
class Mapping:
    """One row of the mapping table: our condition -> a published testbed setting."""

    condition: str
    column: str
    clean_column: str
    indicative: bool
    note: str


@dataclass(frozen=True)
class ReferenceLine:
    """The published line for one condition: scale(shifted) = slope * scale(clean) + intercept."""

    condition: str
    population: str
    column: str
    n: int
    slope: float
    intercept: float
    scale: str
    indicative: bool
    clean_column: str = "val"
    note: str = ""

    def as_json(self) -> dict:
        """The CLI's object: condition, population, column, n, slope, intercept, scale."""
        keys = ("condition", "population", "column", "n", "slope", "intercept", "scale")
        return {k: v for k, v in asdict(self).items() if k in keys}


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise UserError(f"corruption protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")


def _population_of(name: str) -> Population:
    if name not in POPULATIONS:
        raise UserError(f"population {name!r}: expected one of {', '.join(POPULATIONS)}")
    return POPULATIONS[name]


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise UserError(f"scale {scale!r}: the published lines are fitted on {' or '.join(SCALES)} axes")


@lru_cache(maxsize=None)
def _table(protocol: str) -> dict[str, Mapping]:
    rows = [Mapping("greyscale@5", "greyscale", "val", False,
                    "BT.601 luma on the preprocessed [0, 1] tensor, as the testbed's greyscale")]
    store = "in-memory" if protocol == "native" else "on-disk"
    for name in CORRUPTIONS + EXTRA_CORRUPTIONS:
        borrowed = store == "in-memory" and name in NO_IN_MEMORY
        note = ("no in-memory column in the testbed: the on-disk (JPEG) line, indicative" if borrowed
                else f"ImageNet-C {'corrupted in memory from val' if store == 'in-memory' else 'released JPEGs'}")
        for s in SEVERITIES:
            column = f"imagenet-c.{name}.{s}_{'on-disk' if borrowed else store}"
            rows.append(Mapping(f"{name}@{s}", column, "val", borrowed, note))
    for dataset, (clean, column) in NATURAL_SHIFTS.items():
        rows.append(Mapping(dataset, column, clean, False, f"natural shift, x axis = testbed {clean!r}"))
    return {row.condition: row for row in rows}


def _mappings(protocol: str, population: str) -> dict[str, Mapping]:
    _check_protocol(protocol)
    shifts = _population_of(population).shifts
    if shifts is None:
        return _table(protocol)
    return {name: Mapping(name, column, clean, False, f"natural shift, x axis = {population} {clean!r}")
            for name, (clean, column) in shifts.items()}


def mapping_table(protocol: str = "native", population: str = POPULATION) -> pd.DataFrame:
    """The condition -> published setting table: condition, column, clean_column, indicative, note."""
    return pd.DataFrame([asdict(row) for row in _mappings(protocol, population).values()])


def mapped_conditions(protocol: str = "native", population: str = POPULATION) -> list[str]:
    """Every condition with a published counterpart under this corruption protocol, in table order."""
    return list(_mappings(protocol, population))


def is_mapped(condition: str, protocol: str = "native", population: str = POPULATION) -> bool:
    """Whether the condition has a published line under this protocol (no error either way)."""
    return condition in _mappings(protocol, population)


def mapping(condition: str, protocol: str = "native", population: str = POPULATION) -> Mapping:
    """The table row for one condition; a one-line UserError when it has no published counterpart."""
    row = _mappings(protocol, population).get(condition)
    if row is None:
        if population != POPULATION:
            raise UserError(f"condition {condition!r}: the {population} population has no line for it (it maps "
                            f"{', '.join(_mappings(protocol, population))}); use --population testbed or "
                            f"`robustbench-lite reference --list --population {population}`")
        why = UNMAPPED_WHY.get(condition, "no published counterpart in the testbed")
        raise UserError(f"condition {condition!r}: {why}; {LIST_HINT}")
    return row


def shift_population(name: str, population: str = POPULATION) -> str:
    """The population whose line a natural shift (testbed name) is read on: the chosen one where it maps the
    shift, else the testbed (timm publishes no ImageNetV2 threshold0.7 or top-images, no corruption)."""
    return population if is_mapped(name, population=population) else POPULATION


def population_table(population: str = POPULATION) -> pd.DataFrame:
    """A bundled population's rows (a copy): model, model_type and every setting's top-1 in percent (NaN = not run)."""
    return _population_of(population).rows().copy()


@lru_cache(maxsize=1)
def _population() -> pd.DataFrame:
    raw = (resources.files("robustbench_lite") / "reference_data" / "testbed_top1.csv.gz").read_bytes()
    text = pd.read_csv(io.BytesIO(gzip.decompress(raw)), dtype=str, keep_default_na=False)
    settings = text.columns[2:]
    # Python's float() on the published text: exact, whatever pandas' own float parser does
    values = text[settings].replace("", np.nan).astype(float)
    return pd.concat([text[["model", "model_type"]], values], axis=1)


def population_meta(population: str = POPULATION) -> dict:
    """Source repository, commit, licence and citation of a bundled population."""
    if population != POPULATION:
        return dict(timm_meta(), population=_population_of(population).name)
    return json.loads((resources.files("robustbench_lite") / "reference_data" / "testbed.json").read_text("utf-8"))


def line_fit_threshold(column: str) -> float:
    """The clean accuracy (percent, on the x-axis column) a model needs to enter the fit for `column`."""
    return LINE_FIT_MIN_CLEAN_BY_COLUMN.get(column, LINE_FIT_MIN_CLEAN)


def line_fit_mask(frame: pd.DataFrame, clean_column: str, column: str) -> pd.Series:
    """The testbed's rule: STANDARD, clean >= threshold, no excluded substring, both values present."""
    names = frame["model"]
    excluded = np.logical_or.reduce([names.str.contains(s, regex=False) for s in LINE_FIT_EXCLUDED_NAMES])
    both = frame[clean_column].notna() & frame[column].notna()
    return (frame["model_type"].eq(LINE_FIT_TYPE) & (frame[clean_column] >= line_fit_threshold(column))
            & ~excluded & both)


def _forward(scale: str):
    _check_scale(scale)
    return special.logit if scale == "logit" else special.ndtri


def _inverse(scale: str):
    _check_scale(scale)
    return special.expit if scale == "logit" else special.ndtr


@lru_cache(maxsize=None)  # read-only: callers get copies (population_points) or new frames (query, assign)
def _points(clean_column: str, column: str, population: str = POPULATION) -> pd.DataFrame:
    source = _population_of(population)
    frame = source.rows()
    both = frame[clean_column].notna() & frame[column].notna()
    out = pd.DataFrame({
        "model": frame["model"], "clean": frame[clean_column] / 100, "shifted": frame[column] / 100,
        "model_type": frame["model_type"], "in_fit": source.line_fit(frame, clean_column, column) & both})
    return out[both].reset_index(drop=True)


def population_points(condition: str, protocol: str = "native", population: str = POPULATION) -> pd.DataFrame:
    """Every row of a population evaluated on the condition's setting: model, clean, shifted, model_type, in_fit.

    `clean` and `shifted` are fractions; `in_fit` marks the rows the published line is fitted on.
    """
    row = mapping(condition, protocol, population)
    return _points(row.clean_column, row.column, population).copy()


def _fit(x: np.ndarray, y: np.ndarray, scale: str) -> tuple[float, float]:
    fx, fy = _forward(scale)(x), _forward(scale)(y)
    dx = fx - fx.mean()
    slope = float((dx * (fy - fy.mean())).sum() / (dx * dx).sum())  # ordinary least squares, as scipy's linregress
    return slope, float(fy.mean() - slope * fx.mean())


@lru_cache(maxsize=None)
def reference_line(condition: str, scale: str = "logit", protocol: str = "native",
                   population: str = POPULATION) -> ReferenceLine:
    """The published line of a condition (`greyscale@5`, `fog@3`, `imagenet-sketch`, ...) in a population."""
    _check_scale(scale)
    row = mapping(condition, protocol, population)
    fit = _points(row.clean_column, row.column, population).query("in_fit")
    slope, intercept = _fit(fit["clean"].to_numpy(), fit["shifted"].to_numpy(), scale)
    return ReferenceLine(condition, population, row.column, int(len(fit)), slope, intercept, scale,
                         row.indicative, row.clean_column, row.note)


def predict(line: ReferenceLine, clean):
    """The line's shifted accuracy (fraction) at clean accuracy `clean` (fraction; scalar or array)."""
    z = line.slope * _forward(line.scale)(np.asarray(clean, dtype=float)) + line.intercept
    out = _inverse(line.scale)(z)
    return float(out) if np.ndim(out) == 0 else out


def effective_robustness(line: ReferenceLine, clean, shifted):
    """Shifted accuracy minus the line's prediction at the same clean accuracy (fractions)."""
    out = np.asarray(shifted, dtype=float) - np.asarray(predict(line, clean), dtype=float)
    return float(out) if np.ndim(out) == 0 else out


def fit_points(line: ReferenceLine) -> pd.DataFrame:
    """The line-fit models behind a line: model, clean, shifted (fractions)."""
    return _points(line.clean_column, line.column, line.population).query("in_fit")[["model", "clean", "shifted"]]


def bootstrap_band(line: ReferenceLine, clean, level: float = 0.95, n_boot: int = 2000,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise `level` band (low, high fractions) of the line at `clean`, resampling its line-fit models."""
    pts = fit_points(line)
    f = _forward(line.scale)
    x, y = f(pts["clean"].to_numpy()), f(pts["shifted"].to_numpy())
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    bx, by = x[idx], y[idx]
    mx, my = bx.mean(axis=1, keepdims=True), by.mean(axis=1, keepdims=True)
    sxx = ((bx - mx) ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(sxx > 0, ((bx - mx) * (by - my)).sum(axis=1) / sxx, np.nan)
    intercept = my[:, 0] - slope * mx[:, 0]
    at = f(np.atleast_1d(np.asarray(clean, dtype=float)))
    z = slope[:, None] * at[None, :] + intercept[:, None]
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(z, [tail, 100 - tail], axis=0)
    inv = _inverse(line.scale)
    return inv(low), inv(high)


def imagenet_a_lines(scale: str = "logit") -> tuple[ReferenceLine, ReferenceLine]:
    """The testbed's two ImageNet-A lines (clean below / at or above 91.86 % on the A classes).

    As its `paper_imagenet_a.py`: line-fit models at clean >= 75 %, resnet50 (the split) left out.
    """
    clean, column = "val-on-imagenet-a-classes", "imagenet-a"
    pts = imagenet_a_points().query("in_fit")
    lines = []
    for part, side in (("below", pts["clean"] < IMAGENET_A_SPLIT / 100),
                       ("above", pts["clean"] >= IMAGENET_A_SPLIT / 100)):
        slope, intercept = _fit(pts.loc[side, "clean"].to_numpy(), pts.loc[side, "shifted"].to_numpy(), scale)
        lines.append(ReferenceLine(f"imagenet-a ({part} {IMAGENET_A_SPLIT} %)", POPULATION, column,
                                   int(side.sum()), slope, intercept, scale, True, clean,
                                   UNMAPPED_WHY["imagenet-a"]))
    return lines[0], lines[1]


def imagenet_a_points() -> pd.DataFrame:
    """The testbed's ImageNet-A population (as `population_points`); `in_fit` as its two lines (resnet50 out)."""
    pts = _points("val-on-imagenet-a-classes", "imagenet-a")
    return pts.assign(in_fit=pts["in_fit"] & pts["model"].ne("resnet50"))


def run_placement(dataset: dict, config: dict) -> tuple[str, str]:
    """Whether a run's clean accuracy sits on the published lines' x axis: (`val` or `indicative`, why).

    The testbed's x axis is top-1 on the full ImageNet val. A run is placed (`val`) when its data has
    val's structure (all 1,000 classes, 50 photos each) and it evaluated all of it or a class-balanced
    `--limit` subset (no `--classes`); any other photos measure a different clean accuracy, so the
    placement is indicative (a steep line turns a few points of clean accuracy into tens of points).
    """
    if dataset.get("val_structure") and not config.get("classes"):
        return "val", "the run's photos are ImageNet val (or a class-balanced subset of it)"
    n, k = dataset.get("n_samples", "?"), dataset.get("n_classes", "?")
    return "indicative", (f"the run's {n} photos of {k} classes are not ImageNet val or a class-balanced subset of "
                          "it, so its clean accuracy is not the published lines' x axis (full-val top-1)")


POPULATIONS: dict[str, Population] = {
    POPULATION: Population(POPULATION, "the imagenet-testbed (Taori et al. 2020; 338 models); lines over its "
                           "STANDARD models with clean top-1 >= 55 % (75 % for ImageNet-R)", _population, line_fit_mask),
    **TIMM_POPULATIONS}


ALEXNET_CLEAN_ERROR = 0.4348  # AlexNet on the testbed's val (56.52 % top-1), the relative mCE's clean term


@lru_cache(maxsize=1)
def alexnet_errors() -> pd.DataFrame:
    """AlexNet's published ImageNet-C top-1 errors (fractions): index corruption, columns severity_1..5, average."""
    raw = (resources.files("robustbench_lite") / "reference_data" / "alexnet_imagenet_c_errors.csv").read_text("utf-8")
    return pd.read_csv(io.StringIO(raw)).set_index("corruption")


def alexnet_top1() -> pd.DataFrame:
    """AlexNet as a CE baseline: transform, severity, top1 (percent) per ImageNet-C condition, plus clean."""
    table = alexnet_errors()
    rows = [{"transform": name, "severity": s, "top1": 100 * (1 - float(table.loc[name, f"severity_{s}"]))}
            for name in table.index for s in SEVERITIES]
    rows.append({"transform": "clean", "severity": 0, "top1": 100 * (1 - ALEXNET_CLEAN_ERROR)})
    return pd.DataFrame(rows)
