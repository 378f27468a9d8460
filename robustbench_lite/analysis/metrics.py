"""Metrics per (model, condition), computed from a run's per-photo records.

Units, as written to summary.csv and family_summary.csv:
- top1/top5 and their 95% Wilson bounds, consistency, ece, mean_confidence: percent (0-100);
- drop and overconfidence: percentage points; a natural shift's drop is from its `counterpart` (the
  run's val photos of its 200 classes for ImageNet-R / -A, else clean), every other drop from clean;
- relative_robustness: a ratio (top1 / clean top1);
- nll: nats (mean -log p(label), p clipped to [1e-12, 1]);
- auroc: a fraction in [0, 1] (NaN when a condition's answers are all right or all wrong);
- ce, relative_ce, mce, relative_mce: percent of the baseline model's error (100 = as bad as it);
- ce_alexnet, mce_alexnet, relative_mce_alexnet: the same against AlexNet's published ImageNet-C
  errors (mCE as papers publish it; only under --corruption-protocol imagenet-c, with all 5 severities
  of the 15 corruptions).

Every grouped metric takes integer group codes and uses `np.bincount`, so one pass covers all
(model, condition) groups; without `groups` it returns a single number.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import special  # scipy.stats would cost half a second to import

from ..conditions.keys import condition_table, order_rows
from ..data.imagenet import val_index
from .references import CORRUPTIONS, SEVERITIES, alexnet_top1, counterpart, is_counterpart, is_natural_shift

Z95 = float(special.ndtri(0.975))
ECE_BINS = 15
NLL_EPS = 1e-12
CONDITION_KEYS = ["model", "transform", "severity"]

SUMMARY_COLUMNS = [
    "model", "transform", "family", "severity", "level", "n",
    "top1", "top1_low", "top1_high", "top5", "top5_low", "top5_high",
    "drop", "relative_robustness", "consistency", "ece", "mean_confidence", "overconfidence",
    "nll", "auroc", "ce", "relative_ce", "ce_alexnet", "counterpart",
]
FAMILY_METRICS = [
    "top1", "top5", "drop", "relative_robustness", "consistency", "ece",
    "mean_confidence", "overconfidence", "nll", "auroc",
]


# ---------------------------------------------------------------- single metrics (grouped)

def _grouped(values: np.ndarray, groups: np.ndarray | None, n_groups: int | None) -> tuple[np.ndarray, int]:
    """Group codes for `values` (all zeros when ungrouped) and the number of groups."""
    if groups is None:
        return np.zeros(len(values), dtype=np.int64), 1
    groups = np.asarray(groups, dtype=np.int64)
    return groups, int(n_groups if n_groups is not None else (groups.max() + 1 if len(groups) else 0))


def _scalar_or_array(result: np.ndarray, groups: np.ndarray | None):
    return float(result[0]) if groups is None else result


def safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def wilson_interval(successes, n, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion, as fractions (vectorised; NaN when n = 0)."""
    k = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return centre - half, centre + half


def confidence_bin(confidence, n_bins: int = ECE_BINS) -> np.ndarray:
    """Index of the equal-width bin (lo, hi] holding each confidence; 0 lands in the first bin."""
    conf = np.asarray(confidence, dtype=float)
    return np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)


def expected_calibration_error(confidence, correct, groups=None, n_groups=None, n_bins: int = ECE_BINS):
    """ECE as a fraction: sum over equal-width confidence bins of (bin share) x |accuracy - confidence|."""
    conf = np.asarray(confidence, dtype=float)
    right = np.asarray(correct, dtype=float)
    codes, n_g = _grouped(conf, groups, n_groups)
    cell = codes * n_bins + confidence_bin(conf, n_bins)
    size = n_g * n_bins
    gap = np.abs(np.bincount(cell, conf, size) - np.bincount(cell, right, size)).reshape(n_g, n_bins)
    return _scalar_or_array(safe_divide(gap.sum(axis=1), np.bincount(codes, minlength=n_g)), groups)


def auroc(confidence, correct, groups=None, n_groups=None):
    """Area under the ROC curve of confidence separating right from wrong answers (ties count half).

    The Mann-Whitney statistic from average ranks; NaN where a group is all right or all wrong.
    """
    conf = np.asarray(confidence, dtype=float)
    right = np.asarray(correct, dtype=bool)
    codes, n_g = _grouped(conf, groups, n_groups)
    ranks = pd.Series(conf).groupby(codes).rank(method="average").to_numpy()
    n_pos = np.bincount(codes, right, n_g)
    n_neg = np.bincount(codes, minlength=n_g) - n_pos
    rank_sum = np.bincount(codes, np.where(right, ranks, 0.0), n_g)
    return _scalar_or_array(safe_divide(rank_sum - n_pos * (n_pos + 1) / 2, n_pos * n_neg), groups)


def negative_log_likelihood(label_prob, groups=None, n_groups=None, eps: float = NLL_EPS):
    """Mean -log p(true label) in nats, p clipped to [eps, 1] so a zero probability stays finite."""
    prob = np.clip(np.asarray(label_prob, dtype=float), eps, 1.0)
    codes, n_g = _grouped(prob, groups, n_groups)
    total = np.bincount(codes, -np.log(prob), n_g)
    return _scalar_or_array(safe_divide(total, np.bincount(codes, minlength=n_g)), groups)


def group_mean(values, groups=None, n_groups=None):
    """Mean of `values` per group (NaN for an empty group)."""
    vals = np.asarray(values, dtype=float)
    codes, n_g = _grouped(vals, groups, n_groups)
    return _scalar_or_array(safe_divide(np.bincount(codes, vals, n_g), np.bincount(codes, minlength=n_g)), groups)


def corruption_error(errors, baseline_errors) -> float:
    """Hendrycks' CE_f = sum_s err_f,s / sum_s err_f,s(baseline), in percent; relative CE passes err - clean err."""
    return float(safe_divide(100 * np.sum(errors), np.sum(baseline_errors)))


# ---------------------------------------------------------------- tables from records

def _consistency(records: pd.DataFrame, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Percent of a group's photos whose top-1 class equals the same model's clean top-1."""
    clean = records.loc[records["transform"] == "clean", ["model", "image_id", "top1"]]
    clean = clean.drop_duplicates(["model", "image_id"]).rename(columns={"top1": "clean_top1"})
    joined = records[["model", "image_id"]].merge(clean, on=["model", "image_id"], how="left")
    has_clean = joined["clean_top1"].notna().to_numpy()
    same = has_clean & (joined["clean_top1"].to_numpy() == records["top1"].to_numpy())
    return 100 * safe_divide(np.bincount(codes, same, n_groups), np.bincount(codes, has_clean, n_groups))


def summarize(records: pd.DataFrame, conditions=None, baseline: str | None = None,
              model_order: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per (model, transform, severity) with every metric of SUMMARY_COLUMNS.

    `conditions` (manifest list or frame) supplies family and level; `baseline` names the model
    whose errors normalise ce / relative_ce (NaN columns when None).
    """
    grouped = records.groupby(CONDITION_KEYS, observed=True, sort=True)
    codes = grouped.ngroup().to_numpy()
    out = grouped.size().rename("n").reset_index()
    n_g = len(out)
    n = out["n"].to_numpy(dtype=float)
    k1 = np.bincount(codes, records["correct1"].to_numpy(), n_g)
    k5 = np.bincount(codes, records["correct5"].to_numpy(), n_g)
    conf = records["confidence"].to_numpy(dtype=float)
    out["top1"] = 100 * k1 / n
    low, high = wilson_interval(k1, n)
    out["top1_low"], out["top1_high"] = 100 * low, 100 * high
    out["top5"] = 100 * k5 / n
    low, high = wilson_interval(k5, n)
    out["top5_low"], out["top5_high"] = 100 * low, 100 * high
    out["consistency"] = _consistency(records, codes, n_g)
    out["ece"] = 100 * expected_calibration_error(conf, records["correct1"], codes, n_g)
    out["mean_confidence"] = 100 * group_mean(conf, codes, n_g)
    out["overconfidence"] = out["mean_confidence"] - out["top1"]
    out["nll"] = negative_log_likelihood(records["label_prob"], codes, n_g)
    out["auroc"] = auroc(conf, records["correct1"], codes, n_g)
    out = _attach_conditions(out, conditions)
    out = _attach_clean(out)
    out = _attach_corruption_error(out, baseline)
    out["ce_alexnet"] = _attach_corruption_error(out.copy(), alexnet_top1())["ce"]
    return order_rows(out[SUMMARY_COLUMNS], conditions, model_order)


def _attach_conditions(out: pd.DataFrame, conditions) -> pd.DataFrame:
    out["transform"] = out["transform"].astype(str)
    out["model"] = out["model"].astype(str)
    out["severity"] = out["severity"].astype(int)
    table = condition_table(conditions if conditions is not None else [])
    out = out.merge(table[["transform", "severity", "family", "level"]], on=["transform", "severity"], how="left")
    clean = out["transform"] == "clean"
    out["family"] = out["family"].where(out["family"].notna(), np.where(clean, "clean", out["transform"]))
    out["level"] = out["level"].where(out["level"].notna() | ~clean, 0.0)
    return out


def shifted_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows of transformed photos: neither clean nor a shift's clean counterpart (`clean@r-classes`)."""
    return summary.loc[(summary["transform"] != "clean") & ~summary["transform"].map(is_counterpart)]


def _attach_clean(out: pd.DataFrame) -> pd.DataFrame:
    out["counterpart"] = [counterpart(t) if is_natural_shift(t) else "clean" for t in out["transform"]]
    cleans = out.loc[(out["transform"] == "clean") | out["transform"].map(is_counterpart)]
    clean = cleans.set_index(["model", "transform"])["top1"]
    clean_top1 = pd.Series(clean.reindex(pd.MultiIndex.from_arrays([out["model"], out["counterpart"]])).to_numpy(),
                           index=out.index)
    out["drop"] = clean_top1 - out["top1"]
    out["relative_robustness"] = safe_divide(out["top1"], clean_top1)
    return out


def _baseline_errors(out: pd.DataFrame, baseline: str | pd.DataFrame) -> pd.DataFrame:
    """The baseline's error and clean error for each condition, aligned to `out`'s rows.

    `baseline` is a model of `out`, or a published table (transform, severity, top1 in percent).
    """
    rows = out.loc[out["model"] == baseline] if isinstance(baseline, str) else baseline
    base = rows[["transform", "severity", "top1"]]
    base = base.rename(columns={"top1": "base_top1"})
    aligned = out[["transform", "severity"]].merge(base, on=["transform", "severity"], how="left")
    cleans = base.loc[(base["transform"] == "clean") | base["transform"].map(is_counterpart)]
    base_clean = cleans.drop_duplicates("transform").set_index("transform")["base_top1"]  # a shift's: its counterpart's
    keys = out["counterpart"] if "counterpart" in out.columns else pd.Series("clean", index=out.index)
    return pd.DataFrame({
        "err": 100 - out["top1"].to_numpy(),
        "clean_err": (100 - out["top1"] - out["drop"]).to_numpy(),
        "base_err": 100 - aligned["base_top1"].to_numpy(),
        "base_clean_err": 100 - keys.map(base_clean).to_numpy(dtype=float),
    }, index=out.index)


def _attach_corruption_error(out: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """Per-condition terms of Hendrycks' CE: err / baseline err and the clean-relative version."""
    out["ce"] = np.nan
    out["relative_ce"] = np.nan
    if baseline is None or (isinstance(baseline, str) and not (out["model"] == baseline).any()):
        return out
    e = _baseline_errors(out, baseline)
    shifted = (out["transform"] != "clean").to_numpy()
    out["ce"] = np.where(shifted, 100 * safe_divide(e["err"], e["base_err"]), np.nan)
    out["relative_ce"] = np.where(
        shifted, 100 * safe_divide(e["err"] - e["clean_err"], e["base_err"] - e["base_clean_err"]), np.nan
    )
    return out


def corruption_errors(summary: pd.DataFrame, baseline: str | pd.DataFrame | None) -> pd.DataFrame:
    """CE and relative CE per (model, transform): error summed over severities over the baseline's sum.

    Only severities both the model and the baseline have count. Percent; NaN without a baseline.
    """
    shifted = shifted_rows(summary)
    cols = ["model", "family", "transform", "ce", "relative_ce"]
    if baseline is None or shifted.empty or (isinstance(baseline, str) and not (summary["model"] == baseline).any()):
        out = shifted[["model", "family", "transform"]].drop_duplicates().copy()
        out["ce"], out["relative_ce"] = np.nan, np.nan
        return out[cols].reset_index(drop=True)
    e = _baseline_errors(summary, baseline).loc[shifted.index]
    terms = shifted[["model", "family", "transform"]].assign(
        err=e["err"], base_err=e["base_err"], rel=e["err"] - e["clean_err"],
        base_rel=e["base_err"] - e["base_clean_err"],
    ).dropna(subset=["base_err"])
    sums = terms.groupby(["model", "family", "transform"], sort=False)[["err", "base_err", "rel", "base_rel"]].sum()
    sums["ce"] = 100 * safe_divide(sums["err"], sums["base_err"])
    sums["relative_ce"] = 100 * safe_divide(sums["rel"], sums["base_rel"])
    return sums.reset_index()[cols]


def family_summary(summary: pd.DataFrame, baseline: str | None = None, protocol: str = "imagenet-c") -> pd.DataFrame:
    """Per (model, family): metrics averaged over the family's conditions (every level weighs the same),
    plus mCE / relative mCE = the mean over the family's transforms of their CE / relative CE."""
    shifted = shifted_rows(summary)
    grouped = shifted.groupby(["model", "family"], sort=False)
    out = grouped[FAMILY_METRICS].mean()
    out.insert(0, "n_conditions", grouped.size())
    out.insert(0, "n_transforms", grouped["transform"].nunique())
    ce = corruption_errors(summary, baseline).groupby(["model", "family"], sort=False)[["ce", "relative_ce"]].mean()
    out = out.join(ce.rename(columns={"ce": "mce", "relative_ce": "relative_mce"}))
    out = out.join(alexnet_mce(summary, protocol).set_index(["model", "family"])[["mce_alexnet", "relative_mce_alexnet"]])
    return out.reset_index()


MCE_PROTOCOL_WHY = ("AlexNet's published errors were measured on the released ImageNet-C JPEGs, so they normalise "
                    "only a --corruption-protocol imagenet-c run")


def alexnet_mce(summary: pd.DataFrame, protocol: str = "imagenet-c") -> pd.DataFrame:
    """mCE and relative mCE as published (Hendrycks & Dietterich 2019), per model, in percent.

    CE_c = sum over severities of the model's error / the same sum for AlexNet (the bundled table);
    mCE = the mean over the benchmark's 15 corruptions; relative uses errors minus clean errors.
    Given only under the `imagenet-c` corruption protocol (AlexNet's errors are the released JPEGs')
    and when all 5 severities of all 15 ran; `missing` says what is lacking otherwise.
    """
    if protocol != "imagenet-c":
        return pd.DataFrame([{"model": m, "family": "corruptions", "mce_alexnet": np.nan, "relative_mce_alexnet": np.nan,
                              "missing": f"--corruption-protocol {protocol}: {MCE_PROTOCOL_WHY}"}
                             for m in dict.fromkeys(summary["model"])],
                            columns=["model", "family", "mce_alexnet", "relative_mce_alexnet", "missing"])
    ce = corruption_errors(summary, alexnet_top1()).set_index(["model", "transform"])
    ran = summary.groupby(["model", "transform"])["severity"].apply(set)
    rows = []
    for model in dict.fromkeys(summary["model"]):
        missing = [f"{name}@{s}" for name in CORRUPTIONS for s in SEVERITIES
                   if s not in ran.get((model, name), set())]
        complete = not missing
        terms = ce.loc[model].reindex(list(CORRUPTIONS)) if model in ce.index.get_level_values(0) else None
        rows.append({"model": model, "family": "corruptions",
                     "mce_alexnet": float(terms["ce"].mean()) if complete else np.nan,
                     "relative_mce_alexnet": float(terms["relative_ce"].mean()) if complete else np.nan,
                     "missing": ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")})
    return pd.DataFrame(rows, columns=["model", "family", "mce_alexnet", "relative_mce_alexnet", "missing"])


def model_ranking(summary: pd.DataFrame, baseline: str | None = None, protocol: str = "imagenet-c") -> pd.DataFrame:
    """Models ranked by mean transformed top-1 over all non-clean conditions (equal weight each)."""
    shifted = shifted_rows(summary)
    clean = summary.loc[summary["transform"] == "clean"].set_index("model")["top1"].rename("clean_top1")
    means = shifted.groupby("model")[["top1", "drop", "consistency", "ece"]].mean()
    means = means.rename(columns={"top1": "mean_top1", "drop": "mean_drop",
                                  "consistency": "mean_consistency", "ece": "mean_ece"})
    ce = corruption_errors(summary, baseline).groupby("model")[["ce", "relative_ce"]].mean()
    published = alexnet_mce(summary, protocol).set_index("model")[["mce_alexnet", "relative_mce_alexnet"]]
    out = pd.concat([clean, means, ce.rename(columns={"ce": "mce", "relative_ce": "relative_mce"}), published], axis=1)
    out.index.name = "model"
    out = out.reset_index().sort_values("mean_top1", ascending=False, na_position="last", kind="stable")
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out.reset_index(drop=True)


def real_accuracy(records: pd.DataFrame, labels: list[list[int]]) -> pd.DataFrame:
    """Top-1 against multi-label sets (ImageNet ReaL): right when the prediction is in the photo's set.

    Photos are found by their val file name; photos with an empty set (or not val-numbered) are left
    out, as the paper does. Per (model, transform, severity): `real` (percent) and `real_n`.
    """
    index = records["image_id"].map(val_index)
    sets = index.map(lambda i: labels[int(i)] if i is not None and not pd.isna(i) and int(i) < len(labels) else [])
    counted = sets.map(len) > 0
    right = [int(p) in s for p, s in zip(records["top1"], sets)]
    frame = records.loc[:, CONDITION_KEYS].assign(right=np.array(right, dtype=float))[counted.to_numpy()]
    grouped = frame.groupby(CONDITION_KEYS, sort=False)["right"]
    return pd.DataFrame({"real": 100 * grouped.mean(), "real_n": grouped.size()}).reset_index()
