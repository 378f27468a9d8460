"""The analysis: run folders -> every table (summary, family summary, McNemar pairs, ranking, fits).

Reads records through the store and manifests through the manifest module; knows nothing of how
records were made. Plots and the report are drawn from its `Analysis`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..conditions.keys import condition_key
from ..data.imagenet import read_real_labels
from ..errors import UserError
from ..results.manifest import comparable, read_manifest
from ..results.records import ANALYSIS_COLUMNS, STIMULUS_COLUMNS
from ..results.store import read_records
from .consistency import StimulusTables, is_stimulus_run, stimulus_tables
from .fit import DEFAULT_BOOTSTRAP, LineFit, TableFit
from .humans import benchmark_scores, humans_table
from .metrics import family_summary, model_ranking, real_accuracy, summarize
from .pairwise import pairwise_mcnemar
from .recipes import recipe
from .published_rows import published_rows, write_published, write_table
from .references import is_mapped, is_natural_shift, reference_line, run_placement
from .run_fit import RunFit, fit_run
from .shifts import published_fit, run_shifts, shift_correlation, shift_lines, shift_table
from .stability import run_stability_table
from .trouble import SelectiveTables, selective_tables


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


def _condition_set(manifest: dict) -> dict[str, float]:
    return {condition_key(c["transform"], c["severity"]): c.get("level")
            for c in manifest.get("conditions", [])}


def _check_same_setup(first: tuple[Path, dict], other: tuple[Path, dict]) -> set[str]:
    """Refuse to merge runs whose results are not comparable or whose shared conditions differ in level,
    naming why; returns the condition keys both runs have (the merge keeps those)."""
    (dir_a, a), (dir_b, b) = first, other
    diffs = comparable(a, b, same_store=False)
    if diffs:
        raise UserError(f"cannot merge {dir_a} and {dir_b}: {'; '.join(diffs)}")
    ca, cb = _condition_set(a), _condition_set(b)
    levels = sorted(k for k in set(ca) & set(cb) if ca[k] != cb[k])
    if levels:
        raise UserError(f"cannot merge {dir_a} and {dir_b}: the levels of {', '.join(levels)} differ")
    return set(ca) & set(cb)


def _unfinished(run_dir: Path, manifest: dict) -> UserError:
    """A run interrupted or still running: its records are not all merged yet."""
    argv = manifest.get("argv") or []
    command = " ".join(["robustbench-lite", *argv[1:]]) if argv else "the run's command"
    return UserError(f"{run_dir}: the run is {manifest.get('status')}, its records are incomplete; "
                     f"run its command again to finish it ({command}), then report")


def load_runs(run_dirs: Sequence[Path | str], manifests: Sequence[dict] | None = None) -> RunData:
    """Read and merge run folders (comparable results and the same conditions, else a UserError).

    A model found in several folders is taken from the first one that has it. `manifests` stands
    in for the folders' manifest.json files (a run being finished passes its own, not yet written).
    """
    dirs = [Path(d) for d in run_dirs]
    if not dirs:
        raise UserError("no run folder given")
    repeated_dirs = sorted({str(d) for d in dirs if [e.resolve() for e in dirs].count(d.resolve()) > 1})
    if repeated_dirs:
        raise UserError(f"{', '.join(repeated_dirs)}: given more than once (name each run folder once)")
    given = manifests is not None
    manifests = list(manifests) if given else [read_manifest(d) for d in dirs]
    for d, m in zip(dirs, manifests):
        if not given and m.get("status") in ("running", "interrupted"):
            raise _unfinished(d, m)
    shared = set(_condition_set(manifests[0]))
    for d, m in zip(dirs[1:], manifests[1:]):
        shared &= _check_same_setup((dirs[0], manifests[0]), (d, m))
    frames, models, notes = [], [], []
    left_out = sorted({k for m in manifests for k in _condition_set(m)} - shared)
    if left_out:
        if shared <= {"clean"}:
            raise UserError(f"cannot merge {', '.join(map(str, dirs))}: they share no condition but clean")
        notes.append(f"merged on the {len(shared)} conditions every run has; left out: {', '.join(left_out)}")
    for d, m in zip(dirs, manifests):
        records = read_records(d, ANALYSIS_COLUMNS + STIMULUS_COLUMNS if is_stimulus_run(m) else None)
        if left_out:
            keys = [condition_key(t, s) for t, s in zip(records["transform"], records["severity"])]
            records = records.loc[[k in shared for k in keys]]
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
    conditions = [c for c in manifests[0].get("conditions", []) if condition_key(c["transform"], c["severity"]) in shared]
    return RunData(dirs, records, manifests, conditions, models, notes)


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
    published: pd.DataFrame = field(default_factory=pd.DataFrame)  # references.csv: the lines used
    humans: pd.DataFrame = field(default_factory=pd.DataFrame)  # humans.csv: model-vs-human conditions
    human_scores: pd.DataFrame = field(default_factory=pd.DataFrame)  # their benchmark's OOD accuracy etc.
    placement: tuple[str, str] = ("indicative", "")
    seconds: dict[str, float] = field(default_factory=dict)
    stimuli: StimulusTables | None = None  # mvh: runs: error consistency, shape bias (consistency.py)
    shifts: pd.DataFrame = field(default_factory=pd.DataFrame)  # shifts.csv: per (model, natural shift)
    shift_correlation: pd.DataFrame = field(default_factory=pd.DataFrame)  # shift_correlation.csv
    population: str = "testbed"  # whose published lines the natural shifts are read on (references.POPULATIONS)
    published_models: pd.DataFrame = field(default_factory=pd.DataFrame)  # published.csv: timm's row of each model
    selective: SelectiveTables | None = None  # selective.csv, accuracy_estimates.csv, risk-coverage curves
    stability: pd.DataFrame = field(default_factory=pd.DataFrame)  # stability.csv (--stability imagenet-p runs)

    @property
    def shift_names(self) -> list[str]:
        """The natural-shift datasets of the run, in order."""
        return list(dict.fromkeys(self.shifts["shift"])) if len(self.shifts) else []


PUBLISHED_COLUMNS = ["condition", "reference", "population", "column", "clean_column", "n", "slope", "intercept",
                     "scale", "indicative", "note", "placement", "recipe"]


def published_lines(data: RunData, scale: str, placement: str,
                    population: str = "testbed") -> tuple[dict[str, tuple[str, LineFit]], pd.DataFrame]:
    """The published line of every condition of the run that has one ({key: (reference, line)}), and their table.

    ImageNet-C conditions use the line of the run's corruption protocol (in memory for `native`); natural
    shifts (found in the records, whether or not the manifest lists them) use `shifts.shift_lines`.
    """
    protocol = data.config("corruption_protocol") or "native"
    line_scale = scale if scale in ("logit", "probit") else "logit"
    lines, rows = shift_lines(run_shifts(data.records["transform"].unique()), line_scale, placement, population)
    for c in data.conditions:
        key = condition_key(c["transform"], c["severity"])
        if key == "clean" or is_natural_shift(key) or not is_mapped(key, protocol):
            continue
        ref = reference_line(key, line_scale, protocol)
        label = f"{ref.population}:{ref.column}"
        parity = recipe(key, protocol)  # a recipe other than the line's: listed, not placed (no effective robustness)
        if parity == "release":
            lines[key] = (label, published_fit(ref))
        rows.append({"condition": key, "reference": label, "population": ref.population, "column": ref.column,
                     "clean_column": ref.clean_column, "n": ref.n, "slope": ref.slope, "intercept": ref.intercept,
                     "scale": ref.scale, "indicative": ref.indicative or placement != "val", "note": ref.note,
                     "placement": placement, "recipe": parity})
    table = pd.DataFrame(rows, columns=PUBLISHED_COLUMNS)
    return lines, table.assign(recipe=table["recipe"].astype(object).fillna("release"))  # natural shifts: the published photos


def _tie_reference(data: RunData, reference: TableFit | None, condition: str, lines: dict, published: pd.DataFrame,
                   placement: str) -> tuple[dict, pd.DataFrame]:
    """A user's published table as the line of one condition (`--reference-condition`)."""
    keys = [condition_key(c["transform"], c["severity"]) for c in data.conditions]
    if reference is None:
        raise UserError("--reference-condition needs --reference TABLE.csv")
    if condition not in keys or condition == "clean":
        raise UserError(f"--reference-condition {condition}: not a condition of the run ({', '.join(keys[1:6])}, ...)")
    if not reference.line.available:
        raise UserError(f"--reference: {reference.line.status}")
    label = f"table:{Path(str(reference.source)).name}" if getattr(reference, "source", None) else "table"
    row = {"condition": condition, "reference": label, "population": "table", "column": reference.y,
           "clean_column": reference.x, "n": reference.line.n, "slope": reference.line.slope,
           "intercept": reference.line.intercept, "scale": reference.line.scale, "indicative": placement != "val",
           "note": f"user table ({reference.x} vs {reference.y})", "placement": placement, "recipe": "user table (not checked)"}
    published = pd.concat([published.loc[published["condition"] != condition], pd.DataFrame([row])], ignore_index=True)
    return {**lines, condition: (label, reference.line)}, published


def analyse(data: RunData, baseline: str | None = None, scale: str = "logit", n_boot: int = DEFAULT_BOOTSTRAP,
            seed: int | None = None, reference: TableFit | None = None,
            reference_condition: str | None = None, population: str | None = None) -> Analysis:
    """Summary, family summary, McNemar pairs, ranking and the reproducibility fits of merged runs.

    The CE baseline is `baseline`, else the run's configured one, else its first model; the natural shifts'
    population is `population`, else the run's, else the testbed.
    """
    population = population or data.config("population") or "testbed"
    baseline = baseline or data.config("baseline") or data.models[0]
    if baseline not in data.models:
        raise UserError(f"baseline model {baseline!r} is not in the run; models: {', '.join(data.models)}")
    clock, seconds = time.perf_counter(), {}
    summary = run_summary(data, baseline)
    protocol = data.config("corruption_protocol") or "native"
    family = family_summary(summary, baseline, protocol)
    ranking = model_ranking(summary, baseline, protocol)
    seconds["metrics"] = time.perf_counter() - clock
    clock = time.perf_counter()
    pairwise = pairwise_mcnemar(data.records, data.models, data.conditions)
    seconds["pairwise"] = time.perf_counter() - clock
    clock = time.perf_counter()
    seed = int(data.config("seed", 0) or 0) if seed is None else seed
    placement = run_placement(data.manifest.get("dataset", {}), data.manifest.get("config", {}))
    lines, published = published_lines(data, scale, placement[0], population)
    if reference_condition is not None:
        lines, published = _tie_reference(data, reference, reference_condition, lines, published, placement[0])
    run_fit = fit_run(data.records, data.conditions, data.models, scale, n_boot, seed, published=lines,
                      placement=placement[0])
    seconds["fit"] = time.perf_counter() - clock
    effective = run_fit.effective
    if (effective["reference"] != "run").any():  # the field's lines, where the run has them
        effective = effective.loc[effective["reference"] != "run"]
    placed = effective.loc[effective["versus_line"] != "extrapolated"]  # an extrapolated line places no model
    er = placed.groupby("model")["effective_robustness"].mean().rename("mean_effective_robustness")
    ranking = ranking.join(er, on="model")
    humans = humans_table(data.records, data.conditions, data.models)
    scores = benchmark_scores(humans, data.models) if len(humans) else pd.DataFrame()
    stimuli = stimulus_tables(str(data.config("data", "")), data.records, data.models)
    shifts = run_shifts(summary["transform"])
    synthetic = run_fit.lines.loc[run_fit.lines["kind"] == "condition", "condition"].tolist()
    return Analysis(data, baseline, summary, family, pairwise, ranking, run_fit, reference, published=published,
                    placement=placement, humans=humans, human_scores=scores, seconds=seconds, stimuli=stimuli,
                    shifts=shift_table(summary, run_fit.effective, shifts),
                    shift_correlation=shift_correlation(run_fit.effective, synthetic, shifts, data.models,
                                                        seed=seed) if shifts else pd.DataFrame(),
                    population=population, published_models=published_rows(data.manifests, summary, placement[0]),
                    selective=selective_tables(data.records, data.models, summary),
                    stability=run_stability_table(data.run_dirs, data.manifests))


def write_tables(result: Analysis, out_dir: Path) -> dict[str, Path]:
    tables = {
        "summary": result.summary, "family_summary": result.family, "pairwise": result.pairwise,
        "fit": result.fit.lines, "effective_robustness": result.fit.effective, "references": result.published,
        **({"humans": result.humans} if len(result.humans) else {}),
        **(result.stimuli.csvs() if result.stimuli is not None else {}),
        **({"shifts": result.shifts, "shift_correlation": result.shift_correlation} if len(result.shifts) else {}),
        **(result.selective.csvs() if result.selective is not None else {}),
        **({"stability": result.stability} if len(result.stability) else {}),
    }
    written = {}
    for name, frame in tables.items():
        written[name] = out_dir / f"{name}.csv"
        frame.to_csv(written[name], index=False)
    written["published"] = write_table(result.published_models, out_dir)
    return written


def write_summary(data: RunData, out_dir: Path, baseline: str | None = None) -> pd.DataFrame:
    """summary.csv, published.csv and (--stability runs) stability.csv without --report, from loaded runs;
    returns the summary."""
    summary = run_summary(data, baseline or data.config("baseline") or data.models[0])
    summary.to_csv(Path(out_dir) / "summary.csv", index=False)
    stability = run_stability_table(data.run_dirs, data.manifests)
    if len(stability):
        stability.to_csv(Path(out_dir) / "stability.csv", index=False)
    write_published(data.manifests, summary, out_dir)
    return summary


def run_summary(data: RunData, baseline: str) -> pd.DataFrame:
    """summary.csv's table: every metric per (model, condition), with `real` when the run has --labels."""
    summary = summarize(data.records, data.conditions, baseline, data.models)
    if data.config("labels"):  # --labels real|FILE: multi-label accuracy beside top-1
        real = real_accuracy(data.records, read_real_labels(data.config("labels")))
        summary = summary.merge(real, on=["model", "transform", "severity"], how="left")
    return summary
