"""A run from keyword options, as notebooks call it: `robustbench_lite.run(...)` (see `api.py`)."""
from __future__ import annotations

import pandas as pd

from ..errors import UserError
from .config import RunConfig


def run(**options) -> pd.DataFrame:
    """Run a benchmark with the CLI's options as keywords; returns summary.csv as a DataFrame.

    Example: `run(data="../shared/data/imagenet-sample", models="efficientnet_lite0", limit=50)`.
    Raises UserError for bad input; the run folder is `options.get("out")` or results/<timestamp>.
    """
    from .engine import run_benchmark

    result = run_benchmark(RunConfig.from_dict(options, origin="robustbench_lite.run()"))
    if result.exit_code == 130:
        raise KeyboardInterrupt
    if result.summary is None:
        raise UserError(f"run in {result.run_dir} produced no summary")
    result.summary.attrs["run_dir"] = str(result.run_dir)
    result.summary.attrs["failed"] = result.failed
    return result.summary
