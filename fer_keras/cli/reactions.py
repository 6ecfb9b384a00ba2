"""fer-reactions: emotion timelines of viewers' faces in videos, and reactions over photo sets.

Examples:
    fer-reactions viewer1.mp4 viewer2.mp4 --out reactions/ad1
    fer-reactions campaign/ --out reactions/campaign --align ad_times.csv --annotate-video
    fer-reactions webcam.webm --out reactions/w --fps 10 --smooth 2 --smooth-method median --dry-run
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fer_keras.cli import _common


def build_parser() -> argparse.ArgumentParser:
    from fer_keras.inference.detectors import DEFAULT_DETECTOR, DETECTORS
    from fer_keras.reactions.analyze import DEFAULT_FPS
    from fer_keras.reactions.smoothing import DEFAULT_SMOOTH_METHOD, DEFAULT_SMOOTH_S, SMOOTH_METHODS

    p = _common.parser(
        "fer-reactions",
        "Emotion timelines of the faces in videos (one viewer per track), and reactions over folders of photos "
        "(one photo set per sub-folder): timeline.csv, summary.json, peak thumbnails and a report in --out.",
    )
    p.add_argument("paths", nargs="+", metavar="VIDEO|FOLDER", help="video files, photo files and/or folders")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (replaced whole at the end)")
    p.add_argument("--fps", type=float, default=DEFAULT_FPS, help=f"frames analysed per second of video "
                   f"(default {DEFAULT_FPS:g})")  # fmt: skip
    p.add_argument("--smooth", type=float, default=DEFAULT_SMOOTH_S, metavar="SECONDS",
                   help=f"smooth each viewer's probabilities over this many seconds; 0: off (default "
                   f"{DEFAULT_SMOOTH_S:g})")  # fmt: skip
    p.add_argument("--smooth-method", default=DEFAULT_SMOOTH_METHOD, choices=SMOOTH_METHODS,
                   help=f"ema: exponential, median: median of the window (default {DEFAULT_SMOOTH_METHOD})")  # fmt: skip
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=DETECTORS,
                   help=f"face detector (default {DEFAULT_DETECTOR})")  # fmt: skip
    p.add_argument("--align", metavar="TIMES.csv", help="ad segments (CSV: name,start_s,end_s) to break reactions "
                   "down by")  # fmt: skip
    # Not --annotate: fer-predict's --annotate takes a folder, and one option name takes one kind of value.
    p.add_argument("--annotate-video", dest="annotate", action="store_true",
                   help="also write <video>.annotated.mp4 with boxes and labels into the output folder")  # fmt: skip
    p.add_argument("--model", metavar="DIR", help="model folder (default: the shipped model)")
    p.add_argument("--runtime", default="auto", choices=["auto", "keras", "onnx"],
                   help="auto: onnx when the model folder has model.onnx, else keras")  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="check the inputs, segments and model; analyse nothing")
    return p


def handle(args: argparse.Namespace) -> int:
    from fer_keras.reactions.analyze import Settings
    from fer_keras.reactions.run import expected_frames, plan_reactions, run_reactions
    from fer_keras.reactions.segments import read_segments

    segments = tuple(read_segments(args.align)) if args.align else ()
    settings = Settings(
        fps=args.fps,
        smooth=args.smooth,
        smooth_method=args.smooth_method,
        detector=args.detector,
        segments=segments,
        align=args.align,
        annotate=args.annotate,
    )
    plan = plan_reactions(args.paths, args.out, settings=settings, model_dir=args.model, runtime=args.runtime)
    if args.dry_run:
        for message in plan.warnings:
            print(f"warning: {message}", file=sys.stderr)
        print(plan.describe())
        return 0

    def warn(message: str) -> None:
        bar.write(f"warning: {message}", file=sys.stderr)

    with _common.progress(total=expected_frames(plan), quiet=args.quiet, unit="frame", desc="reactions") as bar:
        result = run_reactions(plan, progress=bar, warn=warn)
    sources = result.summary["sources"]
    faces = sum(s["faces"] for s in sources)
    if not args.quiet:
        print(f"analysed {len(sources)} source(s), {faces} face sample(s); results in {result.out}", file=sys.stderr)
    print(result.out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return _common.run(build_parser(), handle, argv)


if __name__ == "__main__":
    sys.exit(main())
