"""The per-format side of ``fer-export``: writing a Keras model as ONNX, TFLite or SavedModel, and loading one back.

Each writer produces the raw-pixel contract of docs/internals.md: one input named
``pixels`` (float32 ``(batch, H, W, C)`` in [0, 255], dynamic batch) and one output
named ``probabilities`` (``(batch, classes)``). Converters (tested with TF 2.21,
Keras 3.15, tf2onnx 1.17, onnx 1.23):

- SavedModel: ``keras.export.ExportArchive`` with a ``serving_default`` signature
  ``pixels -> {"probabilities"}``.
- TFLite: ``tf.lite.TFLiteConverter.from_saved_model`` on that same SavedModel
  (float32, no quantization), so the TFLite signature has the same names.
- ONNX: ``model.export(format="onnx")`` (Keras drives tf2onnx and patches it for
  numpy 2), then the output and batch dimension are renamed with ``onnx``.

:func:`load_export` runs any of them on pixels. TensorFlow, onnx, tf2onnx and the
runtimes are imported only inside the functions. Planning an export, the parity check
and the sidecar are :mod:`fer_keras.inference.export`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np

from fer_keras.constants import EXPORT_INPUT_NAME, EXPORT_OUTPUT_NAME, ONNX_FILE, SAVEDMODEL_DIR, TFLITE_FILE
from fer_keras.errors import FerError
from fer_keras.model.model_folder import ModelInfo
from fer_keras.validation import check_choice

FORMATS: tuple[str, ...] = ("onnx", "tflite", "savedmodel")
OUTPUT_NAMES: dict[str, str] = {"onnx": ONNX_FILE, "tflite": TFLITE_FILE, "savedmodel": SAVEDMODEL_DIR}
SIGNATURE = "serving_default"
# How an ONNX export stores its weights: float16 halves the file (computation stays float32).
WEIGHT_DTYPES: tuple[str, ...] = ("float32", "float16")
FLOAT16_MIN_SIZE = 1024  # tensors with fewer values stay float32 (too small to matter)
# What a TensorFlow SavedModel folder holds (keras.export.ExportArchive.write_out).
SAVEDMODEL_PB = "saved_model.pb"
SAVEDMODEL_ENTRIES: tuple[str, ...] = (SAVEDMODEL_PB, "fingerprint.pb", "variables", "assets")


def write_export(
    model, fmt: str, info: ModelInfo, out: Path, opset: int | None = None, weights: str = "float32"
) -> None:
    """Write ``model`` (whose metadata is ``info``) to ``out`` in ``fmt``; ``opset`` and
    ``weights`` (:data:`WEIGHT_DTYPES`) are for ONNX only."""
    check_choice("format", fmt, FORMATS)
    check_choice("weights", weights, WEIGHT_DTYPES)
    if fmt == "onnx":
        _write_onnx(model, info, out, opset, weights)
    elif fmt == "tflite":
        _write_tflite(model, info, out)
    else:
        _write_savedmodel(model, info, out)


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


def is_savedmodel(folder: Path) -> bool:
    """Whether ``folder`` is a SavedModel (what a SavedModel export may replace)."""
    return (folder / SAVEDMODEL_PB).is_file()


def is_savedmodel_staging(folder: Path) -> bool:
    """A SavedModel, or the staging folder of one whose export was killed (only SavedModel entries)."""
    return is_savedmodel(folder) or all(entry.name in SAVEDMODEL_ENTRIES for entry in folder.iterdir())


def _input_spec(info: ModelInfo):
    import tensorflow as tf

    return tf.TensorSpec((None, *info.input_shape), tf.float32, name=EXPORT_INPUT_NAME)


def _write_savedmodel(model, info: ModelInfo, out: Path) -> None:
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name=SIGNATURE,
        fn=lambda pixels: {EXPORT_OUTPUT_NAME: model(pixels, training=False)},
        input_signature=[_input_spec(info)],
    )
    archive.write_out(str(out), verbose=False)


def _write_tflite(model, info: ModelInfo, out: Path) -> None:
    import tensorflow as tf

    # Converting the SavedModel (not the Keras model) carries its signature names over.
    with tempfile.TemporaryDirectory(prefix="fer_export_") as tmp:
        _write_savedmodel(model, info, Path(tmp) / SAVEDMODEL_DIR)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / SAVEDMODEL_DIR))
        out.write_bytes(converter.convert())


def _write_onnx(model, info: ModelInfo, out: Path, opset: int | None, weights: str = "float32") -> None:
    try:
        import onnx
        import tf2onnx  # noqa: F401 - Keras imports it; fail early with a clear message
    except ImportError as err:
        raise FerError(f"ONNX export needs the onnx and tf2onnx packages (pip install onnx tf2onnx): {err}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras' numpy-2 shim for tf2onnx warns about np.object
        model.export(str(out), format="onnx", input_signature=[_input_spec(info)], opset_version=opset, verbose=False)
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
    if weights == "float16":
        _store_weights_as_float16(proto.graph)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))


def _store_weights_as_float16(graph) -> None:
    """Store the large float32 weights as float16, each followed by a Cast back to float32.

    Halves the file; the model still computes in float32 (onnxruntime folds the casts into
    float32 constants when the session starts, so it runs as fast). Probabilities move by
    about 1e-5, which the parity check measures. Small tensors (biases, BatchNorm) stay.
    """
    from onnx import TensorProto, helper, numpy_helper

    inputs = {value.name for value in graph.input}
    halves, casts = [], []
    for init in list(graph.initializer):
        if init.data_type != TensorProto.FLOAT or init.name in inputs:
            continue
        array = numpy_helper.to_array(init)
        if array.size < FLOAT16_MIN_SIZE:
            continue
        graph.initializer.remove(init)
        halves.append(numpy_helper.from_array(array.astype(np.float16), f"{init.name}__float16"))
        casts.append(helper.make_node("Cast", [f"{init.name}__float16"], [init.name], to=TensorProto.FLOAT))
    graph.initializer.extend(halves)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)  # a Cast before every node that reads its output


def _tflite_interpreter(path: str):
    try:
        from ai_edge_litert.interpreter import Interpreter  # TensorFlow's designated successor
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TF 2.21 announces tf.lite.Interpreter's move to ai_edge_litert
        return Interpreter(model_path=path)


def converter_versions(fmt: str) -> dict[str, str]:
    """The installed versions of TensorFlow, Keras and the converters and runtime of ``fmt``."""
    packages = {"onnx": ("tf2onnx", "onnx", "onnxruntime"), "tflite": ("ai-edge-litert",), "savedmodel": ()}[fmt]
    out = {}
    for name in ("tensorflow", "tensorflow-cpu", "keras", *packages):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out
