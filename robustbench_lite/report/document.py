"""The report: an Analysis rendered as one self-contained HTML file and Markdown, beside its CSVs and plots.

`write_report([run_dir, ...], out_dir)` can be rerun at any time without running a model again;
several run folders on the same photos and conditions (models evaluated on different days) merge.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..analysis.fit import DEFAULT_BOOTSTRAP, fit_table
from ..analysis.run_fit import RunFit
from ..analysis.tables import Analysis, RunData, analyse, load_runs, write_tables
from ..conditions.keys import condition_table
from ..errors import UserError
from .figures import make_plots
from .findings import correlation_text, headline, humans_text, mce_text, published_text, shifts_text


def write_report(run_dirs: Sequence[Path | str], out_dir: Path | str, reference_csv: Path | str | None = None,
                 *, baseline: str | None = None, scale: str = "logit", n_boot: int = DEFAULT_BOOTSTRAP,
                 seed: int | None = None, reference_x: str = "clean_top1", reference_y: str = "shifted_top1",
                 reference_where: str | None = None, manifests: Sequence[dict] | None = None,
                 reference_condition: str | None = None) -> dict[str, Path]:
    """Recompute every table from the runs' records and write CSVs, plots, report.html and report.md.

    Returns {name: path} of everything written.
    """
    check_report_out(run_dirs, out_dir)
    reference = None
    if reference_csv is not None:
        reference = fit_table(reference_csv, reference_x, reference_y, scale, reference_where)
    result = analyse(load_runs(run_dirs, manifests), baseline, scale, n_boot, seed, reference,
                     reference_condition=reference_condition)
    return render_report(result, out_dir)


def check_report_out(run_dirs: Sequence[Path | str], out_dir: Path | str) -> None:
    """`--out` must be a folder that is one of the runs reported, or holds no run's records; else nothing is written."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir}: is a file; name a folder for the report")
    ours = {Path(d).resolve() for d in run_dirs}
    if out_dir.resolve() not in ours and any((out_dir / name).exists() for name in ("manifest.json", "records.parquet")):
        raise UserError(f"--out {out_dir}: holds another run's records; name one of the runs reported or a new folder")


def _skipped_files(data: RunData) -> list[str]:
    """Files left out of the runs, each once (merged runs list the same stray files each): 'path (reason)'."""
    seen: dict[str, str] = {}
    for m in data.manifests:
        for item in m.get("skipped", []):
            seen.setdefault(str(item.get("path", "?")), str(item.get("reason", "")))
    return [f"{path} ({reason})" if reason else path for path, reason in seen.items()]


def render_report(result: Analysis, out_dir: Path | str) -> dict[str, Path]:
    """Write an analysis' CSVs, plots, report.html and report.md to `out_dir`; returns {name: path}."""
    out_dir = Path(out_dir)
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    written = write_tables(result, out_dir)
    clock = time.perf_counter()
    plots = make_plots(result, out_dir / "plots")
    result.seconds["plots"] = time.perf_counter() - clock
    written.update({f"plot:{name}": path for name, path in plots.items()})
    sections = report_sections(result, plots, out_dir)
    from .stability_panels import stability_section

    stability = stability_section(result.data, out_dir, plots, written)  # --stability runs: stability.csv
    sections[-1:-1] = [Section(*stability)] if stability is not None else []
    written["html"] = out_dir / "report.html"
    written["html"].write_text(render_html(sections, plots), encoding="utf-8")
    written["markdown"] = out_dir / "report.md"
    written["markdown"].write_text(render_markdown(sections, plots, out_dir), encoding="utf-8")
    return written


@dataclass
class Section:
    """A heading, paragraphs (plain text), optional tables and plot names, in reading order."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    plots: list[tuple[str, str]] = field(default_factory=list)  # (plot name, caption)


_FORMATS = {"p_value": "{:.3g}", "statistic": "{:.2f}", "level": "{:g}"}  # a level as registered, never rounded
_THREE_DIGITS = ("slope", "intercept", "r2", "auroc", "nll", "relative_robustness", "model_accuracy", "human_accuracy",
                 "observed_consistency", "expected_consistency", "error_consistency", "fraction_", "shape_bias",
                 "spearman", "ci_low", "ci_high")


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
    table = condition_table(data.conditions)
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


def _command_line(manifest: dict) -> str:
    """The command that made the run, as typed (its argv; the API's call has none)."""
    import shlex

    argv = manifest.get("argv") or []
    if not argv:
        return "not recorded"
    return shlex.join(["robustbench-lite", *map(str, argv[1:])]) if str(argv[0]).endswith(("robustbench-lite", "__main__.py")) \
        else shlex.join(map(str, argv))


def report_sections(result: Analysis, plots: dict[str, Path], out_dir: Path) -> list[Section]:
    """The report's content, shared by the HTML and Markdown renderers."""
    data, fit = result.data, result.fit
    manifest = data.manifest
    dataset = manifest.get("dataset", {})
    skipped = _skipped_files(data)
    failed = _failed_table(data)
    statuses = sorted({m.get("status", "unknown") for m in data.manifests})
    n_photos = data.records["image_id"].nunique()
    run = Section("Run", [
        f"Run folder(s): {', '.join(str(d) for d in data.run_dirs)}",
        f"Dataset: {dataset.get('root', '?')} (fingerprint {dataset.get('fingerprint', '?')}); "
        f"{n_photos} photos in the records, {dataset.get('n_samples', '?')} selected.",
        f"Models: {', '.join(data.models)}. Device: {manifest.get('device', '?')}. "
        f"Status: {', '.join(statuses)}. Seed: {data.config('seed', '?')}.",
        f"Command: {_command_line(manifest)}. Started: {manifest.get('started', 'not recorded')}. "
        f"Report written: {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.",
        f"Skipped files: {len(skipped)}{' (' + '; '.join(skipped) + ')' if skipped else ''}. "
        f"Failed conditions: {len(failed)}.",
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
        "mean effective robustness is over the conditions with a published line (else those whose own line is identified)."
    ] + mce_text(result), [("", result.ranking)])
    usable = fit.lines.loc[fit.lines["status"] == "ok"]
    published = Section("Published lines", published_text(result), [("Lines (references.csv)", result.published)])
    if "published" in plots:
        published.plots.append(("published", "Each mapped condition: the imagenet-testbed population (grey; darker = "
                                "the models its line is fitted on), the published line and its 95 % bootstrap band "
                                "over those models, y = x dashed, and the run's models with Wilson 95 % intervals on "
                                "both axes. The run's own line is drawn only where it is identified."))
    shifts = _shifts_section(result, plots)
    vs_published = fit.effective.loc[(fit.effective["reference"] != "run") & (fit.effective["kind"] != "shift")]
    if len(vs_published):
        published.tables.append(("Effective robustness against the published lines (points)", vs_published.drop(
            columns=["kind", "transform", "family", "severity", "in_fit"])))
    fit_text = [
        f"Linear reproducibility fit: {fit.scale}(transformed top-1) = slope · {fit.scale}(clean top-1) + intercept, "
        f"least squares across models; 95% intervals from {_boot_count(fit)} "
        "bootstrap replicates over photos (the same draw for every model). Effective robustness is a model's "
        "transformed top-1 minus the line's prediction at its clean top-1, in points.",
        f"{len(usable)} of {len(fit.lines)} of the run's own lines are identified (>= 5 models spanning >= 10 pp "
        "of clean top-1); the others are reported with their reason and used nowhere.",
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
    own = fit.effective.loc[fit.effective["reference"] == "run"]
    if len(own):
        reproducibility.tables.append(("Effective robustness against the run's own lines (points)", own.drop(
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
    top = Section("Headline", headline(result))
    humans = Section("Humans beside the models", humans_text(result))
    if "psychometric" in plots:
        humans.plots.append(("psychometric", "16-class accuracy against each model-vs-human condition: humans "
                             "(black) on model-vs-human's stimuli, the models on the run's photos of the 16 categories."))
    if len(result.humans):
        humans.tables += [("Humans vs models per condition (humans.csv, fractions)", result.humans),
                          ("model-vs-human's benchmark scores over the covered datasets", result.human_scores)]
    if len(result.shifts):
        files.paragraphs += ["shifts.csv", "shift_correlation.csv"]
    stimuli = _stimuli_section(result)
    return [top, run, ranking, published, *([shifts] if shifts.paragraphs else []),
            *([humans] if humans.paragraphs else []), *stimuli, reproducibility, accuracy, conditions, pairwise, files]


def _shifts_section(result: Analysis, plots: dict[str, Path]) -> Section:
    """Natural shifts: their panels, a row per (model, shift), and the synthetic-vs-natural correlation table."""
    section = Section("Natural shifts", shifts_text(result))
    if "natural_shifts" in plots:
        section.plots.append(("natural_shifts", "Each natural shift of the run on the imagenet-testbed's published "
                              "line (red; 95 % bootstrap band over its line-fit models; ImageNet-A: its two pieces, "
                              "split dotted), the testbed population in grey (darker = line-fit), y = x dashed, and the "
                              "run's models at their clean counterpart's top-1 with Wilson 95 % intervals on both axes. "
                              "The last panel, ObjectNet, is a reference only: not measured by this run."))
    if len(result.shifts):
        section.tables.append(("Per model and shift (shifts.csv; top-1 in percent, drop and effective robustness "
                               "in points)", result.shifts.drop(columns=["placement"])))
    if len(result.shift_correlation):
        section.paragraphs += correlation_text(result)
        section.tables.append(("Synthetic vs natural effective robustness (shift_correlation.csv)",
                               result.shift_correlation.drop(columns=["shift_reference"])))
    return section


def _stimuli_section(result: Analysis) -> list[Section]:
    """A run on model-vs-human's stimuli: error consistency (and shape bias) photo for photo."""
    from ..analysis.consistency import stimuli_text

    tables = result.stimuli
    if tables is None:
        return []
    return [Section("Humans photo for photo (model-vs-human's stimuli)", stimuli_text(tables),
                    [(f"{name}.csv", frame) for name, frame in tables.csvs().items()])]


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
    text = re.sub(r"<(?=[A-Za-z/!?])", "&lt;", str(text))  # no tag can open; >= and & read as typed
    return text.replace("|", "\\|").replace("\n", " ").replace("`", "\\`")


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
