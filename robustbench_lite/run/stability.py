"""`run --stability imagenet-p`: every photo's perturbation sequences made in memory and scored frame by frame.

How the engine holds sequences: a sequence of one block of photos is one chunk, transform
`imagenet-p.NAME` at severity 1 (difficulty 1), one record per (model, photo, frame) with the frame
number in the records' nullable `frame` column. A sequence is the unit of resume because its frames are
not independent (zoom blur averages the frames before, spatter's drops run down from the last frame, snow
streaks one layer), so a frame cannot be made without its predecessors; a chunk per frame would add 444
chunks per block to the store for nothing. Frames never reach disk: the photos of a block are decoded
once at the suite's context geometry (Resize 256 + CenterCrop 256), each batch of photos runs its whole
sequence, each frame is cut to 8 bits, its centre 224 px cropped and fed to every model (resized to the
model's input size once, as the imagenet-c protocol does), so a frame is computed once for all models.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import pyarrow as pa
import torch

from ..conditions.keys import Condition
from ..conditions.rng import PhotoRNG, photo_seed
from ..conditions.sequences import SUITES, SequenceSpec, suite_sequences
from ..data.datasets import Sample
from ..data.decode import Geometry
from ..errors import ConditionFailed, UserError
from ..results.records import batch_outputs, records_table, to_host
from .evaluate import ModelGroup, autocast, to_input_size
from .plan import PhotoSet, blocks_of, pending_work

DIFFICULTY = 1  # the records' severity: the release's difficulty 1 (every frame, step 1)


def parse_stability(text: str | None) -> str | None:
    """`--stability` -> a suite name or None; an unknown suite is a one-line UserError."""
    if text in (None, "", "none"):
        return None
    if text not in SUITES:
        raise UserError(f"--stability {text!r}: unknown suite; use one of {', '.join(SUITES)}")
    return text


def stability_geometry(suite: str) -> Geometry:
    """Where a suite's photos are decoded: Resize(side) + CenterCrop(side), bilinear (ImageNet-P: 256)."""
    side = SUITES[suite].context_side
    return Geometry((side, side), 1.0, "bilinear")


def stability_conditions(suite: str) -> list[Condition]:
    """One condition per sequence: its records' transform and severity (the difficulty)."""
    return [Condition(s.condition, DIFFICULTY, float(s.frames)) for s in suite_sequences(suite)]


def stability_manifest(suite: str | None) -> dict:
    """The manifest's `stability` entry: the suite and its sequences (frames, noise or not, parameters)."""
    if suite is None:
        return {}
    info = SUITES[suite]
    return {"suite": suite, "context_side": info.context_side, "crop_side": info.crop_side,
            "benchmark": list(info.benchmark), "citation": info.citation,
            "sequences": {s.condition: s.as_dict() for s in suite_sequences(suite)}}


def frame_count(suite: str | None) -> int:
    """Frames per photo over every sequence of the suite (0 without one)."""
    return sum(s.frames for s in suite_sequences(suite)) if suite else 0


class SequenceEvaluator:
    """Runs pending sequence chunks of one block for every model: frames made once, fed to every model."""

    def __init__(self, plan, models, store, timer, progress, batch_size: int | None, suite: str):
        self.config, self.device, self.store, self.timer, self.progress = plan.config, plan.device, store, timer, progress
        self.models = {m.name: m for m in models}
        self.batch_size = batch_size or 32
        self.crop = SUITES[suite].crop_side
        self.specs = {s.condition: s for s in suite_sequences(suite)}
        self.failed: dict[tuple[str, int, str], str] = {}
        self.frames_scored = 0  # photo-frames, for the cost line
        self.seconds = 0.0

    def _centre(self, frame: torch.Tensor) -> torch.Tensor:
        h, w = frame.shape[-2:]
        top, left = (h - self.crop) // 2, (w - self.crop) // 2
        cut = frame[..., top:top + self.crop, left:left + self.crop]
        return torch.floor(cut.clamp(0.0, 1.0) * 255) / 255  # the release's 8-bit frames

    def run_block(self, block: int, samples: Sequence[Sample], pixels: torch.Tensor,
                  pending: dict[Condition, list[str]], classes=None, merged=None) -> None:
        ids = [s.id for s in samples]
        labels_host = np.array([s.label for s in samples], dtype=np.int64)
        labels = torch.from_numpy(labels_host).to(self.device)
        for condition, names in pending.items():
            spec = self.specs[condition.transform]
            started = time.perf_counter()
            try:
                outputs = self._sequence(spec, condition, names, ids, pixels, labels)
            except ConditionFailed as exc:
                for n in names:
                    self.failed[(condition.transform, condition.severity, n)] = str(exc)
                continue
            with self.timer("records"):
                self._write(block, condition, names, ids, labels_host, spec.frames, outputs)
            self.seconds += time.perf_counter() - started

    def _sequence(self, spec: SequenceSpec, condition: Condition, names: list[str], ids: list[str],
                  pixels: torch.Tensor, labels: torch.Tensor) -> dict[str, list[list[dict]]]:
        """{model: [frame][batch] outputs} of one sequence over the block's photos.

        Frames of a few photos are stacked until a forward batch is full, so short blocks still run
        full batches."""
        outputs = {n: [[] for _ in range(spec.frames)] for n in names}
        step = max(1, min(len(ids), self.batch_size))
        pending: list[tuple[int, int, int, torch.Tensor]] = []  # (frame, start, stop, cut frame)
        for start in range(0, len(ids), step):
            stop = min(start + step, len(ids))
            x = pixels[start:stop].float().div_(255.0)
            rng = PhotoRNG([photo_seed(self.config.seed, condition.transform, condition.severity, i)
                            for i in ids[start:stop]], x.device)
            frames = iter(spec.fn(x, rng))
            for f in range(spec.frames):
                with self.timer("transform"):
                    try:
                        frame = next(frames)
                    except Exception as exc:  # a plug-in's fault fails its own sequence only
                        raise ConditionFailed(f"sequence {spec.condition} frame {f}: {type(exc).__name__}: {exc}") from None
                    if frame.shape != x.shape or not torch.isfinite(frame).all():
                        raise ConditionFailed(f"sequence {spec.condition} frame {f}: bad shape or values")
                    pending.append((f, start, stop, self._centre(frame)))
                if sum(p[2] - p[1] for p in pending) >= self.batch_size:
                    self._forward(pending, names, labels, outputs)
                    pending = []
        if pending:
            self._forward(pending, names, labels, outputs)
        return outputs

    def _forward(self, pending: list, names: list[str], labels: torch.Tensor, outputs: dict) -> None:
        """One forward per model over the stacked frames; outputs split back per (frame, photos)."""
        with self.timer("forward"):
            batch = torch.cat([p[3] for p in pending]).contiguous(memory_format=torch.channels_last)
            truth = torch.cat([labels[p[1]:p[2]] for p in pending])
            sizes = [p[2] - p[1] for p in pending]
            for n in names:
                model = self.models[n]
                with autocast(self.device, self.config.precision):
                    logits = model.module(model.normalise(to_input_size(batch, model.geometry)))
                for (f, *_), part, part_truth in zip(pending, logits.split(sizes), truth.split(sizes)):
                    outputs[n][f].append(batch_outputs(part, part_truth, None, self.config.save_logits))
        self.frames_scored += sum(sizes)
        self.progress.update(sum(sizes) * len(names))

    def _write(self, block: int, condition: Condition, names: list[str], ids: list[str], labels_host: np.ndarray,
               frames: int, outputs: dict[str, list[list[dict]]]) -> None:
        """One chunk: per model, frame-major rows (every photo at frame 0, then frame 1, ...)."""
        tables = []
        for n in names:
            host = to_host([part for frame in outputs[n] for part in frame])
            if host.pop("nonfinite").any():
                self.failed[(condition.transform, condition.severity, n)] = f"model {n} produced NaN or infinite logits"
                continue
            frame_numbers = np.repeat(np.arange(frames, dtype=np.int16), len(ids))
            tables.append(records_table(n, condition, ids * frames, np.tile(labels_host, frames), host,
                                        frames=frame_numbers))
        if tables:
            self.store.write(block, condition.transform, condition.severity, pa.concat_tables(tables))


def run_stability(plan, models, store, timer, batch_size: int | None, workers: int, run_pass, echo) -> list[dict]:
    """Evaluate every pending sequence chunk of this rank's blocks; returns the failed cells."""
    from tqdm.auto import tqdm

    from ..results.store import cells_of
    from . import distributed as dist

    suite = parse_stability(getattr(plan.config, "stability", None))
    if suite is None:
        return []
    conditions = stability_conditions(suite)
    geometry = stability_geometry(suite)
    blocks = blocks_of(plan.samples, plan.config.chunk_size)
    mine = [b for b in range(len(blocks)) if b % dist.world_size() == dist.rank()]
    group = ModelGroup(geometry, list(models))
    work = pending_work([group], mine, conditions, cells_of(store.chunks()))
    todo = [(b, pending) for _, b, pending in work]
    if not todo:
        return []
    frames = {c.transform: int(c.level) for c in conditions}
    total = sum(len(blocks[b]) * frames[c.transform] * len(n) for b, p in todo for c, n in p.items())
    with tqdm(total=total, unit="frame", desc=f"stability {suite}", dynamic_ncols=True, mininterval=1.0) as bar, \
            torch.inference_mode():
        evaluator = SequenceEvaluator(plan, models, store, timer, bar, batch_size, suite)
        run_pass(plan, PhotoSet("", plan.samples, conditions), todo, geometry, evaluator, blocks, workers)
    if evaluator.seconds > 0:
        echo(f"stability {suite}: {evaluator.frames_scored} photo-frames x {len(models)} model(s) in "
             f"{evaluator.seconds:.1f} s = {evaluator.frames_scored / evaluator.seconds:.1f} photo-frames/s")
    return [{"model": m, "transform": t, "severity": s, "error": e} for (t, s, m), e in evaluator.failed.items()]
