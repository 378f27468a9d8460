"""Wall time per stage of a run (start-up, decode, transform, forward, records, report)."""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager

STAGES = ("startup", "decode", "transform", "forward", "records", "merge", "report")


class StageTimer:
    """Accumulates seconds per named stage; `breakdown()` is the one-line summary printed at the end."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.started = time.perf_counter()

    @contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - t0

    def as_dict(self) -> dict[str, float]:
        out = {s: round(self.seconds.get(s, 0.0), 4) for s in STAGES}
        out.update({k: round(v, 4) for k, v in self.seconds.items() if k not in out})
        out["total"] = round(time.perf_counter() - self.started, 4)
        return out

    def breakdown(self) -> str:
        d = self.as_dict()
        parts = [f"{k} {v:.1f}s" for k, v in d.items() if k != "total" and v >= 0.05]
        return f"time {d['total']:.1f}s: " + ", ".join(parts)
