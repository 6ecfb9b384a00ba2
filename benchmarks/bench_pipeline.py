"""Benchmark the training input pipeline against the reference project's ImageDataGenerator.

Two pipelines over the same ``train`` split, same batch size, same augmentation
(horizontal flip, shear 0.2, zoom 0.2), 48x48 grayscale:

- project: ``fer_keras.data.pipeline.load_split`` (decode once into memory, PIL in a thread
  pool) + ``make_dataset(training=True, augment=AugmentConfig())`` (tf.data: shuffle
  indices, gather, Keras augmentation layers, prefetch);
- baseline: ``tf.keras.preprocessing.image.ImageDataGenerator(rescale=1/255,
  shear_range=0.2, zoom_range=0.2, horizontal_flip=True).flow_from_directory(...)``
  (reads and decodes every file every epoch, transforms one image at a time).

Measured, each the median of several repeats:

1. images/s of the pipeline alone over N batches (after a few warm-up batches);
2. the share of a ``fer_vgg`` training step spent waiting for data: each step times
   ``next(iterator)`` separately from ``train_on_batch``, share = data / (data + step).
   The issue asks for < 10 % with the project pipeline on cached FER2013;
3. for reference, the step time on one fixed in-memory batch (no pipeline at all).

    .venv/bin/python benchmarks/bench_pipeline.py --quick   # seconds, generated demo data, prints only
    .venv/bin/python benchmarks/bench_pipeline.py           # FER2013 train → benchmarks/results/pipeline.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _bench import FER2013, ROOT, background_jobs, command_line, header, results_path, skip, write_results

RESULTS = results_path("pipeline")
SIZE = (48, 48)
SHARE_LIMIT = 0.10


def project_iterator(root: Path, batch: int, seed: int):
    """(endless batch iterator, one-off decode seconds, class count) of the project pipeline."""
    from fer_keras.data.pipeline import AugmentConfig, load_split, make_dataset

    start = time.perf_counter()
    data = load_split(root, "train", SIZE, "grayscale", quiet=True)
    decode_s = time.perf_counter() - start
    ds = make_dataset(data, batch, len(data.class_names), training=True, augment=AugmentConfig(), seed=seed)
    return iter(ds.repeat()), decode_s, len(data.class_names), len(data)


def baseline_iterator(root: Path, batch: int, seed: int):
    """The reference project's generator; its iterator never ends (it loops over epochs)."""
    import tensorflow as tf

    datagen = tf.keras.preprocessing.image.ImageDataGenerator(
        rescale=1 / 255, shear_range=0.2, zoom_range=0.2, horizontal_flip=True
    )
    flow = datagen.flow_from_directory(
        str(root / "train"),
        target_size=SIZE,
        color_mode="grayscale",
        batch_size=batch,
        class_mode="categorical",
        seed=seed,
    )
    return flow


def throughput(iterator, batches: int, warmup: int) -> float:
    """Images/s of ``next(iterator)`` over ``batches`` batches."""
    for _ in range(warmup):
        next(iterator)
    images, start = 0, time.perf_counter()
    for _ in range(batches):
        x, _ = next(iterator)
        images += len(x)
    return images / (time.perf_counter() - start)


def make_model(arch: Path, num_classes: int):
    from fer_keras.model.builder import build_model

    model = build_model(arch, (*SIZE, 1), num_classes)
    model.compile(optimizer="adamw", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def data_share(model, iterator, steps: int, warmup: int) -> tuple[float, float, float]:
    """(data / (data + step), mean data ms, mean step ms) over ``steps`` training steps."""
    for _ in range(warmup):
        x, y = next(iterator)
        model.train_on_batch(x, y)
    data_s = step_s = 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        x, y = next(iterator)
        t1 = time.perf_counter()
        model.train_on_batch(x, y)
        t2 = time.perf_counter()
        data_s += t1 - t0
        step_s += t2 - t1
    return data_s / (data_s + step_s), 1000 * data_s / steps, 1000 * step_s / steps


def fixed_step_ms(model, batch: int, num_classes: int, steps: int) -> float:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (batch, *SIZE, 1)).astype(np.float32)
    y = np.eye(num_classes, dtype=np.float32)[rng.integers(0, num_classes, batch)]
    model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return 1000 * (time.perf_counter() - start) / steps


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="generated demo data, a few batches, 1 repeat; prints only")
    p.add_argument("--data", default=str(FER2013), help=f"dataset root with a train/ split (default {FER2013})")
    p.add_argument("--arch", help="architecture name for the training step (default fer_vgg; quick demo_small)")
    p.add_argument("--batch-size", type=int, default=64, help="default 64 (configs/fer_vgg_fer2013.json)")
    p.add_argument("--batches", type=int, help="batches timed for throughput (default 150; quick 4)")
    p.add_argument("--steps", type=int, help="training steps timed for the data share (default 40; quick 3)")
    p.add_argument("--repeats", type=int, help="repeats, median reported (default 3; quick 1)")
    p.add_argument("--out", default=str(RESULTS), help=f"results file of the full mode (default {RESULTS})")
    args = p.parse_args(argv)

    quick = args.quick
    batches = args.batches or (4 if quick else 150)
    steps = args.steps or (3 if quick else 40)
    repeats = args.repeats or (1 if quick else 3)
    batch = 16 if quick and args.batch_size == 64 else args.batch_size
    tmp = None
    if quick:
        from fer_keras.data.demo import make_demo_dataset

        tmp = tempfile.TemporaryDirectory(prefix="bench_pipeline_")
        root = Path(tmp.name) / "demo"
        make_demo_dataset(root, {"train": 12}, seed=0)
    else:
        root = Path(args.data)
        if not (root / "train").is_dir():
            return skip(f"{root / 'train'} not found (use --quick for generated data)")

    import keras

    started = time.perf_counter()
    keras.utils.set_random_seed(0)
    project, decode_s, num_classes, n_images = project_iterator(root, batch, seed=0)
    baseline = baseline_iterator(root, batch, seed=0)
    arch = args.arch or ("demo_small" if quick else "fer_vgg")
    model = make_model(ROOT / "architectures" / f"{arch}.json", num_classes)
    results: dict[str, dict[str, list[float]]] = {name: {} for name in ("project", "baseline", "fixed")}

    def record(name: str, key: str, value: float) -> None:
        results[name].setdefault(key, []).append(value)

    for r in range(repeats):
        for name, iterator in (("project", project), ("baseline", baseline)):
            rate = throughput(iterator, batches, warmup=2)
            share, data_ms, step_ms = data_share(model, iterator, steps, warmup=2)
            record(name, "rate", rate)
            record(name, "share", share)
            record(name, "data_ms", data_ms)
            record(name, "step_ms", step_ms)
            print(
                f"repeat {r + 1}: {name:<8} {rate:8.0f} img/s alone; in training: data {data_ms:6.1f} ms + "
                f"step {step_ms:6.1f} ms per batch → data share {share:5.1%}",
                flush=True,
            )
        record("fixed", "step_ms", fixed_step_ms(model, batch, num_classes, max(2, steps // 2)))
    jobs = background_jobs(exclude="bench_pipeline")
    elapsed = time.perf_counter() - started
    med = {name: {k: statistics.median(v) for k, v in values.items()} for name, values in results.items()}
    ok = med["project"]["share"] < SHARE_LIMIT
    print(
        f"median: project {med['project']['rate']:.0f} img/s ({med['project']['rate'] / med['baseline']['rate']:.1f}x "
        f"the baseline's {med['baseline']['rate']:.0f}); data share project {med['project']['share']:.1%} "
        f"({'<' if ok else '>='} {SHARE_LIMIT:.0%}), baseline {med['baseline']['share']:.1%}; "
        f"one-off decode {decode_s:.1f} s for {n_images} images"
    )
    if tmp is not None:
        tmp.cleanup()
    if quick:
        return 0

    base = med["baseline"]
    lines = [
        *header("Input pipeline", command_line(__file__, argv)),
        f"Total time {elapsed / 60:.1f} min. Other jobs running during the measurement: {jobs}.",
        "",
        f"Data: `{root}/train`, {n_images:,} images, 48x48 grayscale, batch {batch}, augmentation flip + shear 0.2 + "
        f"zoom 0.2 in both pipelines. Throughput over {batches} batches after 2 warm-up batches; data share over "
        f"{steps} `{arch}` training steps (`train_on_batch`, AdamW) after 2 warm-up steps; medians of {repeats} "
        "repeats, ratios against the baseline measured in the same run.",
        "",
        "| pipeline | images/s alone | vs baseline | data ms / batch | step ms / batch | data share of step |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "baseline": "ImageDataGenerator.flow_from_directory (baseline)",
        "project": "load_split + make_dataset (cached in memory)",
    }
    for name in ("baseline", "project"):
        m = med[name]
        lines.append(
            f"| {labels[name]} | {m['rate']:,.0f} | {m['rate'] / base['rate']:.1f}x | {m['data_ms']:.1f} | "
            f"{m['step_ms']:.0f} | {m['share']:.1%} |"
        )
    lines += [
        f"| no pipeline: one fixed in-memory batch | - | - | 0 | {med['fixed']['step_ms']:.0f} | 0 % |",
        "",
        f"The project pipeline decodes the split once: {decode_s:.1f} s for {n_images:,} files (PIL, thread pool); "
        "every later epoch gathers from memory. Requirement (issue 7): data loading < 10 % of the training step "
        f"time on cached FER2013: **{'met' if ok else 'NOT met'}** ({med['project']['share']:.1%}).",
    ]
    write_results(args.out, lines)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
