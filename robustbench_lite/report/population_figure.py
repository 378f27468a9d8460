"""The seed's figure: a published population on clean vs shifted accuracy (Recht et al. 2019, Taori et al. 2020).

`draw_population_figure` draws, from the bundled testbed data only, y = x dashed, every testbed model
(line-fit models in colour, the others grey), the published line and its 95 % bootstrap band, on
logit (or probit) axes labelled in percent. `readable_ticks` picks accuracy ticks that never crowd.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
from scipy import special

from ..analysis import references as references

from ..analysis.fit import scale_accuracy, unscale_accuracy
from .drawing import readable_ticks

NAMES = {
    "val": "ImageNet val",
    "val-on-imagenet-r-classes": "ImageNet val, 200 ImageNet-R classes",
    "val-on-objectnet-classes": "ImageNet val, ObjectNet classes",
    "imagenetv2-matched-frequency": "ImageNetV2 MatchedFrequency",
    "imagenetv2-matched-frequency-format-val": "ImageNetV2 MatchedFrequency (val format)",
    "imagenetv2-threshold0.7": "ImageNetV2 Threshold0.7",
    "imagenetv2-topimages": "ImageNetV2 TopImages",
    "imagenet-sketch": "ImageNet-Sketch",
    "imagenet-r": "ImageNet-R",
    "objectnet-1.0-beta": "ObjectNet 1.0 beta",
    "greyscale": "greyscale ImageNet val",
}
FIT_COLOUR, OTHER_COLOUR, LINE_COLOUR = "#1f77b4", "#b0b0b0", "#d62728"


def setting_name(column: str) -> str:
    """A testbed column as a figure label: `imagenet-c.fog.3_on-disk` -> `ImageNet-C fog, severity 3 (on disk)`."""
    if column.startswith("imagenet-c."):
        _, rest = column.split(".", 1)
        name, tail = rest.rsplit(".", 1)
        severity, store = tail.split("_", 1)
        return f"ImageNet-C {name}, severity {severity} ({store.replace('-', ' ')})"
    return NAMES.get(column, column)


def _percent(value: float, _pos=None) -> str:
    return f"{100 * value:g}"


def _axis_limits(values: np.ndarray, scale: str, pad: float = 0.04) -> tuple[float, float]:
    lo, hi = scale_accuracy(np.nanmin(values), scale), scale_accuracy(np.nanmax(values), scale)
    margin = pad * (hi - lo)
    return float(unscale_accuracy(lo - margin, scale)), float(unscale_accuracy(hi + margin, scale))


def _set_axis(axis, scale: str, low: float, high: float) -> list[float]:
    ticks = readable_ticks(low, high, scale)
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(_percent))
    axis.set_minor_locator(NullLocator())
    return ticks


def _fit_rule(population: str, column: str) -> str:
    """How a population's line-fit rows are chosen, for the legend."""
    if population == references.POPULATION:
        return f"STANDARD, clean \u2265 {references.line_fit_threshold(column):g} %"
    return "every row with both values" if population == "timm" else "in1k tags, no other training data"


def _credit(population: str) -> str:
    if population == references.POPULATION:
        return "data: imagenet-testbed (Taori et al. 2020)"
    meta = references.population_meta(population)
    return f"data: timm results ({meta['source_commit'][:7]}; {population})"


def draw_population_figure(shift: str, out: Path, scale: str = "logit", protocol: str = "native",
                           min_clean: float | None = 0.1, population: str = "testbed") -> dict:
    """Draw a published population (the testbed's by default; timm or timm-in1k) for one mapped condition
    (e.g. `imagenetv2-matched-frequency`) to `out`.

    Models below `min_clean` clean accuracy (fraction; None = none) are left off the axes, and counted
    in a note; the line is always the published one. Returns the numbers drawn: condition, column,
    clean_column, n, slope, intercept, scale, n_points (drawn), n_hidden, xticks and yticks (fractions).
    """
    line = references.reference_line(shift, scale, protocol, population)
    everyone = references.population_points(shift, protocol, population)
    noun = "models" if population == references.POPULATION else "rows"
    points = everyone if min_clean is None else everyone[everyone["clean"] >= min_clean]
    fit, other = points[points["in_fit"]], points[~points["in_fit"]]
    x_low, x_high = _axis_limits(points["clean"].to_numpy(), scale)
    y_low, y_high = _axis_limits(points["shifted"].to_numpy(), scale)
    low, high = min(x_low, y_low), max(x_high, y_high)

    fig = Figure(figsize=(5.6, 5.2), dpi=150, layout="constrained")
    ax = fig.add_subplot()
    if scale == "logit":
        ax.set_xscale("logit")
        ax.set_yscale("logit")
    else:
        ax.set_xscale("function", functions=(special.ndtri, special.ndtr))
        ax.set_yscale("function", functions=(special.ndtri, special.ndtr))
    grid = special.expit(np.linspace(special.logit(low), special.logit(high), 300)) if scale == "logit" \
        else special.ndtr(np.linspace(special.ndtri(low), special.ndtri(high), 300))
    band_low, band_high = references.bootstrap_band(line, grid)
    ax.plot([low, high], [low, high], ls="--", lw=1.2, color="black", label="y = x", zorder=1)
    ax.fill_between(grid, band_low, band_high, color=LINE_COLOUR, alpha=0.25, lw=0,
                    label="95 % bootstrap band", zorder=2)
    ax.plot(grid, references.predict(line, grid), color=LINE_COLOUR, lw=1.6, zorder=3,
            label=f"linear fit ({scale}): slope {line.slope:.3f}, intercept {line.intercept:.3f}")
    ax.scatter(other["clean"], other["shifted"], s=10, color=OTHER_COLOUR, alpha=0.8, lw=0, zorder=4,
               label=f"other {population} {noun} (n = {len(other)})")
    ax.scatter(fit["clean"], fit["shifted"], s=16, color=FIT_COLOUR, edgecolor="white", lw=0.4, zorder=5,
               label=f"line-fit {noun}: {_fit_rule(population, line.column)} (n = {line.n})")
    ax.set_xlim(x_low, x_high)
    ax.set_ylim(y_low, y_high)
    xticks = _set_axis(ax.xaxis, scale, x_low, x_high)
    yticks = _set_axis(ax.yaxis, scale, y_low, y_high)
    ax.set_xlabel(f"{setting_name(line.clean_column)} top-1 (%)")
    ax.set_ylabel(f"{setting_name(line.column)} top-1 (%)")
    ax.set_title(f"{setting_name(line.column)}: {len(points)} {population} {noun}", fontsize=10)
    ax.grid(True, color="#e6e6e6", lw=0.6, zorder=0)
    ax.set_axisbelow(True)
    ax.legend(loc="best", fontsize=7, frameon=True, framealpha=0.9)
    hidden = len(everyone) - len(points)
    note = line.note if line.indicative else f"{scale} axes"
    if hidden:
        note += f"; {hidden} {noun} below {100 * min_clean:g} % clean not shown"
    ax.text(0.98, 0.02, f"{_credit(population)}\n{note}", transform=ax.transAxes,
            ha="right", va="bottom", fontsize=6.5, color="#555555")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return {"condition": line.condition, "column": line.column, "clean_column": line.clean_column, "n": line.n,
            "slope": line.slope, "intercept": line.intercept, "scale": scale, "n_points": int(len(points)), "n_hidden": int(hidden), "population": population,
            "xticks": xticks, "yticks": yticks, "out": str(out)}
