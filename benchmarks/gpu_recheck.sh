#!/usr/bin/env bash
# Second, shorter device check after the one-sync-per-chunk change: CUDA tests + throughput without the naive baseline.
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .bench/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
mkdir -p /tmp/shared/data && ln -sfn "$PWD/.bench/imagenet-sample" /tmp/shared/data/imagenet-sample
export ROBUSTBENCH_LITE_SHARED=/tmp/shared
python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | grep -E "passed|failed|Error|assert" | head -20
python3 benchmarks/throughput.py --device cuda --precision bf16 --photos 500 --repeat-photos 4 --batch-size auto \
    --repeats 2 --skip-naive > "${OUT:-/tmp}/gpu_throughput2.json"
cat "${OUT:-/tmp}/gpu_throughput2.json"
