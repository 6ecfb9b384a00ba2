"""Synthetic report inputs for tests, benchmarks and demos: histories and a tiny model.

The histories follow the seed grid's naming and the history format of
docs/internals.md, with plausible learning curves. The model is a closed-form
"brightness classifier" (mean pixel → nearest class centre), so tests know exactly
what it predicts for an image of a given grey level.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fer_keras.atomic import write_json_atomic
from fer_keras.constants import (
    CLASS_NAMES,
    METADATA_FILE,
    MODEL_FILE,
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_INTERRUPTED,
    VARIANTS,
)
from fer_keras.training.history import history_path
from fer_keras.validation import check_int

MODELS = ("model_1_concept", "model_2_best", "model_3_best_nodropout", "model_4_best_nodropout_nobatchn")
OPTIMIZERS = ("adam", "rmsprop", "sgd")
BLOCKS = (("rgb", (32, 64, 128, 256, 512)), ("grayscale", (32, 64, 128)))


def grid_axes(variants: Sequence[str] = ("augment",)) -> list[dict[str, Any]]:
    """The seed grid's runs (4 models x 3 optimizers x 8 colour/batch pairs), variants innermost."""
    out = []
    for model, optimizer, (color, batches) in itertools.product(MODELS, OPTIMIZERS, BLOCKS):
        for batch, variant in itertools.product(batches, variants):
            out.append(
                {"model": model, "optimizer": optimizer, "color_mode": color, "batch_size": batch, "variant": variant}
            )
    return out


def history_record(
    axes: dict[str, Any],
    epochs: int,
    rng: np.random.Generator,
    status: str = STATUS_DONE,
    data: str = "data/demo",
    error: str | None = None,
) -> dict[str, Any]:
    """One synthetic history record with saturating accuracy and decaying loss curves."""
    name = f"{axes['model']}_{axes['optimizer']}_{axes['color_mode']}_{axes['batch_size']}_{axes['variant']}"
    plateau = float(rng.uniform(0.25, 0.52))
    speed = float(rng.uniform(3, 12))
    t = np.arange(1, epochs + 1)
    val_acc = plateau * (1 - np.exp(-t / speed)) + rng.normal(0, 0.01, epochs) + 0.14
    acc = val_acc + 0.002 * t + rng.normal(0, 0.005, epochs)
    val_loss = 1.95 - 1.6 * (val_acc - 0.14) + 0.004 * np.maximum(t - 2 * speed, 0)
    loss = 1.95 - 1.7 * (acc - 0.14)
    lists = {
        "loss": loss,
        "accuracy": acc,
        "val_loss": val_loss,
        "val_accuracy": val_acc,
        "lr": np.full(epochs, 1e-3),
        "epoch_seconds": rng.uniform(20, 40, epochs),
    }
    hist = {k: [round(float(x), 6) for x in v] for k, v in lists.items()}
    best = int(np.argmax(val_acc)) + 1 if epochs else None
    config = {
        "arch": f"architectures/{axes['model']}.json",
        "data": data,
        "optimizer": axes["optimizer"],
        "batch_size": axes["batch_size"],
        "color_mode": axes["color_mode"],
        "variant": axes["variant"],
        "epochs": 50,
        "seed": 42,
        "class_weights": False,
        "image_size": [48, 48],
        "name": name,
    }
    return {
        "format_version": 1,
        "name": name,
        "status": status,
        "error": error,
        "config": config,
        "class_names": list(CLASS_NAMES),
        "history": hist,
        "best_epoch": best,
        "best_val_accuracy": float(val_acc[best - 1]) if best else None,
        "epochs_done": epochs,
        "wall_time_s": round(float(sum(hist["epoch_seconds"])), 3),
        "spec_sha256": "0" * 64,
        "versions": {},
        "started_at": "2025-01-01T00:00:00+00:00",
        "finished_at": None if status == "running" else "2025-01-01T01:00:00+00:00",
    }


def write_synthetic_histories(
    out_dir: str | os.PathLike,
    n_runs: int = 96,
    epochs: int = 50,
    seed: int = 0,
    variants: Sequence[str] = ("augment",),
    failed: int = 1,
    interrupted: int = 1,
    garbled: int = 0,
    data: str = "data/demo",
) -> list[Path]:
    """Write ``n_runs`` history files (the last ``failed`` + ``interrupted`` of them not done) and ``garbled`` bad files.

    Failed runs stop after a third of the epochs (the first one before any epoch),
    interrupted ones after half. Runs beyond one grid (96 per variant) get ``_seed<N>``.

    Example:
        >>> paths = write_synthetic_histories("/tmp/h", n_runs=3, epochs=5)  # doctest: +SKIP
    """
    check_int("n_runs", n_runs, minimum=0)
    check_int("epochs", epochs, minimum=1)
    grid = grid_axes(tuple(v for v in variants if v in VARIANTS) or ("augment",))
    rng = np.random.default_rng(seed)
    paths = []
    first_failed, first_interrupted = n_runs - failed - interrupted, n_runs - interrupted
    for i in range(n_runs):
        if first_failed <= i < first_interrupted:
            # The first failed run died before its first epoch, the others later.
            n_epochs = 0 if i == first_failed else max(1, epochs // 3)
            status, error = STATUS_FAILED, "ResourceExhaustedError: OOM when allocating tensor"
        elif i >= first_interrupted:
            status, n_epochs, error = STATUS_INTERRUPTED, max(1, epochs // 2), "interrupted by user (Ctrl-C)"
        else:
            status, n_epochs, error = STATUS_DONE, epochs, None
        record = history_record(grid[i % len(grid)], n_epochs, rng, status, data, error)
        if i >= len(grid):  # beyond one grid: another seed keeps names unique
            record["name"] += f"_seed{i // len(grid)}"
            record["config"]["seed"] = i // len(grid)
        path = history_path(out_dir, record["name"])
        write_json_atomic(path, record)
        paths.append(path)
    for j in range(garbled):
        path = history_path(out_dir, f"garbled_{j}")
        path.write_text('{"name": "garbled", "status": "done", "history": {"loss": [0.1,', encoding="utf-8")
        paths.append(path)
    return paths


def class_centres(n_classes: int) -> np.ndarray:
    """Mean-pixel centre (in [0, 1]) of each class of :func:`write_brightness_model`."""
    return (np.arange(n_classes) + 0.5) / n_classes


def write_brightness_model(
    model_dir: str | os.PathLike,
    class_names: Sequence[str],
    input_size: tuple[int, int] = (48, 48),
    color_mode: str = "grayscale",
    metadata: dict[str, Any] | None = None,
    sharpness: float = 60.0,
) -> Path:
    """Save a Keras model folder that predicts the class whose centre is nearest the image's mean pixel.

    Class ``k`` (in ``class_names`` order) owns mean brightness ``(k + 0.5) / K``: a
    linear softmax layer over the image mean, ``logit_k = s * (2 m_k b - m_k^2)``.
    Imports Keras (lazily).
    """
    import keras

    k = len(class_names)
    channels = 3 if color_mode == "rgb" else 1
    centres = class_centres(k)
    model = keras.Sequential(
        [
            keras.Input((*input_size, channels)),
            keras.layers.Rescaling(1.0 / 255),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(k, activation="softmax"),
        ]
    )
    weights = np.tile(sharpness * 2 * centres / channels, (channels, 1)).astype("float32")
    model.layers[-1].set_weights([weights, (-sharpness * centres**2).astype("float32")])
    folder = Path(model_dir)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / MODEL_FILE)
    meta = {
        "format_version": 1,
        "name": "brightness",
        "class_names": list(class_names),
        "input_size": list(input_size),
        "color_mode": color_mode,
        "source_run": None,
        "test_metrics": None,
    } | (metadata or {})
    write_json_atomic(folder / METADATA_FILE, meta)
    return folder


def write_grey_images(
    folder: str | os.PathLike, levels: Sequence[float], size: int = 48, prefix: str = "img"
) -> list[Path]:
    """Uniform grey PNGs, one per level in [0, 1] (exactly what a brightness model sees)."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, level in enumerate(levels):
        path = folder / f"{prefix}_{i:03d}.png"
        Image.new("L", (size, size), int(round(level * 255))).save(path)
        paths.append(path)
    return paths


def dump(path: str | os.PathLike, data: Any) -> Path:
    """Write a small JSON input (stats, clean report, eval result) for tests and demos."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path
