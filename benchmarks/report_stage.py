"""The report stage of a finished run, timed as the engine runs it (issue #22): the example grid, every table,
figure and page, from the run's records, in a fresh process whose transforms have already run once (as they
have after a run's evaluation). Prints one JSON object: each repeat's wall seconds and CPU seconds (all the
process's threads: what a shared machine's other load does not inflate), and the run's own stage timings from
its manifest, with the report's share of the run.

    .venv/bin/python benchmarks/report_stage.py results/demo --repeats 3

The worker runs outside the current folder, so PYTHONPATH chooses the code timed (else the installed
package): two checkouts one after the other on the same folder compare them under the same load.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WORKER = r"""
import json, shutil, sys, time
from pathlib import Path
import torch
from robustbench_lite.conditions.keys import parse_severities
from robustbench_lite.models import load_models
from robustbench_lite.report.preview import write_run_examples
from robustbench_lite.run import engine
from robustbench_lite.run.config import RunConfig
from robustbench_lite.run.plan import plan_run

source, work = Path(sys.argv[1]), Path(sys.argv[2])
manifest = json.loads((source / "manifest.json").read_text())
config = RunConfig.from_dict({**manifest["config"], "out": str(work), "force": True, "device": "cpu"})
plan = plan_run(config, echo=lambda line: None)
models = load_models(plan.model_entries[:1], torch.device("cpu"))
conditions = {(c.transform, c.severity) for c in plan.conditions}
write_run_examples(work.parent / "warm.png", plan.samples, models[0].geometry, plan.transforms,
                   parse_severities(plan.config.severities), plan.config.seed, conditions=conditions)
if work.exists():
    shutil.rmtree(work)
work.mkdir(parents=True)
shutil.copy(source / "records.parquet", work / "records.parquet")
start, cpu = time.perf_counter(), time.process_time()
engine._summarise(plan, models, manifest)
print(json.dumps({"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a finished run folder (records.parquet, manifest.json)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    manifest = json.loads((args.run_dir / "manifest.json").read_text())
    seconds, cpu = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            done = subprocess.run([sys.executable, "-c", WORKER, str(args.run_dir.resolve()), str(Path(tmp) / "run")],
                                  capture_output=True, text=True, check=True, cwd=tmp)  # not the checkout: PYTHONPATH's
            measured = json.loads(done.stdout.strip().splitlines()[-1])
            seconds.append(round(measured["seconds"], 2))
            cpu.append(round(measured["cpu"], 2))
        shutil.rmtree(Path(tmp) / "run", ignore_errors=True)
    timings = manifest.get("timings", {})
    print(json.dumps({"report_stage_s": seconds, "report_stage_cpu_s": cpu, "run_timings": timings,
                      "report_share_of_run": round(timings["report"] / timings["total"], 3)
                      if timings.get("total") else None}, indent=1))


if __name__ == "__main__":
    main()
