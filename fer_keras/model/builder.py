"""A validated :class:`~fer_keras.model.spec.ArchitectureSpec` → a built ``keras.Sequential``.

Every model is ``Input(H, W, C, name="pixels")`` → ``Rescaling(1/255, name="rescale")``
→ the spec's layers, so models take raw float32 pixels in [0, 255] (see
docs/internals.md). Layers without a ``name`` get the names Keras would give them in a
fresh process (``conv2d``, ``conv2d_1``, ...), whatever was built before, so layer
tables and saved models are the same in every run. Keras is imported lazily:
importing this module is cheap.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fer_keras.errors import FerError, problem
from fer_keras.model.spec import NUM_CLASSES, RESERVED_LAYER_NAMES, ArchitectureSpec, load_spec, spec_estimate
from fer_keras.validation import MAX_CLASSES, check_bool, check_count, is_int, must

if TYPE_CHECKING:
    import keras

INPUT_LAYER, RESCALE_LAYER = RESERVED_LAYER_NAMES
# What Keras raises for an impossible layer configuration or shape (BatchNormalization
# with an axis the tensor lacks raises IndexError, for example).
_KERAS_ERRORS = (ValueError, TypeError, IndexError, KeyError)


def _check_input_shape(input_shape: Any) -> tuple[int, int, int]:
    shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else ()
    if len(shape) != 3 or not all(is_int(v) and v >= 1 for v in shape):
        raise FerError(
            problem("build_model", must("input_shape", "3 positive integers (height, width, channels)", input_shape))
        )
    return shape  # type: ignore[return-value]


def _snake_case(name: str) -> str:
    # Keras's own rule (keras.src.utils.naming.to_snake_case): Conv2D → conv2d, ReLU → re_lu.
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def layer_names(spec: ArchitectureSpec) -> list[str]:
    """The name of each spec layer in the built model: its ``name``, else Keras's fresh-process default."""
    taken = set(RESERVED_LAYER_NAMES) | {layer["name"] for layer in spec.layers if "name" in layer}
    counts: dict[str, int] = {}
    names = []
    for layer in spec.layers:
        if "name" in layer:
            names.append(layer["name"])
            continue
        base = _snake_case(layer["type"])
        while True:
            count = counts.get(base, 0)
            counts[base] = count + 1
            candidate = f"{base}_{count}" if count else base
            if candidate not in taken:
                break
        taken.add(candidate)
        names.append(candidate)
    return names


def keras_kwargs(layer: dict[str, Any], num_classes: int) -> dict[str, Any]:
    """A spec layer's Keras constructor arguments.

    Regularizer dicts become ``keras.regularizers.L1L2``, ``"num_classes"`` becomes the
    class count and lists become tuples.
    """
    import keras

    kwargs: dict[str, Any] = {}
    for key, value in layer.items():
        if key == "type":
            continue
        if key.endswith("_regularizer"):
            value = keras.regularizers.L1L2(l1=value.get("l1", 0.0), l2=value.get("l2", 0.0))
        elif key == "units" and value == NUM_CLASSES:
            value = num_classes
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return kwargs


def _keras_message(err: BaseException) -> str:
    """The informative first line of a Keras error.

    Keras wraps errors raised in ``call`` in a generic "Exception encountered when
    calling ..." header and ANSI bold codes; bare Python errors get their type name.
    """
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Exception encountered when calling")] or lines
    message = lines[0] if lines else ""
    if not isinstance(err, ValueError):
        message = f"{type(err).__name__}: {message}" if message else type(err).__name__
    return message


def _source(spec: ArchitectureSpec) -> str:
    return spec.path or spec.name


def _where(spec: ArchitectureSpec, index: int) -> str:
    return f"{_source(spec)}: layers[{index}] ({spec.layers[index]['type']})"


def _layer_class(kind: str):
    import keras

    return getattr(keras.layers, kind)


def _make_layers(spec: ArchitectureSpec, num_classes: int, output_float32: bool) -> list[keras.Layer]:

    layers = []
    last = len(spec.layers) - 1
    for index, (layer, name) in enumerate(zip(spec.layers, layer_names(spec))):
        kwargs = {**keras_kwargs(layer, num_classes), "name": name}
        if output_float32 and index == last:
            kwargs["dtype"] = "float32"
        try:
            layers.append(_layer_class(layer["type"])(**kwargs))
        except _KERAS_ERRORS as err:
            raise FerError(f"{_where(spec, index)}: {_keras_message(err)}") from err
    return layers


def _locate_failure(spec: ArchitectureSpec, shape: tuple[int, int, int], num_classes: int) -> FerError | None:
    """Apply fresh copies of the layers one at a time to name the first one that fails.

    A layer fails when Keras rejects its input or when its output has an empty
    dimension (Keras lets a few layers shrink a feature map to 0×0).
    """
    import keras

    x = keras.layers.Rescaling(1 / 255)(keras.Input(shape=shape))
    for index, layer in enumerate(_make_layers(spec, num_classes, output_float32=False)):
        input_shape = tuple(x.shape)
        try:
            x = layer(x)
        except _KERAS_ERRORS as err:
            return FerError(f"{_where(spec, index)}: {_keras_message(err)} (input shape {input_shape})")
        if any(dim is not None and dim < 1 for dim in x.shape):
            return FerError(
                f"{_where(spec, index)}: output shape {tuple(x.shape)} is empty "
                f"(input shape {input_shape}); the input {shape[0]}x{shape[1]} is too small for this spec"
            )
    return None


def build_model(
    spec: ArchitectureSpec | str | os.PathLike,
    input_shape: Sequence[int] = (48, 48, 3),
    num_classes: int = 7,
    name: str | None = None,
    output_float32: bool = False,
) -> keras.Sequential:
    """Build the Keras model a spec describes.

    Args:
        spec: a spec from :func:`fer_keras.model.spec.load_spec`, or the path of a spec file.
        input_shape: (height, width, channels) of the raw-pixel input; channels is 3
            for rgb, 1 for grayscale.
        num_classes: replaces ``"num_classes"`` in ``Dense.units``; the model must
            output ``(None, num_classes)``.
        name: the model name (default: ``spec.name``).
        output_float32: give the last layer ``dtype="float32"`` so that a
            mixed-precision model still outputs float32 probabilities.

    Returns:
        A built, uncompiled ``keras.Sequential``.

    Raises:
        FerError: bad arguments, a model above the parameter or activation-memory limits
            (:mod:`fer_keras.model.estimate`), or Keras rejects a layer (for example a feature map
            shrinks below 1×1), naming the file and layer:
            ``architectures/x.json: layers[7] (MaxPooling2D): <Keras's message>``.

    Example:
        >>> model = build_model("architectures/model_2_best.json", (48, 48, 1), 7)  # doctest: +SKIP
        >>> model.output_shape, model.count_params()  # doctest: +SKIP
        ((None, 7), 14260743)
    """
    shape = _check_input_shape(input_shape)
    check_count("num_classes", num_classes, MAX_CLASSES, where="build_model")
    check_bool("output_float32", output_float32, where="build_model")
    if name is not None and not (isinstance(name, str) and name):
        raise FerError(problem("build_model", must("name", "a non-empty string or None", name)))
    if not isinstance(spec, ArchitectureSpec):
        spec = load_spec(spec)
    too_big = spec_estimate(spec, shape, num_classes).problems  # before Keras allocates anything
    if too_big:
        raise FerError([problem(_source(spec), message) for message in too_big])
    import keras

    layers = _make_layers(spec, num_classes, output_float32)
    head = [keras.Input(shape=shape, name=INPUT_LAYER), keras.layers.Rescaling(1 / 255, name=RESCALE_LAYER)]
    try:
        model = keras.Sequential([*head, *layers], name=name or spec.name)
    except _KERAS_ERRORS as err:
        raise (
            _locate_failure(spec, shape, num_classes) or FerError(problem(_source(spec), _keras_message(err)))
        ) from err
    if any(dim is not None and dim < 1 for layer in model.layers for dim in layer.output.shape):
        raise _locate_failure(spec, shape, num_classes) or FerError(problem(_source(spec), "a layer output is empty"))
    if tuple(model.output_shape) != (None, num_classes):
        message = (
            f"the model's output shape must be (None, {num_classes}) (one probability per class); "
            f'got {model.output_shape}; end with Flatten or GlobalAveragePooling2D, then Dense "num_classes"'
        )
        raise FerError(problem(_source(spec), message))
    return model


def layer_table(model: keras.Model) -> list[tuple[str, str, tuple, int]]:
    """One row per layer of a built model: (name, Keras class name, output shape, parameters).

    Example:
        >>> for name, kind, shape, params in layer_table(model):  # doctest: +SKIP
        ...     print(name, kind, shape, params)
        rescale Rescaling (None, 48, 48, 3) 0
    """
    return [
        (layer.name, type(layer).__name__, tuple(layer.output.shape), layer.count_params()) for layer in model.layers
    ]


def param_counts(model: keras.Model) -> tuple[int, int, int]:
    """(total, trainable, non-trainable) parameter counts of a built model."""
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    frozen = sum(math.prod(w.shape) for w in model.non_trainable_weights)
    return trainable + frozen, trainable, frozen
