"""What `--stability imagenet-p` costs: photo-frames scored per second against the bare forward rate of the
same model, measured in one process (issue #26).

One JSON object: the bare forward's images/s (random tensors already in memory, the run's batch size),
the stability pass's photo-frames/s (the bare forward timed before and after it, averaged) (ImageNet-P's 14 sequences, 444 frames a photo, made in memory and
scored), and their ratio (1.0 = the sequences cost nothing beyond the forward passes).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/stability_cost.py --photos 8
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "imagenet-sample"
sys.path.insert(0, str(REPO / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--batch", type=int, default=64, help="Batch of the bare forward (the run's own is auto).")
    parser.add_argument("--data", type=Path, default=SHARED)
    args = parser.parse_args()

    from throughput import forward_only

    from robustbench_lite.run.config import RunConfig
    from robustbench_lite.run.engine import run_benchmark

    images = 8 * args.batch
    before = images / forward_only(args.model, images, args.batch, "cpu", "fp32")
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as out:
        result = run_benchmark(RunConfig(data=str(args.data), models=args.model, transforms="none", limit=args.photos,
                                         out=out, device="cpu", stability="imagenet-p", report=False),
                               echo=lines.append)
        if result.exit_code != 0:
            sys.exit("\n".join(lines))
    after = images / forward_only(args.model, images, args.batch, "cpu", "fp32")  # the machine's load moves
    bare = (before + after) / 2
    line = next(text for text in lines if text.startswith("stability imagenet-p:"))
    frames, seconds = re.search(r"(\d+) photo-frames .* in ([\d.]+) s", line).groups()
    rate = int(frames) / float(seconds)
    print(json.dumps({"model": args.model, "photos": args.photos, "photo_frames": int(frames),
                      "stability_s": float(seconds), "photo_frames_per_s": round(rate, 1),
                      "bare_forward_images_per_s": round(bare, 1),
                      "bare_forward_before_after": [round(before, 1), round(after, 1)], "ratio_to_bare_forward": round(rate / bare, 3)},
                     indent=1))


if __name__ == "__main__":
    main()
