"""`--dry-run`: the work a run would do and a time estimate, without loading weights.

Each architecture is timed once per input side (tags such as `resnet50.a1_in1k` share `resnet50`),
as the run runs it: allocator tuned, channels_last, the run's batch size and precision, after a
warm-up. Start-up (imports, building the networks) and the report are part of the estimate.
"""
from __future__ import annotations

import time
from typing import Callable

import torch

REPORT_SECONDS = 5.0  # tables, plots and the example grid of a small run (about 4 s measured on the demo)
REPORT_SECONDS_PER_CELL = 0.05  # each model x condition adds a little plotting


def seconds_per_image(model: torch.nn.Module, size: tuple[int, int], device: torch.device, batch: int = 32,
                      precision: str = "fp32") -> float:
    """Seconds per photo of a forward of a bare architecture (random weights), timed like the run's loop."""
    from .allocator import keep_freed_memory
    from .evaluate import autocast

    keep_freed_memory()  # as the run: without it CPU inference is 2-3x slower on a small VM
    model = model.eval().to(device, memory_format=torch.channels_last)
    x = torch.rand(batch, 3, *size, device=device).contiguous(memory_format=torch.channels_last)
    best = float("inf")
    with torch.inference_mode(), autocast(device, precision):
        model(x)  # warm-up: first-call allocation and kernel choice
        for _ in range(2):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - t0)
    return best / batch


def _shift_line(shift, counts: dict[str, int]) -> str:
    """What a shift dataset adds: its photos, and for ImageNet-R/A their classes and clean counterpart."""
    line = f"  shift {shift.name}: {len(shift.samples)} photos from {shift.root}"
    if shift.classes is not None:
        line += (f", scored on its {len(shift.classes)} classes beside {shift.counterpart} "
                 f"({counts.get(shift.counterpart, 0)} photos of --data)")
    return line


def describe_plan(plan, echo: Callable[[str], None] | None = None, startup_seconds: float = 0.0) -> str:
    """Photos x conditions x models, the forward passes that makes, and how long that should take."""
    import timm

    from ..models.preprocessing import resolve_preprocessing
    from .plan import batch_size_of

    echo = echo or (lambda msg: None)
    n, c, m = len(plan.samples), len(plan.conditions), len(plan.model_entries)
    batch = batch_size_of(plan.config, plan.device) or 64
    sets = plan.photo_sets
    cells = sum(len(p.samples) * len(p.conditions) for p in sets)  # photos x conditions over every photo set
    from .stability import frame_count

    frames = frame_count(getattr(plan.config, "stability", None))  # --stability: every frame is a forward pass
    cells += n * frames
    extra = "".join(f" + {len(p.samples)} photos of {p.tag}" for p in sets[1:])
    lines = [
        f"dry run: {n} photos x {c} conditions{extra} x {m} models = {cells * m:,} forward passes on {plan.device}",
        f"  data: {plan.dataset_info['root']} ({plan.dataset_info['n_classes']} classes)",
        f"  conditions: {', '.join(cond.key for cond in plan.conditions)}",
        *([f"  stability {plan.config.stability}: {n} photos x {frames} sequence frames = {n * frames:,} frames a model"]
          if frames else []),
        *(_shift_line(shift, {p.tag: len(p.samples) for p in sets}) for shift in plan.shifts),
        f"  output: {plan.run_dir}",
    ]
    forward, build, timed = 0.0, 0.0, {}
    archs = list(dict.fromkeys(e.arch.split(".")[0] for e in plan.model_entries))
    for entry in plan.model_entries:
        arch = entry.arch.split(".")[0]
        if not timm.is_model(arch):
            lines.append(f"  {entry.name}: unknown architecture {entry.arch!r}")
            continue
        key = (arch, entry.input_size)
        if key not in timed:
            echo(f"dry run: timing {arch}{f' at {entry.input_size} px' if entry.input_size else ''} "
                 f"({archs.index(arch) + 1} of {len(archs)} architectures, batch {batch})...")
            t0 = time.perf_counter()
            model = timm.create_model(arch, pretrained=False)
            build += time.perf_counter() - t0
            size = resolve_preprocessing(model, entry.input_size).geometry.input_size
            timed[key] = seconds_per_image(model, size, plan.device, batch, plan.config.precision)
            del model
        per_image = timed[key]
        forward += per_image * cells
        lines.append(f"  {entry.name}: {1 / per_image:,.0f} images/s at batch {batch} -> {per_image * cells / 60:.1f} min")
    report = (REPORT_SECONDS + REPORT_SECONDS_PER_CELL * c * m) if plan.config.report else 0.0
    startup = startup_seconds + build  # imports and planning so far, plus building each network once
    total = forward + startup + report
    lines.append(f"estimated time: {total / 60:.1f} min = forward passes {forward / 60:.1f} min + start-up "
                 f"{startup:.0f} s + report {report:.0f} s (decoding and transforms add a little)")
    return "\n".join(lines)
