"""Benchmark `--mixed-precision` (bfloat16 compute) against float32: training speed and accuracy.

Both arms train the same architecture from the same seed on the same images for the
same epochs, exactly as ``fer-train`` does (``keras.config.set_dtype_policy`` and a
float32 output layer), each in its own process so the dtype policy cannot leak. Speed
is training images/s over the epochs after the first (which includes tracing);
accuracy is ``valid`` accuracy after the last epoch. The ratio is measured in the
same run.

    .venv/bin/python benchmarks/bench_mixed_precision.py --quick   # seconds: demo data
    .venv/bin/python benchmarks/bench_mixed_precision.py           # FER2013 → results/mixed_precision.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import (
    FER2013,
    ROOT,
    command_line,
    header,
    load_average,
    load_note,
    results_path,
    skip,
    write_results,
)

RESULTS = results_path("mixed_precision")


def arm(data: str, arch: str, mixed: bool, epochs: int, train_images: int, batch_size: int, seed: int) -> dict:
    """One arm, run in this process: train, time the epochs, return speed and valid accuracy."""
    import keras
    import numpy as np

    from fer_keras.data.pipeline import AugmentConfig, load_split, make_dataset
    from fer_keras.model.builder import build_model

    keras.utils.set_random_seed(seed)
    if mixed:
        from fer_keras.training.train import mixed_precision_policy

        keras.config.set_dtype_policy(mixed_precision_policy())
    train = load_split(data, "train", (48, 48), "grayscale", quiet=True)
    pick = np.sort(np.random.default_rng(seed).choice(len(train), min(train_images, len(train)), replace=False))
    train.images, train.labels = train.images[pick], train.labels[pick]
    valid = load_split(data, "valid", (48, 48), "grayscale", train.class_names, quiet=True)
    n_classes = len(train.class_names)
    model = build_model(arch, (48, 48, 1), n_classes, output_float32=mixed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    ds = make_dataset(
        train, batch_size, n_classes, training=True, augment=AugmentConfig(zoom=0.1, shear=0.0), seed=seed
    )
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.fit(ds, epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
    steady = times[1:] or times
    probs = model.predict(make_dataset(valid, 256, n_classes), verbose=0)
    return {
        "mixed": mixed,
        "images_per_s": len(train) * len(steady) / sum(steady),
        "valid_accuracy": float((probs.argmax(1) == valid.labels).mean()),
        "epochs": epochs,
        "train_images": len(train),
        "valid_images": len(valid),
    }


def run_arm(args: argparse.Namespace, data: str, mixed: bool) -> dict:
    cmd = [sys.executable, __file__, "--arm", "mixed" if mixed else "float32", "--data", data, "--arch", args.arch,
           "--epochs", str(args.epochs), "--train-images", str(args.train_images), "--batch-size", str(args.batch_size)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"error: the {'mixed' if mixed else 'float32'} arm failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="demo data, 2 short epochs; prints only")
    p.add_argument("--data", default=str(FER2013), help=f"dataset root (default {FER2013})")
    p.add_argument("--arch", default=str(ROOT / "architectures" / "fer_vgg.json"))
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--train-images", type=int, default=8000, help="random training subset (default 8000)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--arm", choices=["float32", "mixed"], help=argparse.SUPPRESS)  # internal: one arm
    args = p.parse_args(argv)
    if args.arm:
        result = arm(args.data, args.arch, args.arm == "mixed", args.epochs, args.train_images, args.batch_size, 0)
        print(json.dumps(result))
        return 0

    tmp = tempfile.TemporaryDirectory(prefix="bench_mixed_") if args.quick else None
    if args.quick:
        from fer_keras.data.demo import make_demo_dataset

        data = Path(tmp.name) / "demo"
        make_demo_dataset(data, {"train": 8, "valid": 4}, seed=0)
        args.epochs, args.arch = 2, str(ROOT / "architectures" / "demo_small.json")
    else:
        data = Path(args.data)
        if not (data / "valid").is_dir():
            return skip(f"{data} has no valid split (use --quick for generated data)")
    load_before = load_average()
    results = [run_arm(args, str(data), mixed) for mixed in (False, True)]
    load_after = load_average()
    base, mixed = results
    for r in results:
        name = "mixed_bfloat16" if r["mixed"] else "float32"
        print(f"{name:<15} {r['images_per_s']:7.1f} img/s  valid accuracy {r['valid_accuracy']:.2%}", flush=True)
    speedup = mixed["images_per_s"] / base["images_per_s"]
    print(f"mixed / float32 speed: {speedup:.2f}x", flush=True)
    if args.quick:
        return 0
    arch = Path(args.arch).name
    lines = [
        *header("Mixed precision (bfloat16) vs float32", command_line(__file__, argv)),
        f"{load_note(load_before, load_after)}.",
        f"`{arch}`, grayscale 48x48, {base['train_images']} random FER2013 train images, batch {args.batch_size}, "
        f"Adam 1e-3, {args.epochs} epochs from seed 0, each arm in its own process; speed over epochs 2-{args.epochs}; "
        f"accuracy on all {base['valid_images']} valid images after the last epoch.",
        "",
        "| compute | training images/s | vs float32 | valid accuracy |",
        "|---|---:|---:|---:|",
        f"| float32 | {base['images_per_s']:.1f} | 1.00x | {base['valid_accuracy']:.2%} |",
        f"| mixed_bfloat16 | {mixed['images_per_s']:.1f} | {speedup:.2f}x | {mixed['valid_accuracy']:.2%} |",
        "",
        f"Here bfloat16 is {'faster' if speedup > 1 else 'slower'} ({speedup:.2f}x): without AMX the CPU has no "
        "bfloat16 matrix unit, so `--mixed-precision` is for CPUs with AMX and for GPUs; the accuracy column "
        "shows its effect on the result.",
    ]
    write_results(args.out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
