#!/usr/bin/env python3
"""Thin wrapper: `python run_benchmark.py [OPTIONS]` is `robustbench-lite run [OPTIONS]`."""
import sys

from robustbench_lite.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
