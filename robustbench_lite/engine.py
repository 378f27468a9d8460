"""The run: decode once per geometry, transform once per condition, feed every model of the group."""
from __future__ import annotations

import datetime as _dt
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa
import torch

from . import distributed
from .allocator import keep_freed_memory
from .config import RunConfig
from .data import Sample, open_dataset, parse_classes, select_samples
from .decode import DecodeDataset, Geometry, collate_decoded
from .errors import ConditionFailed, UserError
from .manifest import build_manifest, check_resumable, fingerprint_samples, write_manifest
from .models import LoadedModel, ModelSpec, load_model, resolve_models
from .registry import Condition, TransformSpec, build_conditions, parse_severities, select_transforms
from .rng import PhotoRNG, photo_seed
from .store import ChunkStore, cells_of, record_schema
from .timing import StageTimer

EXIT_OK, EXIT_FAILED_CONDITIONS, EXIT_INTERRUPTED = 0, 3, 130  # user errors (2) are UserError


@dataclass
class Plan:
    """Everything resolved before any weights load: what will run, where, on what."""

    config: RunConfig
    device: torch.device
    run_dir: Path
    samples: list[Sample]
    dataset_info: dict
    ignored: list[dict]
    specs: list[TransformSpec]
    conditions: list[Condition]
    model_specs: list[ModelSpec]
    batch_sizes: dict[str, int] = field(default_factory=dict)  # per geometry, as run (after any back-off)


@dataclass
class RunResult:
    run_dir: Path
    exit_code: int
    summary: object = None  # pandas DataFrame when the run finished
    failed: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)


def resolve_device(text: str) -> torch.device:
    """`auto` -> the rank's CUDA device when there is one, else CPU."""
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", distributed.local_rank() % torch.cuda.device_count())
        return torch.device("cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise UserError(f"--device {text!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {text}: CUDA is not available on this machine (use --device cpu)")
    return device


def default_run_dir() -> Path:
    return Path("results") / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def ensure_writable(run_dir: Path) -> None:
    """Fail before any work when the output folder cannot be written."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"  # one per process: torchrun ranks check at once
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"--out {run_dir}: not writable ({exc.strerror or exc})") from None


def plan_run(config: RunConfig) -> Plan:
    """Resolve data, transforms, models and device; load plug-ins the user named."""
    from .plugins import load_plugins

    load_plugins(files=config.plugin, dirs=config.plugin_dir)
    specs = select_transforms(config.transforms)
    conditions = build_conditions(specs, parse_severities(config.severities))
    dataset = open_dataset(config.data)
    samples = select_samples(dataset, config.limit, parse_classes(config.classes))
    model_specs = resolve_models(config.models)
    device = resolve_device(config.device)
    run_dir = Path(config.out) if config.out else default_run_dir()
    info = {
        "root": str(dataset.root),
        "layout": dataset.layout,
        "fingerprint": fingerprint_samples(samples),
        "n_samples": len(samples),
        "n_classes": len({s.label for s in samples}),
    }
    return Plan(config, device, run_dir, samples, info, dataset.ignored, specs, conditions, model_specs)


def _batch_size(config: RunConfig, device: torch.device) -> int | None:
    """A number, or None for `auto` on CUDA (probed per group)."""
    if config.batch_size == "auto":
        return None if device.type == "cuda" else 32
    try:
        size = int(config.batch_size)
    except ValueError:
        raise UserError(f"--batch-size {config.batch_size!r}: a positive number or auto") from None
    if size < 1:
        raise UserError("--batch-size must be at least 1")
    return size


def _autocast(device: torch.device, precision: str):
    if device.type != "cuda" or precision == "fp32":
        return torch.autocast(device_type=device.type, enabled=False)
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


class Group:
    """Models sharing one input geometry: they share decoded and transformed batches."""

    def __init__(self, geometry: Geometry, models: list[LoadedModel], device: torch.device):
        self.geometry = geometry
        self.models = models
        # normalisation (x - mean) / std as one fused x * scale + bias
        self.scale = {m.name: 1 / torch.tensor(m.std, device=device).view(1, 3, 1, 1) for m in models}
        self.bias = {m.name: -torch.tensor(m.mean, device=device).view(1, 3, 1, 1) * self.scale[m.name] for m in models}
        self.forward = {m.name: m.module for m in models}


def group_models(models: Sequence[LoadedModel], device: torch.device) -> list[Group]:
    by_geometry: dict[Geometry, list[LoadedModel]] = {}
    for m in models:
        by_geometry.setdefault(m.geometry, []).append(m)
    return [Group(g, ms, device) for g, ms in by_geometry.items()]


def check_transform_output(x: torch.Tensor, out, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A transform must return a finite float tensor of the input's shape, in [0, 1].

    Shape and dtype are checked now; values are summarised on the device as (min, max)
    and checked once per chunk (`check_values`), so the GPU is never stalled batch by batch.
    """
    if not isinstance(out, torch.Tensor):
        raise ConditionFailed(f"transform {name} returned {type(out).__name__}, not a tensor")
    if out.shape != x.shape:
        raise ConditionFailed(f"transform {name} returned shape {tuple(out.shape)}, expected {tuple(x.shape)}")
    if out.dtype != x.dtype:
        raise ConditionFailed(f"transform {name} returned dtype {out.dtype}, expected {x.dtype}")
    lo, hi = torch.aminmax(out)  # NaN propagates and inf is kept: one pass says all
    return out.clamp(0.0, 1.0), torch.stack([lo, hi])


def check_values(summaries: list[torch.Tensor], name: str) -> None:
    """Raise ConditionFailed if any batch of a transform's output was non-finite or outside [0, 1]."""
    if not summaries:
        return
    lo, hi = torch.stack(summaries).cpu().unbind(1)
    if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        raise ConditionFailed(f"transform {name} returned NaN or infinite values")
    if lo.min() < -1e-3 or hi.max() > 1 + 1e-3:
        raise ConditionFailed(f"transform {name} returned values outside [0, 1] ({lo.min():.3g} to {hi.max():.3g})")


def batch_outputs(logits: torch.Tensor, labels: torch.Tensor, class_mask: torch.Tensor | None, save_logits: bool) -> dict[str, torch.Tensor]:
    """What records keep of one batch's logits, still on the device (no synchronisation)."""
    logits = logits.float()
    masked = logits if class_mask is None else logits.masked_fill(~class_mask, float("-inf"))
    probs = masked.softmax(dim=1)
    top5_prob, top5 = probs.topk(5, dim=1)
    out = {
        "top5": top5.to(torch.int16),
        "top5_prob": top5_prob,
        "label_prob": probs.gather(1, labels.view(-1, 1)).squeeze(1),
        "nonfinite": (~torch.isfinite(logits).all()).view(1),
    }
    if save_logits:
        out["logits"] = logits.to(torch.float16)
    return out


def to_host(parts: list[dict[str, torch.Tensor]]) -> dict[str, np.ndarray]:
    """Concatenate a chunk's batch outputs and copy them to the host, one transfer per field."""
    return {key: torch.cat([p[key] for p in parts]).cpu().numpy() for key in parts[0]}


def records_table(model: str, condition: Condition, ids: Sequence[str], labels: np.ndarray, host: dict[str, np.ndarray]) -> pa.Table:
    """Records of one chunk for one model, as an Arrow table."""
    n = len(ids)
    top5 = host["top5"]
    hit = top5 == labels.reshape(-1, 1)
    top5_prob = host["top5_prob"].astype(np.float32)
    columns = {
        "model": pa.array([model] * n, pa.string()),
        "transform": pa.array([condition.transform] * n, pa.string()),
        "severity": pa.array(np.full(n, condition.severity, np.int16)),
        "image_id": pa.array(list(ids), pa.string()),
        "label": pa.array(labels.astype(np.int16)),
        "top5": pa.FixedSizeListArray.from_arrays(pa.array(top5.reshape(-1)), 5),
        "top5_prob": pa.FixedSizeListArray.from_arrays(pa.array(top5_prob.reshape(-1)), 5),
        "label_prob": pa.array(host["label_prob"].astype(np.float32)),
        "confidence": pa.array(top5_prob[:, 0]),
        "correct1": pa.array(hit[:, 0]),
        "correct5": pa.array(hit.any(axis=1)),
    }
    if "logits" in host:
        flat = host["logits"]
        columns["logits"] = pa.ListArray.from_arrays(
            pa.array(np.arange(0, flat.size + 1, flat.shape[1], dtype=np.int32)), pa.array(flat.reshape(-1))
        )
    return pa.table(columns, schema=record_schema("logits" in host))


class Evaluator:
    """Runs pending (block, condition, model) cells of one group, writing a chunk per (block, condition)."""

    def __init__(self, plan: Plan, group: Group, store: ChunkStore, timer: StageTimer, progress, batch_size: int | None):
        self.plan = plan
        self.config = plan.config
        self.device = plan.device
        self.group = group
        self.store = store
        self.timer = timer
        self.progress = progress
        self.batch_size = batch_size or probe_batch_size(group, plan.device, plan.config.precision, start=plan.config.chunk_size)
        self.spec_by_name = {s.name: s for s in plan.specs}
        self.failed: dict[tuple[str, int, str], str] = {}
        self.class_mask = None
        if self.config.restrict_logits:
            mask = torch.zeros(1000, dtype=torch.bool, device=self.device)
            mask[sorted({s.label for s in plan.samples})] = True
            self.class_mask = mask

    def transform(self, x: torch.Tensor, condition: Condition, ids: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The transformed batch and its on-device value summary (None for clean)."""
        if condition.is_clean:
            return x, None
        spec = self.spec_by_name[condition.transform]
        seeds = [photo_seed(self.config.seed, spec.name, condition.severity, i) for i in ids]
        rng = PhotoRNG(seeds, self.device)
        try:
            out = spec(x, condition.level, rng)
        except (ConditionFailed, torch.cuda.OutOfMemoryError):  # out of memory: the batch backs off
            raise
        except (Exception, SystemExit) as exc:  # a plug-in calling sys.exit() fails its condition, not the run
            raise ConditionFailed(f"transform {spec.name} raised {type(exc).__name__}: {exc}") from None
        return check_transform_output(x, out, spec.name)

    def forward(self, model: LoadedModel, x: torch.Tensor) -> torch.Tensor:
        """Normalise a channels_last batch for `model` (one fused op) and run it."""
        z = torch.addcmul(self.group.bias[model.name], x, self.group.scale[model.name])
        with _autocast(self.device, self.config.precision):
            return self.group.forward[model.name](z)

    def run_block(self, block: int, samples: Sequence[Sample], pixels: torch.Tensor, pending: dict[Condition, list[str]]) -> None:
        """Evaluate every pending condition x model on one decoded block, one chunk per condition.

        Results stay on the device until the chunk is complete: one synchronisation per chunk.
        """
        ids = [s.id for s in samples]
        labels_host = np.array([s.label for s in samples], dtype=np.int64)
        labels = torch.from_numpy(labels_host).to(self.device)
        models = {m.name: m for m in self.group.models}
        for condition, model_names in pending.items():
            names = [n for n in model_names if (condition.transform, condition.severity, n) not in self.failed]
            if not names:
                continue
            outputs: dict[str, list] = {n: [] for n in names}
            summaries: list[torch.Tensor] = []
            start = 0
            try:
                while start < len(ids):
                    stop = min(start + self.batch_size, len(ids))
                    try:
                        with self.timer("transform"):
                            x, summary = self.transform(pixels[start:stop].float().div_(255.0), condition, ids[start:stop])
                        with self.timer("forward"):
                            x = x.contiguous(memory_format=torch.channels_last)  # once for every model of the group
                            batch = [batch_outputs(self.forward(models[n], x), labels[start:stop], self.class_mask, self.config.save_logits) for n in names]
                    except torch.cuda.OutOfMemoryError:
                        if self.batch_size == 1:
                            raise
                        self.batch_size = max(1, self.batch_size // 2)
                        torch.cuda.empty_cache()
                        continue
                    if summary is not None:
                        summaries.append(summary)
                    for n, out in zip(names, batch):
                        outputs[n].append(out)
                    self.progress.update((stop - start) * len(names))
                    start = stop
                with self.timer("records"):
                    check_values(summaries, condition.transform)
                    tables = []
                    for n in names:
                        host = to_host(outputs[n])
                        if host.pop("nonfinite").any():
                            self.failed[(condition.transform, condition.severity, n)] = f"model {n} produced NaN or infinite logits"
                            continue
                        tables.append(records_table(n, condition, ids, labels_host, host))
                    if tables:
                        self.store.write(block, condition.transform, condition.severity, pa.concat_tables(tables))
            except ConditionFailed as exc:
                for n in names:
                    self.failed[(condition.transform, condition.severity, n)] = str(exc)
                self.progress.update((len(ids) - start) * len(names))


def probe_batch_size(group: Group, device: torch.device, precision: str, start: int = 256) -> int:
    """Largest batch (<= start, the chunk size: no batch spans two chunks) every model of the group
    can run; halves on out-of-memory."""
    size = start
    h, w = group.geometry.input_size
    while size > 1:
        try:
            x = torch.rand(size, 3, h, w, device=device)
            with torch.inference_mode(), _autocast(device, precision):
                for m in group.models:
                    m.module(x.contiguous(memory_format=torch.channels_last))
            torch.cuda.synchronize(device)
            del x
            torch.cuda.empty_cache()
            return size
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            size //= 2
    return 1


def blocks_of(samples: Sequence[Sample], chunk_size: int) -> list[list[int]]:
    """Global, rank-independent blocks of sample indices: the unit of records and of resume."""
    return [list(range(i, min(i + chunk_size, len(samples)))) for i in range(0, len(samples), chunk_size)]


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


def default_workers(device: torch.device) -> int:
    """Decode workers: overlap on GPU; on a small CPU the model needs every core."""
    cpus = os.cpu_count() or 1
    if device.type == "cuda":
        return max(1, min(8, cpus - 1))
    return 0 if cpus <= 2 else min(4, cpus // 2)


def relevant_chunks(chunks: list[dict], blocks: Sequence[int], conditions: Sequence[Condition], models: Sequence[LoadedModel]) -> list[dict]:
    """Chunks on disk holding cells this run needs (its blocks, conditions and models)."""
    blocks, names = set(blocks), {m.name for m in models}
    wanted = {(c.transform, c.severity) for c in conditions}
    return [c for c in chunks if c["block"] in blocks and (c["transform"], c["severity"]) in wanted and names & set(c["models"])]


def pending_work(groups: Sequence[Group], blocks: Sequence[int], conditions: Sequence[Condition], done: set) -> list[tuple[Group, int, dict[Condition, list[str]]]]:
    """(group, block, {condition: models still to run}) for every block with anything left to do."""
    work = []
    for group in groups:
        for b in blocks:
            pending = {}
            for c in conditions:
                names = [m.name for m in group.models if (b, c.transform, c.severity, m.name) not in done]
                if names:
                    pending[c] = names
            if pending:
                work.append((group, b, pending))
    return work


def execute(plan: Plan, models: list[LoadedModel], timer: StageTimer, echo: Callable[[str], None]) -> list[dict]:
    """Evaluate every pending cell on this rank's blocks; returns the failed cells.

    Undecodable photos are recorded per block in the chunk store (read back by `finalize`).
    """
    from tqdm.auto import tqdm

    config = plan.config
    store = ChunkStore(plan.run_dir)
    chunks = store.chunks()
    if store.set_aside:
        echo(f"set aside {len(store.set_aside)} unreadable chunk(s) as *.unreadable in {store.dir}; their cells run again")
    done = cells_of(chunks)
    blocks = blocks_of(plan.samples, config.chunk_size)
    mine = [b for b in range(len(blocks)) if b % distributed.world_size() == distributed.rank()]
    groups = group_models(models, plan.device)
    work = pending_work(groups, mine, plan.conditions, done)
    total = sum(len(blocks[b]) * len(names) for _, b, p in work for names in p.values())
    present = len(relevant_chunks(chunks, mine, plan.conditions, models))
    if present:
        needed = present + sum(len(p) for _, _, p in work)  # each pending (group, block, condition) writes one chunk
        echo(f"resuming: {present} of {needed} chunks already done")
    failed: dict = {}
    batch_sizes = plan.batch_sizes
    workers = config.workers if config.workers is not None else default_workers(plan.device)
    desc = f"rank {distributed.rank()}" if distributed.active() else "evaluating"
    bar = tqdm(total=total, unit="img", unit_scale=True, desc=desc, disable=total == 0, dynamic_ncols=True, mininterval=1.0)
    batch_size = _batch_size(config, plan.device)
    with bar, torch.inference_mode():
        for group in groups:
            todo = [(b, p) for g, b, p in work if g is group]
            if not todo:
                continue
            evaluator = Evaluator(plan, group, store, timer, bar, batch_size)
            loader = torch.utils.data.DataLoader(
                DecodeDataset(plan.samples, group.geometry),
                batch_sampler=[blocks[b] for b, _ in todo],
                collate_fn=collate_decoded,
                num_workers=workers,
                pin_memory=plan.device.type == "cuda",
                prefetch_factor=2 if workers else None,
                persistent_workers=False,
                worker_init_fn=ignore_interrupts,
            )
            stream = iter(loader)
            for b, pending in todo:
                with timer("decode"):
                    indices, pixels, bad = next(stream)
                    pixels = pixels.to(plan.device, non_blocking=True)
                if bad:
                    reasons = [{"path": plan.samples[i].id, "reason": r} for i, r in bad]
                    store.write_skipped(b, reasons)
                    if config.strict:
                        raise UserError(f"--strict: cannot decode {reasons[0]['path']}: {reasons[0]['reason']}")
                    bar.update(len(bad) * sum(len(n) for n in pending.values()))
                samples = [plan.samples[i] for i in indices.tolist()]
                if samples:
                    evaluator.run_block(b, samples, pixels, pending)
                else:  # every photo of the block undecodable: mark its cells done, with no rows
                    for c, names in pending.items():
                        store.write(b, c.transform, c.severity, record_schema(config.save_logits).empty_table(), models=names)
            failed.update(evaluator.failed)
            batch_sizes[group.geometry.key] = evaluator.batch_size
    failed_rows = [{"model": m, "transform": t, "severity": s, "error": e} for (t, s, m), e in failed.items()]
    return failed_rows


def run_benchmark(config: RunConfig, echo: Callable[[str], None] | None = None) -> RunResult:
    """Plan, evaluate (resuming what exists), merge records, summarise, report."""
    echo = echo or (lambda msg: print(msg, file=sys.stderr))
    timer = StageTimer()
    with timer("startup"):
        plan = plan_run(config)
        if config.dry_run:
            from .estimate import describe_plan

            echo(describe_plan(plan))
            return RunResult(plan.run_dir, EXIT_OK)
        ensure_writable(plan.run_dir)
        distributed.init()
        restore_sigterm = _install_sigterm()
        keep_freed_memory()
        if plan.device.type == "cuda" and config.precision == "fp32":  # fp32 means fp32, not TF32
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        models = [load_model(s, plan.device) for s in plan.model_specs]
        if config.compile:
            for m in models:
                m.module = torch.compile(m.module)
        manifest = build_manifest(plan, models)
        if distributed.rank() == 0:
            check_resumable(plan.run_dir, manifest, force=config.force, echo=echo)
        distributed.barrier()
        if distributed.rank() == 0:
            write_manifest(plan.run_dir, manifest, status="running")
    echo(f"{len(plan.samples)} photos x {len(plan.conditions)} conditions x {len(models)} models on {plan.device} -> {plan.run_dir}")
    try:
        failed = execute(plan, models, timer, echo)
    except KeyboardInterrupt:
        if distributed.rank() == 0:
            write_manifest(plan.run_dir, manifest, status="interrupted", timings=timer.as_dict())
        echo(f"interrupted: finished chunks are kept in {plan.run_dir}/chunks; run the same command again to resume")
        return RunResult(plan.run_dir, EXIT_INTERRUPTED)
    finally:
        restore_sigterm()
    try:
        failed = distributed.gather_lists(failed)
        if distributed.rank() != 0:
            distributed.barrier()  # rank 0's finalize ends with the matching barrier
            return RunResult(plan.run_dir, EXIT_FAILED_CONDITIONS if failed else EXIT_OK, failed=failed)
        return finalize(plan, models, manifest, timer, failed, echo)
    finally:
        distributed.shutdown()


def finalize(plan: Plan, models: list[LoadedModel], manifest: dict, timer: StageTimer, failed: list[dict], echo) -> RunResult:
    """Merge chunks into records.parquet, write summary/report/manifest; rank 0 only."""
    from .analysis import summarize_run

    store = ChunkStore(plan.run_dir)
    skipped = [*(dict(item) for item in plan.ignored), *store.skipped()]
    with timer("merge"):
        failed_cells = [(f["transform"], f["severity"], f["model"]) for f in failed]
        rows = store.merge(plan.run_dir / "records.parquet", plan.config.save_logits, exclude=failed_cells)
    manifest.update(skipped=skipped, failed=failed, records=rows, batch_sizes=plan.batch_sizes)
    write_manifest(plan.run_dir, manifest, status="complete", timings=timer.as_dict())
    with timer("report"):
        if plan.config.report and plan.specs:
            from .preview import write_run_examples

            write_run_examples(plan.run_dir / "plots" / "examples.png", plan.samples, models[0].geometry, plan.specs,
                               parse_severities(plan.config.severities), plan.config.seed)
        summary = summarize_run(plan.run_dir, plan.config, report=plan.config.report)
    write_manifest(plan.run_dir, manifest, status="complete", timings=timer.as_dict())
    distributed.barrier()
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

