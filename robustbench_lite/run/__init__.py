"""The run stage: a config and its plan, evaluated over batches. Takes options (CLI, TOML, API);
gives a run folder: photos decoded once per geometry, each condition applied once and fed to every
model, records in resumable chunks, then the analysis and the report. Also a dry run's cost.

The package is callable, so that `from robustbench_lite import run; run(data=..., models=...)` (the
Python API, `robustbench_lite.api.run`) keeps working although the stage package is named `run` too.
"""
from __future__ import annotations

import sys
import types


class _CallableStage(types.ModuleType):
    def __call__(self, **options):
        """Run a benchmark with the CLI's options as keywords; returns summary.csv as a DataFrame."""
        from .session import run

        return run(**options)


sys.modules[__name__].__class__ = _CallableStage
