"""After the records: the summary (always) and the full report (unless --no-report)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .config import RunConfig
from .manifest import read_manifest


def summarize_run(run_dir: Path, config: RunConfig, report: bool = True) -> pd.DataFrame:
    """Write summary.csv (and, with `report`, every table, plot and report file); return the summary."""
    run_dir = Path(run_dir)
    if report:
        from .report import write_report

        write_report([run_dir], run_dir, baseline=config.baseline)
        return pd.read_csv(run_dir / "summary.csv")
    from .metrics import summarize
    from .report import read_run_records

    manifest = read_manifest(run_dir)
    records = read_run_records(run_dir)
    models = list(manifest["models"])
    summary = summarize(records, manifest["conditions"], baseline=config.baseline or models[0], model_order=models)
    summary.to_csv(run_dir / "summary.csv", index=False)
    return summary
