"""Benchmark the low-pass defect of FER2013's train split and the inference blur that answers it.

Two measurements:

1. Sharpness per split (``fer_keras.sharpness``: median variance of the Laplacian of
   the standardised image, and median JPEG size) on a fixed random sample per split.
2. ``valid`` accuracy of a trained model as a function of the ``InferenceBlur`` sigma
   applied to its inputs (``none`` = the layer bypassed): how much the blur recovers,
   and which sigma ``valid`` prefers. ``test`` is not looked at.

    .venv/bin/python benchmarks/bench_lowpass.py --quick   # seconds: generated data, untrained model
    .venv/bin/python benchmarks/bench_lowpass.py           # FER2013 + models/best_model → results/lowpass.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FER2013 = ROOT.parent / "shared" / "datasets" / "fer2013"
RESULTS = ROOT / "benchmarks" / "results" / "lowpass.md"
EXIT_SKIP = 77
SIGMAS = [None, 1.0, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0]


def quick_inputs(tmp: Path) -> tuple[Path, Path]:
    """A demo dataset whose train split is blurred, and an untrained fer_vgg_lowpass checkpoint."""
    import numpy as np
    from PIL import Image, ImageFilter

    from fer_keras.builder import build_model
    from fer_keras.demo import make_demo_dataset

    data = tmp / "demo"
    make_demo_dataset(data, {"train": 4, "valid": 4}, seed=0)
    for path in (data / "train").glob("*/*"):
        Image.open(path).filter(ImageFilter.GaussianBlur(3)).save(path)
    model = build_model(ROOT / "architectures" / "fer_vgg_lowpass.json", (48, 48, 1), 7)
    model.predict(np.zeros((1, 48, 48, 1), np.float32), verbose=0)
    model.save(tmp / "model.keras")
    return data, tmp / "model.keras"


def accuracy_by_sigma(model_path: Path, data: Path, sigmas: list) -> list[tuple[str, float]]:
    """``valid`` accuracy with the model's InferenceBlur set to each sigma (eager calls read it)."""
    import keras
    import numpy as np

    from fer_keras.dataset import load_split
    from fer_keras.layers import InferenceBlur

    model = keras.saving.load_model(model_path, compile=False)
    blur = next((layer for layer in model.layers if isinstance(layer, InferenceBlur)), None)
    if blur is None:
        raise SystemExit(f"error: {model_path} has no InferenceBlur layer")
    shape = model.input_shape
    valid = load_split(data, "valid", shape[1:3], "grayscale" if shape[3] == 1 else "rgb", quiet=True)
    original, rows = blur.sigma, []
    for sigma in sigmas:
        blur.sigma = sigma if sigma is not None else 1e-3  # a 3-tap kernel of ~[0, 1, 0]: no blur
        probs = np.concatenate(
            [
                np.asarray(model(valid.images[i : i + 256].astype("float32"), training=False))
                for i in range(0, len(valid), 256)
            ]
        )
        label = "none" if sigma is None else f"{sigma:g}" + (" (model)" if sigma == original else "")
        rows.append((label, float((probs.argmax(1) == valid.labels).mean())))
        print(f"sigma {label:<12} valid accuracy {rows[-1][1]:.2%}", flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="generated data and an untrained model; prints only")
    p.add_argument("--data", default=str(FER2013), help=f"dataset root (default {FER2013})")
    p.add_argument("--model", default=str(ROOT / "models" / "best_model" / "model.keras"), help="a .keras model")
    p.add_argument("--sample", type=int, default=2000, help="images per split for sharpness (default 2000)")
    p.add_argument("--out", default=str(RESULTS), help=f"results file of the full mode (default {RESULTS})")
    args = p.parse_args(argv)

    from fer_keras.sharpness import split_sharpness

    tmp = tempfile.TemporaryDirectory(prefix="bench_lowpass_") if args.quick else None
    if args.quick:
        data, model_path = quick_inputs(Path(tmp.name))
        sample, sigmas = 100, [None, 3.0]
    else:
        data, model_path, sample, sigmas = Path(args.data), Path(args.model), args.sample, SIGMAS
        if not (data / "valid").is_dir():
            print(f"skipped: {data} has no valid split (use --quick for generated data)", file=sys.stderr)
            return EXIT_SKIP
    splits = [s for s in ("train", "valid", "test") if (data / s).is_dir()]
    sharp = split_sharpness({s: sorted(str(f) for f in (data / s).glob("*/*")) for s in splits}, sample=sample)
    for name, row in sharp["splits"].items():
        print(
            f"{name:<6} sharpness {row['median_sharpness']:.4g}  median file {row['median_file_bytes']} B", flush=True
        )
    rows = accuracy_by_sigma(model_path, data, sigmas) if model_path.is_file() else []
    if args.quick:
        return 0

    top = max(r["median_sharpness"] for r in sharp["splits"].values())
    lines = [
        "# Low-pass train split and inference blur",
        "",
        f"Measured {dt.date.today().isoformat()} on {data} with `.venv/bin/python benchmarks/bench_lowpass.py` "
        f"(2-core AMD EPYC Zen 4, no GPU).",
        "",
        f"Sharpness: median Laplacian variance of the standardised image, {sample} images per split (seed 0).",
        "",
        "| split | sampled | median sharpness | vs sharpest | median file size |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {n} | {r['sampled']} | {r['median_sharpness']:.4g} | {r['median_sharpness'] / top:.3f} | "
            f"{r['median_file_bytes']:,} B |"
            for n, r in sharp["splits"].items()
        ),
    ]
    if rows:
        shown = model_path.relative_to(ROOT) if model_path.is_relative_to(ROOT) else model_path
        lines += ["", f"`valid` accuracy of `{shown}` by InferenceBlur sigma (px at 48x48):", ""]
        lines += ["| sigma | valid accuracy |", "|---|---:|", *(f"| {s} | {a:.2%} |" for s, a in rows)]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
