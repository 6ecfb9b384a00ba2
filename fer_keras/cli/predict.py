"""fer-predict: the emotion of each face in images, files or folders.

Examples:
    fer-predict photo.jpg
    fer-predict photos/ more.png --out results.csv --annotate annotated/
    fer-predict crops/ --no-detect --json --out results.json --runtime onnx

The work is done by :class:`fer_keras.inference.recognizer.EmotionRecognizer` (the Python
API), through :func:`fer_keras.inference.predict.predict_files`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from fer_keras.cli import _common

MODEL_HELP = "model folder (default: $FER_KERAS_MODEL, else the shipped model)"
RUNTIME_HELP = (
    "auto (default: onnx when the folder has model.onnx and onnxruntime is installed, else keras), "
    "keras (model.keras, needs TensorFlow) or onnx (model.onnx, no TensorFlow)"
)


def build_parser() -> argparse.ArgumentParser:
    from fer_keras.inference.faces import DEFAULT_DETECTOR, DETECTORS

    p = _common.parser("fer-predict", "Predict the facial expression of each face in images or folders of images.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files and/or folders (searched recursively)")
    p.add_argument("--model", default=None, metavar="DIR", help=MODEL_HELP)
    p.add_argument("--runtime", default="auto", choices=["auto", "keras", "onnx"], help=RUNTIME_HELP)
    p.add_argument("--out", metavar="FILE", help="write the results here (CSV, or JSON with --json or a .json name)")
    p.add_argument("--json", action="store_true", help="JSON instead of CSV / text")
    p.add_argument("--no-detect", action="store_true", help="no face detection: each image is one face crop")
    p.add_argument(
        "--detector", default=DEFAULT_DETECTOR, choices=DETECTORS, help=f"face detector (default {DEFAULT_DETECTOR})"
    )
    p.add_argument(
        "--margin",
        type=float,
        default=None,
        help="widen each detected face by this fraction per side (default: the crop rule in the model's metadata)",
    )
    p.add_argument("--annotate", metavar="DIR", help="write copies of the images with boxes and labels to DIR")
    p.add_argument("--batch-size", type=int, default=32, help="files per batch (default 32)")
    p.add_argument(
        "--dry-run", action="store_true", help="check the model folder and list the inputs, classify nothing"
    )
    return p


def handle(args: argparse.Namespace) -> int:
    from fer_keras.errors import FerError
    from fer_keras.inference.predict import collect_files, predict_files, to_csv, to_json
    from fer_keras.inference.predictor import load_model_info, resolve_runtime
    from fer_keras.inference.recognizer import EmotionRecognizer
    from fer_keras.validation import check_float, check_int

    if args.margin is not None:
        check_float("--margin", args.margin, low=0.0)
    check_int("--batch-size", args.batch_size, minimum=1)
    recognizer = EmotionRecognizer(
        args.model, runtime=args.runtime, detect=not args.no_detect, detector=args.detector, margin=args.margin
    )
    files, missing = collect_files(args.paths)
    for path, reason in missing:
        print(f"warning: {path}: {reason}; skipped", file=sys.stderr)
    if not files:
        raise FerError(f"no image files in {', '.join(args.paths)}")
    if args.dry_run:
        info = load_model_info(recognizer.model_dir)
        runtime = resolve_runtime(info.path, args.runtime)
        print(f"would classify {len(files)} image file(s) with {info.name} ({runtime}); no output written")
        return 0

    predictor = recognizer.load().predictor
    with _common.progress(total=len(files), quiet=args.quiet or len(files) == 1, unit="img", desc="predict") as bar:
        results, failures = predict_files(
            recognizer, files, batch_size=args.batch_size, annotate_dir=args.annotate, progress=bar
        )
    for path, reason in failures:
        print(f"warning: {path}: {reason}; skipped", file=sys.stderr)
    if not results:
        raise FerError(f"none of the {len(files)} image file(s) could be read")

    as_json = args.json or (args.out or "").lower().endswith(".json")
    if as_json:
        text = json.dumps(to_json(results, predictor, failures + missing), indent=2) + "\n"
    elif args.out or len(results) > 1 or len(files) > 1:
        text = to_csv(results, predictor.class_names)
    else:
        text = _human(results[0], predictor.class_names)
    if args.out:
        from fer_keras.atomic import write_text_atomic

        write_text_atomic(args.out, text)
        faces = sum(len(r.faces) for r in results)
        if not args.quiet:
            print(f"wrote {faces} face(s) from {len(results)} file(s) to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if args.annotate and not args.quiet:
        print(f"annotated images in {args.annotate}", file=sys.stderr)
    return 0


def _human(result, class_names: Sequence[str]) -> str:
    """``Emotion: <label>`` of the first (largest) face, its probabilities, then any other faces."""
    first = result.faces[0]
    lines = [f"Emotion: {first.label}"]
    where = (
        "face at x={}, y={}, w={}, h={}".format(*first.box.as_list())
        if first.detected
        else "no face found: whole image"
    )
    lines.append(f"({where})")
    width = max(len(n) for n in class_names)
    for name in class_names:
        p = first.probabilities[name]
        lines.append(f"  {name:<{width}}  {p:6.1%}  {'#' * round(p * 30)}")
    for i, face in enumerate(result.faces[1:], start=2):
        x, y, w, h = face.box.as_list()
        lines.append(f"face {i}: {face.label} ({face.probabilities[face.label]:.1%}) at x={x}, y={y}, w={w}, h={h}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    return _common.run(build_parser(), handle, argv)


if __name__ == "__main__":
    sys.exit(main())
