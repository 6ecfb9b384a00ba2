"""Compare the face detectors (``--detector haar|ssd``): faces found, time per photo, box mapping.

Three measurements, each through ``fer_keras.inference.faces.find_faces`` (edge padding and
upscaling as every inference path does):

1. **Box mapping** (FER2013 ``train`` sample, the faces both detectors find): the SSD's box,
   as the square of its geometric-mean side at its centre, against the Haar box of the
   same face. Scale = Haar side / SSD side, dx/dy = (Haar centre - SSD centre) / Haar
   side (medians). These are ``SSD_TO_HAAR`` in ``fer_keras/inference/detectors.py``,
   which puts SSD boxes in the Haar frame the crop rule was measured on
   (``benchmarks/bench_crop.py``). Run with the mapping switched off.
2. **Faces found** on FER2013 ``test`` faces (48x48 crops, upscaled by ``find_faces``) and on
   every photo of ``lfw_expressions`` (evaluation only), split by image kind; CPU and wall
   milliseconds per photo.
3. **Video frame**: a 640x480 frame with one drawn face, milliseconds per ``find_faces`` call
   (the reactions video path detects on every sampled frame).

Optionally (``--accuracy``) the shipped model's accuracy on lfw_expressions through each
detector (``fer_keras.inference.labelled_eval``, what ``fer-eval --detect-faces --detector X`` runs).

Usage:
    python benchmarks/bench_detect.py --quick     # seconds, generated demo faces (CI)
    nice -n 19 python benchmarks/bench_detect.py  # FER2013 + lfw_expressions -> results/detect.md
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _bench import (
    FER2013,
    Clock,
    background_jobs,
    command_line,
    header,
    load_average,
    load_note,
    results_path,
    skip,
    write_results,
)
from PIL import Image

from fer_keras.data.demo import draw_face, make_demo_dataset
from fer_keras.errors import FerError
from fer_keras.inference import detectors
from fer_keras.inference.faces import find_faces

RESULTS = results_path("detect")
LFW = FER2013.parent / "lfw_expressions"
FRAME_SIZE = (640, 480)


@contextlib.contextmanager
def raw_ssd_boxes():
    """SSD boxes without the Haar-frame mapping (the mapping is what is being measured)."""
    saved = detectors.SSD_TO_HAAR
    detectors.SSD_TO_HAAR = (1.0, 0.0, 0.0)
    try:
        yield
    finally:
        detectors.SSD_TO_HAAR = saved


def available(names: list[str]) -> list[str]:
    """The detectors of ``names`` that can run here (the SSD needs its extra)."""
    ok = []
    for name in names:
        try:
            detectors.get_detector(name)
            ok.append(name)
        except FerError as err:
            print(f"warning: {err}", file=sys.stderr)
    return ok


def _open(path: Path) -> Image.Image:
    with Image.open(path) as img:
        img.load()
    return img


def measure_mapping(paths: list[Path]) -> dict:
    """Median scale and centre offset from the SSD's box to the Haar box, over faces both find."""
    scales, dxs, dys = [], [], []
    found = {"haar": 0, "ssd": 0}
    with raw_ssd_boxes():
        for path in paths:
            img = _open(path)
            haar, ssd = find_faces(img, detector="haar")[0], find_faces(img, detector="ssd")[0]
            found["haar"] += haar.detected
            found["ssd"] += ssd.detected
            if not (haar.detected and ssd.detected):
                continue
            h, s = haar.detection, ssd.detection
            hside = max(h.w, h.h)
            scales.append(hside / max(s.w, s.h))
            dxs.append((h.x + h.w / 2 - s.x - s.w / 2) / hside)
            dys.append((h.y + h.h / 2 - s.y - s.h / 2) / hside)
    if not scales:
        raise SystemExit("error: no face found by both detectors in the sample")
    scale, dx, dy = (float(np.median(v)) for v in (scales, dxs, dys))
    return {
        "sampled": len(paths),
        "found": found,
        "both": len(scales),
        "scale": scale,
        "scale_iqr": (float(np.percentile(scales, 25)), float(np.percentile(scales, 75))),
        "dx": dx,
        "dy": dy,
        "dxy_iqr": (float(np.percentile(dxs, 25)), float(np.percentile(dxs, 75))),
    }


def count_faces(paths: list[Path], name: str) -> dict:
    """Images where ``name`` finds a face, with CPU and wall time per image (decoding excluded)."""
    found, cpu, wall = 0, 0.0, 0.0
    kinds: dict[str, list[int]] = {}
    for path in paths:
        img = _open(path)
        with Clock() as clock:
            faces = find_faces(img, detector=name)
        cpu, wall = cpu + clock.cpu, wall + clock.wall
        found += faces[0].detected
        kind = "350x350 photos" if img.size == (350, 350) else "small RGB crops"
        kinds.setdefault(kind, [0, 0])
        kinds[kind][0] += faces[0].detected
        kinds[kind][1] += 1
    n = max(1, len(paths))
    return {"n": len(paths), "found": found, "cpu_ms": 1000 * cpu / n, "wall_ms": 1000 * wall / n, "kinds": kinds}


def video_frame(seed: int = 0) -> Image.Image:
    """A 640x480 RGB frame with one drawn face of 150 pixels in the middle."""
    frame = Image.new("RGB", FRAME_SIZE, (120, 140, 160))
    face = draw_face("happy", np.random.default_rng(seed), size=150, rgb=True)
    frame.paste(face, ((FRAME_SIZE[0] - 150) // 2, (FRAME_SIZE[1] - 150) // 2))
    return frame


def time_frames(name: str, repeats: int) -> dict:
    """Median CPU and wall milliseconds of ``find_faces`` on :func:`video_frame` (after one warm-up)."""
    frame = video_frame()
    detected = find_faces(frame, detector=name)[0].detected
    cpu, wall = [], []
    for _ in range(repeats):
        with Clock() as clock:
            find_faces(frame, detector=name)
        cpu.append(1000 * clock.cpu)
        wall.append(1000 * clock.wall)
    return {"detected": detected, "cpu_ms": statistics.median(cpu), "wall_ms": statistics.median(wall)}


def accuracy(names: list[str], root: Path) -> dict[str, dict]:
    """The shipped model's metrics on ``root`` (lfw_expressions) through each detector."""
    from fer_keras.inference.labelled_eval import evaluate, load_eval_set
    from fer_keras.inference.predictor import Predictor
    from fer_keras.model.shipped import default_model_dir

    predictor = Predictor.load(default_model_dir(), runtime="onnx")
    out = {}
    for name in names:
        data = load_eval_set(root, "test", detect_faces=True, detector=name)
        out[name] = evaluate(predictor, data)
    return out


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="generated demo faces, seconds (CI)")
    p.add_argument("--mapping-sample", type=int, default=1500, help="FER2013 train faces for the box mapping")
    p.add_argument("--fer-sample", type=int, default=1000, help="FER2013 test faces to count (0: all)")
    p.add_argument("--lfw-sample", type=int, default=0, help="lfw_expressions photos (0: all)")
    p.add_argument("--frames", type=int, default=30, help="timed 640x480 frames per detector")
    p.add_argument("--accuracy", action="store_true", help="also the shipped model's accuracy through each detector")
    p.add_argument("--mapping-only", action="store_true", help="print the box mapping only (no results file)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    names = available(list(detectors.DETECTORS))
    tmp = tempfile.TemporaryDirectory(prefix="bench_detect_") if args.quick else None
    if args.quick:
        fer = Path(tmp.name) / "demo"
        make_demo_dataset(fer, {"train": 2, "valid": 1, "test": 2}, seed=args.seed)
        lfw, args.frames = None, 3
    else:
        fer, lfw = FER2013, LFW
        if not (fer / "train").is_dir() or not (lfw / "test").is_dir():
            return skip(f"{fer} or {lfw} not found (use --quick for generated data)")
    rng = random.Random(args.seed)

    def sample(paths: list[Path], n: int) -> list[Path]:
        paths = sorted(paths)
        return paths if n <= 0 or n >= len(paths) else rng.sample(paths, n)

    load0, start = load_average(), time.perf_counter()
    busy = background_jobs("bench_detect")
    mapping = None
    if "ssd" in names:
        mapping = measure_mapping(sample(list((fer / "train").glob("*/*")), args.mapping_sample))
    if args.mapping_only:
        print(mapping)
        return 0
    fer_test = sample(list((fer / "test").glob("*/*")), args.fer_sample)
    counts = {name: count_faces(fer_test, name) for name in names}
    lfw_paths = sample(list(lfw.glob("test/*/*")), args.lfw_sample) if lfw else []
    lfw_counts = {name: count_faces(lfw_paths, name) for name in names} if lfw_paths else {}
    frames = {name: time_frames(name, args.frames) for name in names}
    metrics = accuracy(names, lfw) if args.accuracy and lfw else {}
    load1, minutes = load_average(), (time.perf_counter() - start) / 60

    lines = [
        *header("Face detectors: faces found, time per photo, box mapping", command_line(__file__, argv)),
        "",
        f"Total time {minutes:.1f} min, run under `nice -n 19`. {load_note(load0, load1)}. "
        f"Other jobs running during the measurement: {busy}. Wall times move with that load; "
        "CPU milliseconds (both cores counted) are the steadier number.",
        "",
    ]
    if mapping:
        m = mapping
        lines += [
            f"### Box mapping (SSD -> Haar frame), {m['sampled']} random FER2013 `train` faces (seed {args.seed})",
            "",
            "| Haar found | SSD found | both | scale (median, p25-p75) | dx, dy (median) | dx p25-p75 | constant now |",
            "|---:|---:|---:|---:|---:|---:|---|",
            f"| {m['found']['haar']} | {m['found']['ssd']} | {m['both']} | {m['scale']:.3f} "
            f"({m['scale_iqr'][0]:.3f}-{m['scale_iqr'][1]:.3f}) | {m['dx']:+.3f}, {m['dy']:+.3f} | "
            f"{m['dxy_iqr'][0]:+.3f}-{m['dxy_iqr'][1]:+.3f} | `SSD_TO_HAAR = {detectors.SSD_TO_HAAR}` |",
            "",
        ]
    lines += [
        f"### Faces found on FER2013 `test` faces ({len(fer_test)} random 48x48 crops, upscaled by `find_faces`)",
        "",
        "| detector | faces found | CPU ms / image | wall ms / image |",
        "|---|---:|---:|---:|",
        *(
            f"| {n} | {c['found']} of {c['n']} ({pct(c['found'], c['n'])}) | {c['cpu_ms']:.1f} | {c['wall_ms']:.1f} |"
            for n, c in counts.items()
        ),
        "",
    ]
    if lfw_counts:
        kinds = sorted({k for c in lfw_counts.values() for k in c["kinds"]})
        lines += [
            f"### Faces found on `lfw_expressions` ({len(lfw_paths)} photos, evaluation only)",
            "",
            "| detector | faces found, all | " + " | ".join(kinds) + " | CPU ms / photo | wall ms / photo |",
            "|---|---:|" + "---:|" * len(kinds) + "---:|---:|",
        ]
        for n, c in lfw_counts.items():
            per_kind = " | ".join(
                f"{c['kinds'][k][0]} of {c['kinds'][k][1]} ({pct(*c['kinds'][k])})" if k in c["kinds"] else "-"
                for k in kinds
            )
            lines.append(
                f"| {n} | {c['found']} of {c['n']} ({pct(c['found'], c['n'])}) | {per_kind} | "
                f"{c['cpu_ms']:.1f} | {c['wall_ms']:.1f} |"
            )
        lines.append("")
    lines += [
        f"### One 640x480 video frame with one face (median of {args.frames} calls)",
        "",
        "| detector | face found | CPU ms / frame | wall ms / frame |",
        "|---|---|---:|---:|",
        *(f"| {n} | {f['detected']} | {f['cpu_ms']:.1f} | {f['wall_ms']:.1f} |" for n, f in frames.items()),
        "",
    ]
    if metrics:
        lines += [
            "### Shipped model on `lfw_expressions` through each detector (`fer-eval --detect-faces --detector X`)",
            "",
            "| detector | faces found | accuracy | macro-F1 |",
            "|---|---:|---:|---:|",
            *(
                f"| {n} | {r['faces']['detected']} of {r['n']} | {100 * r['accuracy']:.2f}% | {100 * r['macro_f1']:.2f}% |"
                for n, r in metrics.items()
            ),
            "",
        ]
    lines.append(f"Default detector: `{detectors.DEFAULT_DETECTOR}` (both detectors come with the core install).")
    print("\n".join(lines))
    if not args.quick:
        write_results(RESULTS, lines)
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
