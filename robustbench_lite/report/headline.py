"""The run's headline: at most five sentences, each computed from the analysis tables, in this order: which
model is most and least robust, the largest drop, the published-line verdicts that hold with their intervals,
humans where they were measured the same way, and what the run could not conclude.

Every number is a table's value rounded as `numbers` rounds it; a model beyond the clean range its line was
fitted on (`versus_line` = `extrapolated`) is never ranked or called above or below here.
"""
from __future__ import annotations

import pandas as pd

from ..analysis.metrics import shifted_rows
from ..analysis.tables import Analysis
from ..conditions.keys import condition_key
from .numbers import interval, pct, photos, points, proportion

MAX_LINES = 5
MAX_VERDICTS = 3  # verdicts named in the headline; the published-lines section lists all
MAX_HUMAN_MODELS = 4


def headline(result: Analysis) -> list[str]:
    """The headline's sentences (at most MAX_LINES), every one generated from the run's tables."""
    if shifted_rows(result.summary).empty:  # an mvh: run's stimuli are manipulated already: humans, photo for photo
        return [humans_sentence(result) or "Clean photos only: no condition to compare."]
    lines = [robustness_sentence(result), largest_drop_sentence(result), verdicts_sentence(result),
             humans_sentence(result), unconcluded_sentence(result)]
    return [line for line in lines if line][:MAX_LINES]


def _n(result: Analysis, model: str | None = None, key: str | None = None) -> float:
    """Photos behind a model's cell on condition `key` (the fewest over the run when not named)."""
    return photos(result.summary, model, key)


def published_rows(result: Analysis) -> pd.DataFrame:
    """Effective-robustness rows against published lines (synthetic conditions and natural shifts)."""
    effective = result.fit.effective
    return effective.loc[effective["reference"] != "run"]


def placed_rows(result: Analysis) -> pd.DataFrame:
    """The rows the ranking's mean effective robustness is over: against published lines where the run has
    any, else against its own identified lines; extrapolated rows left out."""
    effective = result.fit.effective
    if (effective["reference"] != "run").any():
        effective = effective.loc[effective["reference"] != "run"]
    return effective.loc[effective["versus_line"] != "extrapolated"]


def robustness_sentence(result: Analysis) -> str:
    """Most and least robust model: by mean effective robustness where models are placed, else by mean drop."""
    ranking = result.ranking
    placed = ranking.dropna(subset=["mean_effective_robustness"])
    rows = placed_rows(result)
    against = "the published lines" if (result.fit.effective["reference"] != "run").any() else "the run's own lines"
    if len(placed) >= 2:
        best = placed.loc[placed["mean_effective_robustness"].idxmax()]
        worst = placed.loc[placed["mean_effective_robustness"].idxmin()]
        said = [f"{row['model']} ({points(row['mean_effective_robustness'], _n(result, row['model']))} points "
                f"over {int((rows['model'] == row['model']).sum())} placed row(s))" for row in (best, worst)]
        return (f"Most robust against {against}, by mean effective robustness: {said[0]}; least: {said[1]}.")
    drops = ranking.dropna(subset=["mean_drop"])
    if drops.empty:
        return ""
    n_conditions = len(shifted_rows(result.summary).drop_duplicates(["transform", "severity"]))
    if len(drops) == 1:
        row = drops.iloc[0]
        return (f"{row['model']}: mean drop {pct(row['mean_drop'], _n(result, row['model']))} points over "
                f"{n_conditions} condition(s) from clean top-1 {pct(row['clean_top1'], _n(result, row['model'], 'clean'))} %.")
    best, worst = drops.loc[drops["mean_drop"].idxmin()], drops.loc[drops["mean_drop"].idxmax()]
    return (f"Smallest mean drop over the {n_conditions} conditions: {best['model']} "
            f"({pct(best['mean_drop'], _n(result, best['model']))} points); largest: {worst['model']} "
            f"({pct(worst['mean_drop'], _n(result, worst['model']))} points).")


def largest_drop_sentence(result: Analysis) -> str:
    """The largest drop of any model on any condition, from clean (a shift: from its counterpart)."""
    shifted = shifted_rows(result.summary).dropna(subset=["drop"])
    if shifted.empty:
        return ""
    row = shifted.loc[shifted["drop"].idxmax()]
    n = float(row["n"])
    key = condition_key(row["transform"], row["severity"])
    start = "clean" if row.get("counterpart", "clean") == "clean" else row["counterpart"]
    ties = int((shifted["drop"].map(lambda d: pct(d, n)) == pct(row["drop"], n)).sum()) - 1
    return (f"Largest drop: {row['model']} on {key}, top-1 {pct(row['top1'] + row['drop'], n)} % ({start}) → "
            f"{pct(row['top1'], n)} % ({pct(row['drop'], n)} points)"
            + (f"; {ties} other model x condition cell(s) drop as much." if ties else "."))


def verdicts_sentence(result: Analysis) -> str:
    """The rows above or below their published line beyond the 95 % interval (placed rows only)."""
    rows = published_rows(result)
    placed = rows.loc[rows["versus_line"] != "extrapolated"]
    if placed.empty:
        return ""
    held = placed.loc[placed["versus_line"].isin(["above", "below"])]
    if held.empty:
        return (f"Every one of the {len(placed)} placed model x condition rows is on its published line within its "
                "95 % interval: none above or below.")
    held = held.reindex(held["effective_robustness"].abs().sort_values(ascending=False).index)
    said = []
    for row in held.head(MAX_VERDICTS).itertuples():
        n = _n(result, row.model, row.condition)
        said.append(f"{row.model} {row.versus_line} the {row.condition} line ({points(row.effective_robustness, n)} "
                    f"points, {interval(row.er_low, row.er_high, n)})")
    more = f" and {len(held) - MAX_VERDICTS} more (Published lines)" if len(held) > MAX_VERDICTS else ""
    return (f"Beyond the 95 % interval of {len(held)} of {len(placed)} placed rows: {'; '.join(said)}{more}; "
            "the others are on their lines.")


def humans_sentence(result: Analysis) -> str:
    """Humans beside the models, only where both were measured the same way: 16-class accuracy on the same
    model-vs-human condition and level (a --protocol sixteen-class run), or photo for photo (an mvh: run)."""
    stimuli = result.stimuli
    if stimuli is not None and len(stimuli.error_consistency):
        ec = stimuli.error_consistency.loc[stimuli.error_consistency["in_benchmark"].astype(bool)]
        models = ec.loc[ec["model"] != "humans"]
        if models.empty:
            return ""
        means = models.groupby("model", sort=False)[["model_accuracy", "human_accuracy", "error_consistency"]].mean()
        said = "; ".join(f"{m} {proportion(r.model_accuracy)} (error consistency {proportion(r.error_consistency)})"
                         for m, r in list(means.iterrows())[:MAX_HUMAN_MODELS])
        return (f"On model-vs-human's own {stimuli.experiment} stimuli, photo for photo, 16-class accuracy over "
                f"{models['condition'].nunique()} benchmark condition(s): humans "
                f"{proportion(means['human_accuracy'].iloc[0])}; {said}.")
    if result.data.config("protocol") != "sixteen-class" or result.humans.empty:
        return ""
    table = result.humans
    models = [m for m in result.data.models if m in table.columns]
    both = table.dropna(subset=["human_accuracy", *models])
    if both.empty or not models:
        return ""
    said = "; ".join(f"{m} {proportion(both[m].mean())}" for m in models[:MAX_HUMAN_MODELS])
    more = f" and {len(models) - MAX_HUMAN_MODELS} more" if len(models) > MAX_HUMAN_MODELS else ""
    return (f"16-class accuracy on the same {len(both)} model-vs-human condition(s) (humans on their stimuli, the "
            f"models on this run's photos of the 16 categories), means: humans {proportion(both['human_accuracy'].mean())}; "
            f"{said}{more}.")


def unconcluded_sentence(result: Analysis) -> str:
    """What the run could not conclude: models beyond their lines' fitted range, an indicative placement,
    and own lines that are not identified."""
    parts = []
    rows = published_rows(result)
    beyond = rows.loc[rows["versus_line"] == "extrapolated"]
    if len(beyond):
        groups = beyond.groupby("model", sort=False)
        conditions = {m: list(dict.fromkeys(part["condition"])) for m, part in groups}
        same = len({tuple(c) for c in conditions.values()}) == 1
        named = [f"{m} (clean {pct(part['clean_top1'].iloc[0], _n(result, m, part['counterpart'].iloc[0]))} %)"
                 + ("" if same else f" on {', '.join(conditions[m])}") for m, part in groups]
        ranges = {(round(a, 1), round(b, 1)) for a, b in zip(beyond["fit_clean_min"], beyond["fit_clean_max"])}
        span = (f"; the line-fit models span {next(iter(ranges))[0]:.1f}–{next(iter(ranges))[1]:.1f} % clean"
                if len(ranges) == 1 else "")
        where = f" on {', '.join(next(iter(conditions.values())))}" if same else ""
        parts.append(f"{' and '.join(named) if len(named) <= 2 else ', '.join(named)} not placed{where}: "
                     f"beyond the clean range their line was fitted on (extrapolated{span})")
    placed = rows.loc[rows["versus_line"] != "extrapolated"]
    if len(placed) and result.placement[0] != "val":
        parts.append("every placement is indicative: the run's photos are not ImageNet val, whose top-1 is the "
                     "lines' x axis")
    own = result.fit.lines.loc[result.fit.lines["kind"] == "condition"]
    unidentified = own.loc[own["status"] != "ok"]
    if rows.empty and len(own) and len(unidentified) == len(own):
        parts.append(f"the run's own lines: {unidentified['status'].iloc[0]}")
    return ("Not concluded: " + "; ".join(parts) + ".") if parts else ""
