"""Loading a shipped model folder and running it: the :class:`Predictor`.

A model folder (``models/best_model/``, see docs/internals.md) holds ``metadata.json``
plus ``model.keras`` and optionally ``model.onnx``. Both runtimes take the same raw
pixels (float32 in [0, 255], resized to ``input_size``, in ``color_mode``) and
return class probabilities, so everything above this module is runtime-agnostic.

The ``onnx`` runtime never imports TensorFlow: only :func:`_load_keras` does, lazily.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fer_keras.constants import COLOR_MODES, METADATA_FILE, MODEL_FILE, ONNX_FILE, WEIGHTS_FILE
from fer_keras.data.images import to_array
from fer_keras.errors import FerError, problem
from fer_keras.inference.crop import CropRule
from fer_keras.validation import check_choice, check_int, describe_choice, describe_int, must

RUNTIMES: tuple[str, ...] = ("keras", "onnx")
# Test-time augmentations a model folder may ask for (metadata ``inference.tta``):
# "flip" averages the probabilities of the image and its mirror image.
TTA_CHOICES: tuple[str, ...] = ("flip",)
DEFAULT_BATCH_SIZE = 64


@dataclass(frozen=True)
class ModelInfo:
    """What ``metadata.json`` says about a model, validated.

    ``version`` is the metadata's ``version`` field when present, else the first 12
    hex digits of the weights file's SHA-256, so two different trainings of the same
    architecture never report the same version.
    """

    path: Path
    name: str
    version: str
    class_names: tuple[str, ...]
    input_size: tuple[int, int]
    color_mode: str
    metadata: dict[str, Any] = field(repr=False, compare=False)
    crop: CropRule = field(default_factory=CropRule)
    tta: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of one model input."""
        return (*self.input_size, COLOR_MODES[self.color_mode])


def missing_model_message(model_dir: str | os.PathLike) -> str:
    return problem(str(model_dir), "model folder not found (train and export a model first, or pass --model DIR)")


def load_model_info(model_dir: str | os.PathLike) -> ModelInfo:
    """Read and validate ``<model_dir>/metadata.json`` (cheap: no model is loaded).

    Raises:
        FerError: the folder or its metadata is missing, or a field is invalid
            (every invalid field is reported).

    Example:
        >>> info = load_model_info("models/best_model")  # doctest: +SKIP
        >>> info.class_names[3], info.input_size, info.color_mode  # doctest: +SKIP
        ('happy', (48, 48), 'grayscale')
    """
    path = Path(model_dir)
    if not path.is_dir():
        raise FerError(missing_model_message(path))
    meta_path = path / METADATA_FILE
    if not meta_path.is_file():
        raise FerError(problem(str(meta_path), "not found (a model folder needs metadata.json)"))
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FerError(problem(str(meta_path), f"not valid JSON ({err})")) from None
    if not isinstance(meta, dict):
        raise FerError(problem(str(meta_path), must("the top level", "a JSON object", type(meta).__name__)))

    problems: list[str] = []
    names = meta.get("class_names")
    if not (isinstance(names, list) and len(names) >= 2 and all(isinstance(n, str) and n for n in names)):
        problems.append(must("class_names", "a list of at least 2 non-empty strings", names))
    elif len(set(names)) != len(names):
        problems.append(must("class_names", "unique", names))
    size = meta.get("input_size")
    if not (isinstance(size, list) and len(size) == 2):
        problems.append(must("input_size", "[height, width]", size))
    else:
        problems += [m for m in (describe_int(f"input_size[{i}]", v, minimum=1) for i, v in enumerate(size)) if m]
    mode_problem = describe_choice("color_mode", meta.get("color_mode"), COLOR_MODES)
    if mode_problem:
        problems.append(mode_problem)
    inference = meta.get("inference") or {}
    tta = inference.get("tta", []) if isinstance(inference, dict) else None
    if not (isinstance(tta, list) and all(t in TTA_CHOICES for t in tta)):
        problems.append(must("inference.tta", f"a list of {', '.join(TTA_CHOICES)}", tta))
    if problems:
        raise FerError(problem(str(meta_path), p) for p in problems)
    crop = CropRule.from_metadata(meta.get("crop"), where=str(meta_path))

    name = str(meta.get("name") or path.name)
    version = str(meta.get("version") or _file_version(path))
    return ModelInfo(path, name, version, tuple(names), (size[0], size[1]), meta["color_mode"], meta, crop, tuple(tta))


def _file_version(path: Path) -> str:
    for candidate in (WEIGHTS_FILE, MODEL_FILE, ONNX_FILE):
        file = path / candidate
        if file.is_file():
            digest = hashlib.sha256()
            with open(file, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            return digest.hexdigest()[:12]
    return "unknown"


class Predictor:
    """A loaded model: raw-pixel batches in, class probabilities out.

    Build it with :meth:`load`. :meth:`predict` is safe to call from many threads:
    the Keras runtime serialises calls with a lock, onnxruntime sessions are
    thread-safe and run concurrently.

    Args:
        info: the model's metadata.
        runtime: ``keras`` or ``onnx``.
        run_batch: maps a float32 ``(N, H, W, C)`` batch to ``(N, classes)`` probabilities.
        thread_safe: whether ``run_batch`` may run concurrently.
        batch_size: the largest batch handed to ``run_batch`` at once.
    """

    def __init__(
        self,
        info: ModelInfo,
        runtime: str,
        run_batch: Callable[[np.ndarray], np.ndarray],
        thread_safe: bool,
        batch_size: int = DEFAULT_BATCH_SIZE,
        tta: Sequence[str] | None = None,
    ):
        self.info = info
        self.runtime = runtime
        self.batch_size = batch_size
        self.tta = tuple(info.tta if tta is None else tta)
        self._run_batch = run_batch
        self._lock = None if thread_safe else threading.Lock()

    @classmethod
    def load(
        cls,
        model_dir: str | os.PathLike,
        runtime: str = "keras",
        batch_size: int = DEFAULT_BATCH_SIZE,
        tta: Sequence[str] | None = None,
    ) -> Predictor:
        """Load the model of ``model_dir`` with the ``keras`` or ``onnx`` runtime.

        ``tta`` overrides the test-time augmentation the model folder asks for
        (``metadata.json`` ``inference.tta``; ``[]`` turns it off).

        Raises:
            FerError: bad arguments, a missing or invalid model folder, a missing
                model file, or a model whose input/output shape disagrees with its metadata.

        Example:
            >>> predictor = Predictor.load("models/best_model", runtime="onnx")  # doctest: +SKIP
            >>> predictor.predict(np.zeros((1, 48, 48, 1), np.uint8)).shape  # doctest: +SKIP
            (1, 7)
        """
        check_choice("runtime", runtime, RUNTIMES)
        check_int("batch_size", batch_size, minimum=1)
        if tta is not None:
            for item in tta:
                check_choice("tta", item, TTA_CHOICES)
        info = load_model_info(model_dir)
        loader = _load_onnx if runtime == "onnx" else _load_keras
        run_batch, thread_safe = loader(info)
        return cls(info, runtime, run_batch, thread_safe, batch_size, tta)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.info.class_names

    def prepare(self, image: Image.Image) -> np.ndarray:
        """One PIL image (any mode, any size) as a ``(H, W, C)`` uint8 model input."""
        return to_array(image, self.info.input_size, self.info.color_mode)

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, classes)`` for raw pixels ``(N, H, W, C)`` in [0, 255].

        Raises:
            FerError: ``pixels`` does not have the model's input shape.
        """
        pixels = np.asarray(pixels)
        expected = self.info.input_shape
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != expected:
            raise FerError(must("pixels", f"a batch of shape (N, {', '.join(map(str, expected))})", pixels.shape))
        if len(pixels) == 0:
            return np.zeros((0, len(self.class_names)), dtype=np.float32)
        out = [self._run(pixels[i : i + self.batch_size]) for i in range(0, len(pixels), self.batch_size)]
        return np.concatenate(out).astype(np.float32, copy=False)

    def predict_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Class probabilities for PIL images (each resized and converted here)."""
        shape = (0, *self.info.input_shape)
        batch = np.stack([self.prepare(img) for img in images]) if images else np.zeros(shape, np.uint8)
        return self.predict(batch)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        batch = batch.astype(np.float32, copy=False)
        if "flip" in self.tta:
            # One model call on the images and their mirror images, then the mean.
            both = self._call(np.concatenate([batch, batch[:, :, ::-1]]))
            return (both[: len(batch)] + both[len(batch) :]) / 2
        return self._call(batch)

    def _call(self, batch: np.ndarray) -> np.ndarray:
        if self._lock is None:
            return self._run_batch(batch)
        with self._lock:
            return self._run_batch(batch)


def _check_shapes(info: ModelInfo, where: Path, input_shape: Sequence, output_shape: Sequence) -> None:
    """Compare the model's own input/output shapes with its metadata (unknown dims pass)."""
    problems = []
    dims = list(input_shape)[1:]
    if len(dims) != 3 or any(isinstance(d, int) and d != e for d, e in zip(dims, info.input_shape)):
        problems.append(
            f"model input is {tuple(input_shape)} but metadata says (N, {', '.join(map(str, info.input_shape))})"
        )
    classes = list(output_shape)[-1:] if output_shape else []
    if len(output_shape) != 2 or (isinstance(classes[0], int) and classes[0] != len(info.class_names)):
        problems.append(f"model output is {tuple(output_shape)} but metadata lists {len(info.class_names)} class_names")
    if problems:
        raise FerError(problem(str(where), p) for p in problems)


def _load_keras(info: ModelInfo) -> tuple[Callable[[np.ndarray], np.ndarray], bool]:
    path = info.path / MODEL_FILE
    if not path.is_file():
        raise FerError(problem(str(path), "not found (the keras runtime needs model.keras)"))
    import keras  # lazy: ~6 s of TensorFlow start-up, only for this runtime

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001 - a damaged file is the user's to fix
        raise FerError(problem(str(path), f"cannot load the model ({type(err).__name__}: {err})")) from None
    _check_shapes(info, path, model.input_shape, model.output_shape)

    def run(batch: np.ndarray) -> np.ndarray:
        # predict_on_batch reuses one compiled function (model.predict would build a
        # tf.data pipeline per call, ~10x slower for the small batches served here).
        return np.asarray(model.predict_on_batch(batch))

    # A Keras model's compiled function is not documented as thread-safe.
    return run, False


def _load_onnx(info: ModelInfo) -> tuple[Callable[[np.ndarray], np.ndarray], bool]:
    path = info.path / ONNX_FILE
    if not path.is_file():
        raise FerError(problem(str(path), "not found (export it with fer-export, or use --runtime keras)"))
    import onnxruntime as ort

    try:
        options = ort.SessionOptions()
        # Idle worker threads that spin steal the CPU from concurrent requests and from
        # face detection; on a small shared machine that costs more than it saves.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - a damaged file is the user's to fix
        raise FerError(problem(str(path), f"cannot load the model ({type(err).__name__}: {err})")) from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise FerError(problem(str(path), f"the model must have exactly 1 input; got {len(inputs)}"))
    _check_shapes(info, path, inputs[0].shape, outputs[0].shape)
    input_name, output_name = inputs[0].name, outputs[0].name

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run([output_name], {input_name: batch})[0]

    # InferenceSession.run is thread-safe (documented by onnxruntime).
    return run, True
