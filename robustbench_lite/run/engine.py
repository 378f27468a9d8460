"""The run: plan, evaluate every pending cell (resuming what exists), merge the records, report.

Decode once per geometry, transform once per condition, feed every model of the group.
"""
from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..data.decode import RELEASE_GEOMETRY, DecodeDataset, collate_decoded
from ..data.device_decode import JpegBytesDataset, collate_raw, decode_block, resolve_decode
from ..data.readable import no_photo_decoded
from ..errors import UserError
from ..models import LoadedModel, load_models
from ..results.manifest import build_manifest, check_resumable, write_manifest
from ..results.records import record_schema
from ..results.store import ChunkStore, cells_of
from . import distributed as dist
from .allocator import keep_freed_memory
from .config import RunConfig
from .evaluate import BlockEvaluator, ModelGroup, group_models
from .plan import (PhotoSet, Plan, batch_size_of, blocks_of, default_workers, ensure_writable, idle_rank_warning, pending_work, plan_run,
                   release_work, relevant_chunks)
from .prefetch import prefetch_blocks
from .timing import StageTimer

EXIT_OK, EXIT_FAILED_CONDITIONS, EXIT_INTERRUPTED = 0, 3, 130  # user errors (2) are UserError


@dataclass
class RunResult:
    run_dir: object
    exit_code: int
    summary: object = None  # pandas DataFrame when the run finished
    failed: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)


def _install_sigterm() -> Callable[[], None]:
    """Treat SIGTERM (pre-emption) like Ctrl-C: stop cleanly, keep finished chunks."""
    import threading

    if threading.current_thread() is not threading.main_thread():  # signals go to the main thread only
        return lambda: None

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def ignore_interrupts(worker_id: int) -> None:
    """Decode workers leave Ctrl-C and SIGTERM to the main process, which stops them cleanly.

    A worker killed by the signal sent to the whole process group would otherwise make the main
    process fail with "DataLoader worker killed by signal" (exit 1) instead of stopping with 130.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.excepthook = _quiet_on_hang_up(sys.excepthook)


def _quiet_on_hang_up(previous):
    """A worker's fd-sharing thread (multiprocessing.resource_sharer) reports through sys.excepthook;
    when Ctrl-C stops the main process mid-handshake it sees "connection reset": not an error to print."""
    def hook(kind, value, traceback):
        if not issubclass(kind, (ConnectionResetError, BrokenPipeError)):
            previous(kind, value, traceback)

    return hook


def execute(plan: Plan, models: list[LoadedModel], timer: StageTimer, echo: Callable[[str], None]) -> list[dict]:
    """Evaluate every pending cell on this rank's blocks of every photo set; returns the failed cells.

    Undecodable photos are recorded per block in the chunk store (read back by `finalize`).
    """
    from tqdm.auto import tqdm

    config = plan.config
    store = ChunkStore(plan.run_dir)
    chunks = store.chunks()
    if store.set_aside:
        echo(f"set aside {len(store.set_aside)} unreadable chunk(s) as *.unreadable in {store.dir}; their cells run again")
    idle = idle_rank_warning(len(plan.samples), config.chunk_size, dist.world_size(), dist.rank())
    if idle:
        echo(idle)
    groups = group_models(models)
    done, names = cells_of(chunks), [m.name for m in models]
    passes = []  # (photo set, its blocks, its pending work on this rank's blocks)
    present = 0
    for photos in plan.photo_sets:
        blocks = blocks_of(photos.samples, config.chunk_size)
        mine = [b for b in range(len(blocks)) if b % dist.world_size() == dist.rank()]
        passes.append((photos, blocks, pending_work(groups, mine, photos.conditions, done)))
        present += len(relevant_chunks(chunks, mine, photos.conditions, names))
    total = sum(len(blocks[b]) * len(n) for _, blocks, work in passes for _, b, p in work for n in p.values())
    if present:
        needed = present + sum(len(p) for _, _, work in passes for _, _, p in work)  # a chunk per (group, block, condition)
        echo(f"resuming: {present} of {needed} chunks already done")
    failed: dict = {}
    workers = config.workers if config.workers is not None else default_workers(plan.device)
    desc = f"rank {dist.rank()}" if dist.active() else "evaluating"
    bar = tqdm(total=total, unit="img", desc=desc, disable=total == 0, dynamic_ncols=True, mininterval=1.0)
    batch_size = batch_size_of(config, plan.device)
    with bar, torch.inference_mode():
        for group in groups:
            evaluator = None  # one per group: its batch size is probed once for every photo set
            for photos, blocks, work in passes:
                todo = [(b, {c: n for c, n in p.items() if c.transform not in plan.release}) for g, b, p in work if g is group]
                todo = [(b, p) for b, p in todo if p]
                if not todo:
                    continue
                evaluator = evaluator or BlockEvaluator(plan, group, store, timer, bar, batch_size)
                _run_pass(plan, photos, todo, group.geometry, evaluator, blocks, workers)
            if evaluator is not None:
                failed.update(evaluator.failed)
                plan.batch_sizes[group.geometry.key] = evaluator.batch_size
        photos, blocks, work = passes[0]  # the run's own data: the only set with transforms
        if plan.release:  # the imagenet-c protocol: one decode and one corruption per photo for every model
            release = release_work(work, plan.release)
            if release:
                evaluator = BlockEvaluator(plan, ModelGroup(RELEASE_GEOMETRY, models), store, timer, bar, batch_size,
                                           release=True)
                _run_pass(plan, photos, release, RELEASE_GEOMETRY, evaluator, blocks, workers)
                failed.update(evaluator.failed)
                plan.batch_sizes[f"release-{RELEASE_GEOMETRY.key}"] = evaluator.batch_size
    from .stability import run_stability

    sequences = run_stability(plan, models, store, timer, batch_size, workers, _run_pass, echo)  # --stability
    return [{"model": m, "transform": t, "severity": s, "error": e} for (t, s, m), e in failed.items()] + sequences


def _run_pass(plan: Plan, photos: PhotoSet, todo: list, geometry, evaluator: BlockEvaluator, blocks: list[list[int]],
              workers: int) -> None:
    """Decode the pending blocks of a photo set at `geometry` and evaluate their pending (condition, model) cells.

    The next blocks are read, decoded and copied while this one computes (`prefetch_blocks`).
    """
    store, bar, timer, config = evaluator.store, evaluator.progress, evaluator.timer, plan.config
    samples_of = photos.samples
    on_device = resolve_decode(config.decode, plan.device) == "device"
    loader = torch.utils.data.DataLoader(
        (JpegBytesDataset if on_device else DecodeDataset)(samples_of, geometry),
        batch_sampler=[blocks[b] for b, _ in todo],
        collate_fn=collate_raw if on_device else collate_decoded,
        num_workers=workers,
        pin_memory=plan.device.type == "cuda",
        prefetch_factor=2 if workers else None,
        persistent_workers=False,
        worker_init_fn=ignore_interrupts,
    )
    if on_device:
        finish = lambda raw: decode_block(raw, samples_of, geometry, plan.device)
    else:
        finish = lambda batch: (batch[0], batch[1].to(plan.device, non_blocking=True), batch[2])
    stream = prefetch_blocks(iter(loader), finish, plan.device)
    try:
        for b, pending in todo:
            with timer("decode"):
                indices, pixels, bad = next(stream)
            if bad:
                reasons = [{"path": samples_of[i].id, "reason": r} for i, r in bad]
                store.write_skipped(b, reasons, part=photos.tag)
                if config.strict:
                    raise UserError(f"--strict: cannot decode {reasons[0]['path']}: {reasons[0]['reason']}")
                bar.update(len(bad) * sum(len(n) for n in pending.values()))
            samples = [samples_of[i] for i in indices.tolist()]
            if samples:
                evaluator.run_block(b, samples, pixels, pending, photos.logit_classes, photos.merged)
            else:  # every photo of the block undecodable: mark its cells done, with no rows
                for c, names in pending.items():
                    store.write(b, c.transform, c.severity, record_schema(config.save_logits).empty_table(), models=names)
    finally:
        stream.close()  # stops the feeder thread of a pass cut short


def _start(plan: Plan, echo: Callable[[str], None]) -> tuple[list[LoadedModel], dict]:
    """Process set-up, models loaded, the manifest checked against the folder's and written as running."""
    config = plan.config
    ensure_writable(plan.run_dir)
    dist.init()
    keep_freed_memory()
    if plan.device.type == "cuda":  # fp32 means fp32, not TF32: the transforms always, the model unless autocast
        torch.backends.cudnn.allow_tf32 = False  # (cuDNN's default is TF32: blur and elastic kernels would round)
        torch.backends.cuda.matmul.allow_tf32 = False
    echo(f"loading {len(plan.model_entries)} model(s) on {plan.device}...")
    models = load_models(plan.model_entries, plan.device)
    if config.compile:
        for m in models:
            m.module = torch.compile(m.module)
    manifest = build_manifest(plan, models)
    from .stability import stability_manifest

    manifest.update({"stability": stability_manifest(config.stability)} if config.stability else {})
    if dist.rank() == 0:
        check_resumable(plan.run_dir, manifest, force=config.force, echo=echo)
    dist.barrier()
    if dist.rank() == 0:
        write_manifest(plan.run_dir, manifest, status="running")
    return models, manifest


def run_benchmark(config: RunConfig, echo: Callable[[str], None] | None = None) -> RunResult:
    """Plan, evaluate (resuming what exists), merge records, summarise, report."""
    echo = echo or (lambda msg: print(msg, file=sys.stderr))
    timer = StageTimer()
    with timer("startup"):
        plan = plan_run(config, echo)
        if config.dry_run:
            from .dry_run import dry_run

            dry_run(plan, echo, startup_seconds=time.perf_counter() - timer.started)  # UserError: a model cannot be had
            return RunResult(plan.run_dir, EXIT_OK)
        restore_sigterm = _install_sigterm()
        try:
            models, manifest = _start(plan, echo)
        except BaseException:
            restore_sigterm()
            raise
    shifts = "".join(f" + {len(p.samples)} photos of {p.tag}" for p in plan.photo_sets[1:])
    echo(f"{len(plan.samples)} photos x {len(plan.conditions)} conditions{shifts} x {len(models)} models on {plan.device} "
         f"-> {plan.run_dir}")
    try:
        failed = execute(plan, models, timer, echo)
    except KeyboardInterrupt:
        if dist.rank() == 0:
            write_manifest(plan.run_dir, manifest, status="interrupted", timings=timer.as_dict())
        echo(f"interrupted: finished chunks are kept in {plan.run_dir}/chunks; run the same command again to resume")
        return RunResult(plan.run_dir, EXIT_INTERRUPTED)
    finally:
        restore_sigterm()
    try:
        failed = dist.gather_lists(failed)
        if dist.rank() != 0:
            dist.barrier()  # rank 0's finalize ends with the matching barrier
            return RunResult(plan.run_dir, EXIT_FAILED_CONDITIONS if failed else EXIT_OK, failed=failed)
        return finalize(plan, models, manifest, timer, failed, echo)
    finally:
        dist.shutdown()


def finalize(plan: Plan, models: list[LoadedModel], manifest: dict, timer: StageTimer, failed: list[dict], echo) -> RunResult:
    """Merge chunks into records.parquet, write summary, report and the finished manifest; rank 0 only."""
    store = ChunkStore(plan.run_dir)
    skipped = [*(dict(item) for item in plan.ignored), *store.skipped()]
    with timer("merge"):
        failed_cells = [(f["transform"], f["severity"], f["model"]) for f in failed]
        rows = store.merge(plan.run_dir / "records.parquet", plan.config.save_logits, exclude=failed_cells)
    problem = no_photo_decoded(f"--data {plan.config.data}", store.skipped(), rows, failed)
    if problem:  # nothing to report on: the manifest says what happened and lists every skipped file
        problem += f"; each skipped file and its reason are under 'skipped' in {plan.run_dir / 'manifest.json'}"
        write_manifest(plan.run_dir, {**manifest, "skipped": skipped, "failed": failed, "records": 0, "error": problem},
                       status="failed", timings=timer.as_dict())
        dist.barrier()
        raise UserError(problem)
    finished = {**manifest, "status": "complete", "skipped": skipped, "failed": failed, "records": rows,
                "batch_sizes": plan.batch_sizes}
    if plan.config.report:
        echo("writing the report (tables, plots, example grid)...")
    try:
        with timer("report"):
            summary = _summarise(plan, models, finished)
    finally:  # the records are complete whatever the report does: one write, with every stage's time
        write_manifest(plan.run_dir, finished, status="complete", timings=timer.as_dict())
    dist.barrier()
    for f in failed:
        echo(f"failed: {f['model']} on {f['transform']}@{f['severity']}: {f['error']}")
    undecodable = store.skipped()
    if undecodable:
        echo(f"skipped {len(undecodable)} undecodable photo(s); reasons under 'skipped' in {plan.run_dir / 'manifest.json'}")
    if plan.ignored:
        echo(f"ignored {len(plan.ignored)} file(s) that are not photos (listed in the manifest too)")
    echo(timer.breakdown())
    echo(f"results: {plan.run_dir}")
    return RunResult(plan.run_dir, EXIT_FAILED_CONDITIONS if failed else EXIT_OK, summary, failed, skipped)


def _summarise(plan: Plan, models: list[LoadedModel], manifest: dict):
    """summary.csv always; with the report on, the example grid and every table, plot and report file."""
    from ..analysis.tables import analyse, load_runs, write_summary

    data = load_runs([plan.run_dir], manifests=[manifest])
    if not plan.config.report:
        return write_summary(data, plan.run_dir, baseline=plan.config.baseline)
    from ..conditions.keys import parse_severities
    from ..report.document import render_report
    from ..report.preview import start_run_examples

    examples = start_run_examples(plan.run_dir / "plots" / "examples.png", plan.samples, models[0].geometry,
                                  plan.transforms, parse_severities(plan.config.severities), plan.config.seed,
                                  conditions={(c.transform, c.severity) for c in plan.conditions}) \
        if plan.transforms else None  # drawn while the tables and figures are made
    result = analyse(data, plan.config.baseline)
    render_report(result, plan.run_dir, examples=examples)
    return result.summary
