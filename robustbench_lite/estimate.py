"""`--dry-run`: the work a run would do and a rough time estimate, without loading weights."""
from __future__ import annotations

import time

import torch


def seconds_per_image(model: torch.nn.Module, size: tuple[int, int], device: torch.device) -> float:
    """Time a small forward of a bare architecture (random weights) on the run's device."""
    model = model.eval().to(device, memory_format=torch.channels_last)
    batch = 8 if device.type == "cpu" else 64
    x = torch.rand(batch, 3, *size, device=device).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        model(x[:2])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) / batch


def describe_plan(plan) -> str:
    """Photos x conditions x models, the forward passes that makes, and how long that should take."""
    import timm

    from .models.preprocessing import resolve_preprocessing

    n, c, m = len(plan.samples), len(plan.conditions), len(plan.model_entries)
    lines = [
        f"dry run: {n} photos x {c} conditions x {m} models = {n * c * m:,} forward passes on {plan.device}",
        f"  data: {plan.dataset_info['root']} ({plan.dataset_info['n_classes']} classes)",
        f"  conditions: {', '.join(cond.key for cond in plan.conditions)}",
        f"  output: {plan.run_dir}",
    ]
    total = 0.0
    for entry in plan.model_entries:
        if not timm.is_model(entry.arch):
            lines.append(f"  {entry.name}: unknown architecture {entry.arch!r}")
            continue
        model = timm.create_model(entry.arch, pretrained=False)
        size = resolve_preprocessing(model).geometry.input_size
        per_image = seconds_per_image(model, size, plan.device)
        total += per_image * n * c
        lines.append(f"  {entry.name}: {1 / per_image:,.0f} images/s -> {per_image * n * c / 60:.1f} min")
    lines.append(f"estimated time: {total / 60:.1f} min (model forward passes; decoding and transforms add a little)")
    return "\n".join(lines)
