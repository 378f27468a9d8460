"""The Python API: `robustbench_lite.run(...)` for notebooks (the run stage's `session.run`)."""
from __future__ import annotations

from .run.session import run

__all__ = ["run"]
