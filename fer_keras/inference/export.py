"""Exporting a model folder to ONNX, TFLite or SavedModel, checked for parity.

Every export keeps the raw-pixel contract of docs/internals.md: one input named
``pixels`` (float32 ``(batch, H, W, C)`` in [0, 255], dynamic batch) and one output
named ``probabilities`` (``(batch, classes)``). The export is written under a
temporary name, run on sample images next to the Keras model, and renamed into
place only when the largest difference of probabilities is within tolerance; a
JSON sidecar (``<export file>.json``) records what was checked.

Converters (tested with TF 2.21, Keras 3.15, tf2onnx 1.17, onnx 1.23):

- SavedModel: ``keras.export.ExportArchive`` with a ``serving_default`` signature
  ``pixels -> {"probabilities"}``.
- TFLite: ``tf.lite.TFLiteConverter.from_saved_model`` on that same SavedModel
  (float32, no quantization), so the TFLite signature has the same names.
- ONNX: ``model.export(format="onnx")`` (Keras drives tf2onnx and patches it for
  numpy 2), then the output and batch dimension are renamed with ``onnx``.

TensorFlow, onnx and tf2onnx are imported only when an export runs.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
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
    ONNX_FILE,
    SAVEDMODEL_DIR,
    TFLITE_FILE,
)
from fer_keras.data.demo import draw_face
from fer_keras.data.folders import is_image_file
from fer_keras.data.images import load_images, to_array
from fer_keras.errors import FerError, problem
from fer_keras.model.model_folder import ModelInfo, load_keras_model, read_model_info
from fer_keras.validation import check_choice, check_float, check_int

FORMATS: tuple[str, ...] = ("onnx", "tflite", "savedmodel")
OUTPUT_NAMES: dict[str, str] = {"onnx": ONNX_FILE, "tflite": TFLITE_FILE, "savedmodel": SAVEDMODEL_DIR}
DEFAULT_OPSET = 17
# tf2onnx 1.17 converts to opsets up to 18; 13 is the oldest onnxruntime still optimises well.
MIN_OPSET, MAX_OPSET = 13, 18
DEFAULT_TOLERANCE = 1e-4
DEFAULT_NUM_SAMPLES = 32
MAX_NUM_SAMPLES = 4096
SAMPLE_SEED = 0
SIGNATURE = "serving_default"
# Steps reported to ``progress.update(1)`` by :func:`export_model`.
STEPS: tuple[str, ...] = ("load model", "convert", "check parity", "write sidecar")
SIDECAR_VERSION = 1
# What a TensorFlow SavedModel folder holds (keras.export.ExportArchive.write_out).
SAVEDMODEL_PB = "saved_model.pb"
SAVEDMODEL_ENTRIES: tuple[str, ...] = (SAVEDMODEL_PB, "fingerprint.pb", "variables", "assets")


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
    tolerance: float = DEFAULT_TOLERANCE,
    opset: int = DEFAULT_OPSET,
) -> ExportPlan:
    """Validate an export request and load its sample images (what ``--dry-run`` shows).

    Arguments are those of :func:`export_model`.

    Raises:
        FerError: a bad argument, model folder, output path or samples folder.
    """
    check_choice("format", fmt, FORMATS)
    check_int("num_samples", num_samples, minimum=1, maximum=MAX_NUM_SAMPLES)
    check_float("tolerance", tolerance, low=0)
    check_int("opset", opset, minimum=MIN_OPSET, maximum=MAX_OPSET)
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
    return ExportPlan(info, fmt, path, opset if fmt == "onnx" else None, float(tolerance), samples, source)


def export_model(
    model_dir: str | os.PathLike,
    fmt: str,
    out: str | os.PathLike | None = None,
    *,
    samples_dir: str | os.PathLike | None = None,
    num_samples: int = DEFAULT_NUM_SAMPLES,
    tolerance: float = DEFAULT_TOLERANCE,
    opset: int = DEFAULT_OPSET,
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
        tolerance: the largest allowed absolute difference of probabilities.
        opset: the ONNX opset (ONNX only).
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
        model_dir, fmt, out, samples_dir=samples_dir, num_samples=num_samples, tolerance=tolerance, opset=opset
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
    writer = {"onnx": _write_onnx, "tflite": _write_tflite, "savedmodel": _write_savedmodel}[plan.format]
    # What an earlier, killed export to this same target left beside it (the staging names below).
    if plan.format == "savedmodel":
        remove_stale_temps(plan.path, is_ours_dir=_is_savedmodel_staging)
    else:
        remove_stale_temps(plan.path, suffix=plan.path.suffix)
    remove_stale_temps(plan.sidecar)
    staging = atomic_dir(plan.path) if plan.format == "savedmodel" else atomic_path(plan.path, suffix=plan.path.suffix)
    with staging as tmp:
        writer(model, plan, tmp)
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


def load_export(path: str | os.PathLike, fmt: str) -> Callable[[np.ndarray], np.ndarray]:
    """Load an export of this module: returns ``pixels (N, H, W, C) -> probabilities (N, K)``.

    Example:
        >>> run = load_export("models/best_model/model.tflite", "tflite")  # doctest: +SKIP
        >>> run(np.zeros((2, 48, 48, 1), np.float32)).shape  # doctest: +SKIP
        (2, 7)
    """
    check_choice("format", fmt, FORMATS)
    path = str(path)
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return lambda x: session.run([EXPORT_OUTPUT_NAME], {EXPORT_INPUT_NAME: np.asarray(x, np.float32)})[0]
    if fmt == "tflite":
        runner = _tflite_interpreter(path).get_signature_runner(SIGNATURE)
        return lambda x: runner(**{EXPORT_INPUT_NAME: np.asarray(x, np.float32)})[EXPORT_OUTPUT_NAME]
    import tensorflow as tf

    signature = tf.saved_model.load(path).signatures[SIGNATURE]
    return lambda x: signature(**{EXPORT_INPUT_NAME: tf.constant(x, tf.float32)})[EXPORT_OUTPUT_NAME].numpy()


def _resolve_output(model_dir: Path, fmt: str, out: str | os.PathLike | None) -> Path:
    path = default_output(model_dir, fmt) if out is None else Path(out)
    if fmt != "savedmodel":
        return path / OUTPUT_NAMES[fmt] if out is not None and path.is_dir() else path
    if path.is_file():
        raise FerError(problem(str(path), "is a file; a SavedModel export is a folder"))
    # Replacing a folder deletes it: only ever replace an earlier SavedModel.
    check_replaceable(path, _is_savedmodel, "a SavedModel")
    return path


def _is_savedmodel(folder: Path) -> bool:
    return (folder / SAVEDMODEL_PB).is_file()


def _is_savedmodel_staging(folder: Path) -> bool:
    """A SavedModel, or the staging folder of one whose export was killed (only SavedModel entries)."""
    return _is_savedmodel(folder) or all(entry.name in SAVEDMODEL_ENTRIES for entry in folder.iterdir())


def _readable(path: Path) -> None:
    """Give temporary files the usual umask permissions (mkstemp/mkdtemp make them owner-only)."""
    umask = os.umask(0)
    os.umask(umask)
    for item in [path, *(path.rglob("*") if path.is_dir() else ())]:
        item.chmod((0o777 if item.is_dir() else 0o666) & ~umask)


def _input_spec(plan: ExportPlan):
    import tensorflow as tf

    return tf.TensorSpec((None, *plan.info.input_shape), tf.float32, name=EXPORT_INPUT_NAME)


def _write_savedmodel(model, plan: ExportPlan, out: Path) -> None:
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name=SIGNATURE,
        fn=lambda pixels: {EXPORT_OUTPUT_NAME: model(pixels, training=False)},
        input_signature=[_input_spec(plan)],
    )
    archive.write_out(str(out), verbose=False)


def _write_tflite(model, plan: ExportPlan, out: Path) -> None:
    import tensorflow as tf

    # Converting the SavedModel (not the Keras model) carries its signature names over.
    with tempfile.TemporaryDirectory(prefix="fer_export_") as tmp:
        _write_savedmodel(model, plan, Path(tmp) / SAVEDMODEL_DIR)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / SAVEDMODEL_DIR))
        out.write_bytes(converter.convert())


def _write_onnx(model, plan: ExportPlan, out: Path) -> None:
    try:
        import onnx
        import tf2onnx  # noqa: F401 - Keras imports it; fail early with a clear message
    except ImportError as err:
        raise FerError(f"ONNX export needs the onnx and tf2onnx packages (pip install onnx tf2onnx): {err}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras' numpy-2 shim for tf2onnx warns about np.object
        model.export(
            str(out), format="onnx", input_signature=[_input_spec(plan)], opset_version=plan.opset, verbose=False
        )
    proto = onnx.load(str(out))
    graph = proto.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise RuntimeError(
            f"expected 1 input and 1 output in the ONNX graph; got {len(inputs)} and {len(graph.output)}"
        )
    # tf2onnx names the output after the TF tensor ('Identity:0'); give it the contract name.
    old = graph.output[0].name
    for node in graph.node:
        node.output[:] = [EXPORT_OUTPUT_NAME if name == old else name for name in node.output]
        node.input[:] = [EXPORT_OUTPUT_NAME if name == old else name for name in node.input]
    graph.output[0].name = EXPORT_OUTPUT_NAME
    for value in (inputs[0], graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    info = plan.info
    proto.doc_string = "fer_keras facial expression model: raw pixels in, class probabilities out"
    onnx.helper.set_model_props(
        proto,
        {
            "class_names": json.dumps(list(info.class_names)),
            "input_size": json.dumps(list(info.input_size)),
            "color_mode": info.color_mode,
            "input": f"{EXPORT_INPUT_NAME}: float32 (batch, H, W, C) raw pixels in [0, 255]",
            "output": f"{EXPORT_OUTPUT_NAME}: float32 (batch, classes)",
        },
    )
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))


def _tflite_interpreter(path: str):
    try:
        from ai_edge_litert.interpreter import Interpreter  # TensorFlow's designated successor
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TF 2.21 announces tf.lite.Interpreter's move to ai_edge_litert
        return Interpreter(model_path=path)


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise RuntimeError(f"exported model returned shape {a.shape}; Keras returned {b.shape}")
    return float(np.abs(a - b).max())


def _versions(fmt: str) -> dict[str, str]:
    packages = {"onnx": ("tf2onnx", "onnx", "onnxruntime"), "tflite": ("ai-edge-litert",), "savedmodel": ()}[fmt]
    out = {}
    for name in ("tensorflow", "tensorflow-cpu", "keras", *packages):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


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
        "versions": _versions(plan.format),
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(result.seconds, 2),
    }
