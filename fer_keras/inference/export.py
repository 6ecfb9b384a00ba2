"""Exporting a model folder to ONNX, TFLite or SavedModel, checked for parity.

Every export keeps the raw-pixel contract of docs/internals.md: one input named
``pixels`` (float32 ``(batch, H, W, C)`` in [0, 255], dynamic batch) and one output
named ``probabilities`` (``(batch, classes)``). The export is written under a
temporary name, run on sample images next to the Keras model, and renamed into
place only when the largest difference of probabilities is within tolerance; a
JSON sidecar (``<export file>.json``) records what was checked.

This module plans an export (arguments, output path, sample images), runs the parity
check and writes the sidecar; the converters themselves and :func:`load_export` are
:mod:`fer_keras.inference.export_formats` (``FORMATS``, ``OUTPUT_NAMES``, ``SIGNATURE`` and
``load_export`` are importable from here too, as before). TensorFlow, onnx and tf2onnx are imported only when an export runs.
"""

from __future__ import annotations

import datetime
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_keras.atomic import atomic_dir, atomic_path, check_replaceable, remove_stale_temps, write_json_atomic
from fer_keras.constants import (
    CLASS_NAMES,
    EXPORT_INPUT_NAME,
    EXPORT_OUTPUT_NAME,
    EXPORT_SIDECAR_SUFFIX,
    MODEL_FILE,
)
from fer_keras.data.demo import draw_face
from fer_keras.data.folders import is_image_file
from fer_keras.data.images import load_images, to_array
from fer_keras.errors import FerError, problem
from fer_keras.inference.export_formats import (
    FORMATS,
    OUTPUT_NAMES,
    SIGNATURE,
    WEIGHT_DTYPES,
    converter_versions,
    is_savedmodel,
    is_savedmodel_staging,
    load_export,
    write_export,
)
from fer_keras.model.model_folder import ModelInfo, load_keras_model, read_model_info
from fer_keras.validation import check_choice, check_float, check_int

DEFAULT_OPSET = 17
# tf2onnx 1.17 converts to opsets up to 18; 13 is the oldest onnxruntime still optimises well.
MIN_OPSET, MAX_OPSET = 13, 18
DEFAULT_TOLERANCE = 1e-4
# float16 keeps 11 significant bits (relative rounding up to 4.9e-4 per weight), so probabilities
# computed from float16-stored weights differ by ~1e-4 after a deep stack: 1e-3 is what storing
# them that way costs, still far below a difference that moves a prediction.
DEFAULT_TOLERANCES = {"float32": DEFAULT_TOLERANCE, "float16": 1e-3}
DEFAULT_NUM_SAMPLES = 32
MAX_NUM_SAMPLES = 4096
SAMPLE_SEED = 0
# Steps reported to ``progress.update(1)`` by :func:`export_model`.
STEPS: tuple[str, ...] = ("load model", "convert", "check parity", "write sidecar")
SIDECAR_VERSION = 1


@dataclass(frozen=True)
class ExportPlan:
    """A validated export request (cheap to build: no TensorFlow)."""

    info: ModelInfo
    format: str
    path: Path
    opset: int | None
    tolerance: float
    samples: np.ndarray
    sample_source: str
    weights: str = "float32"

    @property
    def sidecar(self) -> Path:
        return sidecar_path(self.path)


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote and measured."""

    plan: ExportPlan
    max_abs_diff: float
    top1_agreement: int
    seconds: float

    @property
    def path(self) -> Path:
        return self.plan.path

    @property
    def sidecar(self) -> Path:
        return self.plan.sidecar


def sidecar_path(export_path: str | os.PathLike) -> Path:
    """``model.onnx`` -> ``model.onnx.json``; ``saved_model`` -> ``saved_model.json``."""
    export_path = Path(export_path)
    return export_path.with_name(export_path.name + EXPORT_SIDECAR_SUFFIX)


def synthetic_samples(
    input_size: tuple[int, int], color_mode: str, num_samples: int = DEFAULT_NUM_SAMPLES, seed: int = SAMPLE_SEED
) -> np.ndarray:
    """Deterministic drawn demo faces (all emotions in turn) as ``(N, H, W, C)`` uint8."""
    rng = np.random.default_rng(seed)
    size = max(64, *input_size)
    faces = [
        to_array(
            draw_face(CLASS_NAMES[i % len(CLASS_NAMES)], rng, size=size, rgb=color_mode == "rgb"),
            input_size,
            color_mode,
        )
        for i in range(num_samples)
    ]
    return np.stack(faces)


def folder_samples(
    folder: str | os.PathLike, input_size: tuple[int, int], color_mode: str, num_samples: int = DEFAULT_NUM_SAMPLES
) -> np.ndarray:
    """Up to ``num_samples`` images spread evenly over a folder's sorted image files (recursive).

    Raises:
        FerError: the folder is missing or holds no decodable image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FerError(problem(str(folder), "samples folder not found"))
    paths = sorted(
        os.path.join(dirpath, name)
        for dirpath, _, names in os.walk(folder)
        for name in names
        if is_image_file(name) and not Path(dirpath).name.startswith(".")
    )
    if not paths:
        raise FerError(problem(str(folder), "no image files (expected .jpg, .png, ... at any depth)"))
    # Evenly spaced picks cover every class folder instead of the first one only.
    picks = sorted(set(np.linspace(0, len(paths) - 1, min(num_samples, len(paths))).round().astype(int).tolist()))
    pixels, _, failures = load_images([paths[i] for i in picks], input_size, color_mode)
    if len(pixels) == 0:
        raise FerError(problem(failures[0][0], f"cannot decode any sample image ({failures[0][1]})"))
    return pixels


def default_output(model_dir: str | os.PathLike, fmt: str) -> Path:
    """Where an export goes by default: inside the model folder, under the constant name."""
    return Path(model_dir) / OUTPUT_NAMES[check_choice("format", fmt, FORMATS)]


def plan_export(
    model_dir: str | os.PathLike,
    fmt: str,
    out: str | os.PathLike | None = None,
    *,
    samples_dir: str | os.PathLike | None = None,
    num_samples: int = DEFAULT_NUM_SAMPLES,
    tolerance: float | None = None,
    opset: int = DEFAULT_OPSET,
    weights: str = "float32",
) -> ExportPlan:
    """Validate an export request and load its sample images (what ``--dry-run`` shows).

    Arguments are those of :func:`export_model`.

    Raises:
        FerError: a bad argument, model folder, output path or samples folder.
    """
    check_choice("format", fmt, FORMATS)
    check_int("num_samples", num_samples, minimum=1, maximum=MAX_NUM_SAMPLES)
    check_int("opset", opset, minimum=MIN_OPSET, maximum=MAX_OPSET)
    check_choice("weights", weights, WEIGHT_DTYPES)
    if tolerance is None:
        tolerance = DEFAULT_TOLERANCES[weights]
    check_float("tolerance", tolerance, low=0)
    if weights != "float32" and fmt != "onnx":
        raise FerError(f"'weights' {weights!r} is for the onnx format only; got format {fmt!r}")
    info = read_model_info(model_dir)
    model_file = info.path / MODEL_FILE
    if not model_file.is_file():
        raise FerError(problem(str(model_file), "not found (fer-export converts the Keras model.keras)"))
    path = _resolve_output(info.path, fmt, out)
    if samples_dir is None:
        samples = synthetic_samples(info.input_size, info.color_mode, num_samples)
        source = f"synthetic demo faces (seed {SAMPLE_SEED})"
    else:
        samples = folder_samples(samples_dir, info.input_size, info.color_mode, num_samples)
        source = str(samples_dir)
    opset = opset if fmt == "onnx" else None
    return ExportPlan(info, fmt, path, opset, float(tolerance), samples, source, weights)


def export_model(
    model_dir: str | os.PathLike,
    fmt: str,
    out: str | os.PathLike | None = None,
    *,
    samples_dir: str | os.PathLike | None = None,
    num_samples: int = DEFAULT_NUM_SAMPLES,
    tolerance: float | None = None,
    opset: int = DEFAULT_OPSET,
    weights: str = "float32",
    progress: Any = None,
) -> ExportResult:
    """Export ``<model_dir>/model.keras`` to ``fmt`` and check it against Keras.

    Args:
        model_dir: a model folder (``metadata.json`` + ``model.keras``).
        fmt: ``onnx``, ``tflite`` or ``savedmodel``.
        out: the export path (default: ``model.onnx`` / ``model.tflite`` / ``saved_model``
            in ``model_dir``); an existing folder receives the default file name
            (ONNX, TFLite).
        samples_dir: a folder of images for the parity check (default: drawn faces).
        num_samples: how many sample images to compare on.
        tolerance: the largest allowed absolute difference of probabilities (default:
            :data:`DEFAULT_TOLERANCES` of ``weights``, 1e-4 for float32, 1e-3 for float16).
        opset: the ONNX opset (ONNX only).
        weights: how the ONNX file stores the weights: ``float32``, or ``float16`` (half the
            size, computation still float32; the parity check measures the difference).
        progress: optional object with ``update(n)`` (a tqdm bar), advanced once per
            entry of :data:`STEPS`.

    Returns:
        The paths written and the measured parity.

    Raises:
        FerError: bad arguments or model folder, or a parity check above
            ``tolerance`` (then nothing is written and an older export stays).

    Example:
        >>> result = export_model("models/best_model", "onnx")  # doctest: +SKIP
        >>> result.path, result.max_abs_diff <= 1e-4  # doctest: +SKIP
        (PosixPath('models/best_model/model.onnx'), True)
    """
    plan = plan_export(
        model_dir,
        fmt,
        out,
        samples_dir=samples_dir,
        num_samples=num_samples,
        tolerance=tolerance,
        opset=opset,
        weights=weights,
    )
    return run_plan(plan, progress)


def run_plan(plan: ExportPlan, progress: Any = None) -> ExportResult:
    """Run a validated :class:`ExportPlan` (see :func:`export_model`)."""
    step = progress.update if progress is not None else lambda n: None
    started = time.perf_counter()
    model = load_keras_model(plan.info)
    pixels = plan.samples.astype(np.float32)
    reference = np.asarray(model.predict_on_batch(pixels))
    step(1)
    # What an earlier, killed export to this same target left beside it (the staging names below).
    if plan.format == "savedmodel":
        remove_stale_temps(plan.path, is_ours_dir=is_savedmodel_staging)
    else:
        remove_stale_temps(plan.path, suffix=plan.path.suffix)
    remove_stale_temps(plan.sidecar)
    staging = atomic_dir(plan.path) if plan.format == "savedmodel" else atomic_path(plan.path, suffix=plan.path.suffix)
    with staging as tmp:
        write_export(model, plan.format, plan.info, tmp, plan.opset, plan.weights)
        step(1)
        run = load_export(tmp, plan.format)
        # The whole batch and a batch of one: proves the batch dimension is dynamic.
        exported = run(pixels)
        diff = max(_max_diff(exported, reference), _max_diff(run(pixels[:1]), reference[:1]))
        agreement = int((exported.argmax(axis=1) == reference.argmax(axis=1)).sum())
        step(1)
        _readable(tmp)
        if not diff <= plan.tolerance:  # also catches NaN
            raise FerError(
                problem(
                    str(plan.path),
                    f"parity check failed: max abs difference of probabilities {diff:.3g} > tolerance "
                    f"{plan.tolerance:g} on {len(pixels)} samples; the export was not written",
                )
            )
    result = ExportResult(plan, diff, agreement, time.perf_counter() - started)
    write_json_atomic(plan.sidecar, _sidecar(result))
    _readable(plan.sidecar)
    step(1)
    return result


def _resolve_output(model_dir: Path, fmt: str, out: str | os.PathLike | None) -> Path:
    path = default_output(model_dir, fmt) if out is None else Path(out)
    if fmt != "savedmodel":
        return path / OUTPUT_NAMES[fmt] if out is not None and path.is_dir() else path
    if path.is_file():
        raise FerError(problem(str(path), "is a file; a SavedModel export is a folder"))
    # Replacing a folder deletes it: only ever replace an earlier SavedModel.
    check_replaceable(path, is_savedmodel, "a SavedModel")
    return path


def _readable(path: Path) -> None:
    """Give temporary files the usual umask permissions (mkstemp/mkdtemp make them owner-only)."""
    umask = os.umask(0)
    os.umask(umask)
    for item in [path, *(path.rglob("*") if path.is_dir() else ())]:
        item.chmod((0o777 if item.is_dir() else 0o666) & ~umask)


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise RuntimeError(f"exported model returned shape {a.shape}; Keras returned {b.shape}")
    return float(np.abs(a - b).max())


def _sidecar(result: ExportResult) -> dict[str, Any]:
    plan = result.plan
    info = plan.info
    return {
        "format_version": SIDECAR_VERSION,
        "format": plan.format,
        "file": plan.path.name,
        "source_model": str(info.path / MODEL_FILE),
        "model_name": info.name,
        "model_version": info.version,
        "opset": plan.opset,
        "weights": plan.weights,
        "input": {
            "name": EXPORT_INPUT_NAME,
            "shape": [None, *info.input_shape],
            "dtype": "float32",
            "range": [0, 255],
            "color_mode": info.color_mode,
        },
        "output": {
            "name": EXPORT_OUTPUT_NAME,
            "shape": [None, len(info.class_names)],
            "class_names": list(info.class_names),
        },
        "signature": SIGNATURE if plan.format != "onnx" else None,
        "parity": {
            "samples": len(plan.samples),
            "source": plan.sample_source,
            "max_abs_diff": result.max_abs_diff,
            "tolerance": plan.tolerance,
            "top1_agreement": result.top1_agreement,
        },
        "versions": converter_versions(plan.format),
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(result.seconds, 2),
    }
