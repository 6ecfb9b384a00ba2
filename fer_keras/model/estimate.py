"""Parameter count and activation memory of a spec, computed from its layer table without TensorFlow.

``fer-spec check`` and :func:`fer_keras.model.spec.load_spec` use it to refuse a spec
that would not fit in memory (above :data:`~fer_keras.validation.MAX_PARAMS` or
:data:`~fer_keras.validation.MAX_ACTIVATION_BYTES`) before Keras builds anything, and
:func:`fer_keras.model.builder.build_model` checks it again at the run's input size.

The arithmetic follows Keras 3 (output sizes of ``valid``/``same`` windows, one weight
per kernel entry plus a bias, four BatchNormalization vectors), so the count is exact
for specs Keras can build: a test compares it with ``model.count_params()`` for every
shipped architecture. A spec Keras would reject (a feature map shrinking below 1x1, an
axis the tensor lacks) still gets an estimate: sizes are kept at least 1 and such
layers count no parameters; the builder reports the real error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fer_keras.validation import MAX_ACTIVATION_BYTES, MAX_PARAMS, is_int

FLOAT32_BYTES = 4
# Layers whose output has the shape of their input and that hold no weights.
_SHAPE_KEEPING = (
    "Dropout", "SpatialDropout2D", "GaussianDropout", "GaussianNoise", "Activation", "ReLU", "LeakyReLU", "ELU",
    "Softmax",
)  # fmt: skip


@dataclass(frozen=True)
class Estimate:
    """What a spec costs for one input size.

    Attributes:
        input_shape: (height, width, channels) of the input.
        num_classes: the value of ``"num_classes"``.
        shapes: each spec layer's output shape (without the batch axis), as far as computed.
        params: parameter count per spec layer, as far as computed.
        problems: limits passed (``estimated parameters: got X ...; limit Y``); the estimate stops
            at the layer that passes one.
    """

    input_shape: tuple[int, int, int]
    num_classes: int
    shapes: tuple[tuple[int, ...], ...]
    params: tuple[int, ...]
    problems: tuple[str, ...]

    @property
    def total_params(self) -> int:
        return sum(self.params)

    @property
    def activation_bytes(self) -> int:
        """float32 bytes of the input, the builder's Rescaling output and every layer output, for one image."""
        values = 2 * math.prod(self.input_shape) + sum(math.prod(shape) for shape in self.shapes)
        return FLOAT32_BYTES * values

    def describe(self) -> str:
        """``estimated 1,167,591 parameters, 2.5 MiB of activations per image at 48x48x3, 7 classes``."""
        height, width, channels = self.input_shape
        return (
            f"estimated {self.total_params:,} parameters, {self.activation_bytes / 2**20:.1f} MiB of activations "
            "per image "
            f"at {height}x{width}x{channels}, {self.num_classes} classes"
        )


def _pair(value: Any, default: int) -> tuple[int, int]:
    if value is None:
        value = default
    return (value, value) if is_int(value) else (value[0], value[1])


def _window(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    if padding == "same":
        return max(1, -(-size // stride))
    return max(1, (size - dilation * (kernel - 1) - 1) // stride + 1)


def _spatial(shape: tuple[int, ...], layer: dict[str, Any], kernel: tuple[int, int], strides: tuple[int, int]):
    """Output (height, width) of a window layer; ``strides`` is the default when the layer sets none."""
    if layer.get("strides") is not None:
        strides = _pair(layer["strides"], 1)
    dilation = _pair(layer.get("dilation_rate"), 1)
    padding = layer.get("padding", "valid")
    return tuple(_window(shape[i], kernel[i], strides[i], dilation[i], padding) for i in (0, 1))


def _axis_size(shape: tuple[int, ...], axis: Any) -> int:
    """The size of a Keras axis (which counts the batch axis as 0); 0 when the tensor lacks it."""
    index = axis - 1 if axis > 0 else len(shape) + axis
    return shape[index] if 0 <= index < len(shape) else 0


def _norm_params(layer: dict[str, Any], size: int, moving: bool) -> int:
    vectors = int(layer.get("center", True)) + int(layer.get("scale", True)) + (2 if moving else 0)
    return vectors * size


def layer_cost(layer: dict[str, Any], shape: tuple[int, ...], num_classes: int) -> tuple[tuple[int, ...], int]:
    """One validated spec layer applied to an input of ``shape`` (no batch axis): (output shape, parameters)."""
    kind = layer["type"]
    bias = bool(layer.get("use_bias", True))
    if kind in _SHAPE_KEEPING:
        return shape, 0
    if kind == "Dense":
        units = num_classes if layer["units"] == "num_classes" else layer["units"]
        return (*shape[:-1], units), shape[-1] * units + (units if bias else 0)
    if kind == "Flatten":
        return (math.prod(shape),), 0
    if kind == "BatchNormalization":
        return shape, _norm_params(layer, _axis_size(shape, layer.get("axis", -1)), moving=True)
    if kind == "LayerNormalization":
        axes = layer.get("axis", -1)
        size = math.prod(_axis_size(shape, a) for a in (axes if isinstance(axes, list) else [axes]))
        return shape, _norm_params(layer, size, moving=False)
    if kind == "GroupNormalization":
        return shape, _norm_params(layer, _axis_size(shape, layer.get("axis", -1)), moving=False)
    if len(shape) != 3:  # a 2D layer after Flatten: Keras refuses it, the builder says so
        return shape, 0
    height, width, channels = shape
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        return ((1, 1, channels) if layer.get("keepdims", False) else (channels,)), 0
    if kind == "ZeroPadding2D":
        pad = _pair(layer.get("padding"), 1)
        return (height + 2 * pad[0], width + 2 * pad[1], channels), 0
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        pool = _pair(layer.get("pool_size"), 2)
        return (*_spatial(shape, layer, pool, pool), channels), 0
    kernel = _pair(layer["kernel_size"], 1)
    size = _spatial(shape, layer, kernel, (1, 1))
    area = kernel[0] * kernel[1]
    if kind == "Conv2D":
        filters = layer["filters"]
        return (*size, filters), area * (channels // layer.get("groups", 1)) * filters + (filters if bias else 0)
    multiplier = layer.get("depth_multiplier", 1)
    if kind == "DepthwiseConv2D":
        out = channels * multiplier
        return (*size, out), area * out + (out if bias else 0)
    if kind == "SeparableConv2D":
        filters = layer["filters"]
        return (*size, filters), area * channels * multiplier + channels * multiplier * filters + (
            filters if bias else 0
        )
    raise ValueError(f"no estimate for layer type {kind!r}")  # LAYER_TYPES and this function disagree


def estimate(
    layers: Sequence[dict[str, Any]], input_shape: Sequence[int] = (48, 48, 3), num_classes: int = 7
) -> Estimate:
    """Estimate parameters and activation memory of validated spec layers.

    Stops at the first layer that takes the model past :data:`MAX_PARAMS` parameters or
    :data:`MAX_ACTIVATION_BYTES` of activations, with the problem in ``problems``.

    Example:
        >>> estimate([{"type": "Flatten"}, {"type": "Dense", "units": "num_classes"}], (48, 48, 1)).total_params
        16135
    """
    height, width, channels = (int(v) for v in input_shape)
    shape: tuple[int, ...] = (height, width, channels)
    shapes: list[tuple[int, ...]] = []
    params: list[int] = []
    total = 0
    activations = FLOAT32_BYTES * 2 * math.prod(shape)
    context = f" (input {height}x{width}x{channels}, {num_classes} classes)"
    problems: list[str] = []
    for index, layer in enumerate(layers):
        shape, count = layer_cost(layer, shape, num_classes)
        shapes.append(shape)
        params.append(count)
        total += count
        activations += FLOAT32_BYTES * math.prod(shape)
        at = f"by layers[{index}] ({layer['type']})"
        if total > MAX_PARAMS:
            problems.append(f"estimated parameters: got {total:,} {at}; limit {MAX_PARAMS:,}{context}")
        if activations > MAX_ACTIVATION_BYTES:
            problems.append(
                f"estimated activation memory per image: got {activations:,} bytes {at}; "
                f"limit {MAX_ACTIVATION_BYTES:,} bytes (float32){context}"
            )
        if problems:
            break
    return Estimate((height, width, channels), num_classes, tuple(shapes), tuple(params), tuple(problems))
