"""The command line: the click commands over every stage below (`robustbench-lite run|report|...`).
Takes argv; gives exit codes (2 for a user's error, shown as one line). `main` loads click on call."""
from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """The `robustbench-lite` entry point (console script, `python -m robustbench_lite`, run_benchmark.py)."""
    from .commands import main as run_cli

    return run_cli(argv)
