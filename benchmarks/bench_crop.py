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
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
from _bench import FER2013, command_line, header, results_path, skip, write_results
from PIL import Image

from fer_keras.data.demo import make_demo_dataset
from fer_keras.inference.faces import find_faces
from fer_keras.model.crop import DEFAULT_MARGIN

RESULTS = results_path("crop")


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
            return skip(f"{root} not found (use --quick for generated data)")
    paths = sorted((root / "train").glob("*/*"))
    random.Random(args.seed).shuffle(paths)
    result = measure(paths[: args.sample])
    lines = [
        *header("Crop rule: where the inference detector finds FER2013's faces", command_line(__file__)),
        f"Sample: {result['sampled']} random `train` faces of `{root}` (seed {args.seed}).",
        "",
        "| faces detected | box side / crop side (median, p25-p75) | box centre x, y | margin per side that reproduces the crop |",
        "|---:|---:|---:|---:|",
        f"| {result['detected']} of {result['sampled']} | {result['side']:.3f} ({result['side_p25']:.3f}-"
        f"{result['side_p75']:.3f}) | {result['centre_x']:.3f}, {result['centre_y']:.3f} | {result['margin']:.3f} |",
        "",
        f"The shipped crop rule (`fer_keras/model/crop.py`, recorded in `metadata.json`) uses a margin of "
        f"{DEFAULT_MARGIN} per side around a square, centred box.",
    ]
    print("\n".join(lines))
    if not args.quick:
        write_results(RESULTS, lines)
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
