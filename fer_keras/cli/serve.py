"""fer-serve: the facial expression web service and page (FastAPI + uvicorn).

Examples:
    fer-serve                                   # http://127.0.0.1:8000/
    fer-serve --runtime onnx --port 8080
    fer-serve --host 0.0.0.0 --max-upload-mb 5  # reachable from other machines
    fer-serve --body-timeout 10                 # 408 for uploads that stall 10 s
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fer_keras.cli import _common
from fer_keras.cli.predict import MODEL_HELP, RUNTIME_HELP


def build_parser() -> argparse.ArgumentParser:
    from fer_keras.inference.faces import DEFAULT_DETECTOR, DETECTORS

    p = _common.parser("fer-serve", "Serve the expression model: a web page at / and a JSON API at /api/predict.")
    p.add_argument("--model", default=None, metavar="DIR", help=MODEL_HELP)
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--runtime", default="auto", choices=["auto", "keras", "onnx"], help=RUNTIME_HELP)
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest accepted request body in MB (default 10)")
    p.add_argument(
        "--max-batch-files", type=int, default=16, help="most files per /api/predict/batch request (default 16)"
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="answer 408 and close the connection when a request body stalls this long (default 30)",
    )
    p.add_argument("--no-detect", action="store_true", help="no face detection: each upload is one face crop")
    p.add_argument(
        "--detector", default=DEFAULT_DETECTOR, choices=DETECTORS, help=f"face detector (default {DEFAULT_DETECTOR})"
    )
    p.add_argument("--dry-run", action="store_true", help="check the model folder and settings, start nothing")
    return p


def handle(args: argparse.Namespace) -> int:
    from fer_keras.inference.predictor import resolve_runtime
    from fer_keras.serve.app import create_app
    from fer_keras.validation import check_float, check_int

    check_int("--port", args.port, minimum=1, maximum=65535)
    check_float("--max-upload-mb", args.max_upload_mb, low=0.0, low_inclusive=False)
    check_float("--body-timeout", args.body_timeout, low=0.0, low_inclusive=False)
    max_bytes = max(1, round(args.max_upload_mb * 2**20))
    app = create_app(
        args.model,
        runtime=args.runtime,
        max_upload_bytes=max_bytes,
        max_batch_files=args.max_batch_files,
        detect=not args.no_detect,
        detector=args.detector,
        body_timeout=args.body_timeout,
    )
    recognizer = app.state.recognizer
    runtime = resolve_runtime(recognizer.model_dir, args.runtime)
    if args.dry_run:
        print(
            f"would serve {recognizer.model_dir} ({runtime}) on http://{args.host}:{args.port}/ "
            f"(request bodies time out after {args.body_timeout:g} s without data)"
        )
        return 0
    import uvicorn

    if not args.quiet:
        print(
            f"fer-serve: loading {recognizer.model_dir} ({runtime}); page at http://{args.host}:{args.port}/",
            file=sys.stderr,
        )
    # One process, no reload: the model is loaded once and shared by the worker threads.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return _common.run(build_parser(), handle, argv)


if __name__ == "__main__":
    sys.exit(main())
