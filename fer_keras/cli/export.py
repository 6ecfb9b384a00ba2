"""``fer-export``: convert a model folder to ONNX, TFLite or SavedModel, checked for parity.

Example:
    fer-export --format onnx
    fer-export --model models/best_model --format tflite --samples data/demo/test
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from fer_keras.cli import _common
from fer_keras.constants import EXPORT_INPUT_NAME, EXPORT_OUTPUT_NAME
from fer_keras.inference import export
from fer_keras.model.shipped import default_model_dir


def build_parser() -> argparse.ArgumentParser:
    p = _common.parser(
        "fer-export",
        "Export a model folder's model.keras to ONNX, TFLite or a TF SavedModel, then check that the export "
        "gives the same probabilities as Keras on sample images. The export is written only if the check passes; "
        f"a JSON sidecar (<export>.json) records it. Exports take '{EXPORT_INPUT_NAME}' (float32 raw pixels "
        f"in [0, 255], dynamic batch) and return '{EXPORT_OUTPUT_NAME}'.",
    )
    p.add_argument(
        "--model",
        default=str(default_model_dir()),
        metavar="DIR",
        help="model folder (default: the shipped model, %(default)s)",
    )
    p.add_argument("--format", required=True, choices=export.FORMATS, help="export format")
    p.add_argument(
        "--out",
        metavar="PATH",
        help="output file (onnx, tflite) or folder (savedmodel); default: model.onnx, model.tflite "
        "or saved_model inside the model folder",
    )
    p.add_argument("--samples", metavar="DIR", help="folder of images for the parity check (default: drawn faces)")
    p.add_argument(
        "--num-samples",
        type=int,
        default=export.DEFAULT_NUM_SAMPLES,
        metavar="N",
        help="sample images (default: %(default)s)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        help="max abs difference of probabilities (default: "
        + "; ".join(f"{v:g} for {k} weights" for k, v in export.DEFAULT_TOLERANCES.items())
        + ")",
    )
    p.add_argument(
        "--opset",
        type=int,
        default=export.DEFAULT_OPSET,
        help=f"ONNX opset, {export.MIN_OPSET}-{export.MAX_OPSET} (default: %(default)s)",
    )
    p.add_argument(
        "--weights",
        choices=export.WEIGHT_DTYPES,
        default="float32",
        help="how the ONNX file stores weights: float16 halves it, computation stays float32 (default: %(default)s)",
    )
    p.add_argument("--dry-run", action="store_true", help="validate and show what would be exported, write nothing")
    return p


def handle(args: argparse.Namespace) -> int:
    plan = export.plan_export(
        args.model,
        args.format,
        args.out,
        samples_dir=args.samples,
        num_samples=args.num_samples,
        tolerance=args.tolerance,
        opset=args.opset,
        weights=args.weights,
    )
    opset = f" (opset {plan.opset}, {plan.weights} weights)" if plan.opset is not None else ""
    if args.dry_run:
        print(f"would export {plan.info.path} to {plan.format}{opset}: {plan.path}")
        print(f"parity check on {len(plan.samples)} samples from {plan.sample_source}, tolerance {plan.tolerance:g}")
        return 0
    from fer_keras.extras import require

    require("keras", "train")  # every format converts model.keras (and checks parity against it)
    with _common.progress(total=len(export.STEPS), desc=f"export {plan.format}", quiet=args.quiet) as bar:
        result = export.run_plan(plan, bar)
    print(f"exported {plan.format}{opset}: {result.path} ({_size(result.path)}) in {result.seconds:.1f} s")
    print(
        f"parity on {len(plan.samples)} samples from {plan.sample_source}: max abs diff of probabilities "
        f"{result.max_abs_diff:.3g} (tolerance {plan.tolerance:g}), top-1 agreement "
        f"{result.top1_agreement}/{len(plan.samples)}"
    )
    print(f"sidecar: {result.sidecar}")
    return 0


def _size(path: Path) -> str:
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    size = sum(f.stat().st_size for f in files)
    return f"{size / 1e6:.2f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


def main(argv: Sequence[str] | None = None) -> int:
    return _common.run(build_parser(), handle, argv)


if __name__ == "__main__":
    sys.exit(main())
