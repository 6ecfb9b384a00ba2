"""Benchmark `fer-balance`: augmentation + PNG write, images/s, against Keras ImageDataGenerator.

Each run augments the same source images three ways and writes every result as a PNG:

- baseline: ``tf.keras.preprocessing.image.ImageDataGenerator(rotation_range=40,
  width_shift_range=0.2, height_shift_range=0.2, shear_range=0.2, zoom_range=0.2,
  horizontal_flip=True, fill_mode='nearest')``, one process (what
  ``flow_from_directory(save_to_dir=...)`` does: load_img, random_transform, array_to_img().save);
- ``fer_keras.data.balance.augment_file`` with the ``balanced`` recipe, one process;
- the same through fer-balance's process pool on every core.

Full mode also times one complete ``balanced`` build (10,000 per class) from FER2013
train into /tmp, and its idempotent rerun, then writes benchmarks/results/balance.md.

    .venv/bin/python benchmarks/bench_balance.py --quick     # seconds, for CI
    .venv/bin/python benchmarks/bench_balance.py             # median of 3 runs x 5,000 images + full build
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _bench import (
    FER2013,
    ROOT,
    Clock,
    command_line,
    header,
    load_average,
    load_note,
    results_path,
    write_results,
)

RECIPE = ROOT / "balancing" / "balanced.json"
RESULTS = results_path("balance")


def source_images(count: int, scratch: Path) -> tuple[list[str], str]:
    """``count`` source paths cycling over FER2013 train (or generated faces if it is absent)."""
    from fer_keras.data.folders import scan_split

    if (FER2013 / "train").is_dir():
        root, label = FER2013, "FER2013 train (48x48 grayscale JPEG)"
    else:
        from fer_keras.data.demo import make_demo_dataset

        root, label = scratch / "demo", "generated demo faces (FER2013 absent)"
        make_demo_dataset(root, {"train": 30}, seed=0)
    paths = scan_split(root, "train").paths
    step = max(1, len(paths) // count)  # spread over every class
    picked = list(paths[::step])[:count]
    for path in picked:  # warm the page cache: the first method to read a file would pay for it
        Path(path).read_bytes()
    return [picked[i % len(picked)] for i in range(count)], label


def keras_datagen():
    """The baseline's augmentation: the reference project's ``ImageDataGenerator`` settings."""
    import tensorflow as tf

    return tf.keras.preprocessing.image.ImageDataGenerator(
        rotation_range=40,
        width_shift_range=0.2,
        height_shift_range=0.2,
        shear_range=0.2,
        zoom_range=0.2,
        horizontal_flip=True,
        fill_mode="nearest",
    )


def keras_baseline(paths: list[str], out: Path) -> Clock:
    import numpy as np
    import tensorflow as tf

    image = tf.keras.preprocessing.image
    datagen = keras_datagen()
    np.random.seed(0)
    with Clock() as clock:
        for i, path in enumerate(paths):
            x = image.img_to_array(image.load_img(path, color_mode="grayscale"))
            image.array_to_img(datagen.random_transform(x)).save(out / f"k_{i:06d}.png")
    return clock


def albumentations_one_process(paths: list[str], out: Path) -> Clock:
    from fer_keras.data.balance import augment_file
    from fer_keras.data.recipe import load_recipe

    pipeline = load_recipe(RECIPE).build_pipeline()
    with Clock() as clock:
        for i, path in enumerate(paths):
            augment_file(pipeline, path, str(out / f"a_{i:06d}.png"), seed=i)
    return clock


def albumentations_pool(paths: list[str], out: Path, workers: int) -> Clock:
    from fer_keras.data.balance_augment import generate
    from fer_keras.data.recipe import load_recipe

    recipe = load_recipe(RECIPE)
    tasks = [(path, str(out / f"p_{i:06d}.png"), i) for i, path in enumerate(paths)]
    with Clock() as clock:
        generate(tasks, recipe, workers, progress=None)  # includes starting the worker processes
    return clock


def components(paths: list[str], out: Path) -> list[tuple[str, float, float]]:
    """CPU microseconds per image of each step, Keras vs fer-balance, on the first image."""
    import io

    import cv2
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    from fer_keras.data.recipe import load_recipe, reseed

    image = tf.keras.preprocessing.image
    datagen = keras_datagen()
    pipeline = load_recipe(RECIPE).build_pipeline()
    x = image.img_to_array(image.load_img(paths[0], color_mode="grayscale"))
    u8 = x[..., 0].astype(np.uint8)
    encoded = cv2.imencode(".png", u8)[1].tobytes()
    n = min(len(paths), 1000)

    def cpu_us(step) -> float:
        start = time.process_time()
        for i in range(n):
            step(i)
        return (time.process_time() - start) / n * 1e6

    def write_renamed(i: int) -> None:
        tmp = out / f".r{i}.png.tmp"
        tmp.write_bytes(encoded)
        os.replace(tmp, out / f"r{i}.png")

    return [
        (
            "augment",
            cpu_us(lambda i: datagen.random_transform(x)),
            cpu_us(lambda i: (reseed(pipeline, i), pipeline(image=u8))),
        ),
        (
            "PNG encode",
            cpu_us(lambda i: Image.fromarray(u8).save(io.BytesIO(), format="png")),
            cpu_us(lambda i: cv2.imencode(".png", u8)),
        ),
        ("file create (1 KB)", cpu_us(lambda i: (out / f"k{i}.png").write_bytes(encoded)), cpu_us(write_renamed)),
    ]


def full_build(out: Path, workers: int) -> dict[str, float]:
    from fer_keras.data.balance import balance
    from fer_keras.data.recipe import load_recipe

    recipe = load_recipe(RECIPE)
    shutil.rmtree(out, ignore_errors=True)
    first = balance(recipe, FER2013, out, workers=workers)
    start = time.perf_counter()
    again = balance(recipe, FER2013, out, workers=workers)
    rerun = time.perf_counter() - start
    assert again.status == "up-to-date"
    shutil.rmtree(out, ignore_errors=True)
    return {"seconds": first.seconds, "generated": first.generated, "rerun": rerun}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="300 images, 1 run, no full build (seconds)")
    p.add_argument("--images", type=int, help="images per run (default 5000; quick 300)")
    p.add_argument("--runs", type=int, help="runs, median reported (default 3; quick 1)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--no-full-build", action="store_true", help="skip the full balanced build")
    p.add_argument("--results", default=str(RESULTS), help="Markdown results file (full mode)")
    args = p.parse_args(argv)
    images = args.images or (300 if args.quick else 5000)
    runs = args.runs or (1 if args.quick else 3)
    methods = {
        "keras": "Keras ImageDataGenerator + PIL PNG, 1 process (baseline)",
        "one": "albumentations (balanced recipe) + OpenCV PNG, 1 process",
        "pool": f"fer-balance process pool, {args.workers} workers",
    }
    clocks: dict[str, list[Clock]] = {k: [] for k in methods}
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench_balance_", dir="/tmp") as tmp:
        scratch = Path(tmp)
        paths, label = source_images(images, scratch)
        runners = {
            "keras": lambda out: keras_baseline(paths, out),
            "one": lambda out: albumentations_one_process(paths, out),
            "pool": lambda out: albumentations_pool(paths, out, args.workers),
        }
        for run in range(runs):
            for key, runner in runners.items():
                out = scratch / f"{key}{run}"
                out.mkdir()
                clocks[key].append(runner(out))
                shutil.rmtree(out)
            print(
                f"run {run + 1}/{runs}: load {load_average():.1f}; "
                + ", ".join(
                    f"{k} {images / v[-1].wall:.0f} img/s ({v[-1].cpu / images * 1e3:.2f} CPU ms/img)"
                    for k, v in clocks.items()
                ),
                flush=True,
            )
    speed = {k: statistics.median(images / c.wall for c in v) for k, v in clocks.items()}
    cpu_ms = {k: statistics.median(c.cpu / images * 1e3 for c in v) for k, v in clocks.items()}
    table = [
        "| method | images/s (wall, median) | vs baseline | CPU ms per image (median) | CPU vs baseline |",
        "|---|---:|---:|---:|---:|",
    ]
    table += [
        f"| {name} | {speed[k]:.0f} | {speed[k] / speed['keras']:.2f}x | {cpu_ms[k]:.2f} | "
        f"{cpu_ms['keras'] / cpu_ms[k]:.2f}x |"
        for k, name in methods.items()
    ]
    print("\n".join(table), flush=True)
    steps = None
    if not args.quick:
        with tempfile.TemporaryDirectory(prefix="bench_balance_", dir="/tmp") as tmp:
            steps = components(paths, Path(tmp))
        for name, keras_us, ours_us in steps:
            print(f"{name}: keras {keras_us:.0f} us, fer-balance {ours_us:.0f} us CPU per image", flush=True)
    build = None
    if not args.quick and not args.no_full_build and (FER2013 / "train").is_dir():
        build = full_build(Path(tempfile.gettempdir()) / "fer_balance_bench_build", args.workers)
        print(f"full balanced build: {build}", flush=True)
    if not args.quick:
        load = (load_before, load_average())
        lines = results_lines(table, label, images, runs, args.workers, steps, build, load, argv)
        write_results(args.results, lines)
    return 0


def results_lines(table, label, images, runs, workers, steps, build, load, argv) -> list[str]:
    """The results file: the speed table, where the time goes and the full build."""
    lines = [
        *header("fer-balance benchmark", command_line(__file__, argv)),
        f"{load_note(*load)}; wall-clock speeds move with that load, CPU time per image is the steadier comparison.",
        f"Images: {images} per run from {label}; median of {runs} runs; every image is decoded, augmented "
        "and written as PNG (fer-balance: temp file + rename). Ratios are against the Keras baseline measured "
        "in the same run (higher is better).",
        "",
        *table,
        "",
    ]
    if steps:
        lines += [
            "Where the time goes (CPU microseconds per image, one pass over up to 1,000 repetitions; "
            "fer-balance's augment includes re-seeding the pipeline for reproducibility, its file create the "
            "temp name + rename):",
            "",
            "| step | Keras baseline | fer-balance | ratio |",
            "|---|---:|---:|---:|",
            *(f"| {name} | {k:.0f} | {o:.0f} | {k / o:.2f}x |" for name, k, o in steps),
            "",
        ]
    if build:
        per_s = build["generated"] / build["seconds"]
        lines += [
            f"Full `balanced` build (10,000 per class) from FER2013 train with {workers} workers: "
            f"{build['seconds']:.0f} s for {build['generated']:.0f} generated images ({per_s:.0f} img/s, "
            f"including linking the 35,887 originals and writing the manifest); idempotent rerun: "
            f"{build['rerun']:.1f} s. At that rate `balanced-2` (181,291 generated images) takes about "
            f"{181291 / per_s / 60:.0f} min.",
            "",
        ]
    return lines


if __name__ == "__main__":
    sys.exit(main())
