"""`--dry-run`: the work a run would do, whether every model can be had, and a time estimate, without
loading weights.

Availability: a checkpoint file exists, a packaged model's package imports, a hub model's weights are
cached or its host answers within seconds (`models/availability.py`); one line per model that cannot.

Time: one representative per architecture and input side (tags such as `resnet50.a1_in1k` share
`resnet50`) is timed as the run runs it: allocator tuned, channels_last, the run's batch size and
precision, after a warm-up. Timing stops at TIMING_BUDGET_SECONDS: the cheapest architecture is always
timed, the others while their predicted timing fits the budget; the rest are estimated from their FLOPs
(counted on the meta device, no memory or compute) at the speed per FLOP of the nearest timed one, and
the output says which. Start-up (imports, building the networks) and the report are part of the estimate.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..errors import UserError

REPORT_SECONDS = 5.0  # tables, plots and the example grid of a small run (about 4 s measured on the demo)
REPORT_SECONDS_PER_CELL = 0.05  # each model x condition adds a little plotting
TIMING_BUDGET_SECONDS = 30.0  # building and timing representatives stops here (the first is always timed)
TIMED_FORWARDS = 3  # seconds_per_image runs a warm-up and two timed forwards


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
        for _ in range(TIMED_FORWARDS - 1):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - t0)
    return best / batch


def input_size_of(entry) -> tuple[int, int]:
    """The side a model runs at: its variant's, else its pretrained config's input size (what
    `resolve_preprocessing` finds on the built network), read without building it."""
    if entry.input_size:
        return int(entry.input_size), int(entry.input_size)
    from timm.models import get_pretrained_cfg

    size = getattr(get_pretrained_cfg(entry.arch), "input_size", None) or (3, 224, 224)
    return int(size[1]), int(size[2])


def flops_per_image(arch: str, size: tuple[int, int]) -> float | None:
    """Forward FLOPs of one photo, counted on the meta device (shapes only); None when the network cannot be
    built or run there."""
    import timm
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with torch.device("meta"):
            model = timm.create_model(arch, pretrained=False).eval()
            x = torch.empty(1, 3, *size)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
        return float(counter.get_total_flops()) or None
    except Exception:  # an architecture meta tensors cannot run: it is timed or left unestimated
        return None


@dataclass
class Group:
    """Models sharing an architecture and input side: one representative is timed or estimated for all."""

    arch: str
    size: tuple[int, int]
    entries: list = field(default_factory=list)
    flops: float | None = None
    per_image: float | None = None  # seconds
    timed: bool = False
    basis: "Group | None" = None  # the timed group an estimate scales by FLOPs

    @property
    def family(self) -> str:
        """The name's leading letters (`resnet` of resnet50d, `efficientnet` of tf_efficientnet_lite0): speed per
        FLOP differs most between families (depthwise convolutions, attention), least within one."""
        name = self.arch.removeprefix("tf_")
        return re.match(r"[a-z]*", name).group(0) or name

    @property
    def label(self) -> str:
        h, w = self.size
        return f"{self.arch} at {h} px" if h == w else f"{self.arch} at {h}x{w} px"


def architecture_groups(entries) -> tuple[list[Group], list[str]]:
    """Entries grouped by (architecture, input side); lines for entries whose architecture timm lacks."""
    import timm

    groups: dict[tuple, Group] = {}
    unknown = []
    for entry in entries:
        arch = entry.arch.split(".")[0]
        if not timm.is_model(arch):
            unknown.append(f"  {entry.name}: unknown architecture {entry.arch!r}")
            continue
        size = input_size_of(entry)
        groups.setdefault((arch, size), Group(arch, size)).entries.append(entry)
    return list(groups.values()), unknown


def time_groups(groups: list[Group], device: torch.device, batch: int, precision: str, echo: Callable[[str], None],
                budget: float | None = None) -> tuple[float, str]:
    """Time representatives within `budget` seconds (TIMING_BUDGET_SECONDS; the cheapest always), estimate
    the rest from FLOPs. Returns the seconds spent building networks and the line saying what was timed
    and what estimated.
    """
    import timm

    budget = TIMING_BUDGET_SECONDS if budget is None else budget

    counting = time.perf_counter()
    if len(groups) > 1:
        for g in groups:
            g.flops = flops_per_image(g.entries[0].arch, g.size)
    counting = time.perf_counter() - counting
    by_cost = sorted(groups, key=lambda g: (g.flops is None, g.flops or 0.0))
    firsts = list({g.family: g for g in reversed(by_cost)}.values())[::-1]  # each family's cheapest, cheapest first
    order = [*firsts, *(g for g in groups if g not in firsts)]
    started, build = time.perf_counter(), 0.0
    for position, g in enumerate(order, start=1):
        spent = time.perf_counter() - started
        if any(x.timed for x in groups):
            nearest = _nearest_timed(g, groups)
            predicted = (TIMED_FORWARDS * batch * nearest.per_image * g.flops / nearest.flops
                         if nearest is not None and g.flops else math.inf)
            if spent + predicted > budget:
                continue
        echo(f"dry run: timing {g.label} ({position} of {len(groups)} architectures and input sides, batch {batch})...")
        t0 = time.perf_counter()
        model = timm.create_model(g.entries[0].arch, pretrained=False)
        build += time.perf_counter() - t0
        g.per_image, g.timed = seconds_per_image(model, g.size, device, batch, precision), True
        del model
    for g in groups:
        g.basis = None if g.timed or not g.flops else _nearest_timed(g, groups)
        if g.basis is not None:
            g.per_image = g.basis.per_image * g.flops / g.basis.flops
    timed = sum(g.timed for g in groups)
    seconds = time.perf_counter() - started
    if timed == len(groups):
        return build, f"  timed one model per architecture and input side: {timed} of {len(groups)} ({seconds:.0f} s)"
    estimated = sum(g.per_image is not None and not g.timed for g in groups)
    missing = len(groups) - timed - estimated
    line = (f"  timed one model per architecture and input side for {timed} of {len(groups)} within the "
            f"{budget:.0f} s budget ({seconds:.0f} s); the other {estimated} estimated from their FLOPs (counted in "
            f"{counting:.0f} s, no weights) at the speed per FLOP of the nearest timed one (its family's first)")
    if missing:
        line += f"; {missing} without an estimate (their FLOPs could not be counted), left out of the total"
    build *= len(groups) / max(timed, 1)  # building the untimed networks costs about as much each
    return build, line


def _nearest_timed(group: Group, groups: list[Group]) -> Group | None:
    """The timed group whose speed per FLOP estimates `group`'s: of its family if one is timed, closest in log FLOPs."""
    candidates = [g for g in groups if g.timed and g.flops and g.per_image]
    if not candidates or not group.flops:
        return None
    return min(candidates, key=lambda g: (g.family != group.family, abs(math.log(g.flops / group.flops))))


def availability_lines(entries) -> list[str]:
    """`  cannot load NAME: why` for each model (once per base model) whose weights cannot be had."""
    from ..models.availability import weights_problem

    lines, seen = [], set()
    for entry in entries:
        key = (entry.base, entry.source, entry.path)
        if key in seen:
            continue
        seen.add(key)
        why = weights_problem(entry)
        if why:
            lines.append(f"  cannot load {entry.base}: {why}")
    return lines


def _shift_line(shift, counts: dict[str, int]) -> str:
    """What a shift dataset adds: its photos, and for ImageNet-R/A their classes and clean counterpart."""
    line = f"  shift {shift.name}: {len(shift.samples)} photos from {shift.root}"
    if shift.classes is not None:
        line += (f", scored on its {len(shift.classes)} classes beside {shift.counterpart} "
                 f"({counts.get(shift.counterpart, 0)} photos of --data)")
    return line


def describe_plan(plan, echo: Callable[[str], None] | None = None, startup_seconds: float = 0.0) -> tuple[str, list[str]]:
    """Photos x conditions x models, the forward passes that makes, how long that should take, and the
    lines of models whose weights cannot be had (also in the text)."""
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
    problems = availability_lines(plan.model_entries)
    groups, unknown = architecture_groups(plan.model_entries)
    build, timing_line = time_groups(groups, plan.device, batch, plan.config.precision, echo)
    forward = 0.0
    by_name = {e.name: g for g in groups for e in g.entries}
    for entry in plan.model_entries:
        g = by_name.get(entry.name)
        if g is None or g.per_image is None:
            if g is not None:
                lines.append(f"  {entry.name}: no estimate (its FLOPs could not be counted)")
            continue
        forward += g.per_image * cells
        how = "" if g.timed else f" (estimated from its FLOPs and {g.basis.label}'s speed)"
        rate = 1 / g.per_image
        lines.append(f"  {entry.name}: {f'{rate:,.0f}' if rate >= 10 else f'{rate:.2g}'} images/s at batch {batch} -> "
                     f"{g.per_image * cells / 60:.1f} min{how}")
    lines += unknown + [timing_line] * bool(groups) + problems
    report = (REPORT_SECONDS + REPORT_SECONDS_PER_CELL * c * m) if plan.config.report else 0.0
    startup = startup_seconds + build  # imports and planning so far, plus building each network once
    total = forward + startup + report
    lines.append(f"estimated time: {total / 60:.1f} min = forward passes {forward / 60:.1f} min + start-up "
                 f"{startup:.0f} s + report {report:.0f} s (decoding and transforms add a little)")
    return "\n".join(lines), problems


def dry_run(plan, echo: Callable[[str], None], startup_seconds: float = 0.0) -> None:
    """Print the plan and estimate; a one-line UserError (exit 2) when any model's weights cannot be had."""
    text, problems = describe_plan(plan, echo, startup_seconds)
    echo(text)
    if problems:
        bases = len({(e.base, e.source, e.path) for e in plan.model_entries})
        raise UserError(f"--dry-run: {len(problems)} of {bases} model(s) cannot be loaded (each named above); "
                        "a run would stop when it reached them")
