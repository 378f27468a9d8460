"""Evaluation of one model group on decoded blocks: transform once per condition, feed every model."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import torch

from ..conditions.application import apply_transform, check_transform_output, check_values
from ..conditions.keys import Condition
from ..conditions.registry import builtin_module
from ..conditions.rng import PhotoRNG, photo_seed
from ..data.datasets import Sample
from ..data.decode import Geometry
from ..data.objectnet import merge_logits
from ..errors import ConditionFailed
from ..models import LoadedModel
from ..results.records import batch_outputs, records_table, to_host
from ..results.store import ChunkStore
from .timing import StageTimer


class ModelGroup:
    """Models sharing one input geometry: they share decoded and transformed batches."""

    def __init__(self, geometry: Geometry, models: list[LoadedModel]):
        self.geometry = geometry
        self.models = models


def group_models(models: Sequence[LoadedModel]) -> list[ModelGroup]:
    by_geometry: dict[Geometry, list[LoadedModel]] = {}
    for m in models:
        by_geometry.setdefault(m.geometry, []).append(m)
    return [ModelGroup(g, ms) for g, ms in by_geometry.items()]


def autocast(device: torch.device, precision: str):
    """Autocast to bf16/fp16 on CUDA; fp32 (no autocast) otherwise."""
    if device.type != "cuda" or precision == "fp32":
        return torch.autocast(device_type=device.type, enabled=False)
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def jpeg_round_trip(photos: torch.Tensor, quality: int = 85) -> torch.Tensor:
    """Encode and decode (N, 3, H, W) uint8 photos as JPEG (PIL, 4:2:0 chroma, as ImageNet-C's release
    saved them), in threads (PIL releases the interpreter while it codes); uint8 on the CPU."""
    import io
    import os
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    def one(array: np.ndarray) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="JPEG", quality=quality, subsampling="4:2:0")
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            return np.asarray(decoded.convert("RGB"))

    arrays = photos.permute(0, 2, 3, 1).contiguous().cpu().numpy()
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        decoded = list(pool.map(one, arrays))
    return torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).contiguous()


def release_protocol(x: torch.Tensor, condition: Condition, ids: Sequence[str], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet-C's `imagenet-c` protocol for one batch decoded at RELEASE_GEOMETRY (224 px, [0, 1]):
    the release's recipe at 224 px, its uint8, a JPEG quality-85 round trip (the model's input size
    follows in `to_input_size`: no second resize-and-crop, RobustBench's bug #59)."""
    release = builtin_module("_release")
    rng = PhotoRNG([photo_seed(seed, condition.transform, condition.severity, i) for i in ids], x.device)
    try:
        out = release.release_corruption(condition.transform, x, condition.severity, rng)
    except torch.cuda.OutOfMemoryError:
        raise  # the caller halves its batch, as apply_transform lets it
    except (Exception, SystemExit) as exc:
        raise ConditionFailed(f"transform {condition.transform} (imagenet-c protocol) raised "
                              f"{type(exc).__name__}: {exc}") from None
    out, summary = check_transform_output(x, out, condition.transform)
    return jpeg_round_trip(release.as_uint8(out)).to(x.device).float().div_(255.0), summary


def to_input_size(x: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """A 224 px imagenet-c batch at a model's input size: one resize, no crop (none at all for 224 px models)."""
    if tuple(x.shape[-2:]) == tuple(geometry.input_size):
        return x
    mode = "bicubic" if geometry.interpolation == "bicubic" else "bilinear"
    out = torch.nn.functional.interpolate(x, size=geometry.input_size, mode=mode, antialias=True, align_corners=False)
    return out.clamp_(0.0, 1.0).contiguous(memory_format=torch.channels_last)


class BlockEvaluator:
    """Runs pending (block, condition, model) cells of one group, writing a chunk per (block, condition)."""

    def __init__(self, plan, group: ModelGroup, store: ChunkStore, timer: StageTimer, progress, batch_size: int | None,
                 release: bool = False):
        self.config = plan.config
        self.device = plan.device
        self.group = group
        self.store = store
        self.timer = timer
        self.progress = progress
        self.batch_size = batch_size or probe_batch_size(group, plan.device, plan.config.precision, start=plan.config.chunk_size)
        self.spec_by_name = {s.name: s for s in plan.transforms}
        self.release = release  # blocks decoded at RELEASE_GEOMETRY for the imagenet-c corruption protocol
        self.failed: dict[tuple[str, int, str], str] = {}
        self._queued: tuple | None = None  # a finished chunk whose host copy is in flight (CUDA), written next
        self._masks: dict[frozenset[int], torch.Tensor] = {}

    def class_mask(self, classes: frozenset[int] | None) -> torch.Tensor | None:
        """The logits a photo set is scored on, as a boolean mask on the device (None: all 1,000)."""
        if classes is None:
            return None
        if classes not in self._masks:
            mask = torch.zeros(1000, dtype=torch.bool, device=self.device)
            mask[sorted(classes)] = True
            self._masks[classes] = mask
        return self._masks[classes]

    def transform(self, x: torch.Tensor, condition: Condition, ids: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The transformed batch and its on-device value summary (None for clean)."""
        if condition.is_plain:  # clean, a shift dataset's photos, a counterpart: as they are
            return x, None
        if self.release:
            return release_protocol(x, condition, ids, self.config.seed)
        spec = self.spec_by_name[condition.transform]
        return check_transform_output(x, apply_transform(spec, x, condition, ids, self.config.seed), spec.name)

    def forward(self, model: LoadedModel, x: torch.Tensor, merged: tuple | None = None) -> torch.Tensor:
        """Normalise a channels_last batch for `model` (its own fused op) and run it; `merged` class groups
        scored as one (their maximum in the first class)."""
        z = model.normalise(to_input_size(x, model.geometry) if self.release else x)
        with autocast(self.device, self.config.precision):
            logits = model.module(z)
        return logits if merged is None else merge_logits(logits.float(), merged)

    def run_block(self, block: int, samples: Sequence[Sample], pixels: torch.Tensor, pending: dict[Condition, list[str]],
                  classes: frozenset[int] | None = None, merged: tuple[tuple[int, ...], ...] | None = None) -> None:
        """Evaluate every pending condition x model on one decoded block, one chunk per condition.

        `classes` restricts the logits scored (the photo set's rule), `merged` scores groups of classes as one
        (ObjectNet, data/objectnet.py). On CUDA a chunk's results stay on the device until it is complete; its
        copy to the host starts then and it is written once the next condition is queued, so the device never
        waits for the records. Elsewhere each chunk is written as soon as it is complete. Whatever stops the
        block (Ctrl-C included), a finished chunk still waiting is written before it stops: no finished work
        is lost.
        """
        ids = [s.id for s in samples]
        labels_host = np.array([s.label for s in samples], dtype=np.int64)
        labels = torch.from_numpy(labels_host).to(self.device)
        models = {m.name: m for m in self.group.models}
        self._queued = None
        try:
            self._run_conditions(block, samples, pixels, pending, classes, labels, labels_host, ids, models, merged)
        finally:  # finished work is kept however the block stops (Ctrl-C, a failure)
            self._flush()

    def _run_conditions(self, block, samples, pixels, pending, classes, labels, labels_host, ids, models,
                        merged=None) -> None:
        """The loop of `run_block`: each pending condition transformed once and fed to the group's models."""
        class_mask = self.class_mask(classes)
        stimuli = any(s.category is not None for s in samples)  # model-vs-human's stimuli: category, condition
        extra = ([s.category for s in samples], [s.stimulus_condition for s in samples]) if stimuli else (None, None)
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
                            batch = [batch_outputs(self.forward(models[n], x, merged), labels[start:stop], class_mask,
                                                   self.config.save_logits) for n in names]
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
            except ConditionFailed as exc:
                self._fail(condition, names, str(exc))
                self.progress.update((len(ids) - start) * len(names))
                continue
            self._flush()
            self._queued = (block, condition, names, ids, labels_host, start_host_copy(outputs, summaries, self.device),
                            extra)
            if self.device.type != "cuda":  # nothing to overlap: written as soon as it is complete
                self._flush()

    def _flush(self) -> None:
        """Write the finished chunk still waiting, if any (once: it is taken off the queue first)."""
        if self._queued is not None:
            queued, self._queued = self._queued, None
            self._write_chunk(*queued)

    def _fail(self, condition: Condition, names: Sequence[str], error: str) -> None:
        for n in names:
            self.failed[(condition.transform, condition.severity, n)] = error

    def _write_chunk(self, block, condition, names, ids, labels_host, copy: "HostCopy",
                     extra: tuple[list | None, list | None] = (None, None)) -> None:
        """Wait for a chunk's host copy, check it, and store its records (with the stimuli's category and condition)."""
        with self.timer("records"):
            outputs, summaries = copy.wait()
            try:
                check_values(summaries, condition.transform)
            except ConditionFailed as exc:
                self._fail(condition, names, str(exc))
                return
            tables = []
            for n in names:
                host = to_host(outputs[n])
                if host.pop("nonfinite").any():
                    self.failed[(condition.transform, condition.severity, n)] = f"model {n} produced NaN or infinite logits"
                    continue
                tables.append(records_table(n, condition, ids, labels_host, host, *extra))
            if tables:
                self.store.write(block, condition.transform, condition.severity, pa.concat_tables(tables))


class HostCopy:
    """A chunk's outputs and value summaries on their way to the host (pinned, asynchronous on CUDA)."""

    def __init__(self, outputs: dict[str, list[dict]], summaries: list[torch.Tensor], event=None):
        self.outputs, self.summaries, self.event = outputs, summaries, event

    def wait(self) -> tuple[dict[str, list[dict]], list[torch.Tensor]]:
        if self.event is not None:
            self.event.synchronize()
        return self.outputs, self.summaries


def start_host_copy(outputs: dict[str, list[dict]], summaries: list[torch.Tensor], device: torch.device) -> HostCopy:
    """On CUDA, one non-blocking copy per column into pinned memory, ordered before later work; else as is."""
    if device.type != "cuda":
        return HostCopy(outputs, summaries)

    def pinned(t: torch.Tensor) -> torch.Tensor:
        return torch.empty(t.shape, dtype=t.dtype, pin_memory=True).copy_(t, non_blocking=True)

    host = {n: [{k: pinned(torch.cat([p[k] for p in parts])) for k in parts[0]}] for n, parts in outputs.items()}
    values = [pinned(torch.stack(summaries))] if summaries else []
    event = torch.cuda.Event()
    event.record()
    return HostCopy(host, list(values[0].unbind(0)) if values else [], event)


def probe_batch_size(group: ModelGroup, device: torch.device, precision: str, start: int = 256) -> int:
    """Largest batch (<= start, the chunk size: no batch spans two chunks) every model of the group
    can run; halves on out-of-memory."""
    size = start
    h, w = group.geometry.input_size
    while size > 1:
        try:
            x = torch.rand(size, 3, h, w, device=device)
            with torch.inference_mode(), autocast(device, precision):
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
