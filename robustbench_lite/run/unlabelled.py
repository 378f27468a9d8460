"""`estimate`: how well will the models do on a folder of unlabelled photos? (label-free accuracy estimates)

One run folder holds both photo sets, evaluated by the run's own machinery (models, decode,
preprocessing, chunks, resume, skipped photos): the labelled reference photos as `clean` and the
unlabelled folder as one more photo set, condition `unlabelled`. The estimates come from
analysis/accuracy_estimates.py; the folder's labels are never read (every photo is label -1).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import pandas as pd

from ..data.shifts import Shift
from ..data.unlabelled import unlabelled_dataset
from ..errors import UserError
from ..results.manifest import build_manifest, check_resumable, write_manifest
from ..results.store import ChunkStore, read_records
from .allocator import keep_freed_memory
from .config import RunConfig
from .engine import EXIT_INTERRUPTED, EXIT_OK, execute
from .plan import ensure_writable, plan_run
from .timing import StageTimer

TARGET = "unlabelled"  # the condition (and photo-set tag) of the unlabelled folder
ESTIMATES_FILE = "estimates.csv"
RECORD_COLUMNS = ["model", "transform", "severity", "image_id", "top5", "confidence", "correct1"]


@dataclass
class EstimateResult:
    run_dir: Path
    exit_code: int
    estimates: pd.DataFrame | None = None
    skipped: list[dict] | None = None


def default_estimate_dir() -> Path:
    import datetime as _dt

    return Path("results") / f"estimate-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def estimate_folder(folder: str | Path, config: RunConfig, echo: Callable[[str], None] | None = None) -> EstimateResult:
    """Evaluate `config`'s models on its `data` (the labelled reference, clean only) and on `folder`
    (unlabelled); write estimates.csv to `config.out`. Exit code as `run`'s: 0, or 130 when interrupted."""
    from ..analysis.accuracy_estimates import folder_estimates

    echo = echo or (lambda msg: print(msg, file=sys.stderr))
    timer = StageTimer()
    config = replace(config, transforms="none", severities=None, shifts=[], report=False, dry_run=False,
                     out=config.out or str(default_estimate_dir()))
    target = unlabelled_dataset(folder)
    with timer("startup"):
        plan = plan_run(config, echo)
        samples = [replace(s, id=f"{TARGET}/{s.id}") for s in target.samples]
        shift = Shift(TARGET, target.root.resolve(), samples, None,
                      [{**item, "path": f"{TARGET}/{item['path']}"} for item in target.ignored])
        plan = replace(plan, shifts=[shift], ignored=[*plan.ignored, *shift.ignored])
        ensure_writable(plan.run_dir)
        keep_freed_memory()
        from ..models import load_models

        echo(f"loading {len(plan.model_entries)} model(s) on {plan.device}...")
        models = load_models(plan.model_entries, plan.device)
        manifest = build_manifest(plan, models)
        manifest["estimate"] = {"data": str(target.root.resolve()), "reference": plan.config.data}
        check_resumable(plan.run_dir, manifest, force=config.force, echo=echo)
        write_manifest(plan.run_dir, manifest, status="running")
    echo(f"{len(samples)} unlabelled photos of {target.root} + {len(plan.samples)} labelled reference photos of "
         f"{plan.config.data} x {len(models)} models on {plan.device} -> {plan.run_dir}")
    try:
        failed = execute(plan, models, timer, echo)
    except KeyboardInterrupt:
        write_manifest(plan.run_dir, manifest, status="interrupted", timings=timer.as_dict())
        echo(f"interrupted: finished chunks are kept in {plan.run_dir}/chunks; run the same command again to resume")
        return EstimateResult(plan.run_dir, EXIT_INTERRUPTED)
    if failed:  # only a model's NaN logits fail a plain photo set: name it rather than estimate from part of it
        raise UserError("; ".join(f"{f['model']} on {f['transform']}: {f['error']}" for f in failed))
    store = ChunkStore(plan.run_dir)
    with timer("merge"):
        store.merge(plan.run_dir / "records.parquet", plan.config.save_logits)
    skipped = [*(dict(item) for item in plan.ignored), *store.skipped()]
    records = read_records(plan.run_dir, RECORD_COLUMNS)
    names = [m.name for m in models]
    if not (records["transform"] == TARGET).any():
        raise UserError(f"--data {folder}: none of its {len(samples)} photos could be decoded "
                        f"(reasons under 'skipped' in {plan.run_dir / 'manifest.json'})")
    estimates = folder_estimates(records, names, source="clean", target=TARGET)
    estimates.to_csv(plan.run_dir / ESTIMATES_FILE, index=False)
    write_manifest(plan.run_dir, {**manifest, "skipped": skipped, "records": len(records)}, status="complete",
                   timings=timer.as_dict())
    undecodable = store.skipped()
    if undecodable:
        shown = "; ".join(f"{item['path']} ({item['reason']})" for item in undecodable[:10])
        echo(f"skipped {len(undecodable)} undecodable photo(s): {shown}"
             f"{' ...' if len(undecodable) > 10 else ''} (all under 'skipped' in {plan.run_dir / 'manifest.json'})")
    if plan.ignored:
        echo(f"ignored {len(plan.ignored)} file(s) that are not photos (listed in the manifest too)")
    echo(timer.breakdown())
    return EstimateResult(plan.run_dir, EXIT_OK, estimates, skipped)


def estimates_text(estimates: pd.DataFrame, folder: str | Path) -> str:
    """The printed table: a row per model, its reference top-1 and each method's estimate (percent)."""
    table = estimates.pivot_table(index="model", columns="method", values="estimated_top1", sort=False)
    source = estimates.drop_duplicates("model").set_index("model")
    table.insert(0, "source_top1", source["source_top1"])
    table.columns.name, table.index.name = None, None
    n, n_source = int(estimates["n_photos"].max()), int(estimates["source_n_photos"].max())
    return (f"estimated top-1 (%) on {n} unlabelled photos of {folder}, from {n_source} labelled reference photos "
            f"(source_top1: measured there):\n" + table.round(1).to_string())
