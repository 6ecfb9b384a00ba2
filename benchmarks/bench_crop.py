"""Measure how FER2013 frames its faces relative to the Haar box inference finds: the crop rule.

The model only sees faces the way the training crops framed them. This script runs the
inference detector (``fer_keras.inference.faces.find_faces``: edge padding, upscaling,
Haar) on a random sample of FER2013 **train** faces and reports where the detected box
lies in the 48x48 crop: its side and centre as fractions of the crop. A crop rule that
reproduces the training framing from a detection in a photo is then "a square of
1 / side times the detected side, centred on the box", i.e. a margin per side of
``(1 / side - 1) / 2``. Only the train split is used (valid selects models, test and
lfw_expressions only report).

Usage:
    python benchmarks/bench_crop.py --quick          # seconds, on generated demo faces (CI)
    python benchmarks/bench_crop.py                  # FER2013 train sample -> results/crop.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_train import machine_description  # noqa: E402
from PIL import Image  # noqa: E402

from fer_keras.data.demo import make_demo_dataset  # noqa: E402
from fer_keras.inference.crop import DEFAULT_MARGIN  # noqa: E402
from fer_keras.inference.faces import find_faces  # noqa: E402

FER2013 = ROOT.parent / "shared" / "datasets" / "fer2013"
RESULTS = ROOT / "benchmarks" / "results" / "crop.md"


def measure(paths: list[Path]) -> dict[str, float]:
    """Median box side and centre (fractions of the crop) over the faces Haar finds."""
    sides, cx, cy = [], [], []
    for path in paths:
        with Image.open(path) as img:
            img.load()
            faces = find_faces(img)
            width, height = img.size
        if not faces[0].detected:
            continue
        box = faces[0].detection
        sides.append(max(box.w, box.h) / max(width, height))
        cx.append((box.x + box.w / 2) / width)
        cy.append((box.y + box.h / 2) / height)
    if not sides:
        raise SystemExit("error: no face detected in the sample")
    side = float(np.median(sides))
    return {
        "sampled": len(paths),
        "detected": len(sides),
        "side": side,
        "side_p25": float(np.percentile(sides, 25)),
        "side_p75": float(np.percentile(sides, 75)),
        "centre_x": float(np.median(cx)),
        "centre_y": float(np.median(cy)),
        "margin": (1 / side - 1) / 2,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="generated demo faces, seconds (CI)")
    p.add_argument("--sample", type=int, default=1500, help="train faces to measure (1500)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="bench_crop_") if args.quick else None
    if args.quick:
        root = Path(tmp.name) / "demo"
        make_demo_dataset(root, {"train": 3, "valid": 1, "test": 1}, seed=args.seed)
    else:
        root = FER2013
        if not (root / "train").is_dir():
            print(f"skipped: {root} not found", file=sys.stderr)
            return 77
    paths = sorted((root / "train").glob("*/*"))
    random.Random(args.seed).shuffle(paths)
    result = measure(paths[: args.sample])
    lines = [
        "# Crop rule: where the inference detector finds FER2013's faces",
        "",
        f"Measured {dt.date.today().isoformat()} with `.venv/bin/python benchmarks/bench_crop.py` on "
        f"{result['sampled']} random `train` faces of `{root}` ({machine_description()}).",
        "",
        "| faces detected | box side / crop side (median, p25-p75) | box centre x, y | margin per side that reproduces the crop |",
        "|---:|---:|---:|---:|",
        f"| {result['detected']} of {result['sampled']} | {result['side']:.3f} ({result['side_p25']:.3f}-"
        f"{result['side_p75']:.3f}) | {result['centre_x']:.3f}, {result['centre_y']:.3f} | {result['margin']:.3f} |",
        "",
        f"The shipped crop rule (`fer_keras/inference/crop.py`, recorded in `metadata.json`) uses a margin of "
        f"{DEFAULT_MARGIN} per side around a square, centred box.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        RESULTS.write_text(text)
        print(f"wrote {RESULTS}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
