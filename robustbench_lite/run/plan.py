"""The plan: everything a run resolves before any weights load (photos, conditions, models, device, blocks)."""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..conditions.keys import SHIFT_FAMILY, Condition, build_conditions, parse_severities
from ..conditions.registry import TransformSpec
from ..conditions.selection import pinned_severities, select_transforms
from ..data.datasets import Sample, fingerprint_samples, open_dataset, select_samples
from ..data.device_decode import resolve_decode
from ..data.imagenet import parse_classes, read_real_labels
from ..data.mvh_stimuli import experiment_of
from ..data.readable import check_some_readable
from ..data.shifts import Shift, absolute_spec, counterpart_samples, open_shift, parse_shift_specs
from ..data.sixteen_class import MEMBERS
from ..errors import UserError
from ..models import ModelEntry, parse_resolutions, resolve_models
from .config import RunConfig
from .distributed import local_rank

PROTOCOLS = ("imagenet", "sixteen-class")
CORRUPTION_PROTOCOLS = ("native", "imagenet-c")


@dataclass
class PhotoSet:
    """Photos run under some conditions with one class rule: the run's data, a shift dataset or a counterpart.

    Each set has its own blocks (numbered from 0); its conditions are its own, so its chunks never
    collide with another set's. `tag` names its files of undecodable photos ("" for the run's data).
    """

    tag: str
    samples: list[Sample]
    conditions: list[Condition]
    logit_classes: frozenset[int] | None = None  # logits restricted to these classes (None: all 1,000)
    merged: tuple[tuple[int, ...], ...] | None = None  # ImageNet classes scored as one answer (ObjectNet)


@dataclass
class Plan:
    """What will run, where, on what."""

    config: RunConfig
    device: torch.device
    run_dir: Path
    samples: list[Sample]
    dataset_info: dict
    ignored: list[dict]
    transforms: list[TransformSpec]
    conditions: list[Condition]
    model_entries: list[ModelEntry]
    release: set[str] = field(default_factory=set)  # corruptions run by the imagenet-c protocol's recipe
    batch_sizes: dict[str, int] = field(default_factory=dict)  # per geometry, as run (after any back-off)
    shifts: list[Shift] = field(default_factory=list)  # --shifts: natural-shift datasets, a condition each

    @property
    def photo_sets(self) -> list[PhotoSet]:
        """The run's data under its conditions, then each shift and each 200-class counterpart."""
        restricted = frozenset(s.label for s in self.samples if s.label >= 0) if self.config.restrict_logits else None
        sets = [PhotoSet("", self.samples, self.conditions, restricted)]
        for shift in self.shifts:
            own = frozenset(s.label for s in shift.samples) if self.config.restrict_logits else None
            sets.append(PhotoSet(shift.name, shift.samples, [Condition(shift.name, 0, 0.0)], shift.classes or own,
                                 shift.merged))
        for shift in self.shifts:
            if shift.classes is not None:
                sets.append(PhotoSet(shift.counterpart, counterpart_samples(self.samples, shift.classes, shift.name),
                                     [Condition(shift.counterpart, 0, 0.0)], shift.classes, shift.merged))
        return sets

    def shift_conditions(self) -> list[dict]:
        """The manifest's conditions of the shifts and their counterparts (after the run's own)."""
        rows = [{"transform": s.name, "family": SHIFT_FAMILY, "severity": 0, "level": 0.0,
                 "description": f"the photos of {s.name} as they are"
                                + (f", scored on its {len(s.classes)} classes" if s.classes else ""),
                 "params": {"root": str(s.root), "classes": len(s.classes) if s.classes else 1000}}
                for s in self.shifts]
        rows += [{"transform": s.counterpart, "family": "clean", "severity": 0, "level": 0.0,
                  "description": f"the run's photos of {s.name}'s {len(s.classes)} classes, scored on those classes",
                  "params": {"shift": s.name, "classes": len(s.classes)}}
                 for s in self.shifts if s.classes is not None]
        return rows


def resolve_device(text: str) -> torch.device:
    """`auto` -> the rank's CUDA device when there is one, else CPU."""
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank() % torch.cuda.device_count())
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


def check_severities(specs: Sequence[TransformSpec], severities: Sequence[int] | None, echo: Callable[[str], None]) -> None:
    """A severity no selected transform has is an error; one that only some lack is a warning naming them."""
    if severities is None or not specs:
        return
    graded = [s for s in specs if len(s.levels) > 1]  # single-level transforms run whatever --severities says
    missing = [n for n in severities if graded and all(n > len(s.levels) for s in graded)]
    if missing:
        most = max(len(s.levels) for s in graded)
        raise UserError(f"--severities {','.join(map(str, missing))}: no selected transform has that level "
                        f"(they have at most {most})")
    lacking = sorted({s.name for s in graded for n in severities if n > len(s.levels)})
    if lacking:
        echo(f"warning: {', '.join(lacking)} lack some of --severities {','.join(map(str, severities))}; "
             "they run at the levels they have")


def plan_run(config: RunConfig, echo: Callable[[str], None] = print) -> Plan:
    """Resolve transforms, models, device and data, checking every option before anything heavy runs."""
    from ..conditions.plugins import load_plugins

    load_plugins(files=config.plugin, dirs=config.plugin_dir)
    stimuli = experiment_of(config.data)
    if stimuli is not None:  # model-vs-human's stimuli: already manipulated, 16-class labels, scored 16-class
        if config.protocol != "sixteen-class":
            echo(f"--data {config.data}: model-vs-human's stimuli are scored by their 16-class categories "
                 "(--protocol sixteen-class)")
        config = replace(config, protocol="sixteen-class", transforms=config.transforms or "none")
    from .stability import parse_stability

    parse_stability(config.stability)  # a bad --stability fails now
    specs = select_transforms(config.transforms)
    severities = parse_severities(config.severities)
    pinned = pinned_severities(config.transforms)
    check_severities([s for s in specs if s.name not in pinned], severities, echo)
    conditions = build_conditions(specs, severities, pinned)
    classes = parse_classes(config.classes)
    entries = resolve_models(config.models, parse_resolutions(config.resolutions))
    names = [e.name for e in entries]
    if config.baseline is not None and config.baseline not in names:
        raise UserError(f"--baseline {config.baseline!r} is not one of the run's models ({', '.join(names)})")
    device = resolve_device(config.device)
    batch_size_of(config, device)  # a bad --batch-size fails now, before any photo or weight is read
    resolve_decode(config.decode, device)  # and a bad --decode
    if device.type != "cuda" and config.precision != "fp32":
        echo(f"--precision {config.precision}: autocast is CUDA-only here, so this {device.type} run is fp32 "
             "(and its manifest says so)")
        config = replace(config, precision="fp32")
    if config.corruption_protocol not in CORRUPTION_PROTOCOLS:
        raise UserError(f"--corruption-protocol {config.corruption_protocol!r}: use one of {', '.join(CORRUPTION_PROTOCOLS)}")
    if config.labels is not None:  # checked now; stored absolute so the manifest reproduces the run
        read_real_labels(config.labels)
        if config.labels != "real":
            config = replace(config, labels=str(Path(config.labels).expanduser().resolve()))
    if config.protocol not in PROTOCOLS:
        raise UserError(f"--protocol {config.protocol!r}: use one of {', '.join(PROTOCOLS)}")
    if config.protocol == "sixteen-class" and stimuli is None:  # the 16 categories: only their 207 member classes
        members = {i for indices in MEMBERS.values() for i in indices}
        classes = members if classes is None else classes & members
    dataset = open_dataset(config.data)
    config = replace(config, data=str(dataset.root.resolve()) if Path(config.data).expanduser().exists() else config.data,
                     plugin=[str(Path(p).expanduser().resolve()) for p in config.plugin],
                     plugin_dir=[str(Path(p).expanduser().resolve()) for p in config.plugin_dir])  # the manifest reproduces
    samples = select_samples(dataset, config.limit, classes)
    config = replace(config, shifts=[absolute_spec(spec) for spec in parse_shift_specs(config.shifts)])  # absolute
    shifts = [open_shift(spec, config.limit, classes) for spec in config.shifts]
    check_some_readable(samples, f"--data {config.data}")  # a folder of nothing but unreadable files: stop now
    for shift in shifts:
        check_some_readable(shift.samples, f"--shifts {shift.name}")
    for shift in shifts:
        if shift.classes is not None and not counterpart_samples(samples, shift.classes, shift.name):
            echo(f"warning: no photo of --data is in {shift.name}'s {len(shift.classes)} classes: "
                 f"{shift.counterpart} has no rows to compare {shift.name} with")
    run_dir = Path(config.out) if config.out else default_run_dir()
    info = {
        "root": str(dataset.root),
        "layout": dataset.layout,
        "fingerprint": fingerprint_samples(samples),
        "n_samples": len(samples),
        "n_classes": len({s.category or s.label for s in samples}),  # a stimulus's class is its 16-class category
        "val_structure": has_val_structure(dataset.samples),
    }
    release = {s.name for s in specs if s.family == "corruptions"} if config.corruption_protocol == "imagenet-c" else set()
    ignored = [*dataset.ignored, *(item for shift in shifts for item in shift.ignored)]
    return Plan(config, device, run_dir, samples, info, ignored, specs, conditions, entries, release=release,
                shifts=shifts)


def has_val_structure(samples: Sequence[Sample]) -> bool:
    """Whether a dataset is laid out like ImageNet val: all 1,000 classes, 50 photos each."""
    from collections import Counter

    counts = Counter(s.label for s in samples)
    return len(counts) == 1000 and set(counts.values()) == {50}


def batch_size_of(config: RunConfig, device: torch.device) -> int | None:
    """A number, or None for `auto` on CUDA (probed per model group)."""
    if config.batch_size == "auto":
        return None if device.type == "cuda" else 32
    try:
        size = int(config.batch_size)
    except ValueError:
        raise UserError(f"--batch-size {config.batch_size!r}: a positive number or auto") from None
    if size < 1:
        raise UserError("--batch-size must be at least 1")
    return size


def default_workers(device: torch.device) -> int:
    """Decode workers: overlap on GPU; on a small CPU the model needs every core."""
    cpus = os.cpu_count() or 1
    if device.type == "cuda":
        return max(1, min(8, cpus - 1))
    return 0 if cpus <= 2 else min(4, cpus // 2)


def blocks_of(samples: Sequence[Sample], chunk_size: int) -> list[list[int]]:
    """Global, rank-independent blocks of sample indices: the unit of records and of resume."""
    return [list(range(i, min(i + chunk_size, len(samples)))) for i in range(0, len(samples), chunk_size)]


def idle_rank_warning(n_samples: int, chunk_size: int, world: int, rank: int) -> str | None:
    """A warning for a torchrun rank that gets no chunk (blocks are dealt round-robin), naming the fix."""
    n_blocks = -(-n_samples // chunk_size)
    if world <= 1 or rank < n_blocks:
        return None
    smaller = max(1, n_samples // world)
    return (f"warning: rank {rank} of {world} has no photos: {n_samples} photos make {n_blocks} chunk(s) of "
            f"--chunk-size {chunk_size}; --chunk-size {smaller} gives every rank work")


def relevant_chunks(chunks: list[dict], blocks: Sequence[int], conditions: Sequence[Condition],
                    model_names: Sequence[str]) -> list[dict]:
    """Chunks on disk holding cells this run needs (its blocks, conditions and models)."""
    blocks, names = set(blocks), set(model_names)
    wanted = {(c.transform, c.severity) for c in conditions}
    return [c for c in chunks if c["block"] in blocks and (c["transform"], c["severity"]) in wanted and names & set(c["models"])]


def release_work(work: Sequence, release: set[str]) -> list[tuple[int, dict[Condition, list[str]]]]:
    """The imagenet-c protocol's pending cells, every model group's merged per block: (block, {condition: models})."""
    merged: dict[int, dict[Condition, list[str]]] = {}
    for _, block, pending in work:
        for condition, names in pending.items():
            if condition.transform in release:
                merged.setdefault(block, {}).setdefault(condition, []).extend(names)
    return sorted(merged.items(), key=lambda item: item[0])


def pending_work(groups: Sequence, blocks: Sequence[int], conditions: Sequence[Condition],
                 done: set) -> list[tuple[object, int, dict[Condition, list[str]]]]:
    """(group, block, {condition: models still to run}) for every block with anything left to do.

    `groups` are model groups (anything with `.models`, each with a `.name`); `done` holds the
    (block, transform, severity, model) cells already on disk.
    """
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
