"""The report: every table recomputed from records, the plots, one self-contained HTML file and Markdown.

`write_report([run_dir, ...], out_dir)` can be rerun at any time without running a model again;
several run folders on the same photos and conditions (models evaluated on different days) merge.
"""
from __future__ import annotations

import base64
import html
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from . import metrics
from .errors import UserError
from .manifest import read_manifest
from .fit import DEFAULT_BOOTSTRAP, RunFit, TableFit, fit_run, fit_table, transform_accuracy

RECORD_COLUMNS = ["model", "transform", "severity", "image_id", "top5", "confidence", "label_prob",
                  "correct1", "correct5"]
MAX_CONDITION_PANELS = 12  # above this, the reproducibility plot shows one panel per family
MAX_TRANSFORM_PANELS = 16  # above this, accuracy-vs-severity shows one panel per family
DPI = 100


# ---------------------------------------------------------------- loading and merging runs

@dataclass
class RunData:
    """One or several run folders merged: their records, conditions, models and manifests."""

    run_dirs: list[Path]
    records: pd.DataFrame
    manifests: list[dict]
    conditions: list[dict]
    models: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def manifest(self) -> dict:
        return self.manifests[0]

    def config(self, key: str, default=None):
        return self.manifest.get("config", {}).get(key, default)


def read_run_records(run_dir: Path) -> pd.DataFrame:
    """The columns of records.parquet the analysis needs, with `top1` = top5[0]."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = Path(run_dir) / "records.parquet"
    if not path.is_file():
        raise UserError(f"{run_dir}: no records.parquet (the run has not finished merging its chunks)")
    table = pq.read_table(path, columns=RECORD_COLUMNS)
    table = table.append_column("top1", pc.list_element(table["top5"], 0)).drop_columns(["top5"])
    frame = table.to_pandas()
    for column in ("model", "transform", "image_id"):
        frame[column] = frame[column].astype(str)
    frame["severity"] = frame["severity"].astype(int)
    return frame


def _condition_set(manifest: dict) -> dict[str, float]:
    return {metrics.condition_key(c["transform"], c["severity"]): c.get("level")
            for c in manifest.get("conditions", [])}


def _check_same_setup(first: tuple[Path, dict], other: tuple[Path, dict]) -> None:
    """Refuse to merge runs whose photos, conditions or seeds differ, naming the difference."""
    (dir_a, a), (dir_b, b) = first, other
    fa, fb = a.get("dataset", {}).get("fingerprint"), b.get("dataset", {}).get("fingerprint")
    if fa != fb:
        raise UserError(f"cannot merge {dir_a} and {dir_b}: different photos (dataset fingerprint {fa} vs {fb})")
    ca, cb = _condition_set(a), _condition_set(b)
    if ca != cb:
        only_a, only_b = sorted(set(ca) - set(cb)), sorted(set(cb) - set(ca))
        levels = sorted(k for k in set(ca) & set(cb) if ca[k] != cb[k])
        parts = ([f"only in {dir_a}: {', '.join(only_a)}"] if only_a else []) + \
                ([f"only in {dir_b}: {', '.join(only_b)}"] if only_b else []) + \
                ([f"levels differ for {', '.join(levels)}"] if levels else [])
        raise UserError(f"cannot merge {dir_a} and {dir_b}: different conditions ({'; '.join(parts)})")
    for key in ("seed", "restrict_logits"):
        va, vb = a.get("config", {}).get(key), b.get("config", {}).get(key)
        if va != vb:
            raise UserError(f"cannot merge {dir_a} and {dir_b}: different {key} ({va!r} vs {vb!r})")


def load_runs(run_dirs: Sequence[Path | str]) -> RunData:
    """Read and merge run folders (same dataset fingerprint, conditions and seed, else a UserError).

    A model found in several folders is taken from the first one that has it.
    """
    dirs = [Path(d) for d in run_dirs]
    if not dirs:
        raise UserError("no run folder given")
    manifests = [read_manifest(d) for d in dirs]
    for d, m in zip(dirs[1:], manifests[1:]):
        _check_same_setup((dirs[0], manifests[0]), (d, m))
    frames, models, notes = [], [], []
    for d, m in zip(dirs, manifests):
        records = read_run_records(d)
        present = list(dict.fromkeys(list(m.get("models", {})) + list(records["model"].unique())))
        repeated = [name for name in present if name in models]
        if repeated:
            notes.append(f"{', '.join(repeated)} also in {d}: kept the earlier run's records")
            records = records.loc[~records["model"].isin(repeated)]
        models += [name for name in present if name not in models and (records["model"] == name).any()]
        frames.append(records)
    records = pd.concat(frames, ignore_index=True)
    if records.empty:
        raise UserError(f"{', '.join(map(str, dirs))}: the records are empty")
    return RunData(dirs, records, manifests, manifests[0].get("conditions", []), models, notes)


# ---------------------------------------------------------------- the analysis

@dataclass
class Analysis:
    """Every table of a report, computed from records."""

    data: RunData
    baseline: str | None
    summary: pd.DataFrame
    family: pd.DataFrame
    pairwise: pd.DataFrame
    ranking: pd.DataFrame
    fit: RunFit
    reference: TableFit | None
    seconds: dict[str, float] = field(default_factory=dict)


def analyse(data: RunData, baseline: str | None = None, scale: str = "probit", n_boot: int = DEFAULT_BOOTSTRAP,
            seed: int | None = None, reference: TableFit | None = None) -> Analysis:
    """Summary, family summary, McNemar pairs, ranking and the reproducibility fits of merged runs.

    The CE baseline is `baseline`, else the run's configured one, else its first model.
    """
    baseline = baseline or data.config("baseline") or data.models[0]
    if baseline not in data.models:
        raise UserError(f"baseline model {baseline!r} is not in the run; models: {', '.join(data.models)}")
    clock, seconds = time.perf_counter(), {}
    summary = metrics.summarize(data.records, data.conditions, baseline, data.models)
    family = metrics.family_summary(summary, baseline)
    ranking = metrics.model_ranking(summary, baseline)
    seconds["metrics"] = time.perf_counter() - clock
    clock = time.perf_counter()
    pairwise = metrics.pairwise_mcnemar(data.records, data.models, data.conditions)
    seconds["pairwise"] = time.perf_counter() - clock
    clock = time.perf_counter()
    seed = int(data.config("seed", 0) or 0) if seed is None else seed
    run_fit = fit_run(data.records, data.conditions, data.models, scale, n_boot, seed)
    seconds["fit"] = time.perf_counter() - clock
    er = run_fit.effective.groupby("model")["effective_robustness"].mean().rename("mean_effective_robustness")
    ranking = ranking.join(er, on="model")
    return Analysis(data, baseline, summary, family, pairwise, ranking, run_fit, reference, seconds)


def write_report(run_dirs: Sequence[Path | str], out_dir: Path | str, reference_csv: Path | str | None = None,
                 *, baseline: str | None = None, scale: str = "probit", n_boot: int = DEFAULT_BOOTSTRAP,
                 seed: int | None = None, reference_x: str = "clean_top1", reference_y: str = "shifted_top1",
                 reference_where: str | None = None) -> dict[str, Path]:
    """Recompute every table from the runs' records and write CSVs, plots, report.html and report.md.

    Returns {name: path} of everything written.
    """
    out_dir = Path(out_dir)
    data = load_runs(run_dirs)
    reference = None
    if reference_csv is not None:
        reference = fit_table(reference_csv, reference_x, reference_y, scale, reference_where)
    result = analyse(data, baseline, scale, n_boot, seed, reference)
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    written = _write_tables(result, out_dir)
    clock = time.perf_counter()
    plots = make_plots(result, out_dir / "plots")
    result.seconds["plots"] = time.perf_counter() - clock
    written.update({f"plot:{name}": path for name, path in plots.items()})
    sections = report_sections(result, plots, out_dir)
    written["html"] = out_dir / "report.html"
    written["html"].write_text(render_html(sections, plots), encoding="utf-8")
    written["markdown"] = out_dir / "report.md"
    written["markdown"].write_text(render_markdown(sections, plots, out_dir), encoding="utf-8")
    return written


def _write_tables(result: Analysis, out_dir: Path) -> dict[str, Path]:
    tables = {
        "summary": result.summary, "family_summary": result.family, "pairwise": result.pairwise,
        "fit": result.fit.lines, "effective_robustness": result.fit.effective,
    }
    written = {}
    for name, frame in tables.items():
        written[name] = out_dir / f"{name}.csv"
        frame.to_csv(written[name], index=False)
    return written


# ---------------------------------------------------------------- plots

def _plain(text) -> str:
    """A user string safe for matplotlib: `$` would start mathtext."""
    return str(text).replace("$", r"\$")


def _model_colours(models: Sequence[str]) -> dict[str, tuple]:
    import seaborn as sns

    palette = sns.color_palette("tab10" if len(models) <= 10 else "husl", len(models))
    return dict(zip(models, palette))


def make_plots(result: Analysis, plot_dir: Path) -> dict[str, Path]:
    """Draw every plot to plot_dir/*.png (Agg, dpi 100); returns {name: path}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = _model_colours(result.data.models)
    plots: dict[str, Path] = {}
    with plt.rc_context({"font.size": 8, "axes.titlesize": 9, "figure.dpi": DPI, "savefig.dpi": DPI}):
        for name, draw in [("reproducibility", plot_reproducibility), ("severity", plot_severity),
                           ("drop_heatmap", plot_drop_heatmap), ("confidence", plot_confidence)]:
            figure = draw(result, colours)
            if figure is None:
                continue
            plots[name] = plot_dir / f"{name}.png"
            figure.savefig(plots[name], bbox_inches="tight")
            plt.close(figure)
    examples = _find_examples(result.data.run_dirs, plot_dir)
    if examples is not None:
        plots["examples"] = examples
    return plots


def _find_examples(run_dirs: Sequence[Path], plot_dir: Path) -> Path | None:
    """The engine's photo grid (first run folder that has one), copied beside the other plots."""
    target = plot_dir / "examples.png"
    for run_dir in run_dirs:
        source = Path(run_dir) / "plots" / "examples.png"
        if source.is_file():
            if source.resolve() != target.resolve():
                shutil.copyfile(source, target)
            return target
    return None


def _grid(n: int, size: float = 3.2, max_cols: int = 4):
    import matplotlib.pyplot as plt

    cols = max(1, min(max_cols, n))
    rows = int(np.ceil(n / cols))
    figure, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return figure, list(axes.flat[:n])


_PERCENT_TICKS = [0.1, 0.5, 1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 99, 99.5, 99.9]


class _Axis:
    """Accuracy (fraction) <-> plot coordinate on the fit's scale, values kept off 0 and 1."""

    def __init__(self, scale: str, values: np.ndarray):
        self.scale = scale
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        self.eps = 1e-3 if scale != "linear" else 0.0
        z = self(values if len(values) else np.array([0.5]))
        pad = 0.06 * max(z.max() - z.min(), 0.5)
        self.limits = (z.min() - pad, z.max() + pad)

    def __call__(self, p) -> np.ndarray:
        return transform_accuracy(np.clip(np.asarray(p, dtype=float), self.eps, 1 - self.eps), self.scale)

    def ticks(self) -> tuple[list[float], list[str]]:
        chosen = [t for t in _PERCENT_TICKS if self.limits[0] <= self(t / 100) <= self.limits[1]]
        if len(chosen) > 8:
            chosen = chosen[::2]
        return [float(self(t / 100)) for t in chosen], [f"{t:g}%" for t in chosen]

    def style(self, ax) -> None:
        positions, labels = self.ticks()
        ax.set_xlim(self.limits)
        ax.set_ylim(self.limits)
        ax.set_xticks(positions, labels)
        ax.set_yticks(positions, labels)
        ax.set_aspect("equal")
        ax.plot(self.limits, self.limits, ls="--", color="0.6", lw=0.8, zorder=1)
        ax.grid(alpha=0.3, lw=0.5)


def _panel_kind(result: Analysis) -> str:
    n_conditions = int((result.fit.lines["kind"] == "condition").sum())
    return "condition" if n_conditions <= MAX_CONDITION_PANELS else "family"


def plot_reproducibility(result: Analysis, colours: dict):
    """Transformed vs clean top-1 on probit axes per condition (or family): models, fit, band, reference."""
    lines = result.fit.lines.loc[result.fit.lines["kind"] == _panel_kind(result)]
    if lines.empty:
        return None
    points = result.fit.points
    points = points.loc[points["condition"].isin(lines["condition"])]
    bounds = _wilson_bounds(result.summary)
    ref = result.reference
    values = [points[c] / 100 for c in ("clean_top1", "top1", "top1_low", "top1_high")]
    if ref is not None:  # the axes cover the reference's fitted rows, not its whole population
        fitted = ref.rows.loc[ref.rows["in_fit"]]
        values += [fitted[ref.x] / _unit(ref), fitted[ref.y] / _unit(ref)]
    axis = _Axis(result.fit.scale, np.concatenate([np.asarray(v, dtype=float) for v in values]))
    figure, axes = _grid(len(lines))
    for ax, (_, line) in zip(axes, lines.iterrows()):
        axis.style(ax)
        if ref is not None:
            _draw_reference(ax, axis, ref)
        _draw_line(ax, axis, line, result.fit.replicates.get(line["condition"]))
        _draw_models(ax, axis, points.loc[points["condition"] == line["condition"]], bounds, colours)
        title = line["condition"] if line["kind"] == "condition" else f"{line['family']} (family mean)"
        ax.set_title(_plain(title))
        ax.set_xlabel("clean top-1")
        ax.set_ylabel("transformed top-1")
    figure.suptitle(f"Transformed vs clean accuracy ({result.fit.scale} axes; dashed: y = x)", y=1.0)
    figure.tight_layout()
    return figure


def _wilson_bounds(summary: pd.DataFrame) -> pd.DataFrame:
    """top1 Wilson bounds per (condition key, model), clean ones included."""
    keys = [metrics.condition_key(t, s) for t, s in zip(summary["transform"], summary["severity"])]
    return summary.assign(condition=keys).set_index(["condition", "model"])[["top1", "top1_low", "top1_high"]]


def _unit(ref: TableFit) -> float:
    return 100.0 if ref.unit == "percent" else 1.0


def _draw_reference(ax, axis: _Axis, ref: TableFit) -> None:
    ax.scatter(axis(ref.rows[ref.x] / _unit(ref)), axis(ref.rows[ref.y] / _unit(ref)), s=6, color="0.7", zorder=2,
               label="reference", clip_on=True)
    grid = np.linspace(*axis.limits, 50)
    ax.plot(grid, ref.line.slope * grid + ref.line.intercept if axis.scale == ref.line.scale else grid * np.nan,
            color="0.55", lw=1, zorder=2)


def _draw_line(ax, axis: _Axis, line: pd.Series, replicates: np.ndarray | None) -> None:
    if line["status"] != "ok":
        ax.text(0.03, 0.97, _plain(line["status"].replace(": ", ":\n", 1).replace(" (", "\n(")), transform=ax.transAxes,
                va="top", fontsize=7, color="firebrick")
        return
    grid = np.linspace(*axis.limits, 60)
    ax.plot(grid, line["slope"] * grid + line["intercept"], color="black", lw=1.2, zorder=3)
    if replicates is not None and np.isfinite(replicates).all(axis=1).any():
        ok = replicates[np.isfinite(replicates).all(axis=1)]
        band = ok[:, :1] * grid[None, :] + ok[:, 1:2]
        ax.fill_between(grid, *np.percentile(band, [2.5, 97.5], axis=0), color="black", alpha=0.12, lw=0, zorder=2)
    ax.text(0.03, 0.97, f"slope {line['slope']:.2f}, R² {line['r2']:.2f}", transform=ax.transAxes,
            va="top", fontsize=7)


def _draw_models(ax, axis: _Axis, points: pd.DataFrame, bounds: pd.DataFrame, colours: dict) -> None:
    for _, p in points.iterrows():
        clean = bounds.loc[("clean", p["model"])] if ("clean", p["model"]) in bounds.index else None
        own = bounds.loc[(p["condition"], p["model"])] if (p["condition"], p["model"]) in bounds.index else None
        y_low, y_high = (own["top1_low"], own["top1_high"]) if own is not None else (p["top1_low"], p["top1_high"])
        x, y = axis(p["clean_top1"] / 100), axis(p["top1"] / 100)
        xerr = None if clean is None else [[x - axis(clean["top1_low"] / 100)], [axis(clean["top1_high"] / 100) - x]]
        yerr = [[y - axis(y_low / 100)], [axis(y_high / 100) - y]]
        at_edge = axis.scale != "linear" and not (0 < p["clean_top1"] < 100 and 0 < p["top1"] < 100)
        ax.errorbar(x, y, xerr=xerr, yerr=np.nan_to_num(yerr), fmt="o", ms=4, lw=0.8, capsize=1.5,
                    color=colours.get(p["model"]), mfc="white" if at_edge else None, zorder=4)
        right_half = x > sum(axis.limits) / 2
        ax.annotate(_plain(p["model"]), (x, y), xytext=(-4 if right_half else 4, -9), textcoords="offset points",
                    ha="right" if right_half else "left", fontsize=6, color=colours.get(p["model"]), zorder=5,
                    bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.7})


def _transform_order(summary: pd.DataFrame) -> list[tuple[str, str]]:
    """(family, transform) pairs, grouped by family in order of first appearance."""
    shifted = summary.loc[summary["transform"] != "clean", ["family", "transform"]].drop_duplicates()
    families = {f: i for i, f in enumerate(dict.fromkeys(shifted["family"]))}
    return sorted(shifted.itertuples(index=False, name=None), key=lambda pair: families[pair[0]])


def plot_severity(result: Analysis, colours: dict):
    """Top-1 against severity (0 = clean): a panel per transform (per family when there are many)."""
    summary = result.summary
    pairs = _transform_order(summary)
    if not pairs:
        return None
    clean = summary.loc[summary["transform"] == "clean"].set_index("model")["top1"]
    shifted = summary.loc[summary["transform"] != "clean"]
    by_family = len(pairs) > MAX_TRANSFORM_PANELS
    if by_family:
        shifted = shifted.groupby(["model", "family", "severity"], as_index=False)["top1"].mean()
        families = dict.fromkeys(f for f, _ in pairs)
        panels = [(f, shifted["family"] == f, f"{f} (mean of its transforms)") for f in families]
    else:
        panels = [(t, shifted["transform"] == t, f"{f} / {t}") for f, t in pairs]
    figure, axes = _grid(len(panels), size=2.8)
    for ax, (_, mask, title) in zip(axes, panels):
        part = shifted.loc[mask]
        for model in result.data.models:
            rows = part.loc[part["model"] == model].sort_values("severity")
            if rows.empty:
                continue
            xs = np.r_[0, rows["severity"].to_numpy()]
            ys = np.r_[clean.get(model, np.nan), rows["top1"].to_numpy()]
            ax.plot(xs, ys, marker="o", ms=3, lw=1.2, color=colours.get(model), label=_plain(model))
        ax.set_title(_plain(title))
        ax.set_xlabel("severity (0 = clean)")
        ax.set_ylabel("top-1 (%)")
        ax.set_ylim(0, 100)
        ax.set_xticks(range(0, int(part["severity"].max()) + 1 if len(part) else 1))
        ax.grid(alpha=0.3, lw=0.5)
    figure.tight_layout()
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, title="model")
    return figure


def plot_drop_heatmap(result: Analysis, colours: dict):
    """Model x transform heatmap of the top-1 drop (points), averaged over each transform's levels."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    shifted = result.summary.loc[result.summary["transform"] != "clean"]
    if shifted.empty:
        return None
    pairs = _transform_order(result.summary)
    order = [t for _, t in pairs]
    table = shifted.pivot_table(index="model", columns="transform", values="drop", aggfunc="mean")
    table = table.reindex(index=[m for m in result.data.models if m in table.index], columns=order)
    table.index = [_plain(m) for m in table.index]
    table.columns = [_plain(c) for c in table.columns]
    figure, ax = plt.subplots(figsize=(max(4.5, 2.2 + 0.55 * len(order)), 1.4 + 0.4 * len(table)))
    limit = max(5.0, float(np.nanmax(np.abs(table.to_numpy()))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # seaborn's cmap.set_bad on new matplotlib
        sns.heatmap(table, ax=ax, cmap="RdBu_r", center=0, vmin=-limit, vmax=limit, annot=len(order) <= 30,
                    fmt=".1f", annot_kws={"fontsize": 7}, cbar_kws={"label": "drop in top-1 (points)"},
                    linewidths=0.5, linecolor="white")
    _mark_families(ax, [f for f, _ in pairs])
    ax.set_xlabel("transform (mean over levels)")
    ax.set_ylabel("")
    ax.set_title("Top-1 drop from clean", pad=18)
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    plt.setp(ax.get_yticklabels(), rotation=0)
    figure.tight_layout()
    return figure


def _mark_families(ax, families: list[str]) -> None:
    """Family names above the heatmap's columns, white lines between families."""
    start = 0
    for i in range(1, len(families) + 1):
        if i == len(families) or families[i] != families[start]:
            if start:
                ax.axvline(start, color="white", lw=3)
            ax.text((start + i) / 2, -0.15, _plain(families[start]), ha="center", va="bottom", fontsize=7,
                    transform=ax.transData, clip_on=False)
            start = i


def plot_confidence(result: Analysis, colours: dict):
    """Mean confidence against top-1 per (model, condition): above the diagonal = overconfident."""
    import matplotlib.pyplot as plt

    summary = result.summary
    figure, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 100], [0, 100], ls="--", color="0.6", lw=0.8)
    for model in result.data.models:
        rows = summary.loc[summary["model"] == model]
        clean = rows["transform"] == "clean"
        ax.scatter(rows.loc[~clean, "top1"], rows.loc[~clean, "mean_confidence"], s=14, alpha=0.8,
                   color=colours.get(model), label=_plain(model))
        ax.scatter(rows.loc[clean, "top1"], rows.loc[clean, "mean_confidence"], s=70, marker="*",
                   edgecolor="black", linewidth=0.5, color=colours.get(model))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_aspect("equal")
    ax.set_xlabel("top-1 accuracy (%)")
    ax.set_ylabel("mean confidence (%)")
    ax.set_title("Does a model know when it is in trouble?")
    ax.text(3, 96, "overconfident", va="top", fontsize=7, color="0.4")
    ax.text(97, 4, "underconfident", ha="right", fontsize=7, color="0.4")
    ax.grid(alpha=0.3, lw=0.5)
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 0.08), fontsize=7, title="★ = clean", title_fontsize=7)
    figure.tight_layout()
    return figure


# ---------------------------------------------------------------- report content

@dataclass
class Section:
    """A heading, paragraphs (plain text), optional tables and plot names, in reading order."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    plots: list[tuple[str, str]] = field(default_factory=list)  # (plot name, caption)


_FORMATS = {"p_value": "{:.3g}", "statistic": "{:.2f}"}
_THREE_DIGITS = ("slope", "intercept", "r2", "auroc", "nll", "relative_robustness")


def _cell(column: str, value) -> str:
    """A table cell as text: numbers rounded by column, missing values as an en dash."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        fmt = _FORMATS.get(column) or ("{:.3f}" if column.startswith(_THREE_DIGITS) else "{:.1f}")
        text = fmt.format(float(value))
        return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.0"
    return str(value)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with every cell formatted (rendering escapes it later)."""
    return pd.DataFrame({c: [_cell(c, v) for v in frame[c]] for c in frame.columns}, index=frame.index)


def _conditions_table(data: RunData) -> pd.DataFrame:
    table = metrics.condition_table(data.conditions)
    shifted = table.loc[table["transform"] != "clean"]
    rows = [{"transform": t, "family": part["family"].iloc[0],
             "levels": ", ".join(f"{s}: {lv:g}" if isinstance(lv, (int, float)) and not pd.isna(lv) else str(s)
                                 for s, lv in zip(part["severity"], part["level"])),
             "description": part["description"].iloc[0] or ""}
            for t, part in shifted.groupby("transform", sort=False)]
    return pd.DataFrame(rows, columns=["transform", "family", "levels", "description"])


def _failed_table(data: RunData) -> pd.DataFrame:
    rows = [f for m in data.manifests for f in m.get("failed", [])]
    return pd.DataFrame(rows, columns=["model", "transform", "severity", "error"])


def _boot_count(fit: RunFit) -> int:
    return int(fit.lines["n_boot"].max()) if len(fit.lines) else 0


def report_sections(result: Analysis, plots: dict[str, Path], out_dir: Path) -> list[Section]:
    """The report's content, shared by the HTML and Markdown renderers."""
    data, fit = result.data, result.fit
    manifest = data.manifest
    dataset = manifest.get("dataset", {})
    skipped = sum(len(m.get("skipped", [])) for m in data.manifests)
    failed = _failed_table(data)
    statuses = sorted({m.get("status", "unknown") for m in data.manifests})
    n_photos = data.records["image_id"].nunique()
    run = Section("Run", [
        f"Run folder(s): {', '.join(str(d) for d in data.run_dirs)}",
        f"Dataset: {dataset.get('root', '?')} (fingerprint {dataset.get('fingerprint', '?')}); "
        f"{n_photos} photos in the records, {dataset.get('n_samples', '?')} selected.",
        f"Models: {', '.join(data.models)}. Device: {manifest.get('device', '?')}. "
        f"Status: {', '.join(statuses)}. Seed: {data.config('seed', '?')}.",
        f"Skipped files: {skipped}. Failed conditions: {len(failed)}.",
        f"Versions: {', '.join(f'{k} {v}' for k, v in manifest.get('versions', {}).items()) or 'not recorded'}.",
        f"Analysis: {fit.scale} fit, {_boot_count(fit)} bootstrap replicates over photos, CE baseline {result.baseline}.",
        *data.notes,
    ])
    if len(failed):
        run.tables.append(("Failed conditions", failed))
    conditions = Section("Conditions", ["Each transform at each severity level (level values as registered)."],
                         [("", _conditions_table(data))])
    if "examples" in plots:
        conditions.plots.append(("examples", "What the models saw: example photos under each transform."))
    ranking = Section("Ranking", [
        "Models ranked by mean transformed top-1 over all conditions (each condition weighs the same). "
        f"mCE and relative mCE are percent of the baseline model {result.baseline}'s errors (100 = as bad as it); "
        "mean effective robustness is over the conditions whose fit is available."
    ], [("", result.ranking)])
    usable = fit.lines.loc[fit.lines["status"] == "ok"]
    fit_text = [
        f"Linear reproducibility fit: {fit.scale}(transformed top-1) = slope · {fit.scale}(clean top-1) + intercept, "
        f"least squares across models; 95% intervals from {_boot_count(fit)} "
        "bootstrap replicates over photos (the same draw for every model). Effective robustness is a model's "
        "transformed top-1 minus the line's prediction at its clean top-1, in points.",
        f"{len(usable)} of {len(fit.lines)} fits available.",
    ]
    if result.reference is not None:
        ref = result.reference
        fit_text.append(f"Grey: the reference population ({len(ref.rows)} rows, {ref.x} vs {ref.y}) and its own "
                        f"{ref.line.scale} line (slope {ref.line.slope:.3f}, intercept {ref.line.intercept:.3f}, "
                        f"n = {ref.line.n}).")
    reproducibility = Section("Linear reproducibility", fit_text,
                              [("Fits", fit.lines.drop(columns=["scale", "n_boot"]))], [])
    if "reproducibility" in plots:
        reproducibility.plots.append(("reproducibility", "Transformed vs clean top-1 with Wilson 95% error bars, "
                                      "the fitted line and its 95% bootstrap band. Hollow points are at 0 or 100 % "
                                      "(drawn at the axis edge) and left out of the fit."))
    if len(fit.effective):
        reproducibility.tables.append(("Effective robustness (points)", fit.effective.drop(
            columns=["kind", "transform", "family", "severity"])))
    accuracy = Section("Accuracy and calibration", [
        "top1/top5 with 95% Wilson intervals, drop and overconfidence in points; consistency = percent of photos "
        "whose top-1 class is unchanged from clean; ECE (15 equal-width bins), mean confidence in percent; "
        "NLL in nats; AUROC of confidence telling right from wrong answers; CE / relative CE in percent of the baseline's."
    ])
    for name, caption in [("severity", "Top-1 against severity, a line per model."),
                          ("drop_heatmap", "Drop in top-1 from clean, averaged over each transform's levels."),
                          ("confidence", "Mean confidence against accuracy per condition: points above the diagonal "
                                         "are overconfident.")]:
        if name in plots:
            accuracy.plots.append((name, caption))
    accuracy.tables += [("Per family (means over levels)", result.family), ("Per condition", result.summary)]
    significant = int((result.pairwise["p_value"] < 0.05).sum()) if len(result.pairwise) else 0
    pairwise = Section("Paired comparisons", [
        f"McNemar's test between every two models on every condition: {len(result.pairwise)} comparisons, "
        f"{significant} with p < 0.05 (uncorrected), in pairwise.csv. Exact binomial p-value when the discordant "
        "photos b + c < 25, else chi-square with continuity correction.",
    ])
    files = Section("Files", [f"{name}.csv" for name in
                              ("summary", "family_summary", "pairwise", "fit", "effective_robustness")])
    return [run, ranking, reproducibility, accuracy, conditions, pairwise, files]


# ---------------------------------------------------------------- rendering

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}h3{font-size:1em}
table{border-collapse:collapse;font-size:12px;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}
.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4;position:sticky;top:0}
.scroll{max-height:420px;overflow:auto;margin-bottom:1em}figure{margin:1em 0}img{max-width:100%}
figcaption{font-size:12px;color:#555}
"""


def _numeric_columns(frame: pd.DataFrame) -> list[bool]:
    """Which columns hold numbers (right-aligned), not text or yes/no."""
    return [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]) for c in frame.columns]


def _html_table(frame: pd.DataFrame) -> str:
    text = _as_text(frame)
    kinds = [' class="num"' if numeric else "" for numeric in _numeric_columns(frame)]
    head = "".join(f"<th{k}>{html.escape(str(c))}</th>" for k, c in zip(kinds, text.columns))
    body = "\n".join("<tr>" + "".join(f"<td{k}>{html.escape(v)}</td>" for k, v in zip(kinds, row)) + "</tr>"
                     for row in text.itertuples(index=False, name=None))
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table></div>'


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def render_html(sections: list[Section], plots: dict[str, Path]) -> str:
    """One self-contained HTML page: plots embedded as base64 PNGs, every user string escaped."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>robustbench-lite report</title>", f"<style>{_CSS}</style></head><body>",
             "<h1>robustbench-lite report</h1>"]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in section.paragraphs]
        for name, caption in section.plots:
            parts.append(f'<figure><img alt="{html.escape(name)}" src="{_data_uri(plots[name])}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        for caption, frame in section.tables:
            if caption:
                parts.append(f"<h3>{html.escape(caption)}</h3>")
            parts.append(_html_table(frame))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _md_escape(text: str) -> str:
    """Text safe inside a GitHub Markdown table cell or paragraph: HTML escaped, pipes and newlines neutralised."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ").replace("`", "\\`")


def _md_table(frame: pd.DataFrame) -> str:
    text = _as_text(frame)
    lines = ["| " + " | ".join(_md_escape(c) for c in text.columns) + " |",
             "|" + "|".join("---:" if numeric else "---" for numeric in _numeric_columns(frame)) + "|"]
    lines += ["| " + " | ".join(_md_escape(v) for v in row) + " |" for row in text.itertuples(index=False, name=None)]
    return "\n".join(lines)


def render_markdown(sections: list[Section], plots: dict[str, Path], out_dir: Path) -> str:
    """The same content as GitHub Markdown, plots as relative image links."""
    parts = ["# robustbench-lite report", ""]
    for section in sections:
        parts += [f"## {_md_escape(section.title)}", ""]
        for paragraph in section.paragraphs:
            parts += [_md_escape(paragraph), ""]
        for name, caption in section.plots:
            relative = Path(plots[name]).resolve().relative_to(Path(out_dir).resolve()).as_posix()
            parts += [f"![{_md_escape(name)}]({relative})", "", f"*{_md_escape(caption)}*", ""]
        for caption, frame in section.tables:
            if caption:
                parts += [f"### {_md_escape(caption)}", ""]
            parts += [_md_table(frame), ""]
    return "\n".join(parts)
