"""The report's sections, each built by one function from the Analysis and the figures drawn.

`SECTION_BUILDERS` lists them in reading order; a builder takes (result, plots) and returns a Section, a
list of them, or None when it has nothing to say. A new section is a new builder added to the list.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Callable

import pandas as pd

from ..analysis.run_fit import RunFit
from ..analysis.tables import Analysis, RunData
from ..conditions.keys import condition_table
from .findings import correlation_text, humans_text, mce_text, published_text, shifts_text
from .headline import headline
from .numbers import fractions_table
from .published_models import population_caption, population_text, published_models_section, published_warnings
from .selective_panels import trouble_section
from .section import Section
from .stability_panels import stability_section

Plots = dict[str, Path]
# The figure shown under the headline: the first of these the report drew.
KEY_FIGURES = ("published", "natural_shifts", "psychometric", "drop_heatmap")
CAPTIONS = {
    "published": "The run's models on the published lines of the imagenet-testbed (Taori et al. 2020): per condition, "
                 "the testbed's models (dark grey: the line-fit models), the published line (black) and its 95 % "
                 "bootstrap band over those models, the run's own line (purple, dashed) where it is identified, y = x "
                 "(dotted), and the run's models with Wilson 95 % intervals on both axes. Shaded: clean top-1 beyond "
                 "the line-fit models, where a line is extrapolated and places no model.",
    "natural_shifts": "Each natural shift of the run on the testbed's published line (black; 95 % bootstrap band "
                      "over its line-fit models; ImageNet-A: its two pieces, split dotted), the testbed population in "
                      "grey (darker = line-fit), y = x dotted, and the run's models at their clean counterpart's "
                      "top-1 with Wilson 95 % intervals on both axes. The last panel, ObjectNet, is a reference only: "
                      "not measured by this run.",
    "psychometric": "16-class accuracy against each model-vs-human condition: humans (black) on model-vs-human's "
                    "stimuli, the models on the run's photos of the 16 categories; chance (1/16) dotted.",
    "drop_heatmap": "Drop in top-1 from clean (points), averaged over each transform's levels; a natural shift's "
                    "from its clean counterpart.",
}


def key_figure(plots: Plots, result: Analysis | None = None) -> str | None:
    """The figure under the headline: the first of KEY_FIGURES drawn, a line figure only if it places a model."""
    placed = set()
    if result is not None:
        rows = result.fit.effective
        rows = rows.loc[(rows["reference"] != "run") & (rows["versus_line"] != "extrapolated")]
        placed = {"natural_shifts" if kind == "shift" else "published" for kind in rows["kind"]}
    lines = {"published", "natural_shifts"}
    return next((name for name in KEY_FIGURES if name in plots and (result is None or name not in lines
                                                                    or name in placed)), None) \
        or next((name for name in KEY_FIGURES if name in plots), None)


def _figure(section: Section, result: Analysis, plots: Plots, name: str, caption: str | None = None) -> None:
    """Add a figure to a section unless it is missing or already shown under the headline."""
    if name in plots and name != key_figure(plots, result):
        section.plots.append((name, caption or CAPTIONS[name]))


def headline_section(result: Analysis, plots: Plots) -> list[Section]:
    sections = [Section("Headline", published_warnings(result) + headline(result))]
    key = key_figure(plots, result)
    if key is not None:
        sections.append(Section("Key figure", plots=[(key, CAPTIONS[key])]))
    return sections


def _skipped_files(data: RunData) -> list[str]:
    """Files left out of the runs, each once (merged runs list the same stray files each): 'path (reason)'."""
    seen: dict[str, str] = {}
    for m in data.manifests:
        for item in m.get("skipped", []):
            seen.setdefault(str(item.get("path", "?")), str(item.get("reason", "")))
    return [f"{path} ({reason})" if reason else path for path, reason in seen.items()]


def _failed_table(data: RunData) -> pd.DataFrame:
    rows = [f for m in data.manifests for f in m.get("failed", [])]
    return pd.DataFrame(rows, columns=["model", "transform", "severity", "error"])


def _boot_count(fit: RunFit) -> int:
    return int(fit.lines["n_boot"].max()) if len(fit.lines) else 0


def _command_line(manifest: dict) -> str:
    """The command that made the run, as typed (its argv; the API's call has none)."""
    import shlex

    argv = manifest.get("argv") or []
    if not argv:
        return "not recorded"
    return shlex.join(["robustbench-lite", *map(str, argv[1:])]) if str(argv[0]).endswith(("robustbench-lite", "__main__.py")) \
        else shlex.join(map(str, argv))


def run_section(result: Analysis, plots: Plots) -> Section:
    """What was run, on what, how it ended; the command, versions and skipped files folded."""
    data, fit = result.data, result.fit
    manifest = data.manifest
    dataset = manifest.get("dataset", {})
    skipped = _skipped_files(data)
    failed = _failed_table(data)
    statuses = sorted({m.get("status", "unknown") for m in data.manifests})
    n_photos = data.records["image_id"].nunique()
    section = Section("Run", [
        f"Dataset: {dataset.get('root', '?')} (fingerprint {dataset.get('fingerprint', '?')}); "
        f"{n_photos} photos in the records, {dataset.get('n_samples', '?')} selected. Models: {', '.join(data.models)}. "
        f"Status: {', '.join(statuses)}. Skipped files: {len(skipped)}. Failed conditions: {len(failed)}.",
        f"Analysis: {fit.scale} fit, {_boot_count(fit)} bootstrap replicates over photos, CE baseline {result.baseline}.",
        *data.notes,
    ])
    section.details.append(("Command, folders, device and versions", [
        f"Run folder(s): {', '.join(str(d) for d in data.run_dirs)}",
        f"Command: {_command_line(manifest)}. Started: {manifest.get('started', 'not recorded')}. "
        f"Report written: {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.",
        f"Device: {manifest.get('device', '?')}. Seed: {data.config('seed', '?')}.",
        f"Versions: {', '.join(f'{k} {v}' for k, v in manifest.get('versions', {}).items()) or 'not recorded'}.",
        f"Skipped files: {len(skipped)}{' (' + '; '.join(skipped) + ')' if skipped else ''}.",
    ]))
    if len(failed):
        section.tables.append(("Failed conditions", failed))
    return section


def ranking_section(result: Analysis, plots: Plots) -> Section:
    return Section("Ranking", [
        "Models ranked by mean transformed top-1 over all conditions (each condition weighs the same). "
        f"mCE and relative mCE are percent of the baseline model {result.baseline}'s errors (100 = as bad as it); "
        "mean effective robustness is over the placed rows against a published line (else against the run's own "
        "identified lines): a row beyond the clean range its line was fitted on is extrapolated and left out."
    ] + mce_text(result), [("", result.ranking)])


def published_section(result: Analysis, plots: Plots) -> Section:
    section = Section("Published lines", published_text(result))
    _figure(section, result, plots, "published")
    effective = result.fit.effective
    rows = effective.loc[(effective["reference"] != "run") & (effective["kind"] != "shift")]
    rows = rows.drop(columns=["kind", "transform", "family", "severity", "in_fit", "placement", "counterpart"])
    placed, beyond = rows.loc[rows["versus_line"] != "extrapolated"], rows.loc[rows["versus_line"] == "extrapolated"]
    if len(placed):
        section.tables.append(("Effective robustness against the published lines (points; placed rows)", placed))
    if len(beyond):
        section.tables.append(("Extrapolated rows: clean top-1 outside the line-fit models' range, not placed", beyond))
    if len(result.published):
        section.details.append(("The lines (references.csv)", result.published))
    return section


def shifts_section(result: Analysis, plots: Plots) -> Section | None:
    """Natural shifts: their panels, a row per (model, shift), and the synthetic-vs-natural correlation table."""
    if not len(result.shifts):
        return None
    section = Section("Natural shifts", shifts_text(result) + population_text(result))
    _figure(section, result, plots, "natural_shifts", CAPTIONS["natural_shifts"] + population_caption(result))
    section.tables.append(("Per model and shift (shifts.csv; top-1 in percent, drop and effective robustness "
                           "in points)", result.shifts.drop(columns=["placement"])))
    if len(result.shift_correlation):
        section.paragraphs += correlation_text(result)
        section.tables.append(("Synthetic vs natural effective robustness (shift_correlation.csv)",
                               result.shift_correlation.drop(columns=["shift_reference"])))
    return section


def humans_section(result: Analysis, plots: Plots) -> Section | None:
    text = humans_text(result)
    if not text:
        return None
    section = Section("Humans beside the models", text)
    _figure(section, result, plots, "psychometric")
    section.tables.append(("Humans vs models per condition (humans.csv; 16-class accuracy as fractions)",
                           fractions_table(result.humans)))
    if len(result.human_scores):
        section.tables.append(("model-vs-human's benchmark scores over the covered datasets",
                               fractions_table(result.human_scores)))
    return section


def stimuli_section(result: Analysis, plots: Plots) -> Section | None:
    """A run on model-vs-human's stimuli: error consistency (and shape bias) photo for photo."""
    from ..analysis.consistency import stimuli_text

    tables = result.stimuli
    if tables is None:
        return None
    return Section("Humans photo for photo (model-vs-human's stimuli)", stimuli_text(tables),
                   [(f"{name}.csv", fractions_table(frame)) for name, frame in tables.csvs().items()])


def reproducibility_section(result: Analysis, plots: Plots) -> Section:
    fit = result.fit
    usable = fit.lines.loc[fit.lines["status"] == "ok"]
    text = [
        f"Linear reproducibility fit: {fit.scale}(transformed top-1) = slope · {fit.scale}(clean top-1) + intercept, "
        f"least squares across the run's models; 95 % intervals from {_boot_count(fit)} bootstrap replicates over "
        "photos (the same draw for every model). Effective robustness is a model's transformed top-1 minus the "
        "line's prediction at its clean top-1, in points.",
        f"{len(usable)} of {len(fit.lines)} of the run's own lines are identified (>= 5 models spanning >= 10 pp "
        "of clean top-1); the others are reported with their reason and used nowhere. Lines of conditions with a "
        "published counterpart are drawn on their published panels.",
    ]
    if result.reference is not None:
        ref = result.reference
        text.append(f"Grey: the reference population ({len(ref.rows)} rows, {ref.x} vs {ref.y}) and its own "
                    f"{ref.line.scale} line (slope {ref.line.slope:.3f}, intercept {ref.line.intercept:.3f}, "
                    f"n = {ref.line.n}).")
    section = Section("Linear reproducibility", text)
    _figure(section, result, plots, "reproducibility", "The run's own identified lines of the conditions without a published "
            "panel: transformed vs clean top-1 with Wilson 95 % intervals, the line and its 95 % bootstrap band over "
            "photos, y = x dotted. Hollow points are at 0 or 100 % (drawn at the axis edge) and left out of the fit.")
    section.tables.append(("The run's own lines (fit.csv)", fit.lines.drop(columns=["scale", "n_boot"])))
    own = fit.effective.loc[fit.effective["reference"] == "run"]
    if len(own):
        section.details.append(("Effective robustness against the run's own lines (points)",
                                own.drop(columns=["kind", "transform", "family", "severity"])))
    return section


def accuracy_section(result: Analysis, plots: Plots) -> Section:
    section = Section("Accuracy and calibration", [
        "top1/top5 with 95 % Wilson intervals, drop and overconfidence in points; consistency = percent of photos "
        "whose top-1 class is unchanged from clean; ECE (15 equal-width bins), mean confidence in percent; "
        "NLL in nats; AUROC of confidence telling right from wrong answers; CE / relative CE in percent of the "
        "baseline's."
    ] + _overconfidence_text(result))
    _figure(section, result, plots, "drop_heatmap")
    _figure(section, result, plots, "severity", "Top-1 against severity (0 = clean), a line per model, for each transform "
            "measured at two or more severities.")
    _figure(section, result, plots, "confidence", "Mean confidence against top-1 per (model, condition): points above "
            "the diagonal are overconfident; outlined points are clean.")
    section.tables.append(("Per family (means over levels)", result.family))
    section.details.append(("Per condition (summary.csv)", result.summary))
    return section


def _overconfidence_text(result: Analysis) -> list[str]:
    """The most overconfident cell after a large drop, stated as measured (confidence above accuracy)."""
    from ..analysis.metrics import shifted_rows
    from ..conditions.keys import condition_key
    from .numbers import pct

    shifted = shifted_rows(result.summary)
    cells = shifted.loc[(shifted["overconfidence"] > 15) & (shifted["drop"] > 20)]
    if cells.empty:
        return []
    worst = cells.sort_values("overconfidence", ascending=False).iloc[0]
    n = worst["n"]
    return [f"Most overconfident after a drop: {worst['model']} on {condition_key(worst['transform'], worst['severity'])}, "
            f"mean confidence {pct(worst['mean_confidence'], n)} % for top-1 {pct(worst['top1'], n)} % "
            f"({len(cells)} model x condition cells are over 15 points overconfident after a drop of over 20 points)."]


def _conditions_table(result: Analysis) -> pd.DataFrame:
    table = condition_table(result.data.conditions)
    shifted = table.loc[table["transform"] != "clean"]
    rows = [{"transform": t, "family": part["family"].iloc[0],
             "levels": ", ".join(f"{s}: {lv:g}" if isinstance(lv, (int, float)) and not pd.isna(lv) else str(s)
                                 for s, lv in zip(part["severity"], part["level"])),
             "description": part["description"].iloc[0] or ""}
            for t, part in shifted.groupby("transform", sort=False)]
    return pd.DataFrame(rows, columns=["transform", "family", "levels", "description"])


def conditions_section(result: Analysis, plots: Plots) -> Section:
    section = Section("Conditions", ["Each transform at each severity level (level values as registered)."],
                      [("", _conditions_table(result))])
    if "examples" in plots:
        section.plots.append(("examples", "What the models saw: example photos under each condition."))
    return section


def pairwise_section(result: Analysis, plots: Plots) -> Section:
    pairs = result.pairwise
    significant = int((pairs["p_value"] < 0.05).sum()) if len(pairs) else 0
    return Section("Paired comparisons", [
        f"McNemar's test between every two models on every condition: {len(pairs)} comparisons, "
        f"{significant} with p < 0.05 (uncorrected), in pairwise.csv. Exact binomial p-value when the discordant "
        "photos b + c < 25, else chi-square with continuity correction.",
    ])


SectionBuilder = Callable[[Analysis, Plots], "Section | list[Section] | None"]
SECTION_BUILDERS: list[SectionBuilder] = [
    headline_section, run_section, ranking_section, published_section, published_models_section, shifts_section,
    humans_section, stimuli_section, trouble_section, stability_section, reproducibility_section, accuracy_section,
    conditions_section, pairwise_section,
]


def build_sections(result: Analysis, plots: Plots, builders: list[SectionBuilder] | None = None) -> list[Section]:
    """Every builder's sections, in order."""
    sections: list[Section] = []
    for build in builders or SECTION_BUILDERS:
        made = build(result, plots)
        if made is None:
            continue
        sections += made if isinstance(made, list) else [made]
    return sections
