"""Running a model on raw pixels: the :class:`Predictor`, the one way to run a model on images.

A :class:`Predictor` is built from a model folder (``models/best_model/``, see
docs/internals.md; read by :mod:`fer_keras.model.model_folder`) with the ``keras`` or
``onnx`` runtime (:meth:`Predictor.load`), or from any function with its own input size,
colour mode and class order (:meth:`Predictor.from_function`: the ``fer`` peer, test
stubs). Every predictor takes the same raw pixels (float32 in [0, 255], resized to
``input_size``, in ``color_mode``) and returns class probabilities, so ``fer-predict``,
``fer-serve``, ``fer-eval`` and the report are runtime-agnostic.

The ``onnx`` runtime never imports TensorFlow: only the keras runtime does, lazily.
``auto`` (:func:`resolve_runtime`) picks onnx when the folder has ``model.onnx`` and
onnxruntime is installed, else keras: the TensorFlow-free install runs the ONNX model.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from fer_keras.constants import ONNX_FILE
from fer_keras.data.images import to_array
from fer_keras.errors import FerError, problem
from fer_keras.extras import require
from fer_keras.model.class_prior import apply_class_bias
from fer_keras.model.crop import CropRule
from fer_keras.model.model_folder import (
    TTA_CHOICES,
    ModelInfo,
    apply_tta,
    check_model_shapes,
    load_keras_model,
    metadata_problems,
    read_model_info,
)
from fer_keras.validation import check_bool, check_choice, check_int, must

RUNTIMES: tuple[str, ...] = ("keras", "onnx")
# What commands and the API accept: a runtime, or "auto" (see resolve_runtime).
RUNTIME_CHOICES: tuple[str, ...] = ("auto", *RUNTIMES)
DEFAULT_BATCH_SIZE = 64
# The name fer_keras.serve.app and fer_keras.cli.predict import the metadata reader by.
load_model_info = read_model_info


class Predictor:
    """A model ready to run: raw-pixel batches in, class probabilities out.

    Build it with :meth:`load` (a model folder) or :meth:`from_function`.
    :meth:`predict` is safe to call from many threads: a ``run_batch`` that is not
    thread-safe (the Keras runtime) is serialised with a lock, onnxruntime sessions
    run concurrently.

    Args:
        info: the model's metadata.
        runtime: ``keras`` or ``onnx`` for a model folder; free text otherwise.
        run_batch: maps a float32 ``(N, H, W, C)`` batch to ``(N, classes)`` probabilities.
        thread_safe: whether ``run_batch`` may run concurrently.
        batch_size: the largest batch handed to ``run_batch`` at once.
        tta: test-time augmentation (default: ``info.tta``; ``[]`` turns it off).
        class_prior: apply the folder's class-prior correction (``info.class_bias``,
            :mod:`fer_keras.model.class_prior`) to the final probabilities; ``False``
            shows the model as trained.
    """

    def __init__(
        self,
        info: ModelInfo,
        runtime: str,
        run_batch: Callable[[np.ndarray], np.ndarray],
        thread_safe: bool,
        batch_size: int = DEFAULT_BATCH_SIZE,
        tta: Sequence[str] | None = None,
        class_prior: bool = True,
    ):
        self.info = info
        self.runtime = runtime
        self.batch_size = batch_size
        self.tta = tuple(info.tta if tta is None else tta)
        self.class_bias = info.class_bias if class_prior else ()
        self._run_batch = run_batch
        self._lock = None if thread_safe else threading.Lock()

    @classmethod
    def load(
        cls,
        model_dir: str | os.PathLike,
        runtime: str = "keras",
        batch_size: int = DEFAULT_BATCH_SIZE,
        tta: Sequence[str] | None = None,
        class_prior: bool = True,
    ) -> Predictor:
        """Load the model of ``model_dir`` with the ``keras``, ``onnx`` or ``auto`` runtime.

        ``auto`` is resolved by :func:`resolve_runtime`; :attr:`runtime` names the one used.

        ``tta`` overrides the test-time augmentation the model folder asks for
        (``metadata.json`` ``inference.tta``; ``[]`` turns it off); ``class_prior=False``
        skips its class-prior correction (``inference.class_bias``).

        Raises:
            FerError: bad arguments, a missing or invalid model folder, a missing
                model file, or a model whose input/output shape disagrees with its metadata.

        Example:
            >>> predictor = Predictor.load("models/best_model", runtime="onnx")  # doctest: +SKIP
            >>> predictor.predict(np.zeros((1, 48, 48, 1), np.uint8)).shape  # doctest: +SKIP
            (1, 7)
        """
        check_choice("runtime", runtime, RUNTIME_CHOICES)
        check_int("batch_size", batch_size, minimum=1)
        _check_tta(tta)
        check_bool("class_prior", class_prior)
        info = read_model_info(model_dir)
        runtime = resolve_runtime(info.path, runtime)
        loader = _load_onnx if runtime == "onnx" else _load_keras
        run_batch, thread_safe = loader(info)
        return cls(info, runtime, run_batch, thread_safe, batch_size, tta, class_prior)

    @classmethod
    def from_function(
        cls,
        run_batch: Callable[[np.ndarray], np.ndarray],
        *,
        name: str,
        class_names: Sequence[str],
        input_size: tuple[int, int],
        color_mode: str,
        source: str | os.PathLike | None = None,
        version: str = "unknown",
        runtime: str = "function",
        thread_safe: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
        crop: CropRule | None = None,
        tta: Sequence[str] = (),
    ) -> Predictor:
        """A predictor around any function, for a model that is not a model folder.

        Args:
            run_batch: maps a float32 ``(N, H, W, C)`` batch in [0, 255] to ``(N, classes)``
                probabilities in ``class_names`` order.
            name: what results call the model.
            class_names, input_size, color_mode: as in a model folder's metadata (validated alike).
            source: the file behind the model, if any (``info.path``, recorded in results).
            version, runtime: what ``info.version`` and :attr:`runtime` report.
            thread_safe: whether ``run_batch`` may run concurrently.
            batch_size: the largest batch handed to ``run_batch`` at once.
            crop: how detected faces are cropped for it (default: :class:`CropRule`).
            tta: test-time augmentation applied around ``run_batch``.

        Raises:
            FerError: an invalid field, named after ``name``.

        Example:
            >>> p = Predictor.from_function(lambda x: np.full((len(x), 2), 0.5), name="coin",
            ...                             class_names=["a", "b"], input_size=(8, 8), color_mode="grayscale")
            >>> p.predict(np.zeros((3, 8, 8, 1), np.uint8)).shape
            (3, 2)
        """
        check_int("batch_size", batch_size, minimum=1)
        _check_tta(tta)
        meta = {"class_names": list(class_names), "input_size": list(input_size), "color_mode": color_mode}
        problems = metadata_problems(meta)
        if crop is not None and not isinstance(crop, CropRule):
            problems.append(must("crop", "a CropRule", crop))
        if problems:
            raise FerError(problem(name, p) for p in problems)
        path = None if source is None else Path(source)
        info = ModelInfo(
            path, name, version, tuple(class_names), (input_size[0], input_size[1]), color_mode, {}, crop or CropRule()
        )
        return cls(info, runtime, run_batch, thread_safe, batch_size, tta)

    @property
    def name(self) -> str:
        return self.info.name

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
        probs = apply_tta(self._call, batch.astype(np.float32, copy=False), self.tta)
        return apply_class_bias(probs, self.class_bias)

    def _call(self, batch: np.ndarray) -> np.ndarray:
        if self._lock is None:
            return self._run_batch(batch)
        with self._lock:
            return self._run_batch(batch)


def resolve_runtime(model_dir: str | os.PathLike, runtime: str = "auto") -> str:
    """The runtime ``runtime`` means for ``model_dir``: ``auto`` is ``onnx`` when the folder
    has ``model.onnx`` and onnxruntime is installed, else ``keras``; others are returned as given.

    Cheap: nothing is loaded or imported.

    Example:
        >>> resolve_runtime("models/best_model")  # doctest: +SKIP
        'onnx'
    """
    check_choice("runtime", runtime, RUNTIME_CHOICES)
    if runtime != "auto":
        return runtime
    has_onnx = (Path(model_dir) / ONNX_FILE).is_file()
    return "onnx" if has_onnx and _installed("onnxruntime") else "keras"


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses the name, or a broken installation
        return False


def _check_tta(tta: Sequence[str] | None) -> None:
    for item in tta or ():
        check_choice("tta", item, TTA_CHOICES)


def _load_keras(info: ModelInfo) -> tuple[Callable[[np.ndarray], np.ndarray], bool]:
    # The TensorFlow-free install: one line naming the extra instead of a ModuleNotFoundError.
    require("keras", "train", who=f"the keras runtime ({info.path}: {ONNX_FILE} not used)")
    model = load_keras_model(info)

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
    check_model_shapes(info, path, inputs[0].shape, outputs[0].shape)
    input_name, output_name = inputs[0].name, outputs[0].name

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run([output_name], {input_name: batch})[0]

    # InferenceSession.run is thread-safe (documented by onnxruntime).
    return run, True
