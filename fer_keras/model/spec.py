"""Architecture spec files (``architectures/*.json``) → a validated :class:`ArchitectureSpec`.

A spec is ``{"name": ..., "description": ..., "layers": [{"type": "Conv2D", ...}, ...]}``
where ``type`` is a Keras layer class name and the other fields are that layer's
constructor arguments. Only an allowlist of layer types and fields is accepted, each
field with a rule, so that a typo or an out-of-range value is reported with its file
and layer before any TensorFlow work. All problems of a file are reported together.

This module must not import TensorFlow or Keras: ``fer-spec check`` and the grid
preflight stay fast. :mod:`fer_keras.model.builder` turns a spec into a Keras model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fer_keras.constants import CLASS_NAMES, DEFAULT_IMAGE_SIZE
from fer_keras.errors import FerError, did_you_mean, problem
from fer_keras.hashing import sha256_json
from fer_keras.model.estimate import Estimate, estimate
from fer_keras.model.rules import (
    ACTIVATION,
    AXES,
    AXIS,
    BOOL,
    CHANNELS,
    EPSILON,
    INITIALIZER,
    NAME,
    NON_NEGATIVE,
    NUMBER,
    PADDING,
    PADDING_SIZE,
    RATE,
    REGULARIZER,
    SEED,
    SIZE,
    UNIT_INTERVAL,
    UNITS,
    FieldRule,
)
from fer_keras.model.rules import ACTIVATIONS as ACTIVATIONS  # re-exported: fer-spec types lists them
from fer_keras.model.rules import INITIALIZERS as INITIALIZERS
from fer_keras.model.rules import NUM_CLASSES as NUM_CLASSES
from fer_keras.validation import MAX_LAYERS, describe_limit, must, read_json_file

TOP_LEVEL_FIELDS = ("name", "description", "layers")
RESERVED_LAYER_NAMES = ("pixels", "rescale")  # the builder's input and Rescaling layers
# The input `fer-spec check` and `load_spec` estimate parameters and activation memory for.
CHECK_INPUT_SHAPE = (*DEFAULT_IMAGE_SIZE, 3)
CHECK_NUM_CLASSES = len(CLASS_NAMES)


@dataclass(frozen=True)
class LayerType:
    """The allowed fields of one Keras layer type; ``required`` ones must be present."""

    fields: dict[str, FieldRule]
    required: tuple[str, ...] = ()


def _layer(required: tuple[str, ...] = (), **fields: FieldRule) -> LayerType:
    return LayerType({**fields, "name": NAME}, required)


_CONV = {"strides": SIZE, "padding": PADDING, "dilation_rate": SIZE, "activation": ACTIVATION, "use_bias": BOOL}
_REG = {"bias_initializer": INITIALIZER, "bias_regularizer": REGULARIZER, "activity_regularizer": REGULARIZER}
_POOL = {"pool_size": SIZE, "strides": SIZE, "padding": PADDING}
_NORM = {"epsilon": EPSILON, "center": BOOL, "scale": BOOL, "beta_regularizer": REGULARIZER}
_NORM["gamma_regularizer"] = REGULARIZER

LAYER_TYPES: dict[str, LayerType] = {
    "Conv2D": _layer(
        ("filters", "kernel_size"), filters=CHANNELS, kernel_size=SIZE, groups=CHANNELS, **_CONV,
        kernel_initializer=INITIALIZER, kernel_regularizer=REGULARIZER, **_REG,
    ),
    "SeparableConv2D": _layer(
        ("filters", "kernel_size"), filters=CHANNELS, kernel_size=SIZE, depth_multiplier=CHANNELS, **_CONV,
        depthwise_initializer=INITIALIZER, pointwise_initializer=INITIALIZER, depthwise_regularizer=REGULARIZER,
        pointwise_regularizer=REGULARIZER, **_REG,
    ),
    "DepthwiseConv2D": _layer(
        ("kernel_size",), kernel_size=SIZE, depth_multiplier=CHANNELS, **_CONV,
        depthwise_initializer=INITIALIZER, depthwise_regularizer=REGULARIZER, **_REG,
    ),
    "MaxPooling2D": _layer(**_POOL),
    "AveragePooling2D": _layer(**_POOL),
    "GlobalAveragePooling2D": _layer(keepdims=BOOL),
    "GlobalMaxPooling2D": _layer(keepdims=BOOL),
    "ZeroPadding2D": _layer(padding=PADDING_SIZE),
    "Flatten": _layer(),
    "Dense": _layer(
        ("units",), units=UNITS, activation=ACTIVATION, use_bias=BOOL,
        kernel_initializer=INITIALIZER, kernel_regularizer=REGULARIZER, **_REG,
    ),
    "Dropout": _layer(("rate",), rate=RATE, seed=SEED),
    "SpatialDropout2D": _layer(("rate",), rate=RATE, seed=SEED),
    "GaussianDropout": _layer(("rate",), rate=RATE, seed=SEED),
    "GaussianNoise": _layer(("stddev",), stddev=NON_NEGATIVE, seed=SEED),
    "BatchNormalization": _layer(axis=AXIS, momentum=UNIT_INTERVAL, **_NORM),
    "LayerNormalization": _layer(axis=AXES, **_NORM),
    "GroupNormalization": _layer(groups=CHANNELS, axis=AXIS, **_NORM),
    "Activation": _layer(("activation",), activation=ACTIVATION),
    "ReLU": _layer(max_value=NON_NEGATIVE, negative_slope=NON_NEGATIVE, threshold=NUMBER),
    "LeakyReLU": _layer(negative_slope=NON_NEGATIVE),
    "ELU": _layer(alpha=NUMBER),
    "Softmax": _layer(axis=AXIS),
}  # fmt: skip


# --- the spec ---


@dataclass(frozen=True)
class ArchitectureSpec:
    """A validated architecture spec.

    Attributes:
        name: the spec's name (also the Keras model name).
        description: free text ("" when absent).
        layers: one dict per layer: ``type`` plus Keras constructor arguments, as in the file.
        path: where it was loaded from, as given by the caller ("" for in-memory specs).
        sha256: hash of the canonical JSON (sorted keys, no whitespace) of the whole spec,
            so that reformatting a file does not change it.
    """

    name: str
    description: str
    layers: tuple[dict[str, Any], ...]
    path: str = ""
    sha256: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The spec as a JSON-ready dict (what ``architecture.json`` of an export holds)."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out["layers"] = [dict(layer) for layer in self.layers]
        return out


class _Object(dict):
    """A JSON object that remembers the keys it saw more than once."""

    duplicates: tuple[str, ...] = ()


def _object_pairs(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    seen: set[str] = set()
    obj.duplicates = tuple(k for k, _ in pairs if k in seen or seen.add(k))
    return obj


_JSON_KINDS = ((bool, "a boolean"), (dict, "an object"), (list, "an array"), (str, "a string"))
# Layers the builder adds itself, and why they must not be in a spec.
_BUILDER_LAYERS = {
    "Rescaling": "the builder adds Rescaling(1/255) itself, remove this layer",
    "InputLayer": "the builder adds the input layer itself (its shape comes from the run), remove this layer",
}
_BUILDER_LAYERS["Input"] = _BUILDER_LAYERS["InputLayer"]
OUTPUT_RULE = 'the output layer must be {"type": "Dense", "units": "num_classes", "activation": "softmax"}'


def _json_kind(value: Any) -> str:
    return next(
        (text for kind, text in _JSON_KINDS if isinstance(value, kind)), "null" if value is None else "a number"
    )


def _unknown(kind: str, key: str, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    hint = did_you_mean(key, allowed) or f"; allowed: {', '.join(allowed)}"
    return f"unknown {kind} {key!r}{hint}"


def _duplicates(where: str, obj: Any) -> list[str]:
    return [problem(where, f"field {key!r} appears more than once") for key in getattr(obj, "duplicates", ())]


def _check_field(rules: LayerType, key: str, value: Any) -> str | None:
    if key not in rules.fields:
        return _unknown("field", key, rules.fields)
    message = rules.fields[key].check(key, value)
    if message and value == NUM_CLASSES:
        message += f"; \"{NUM_CLASSES}\" is only allowed as Dense 'units'"
    return message


def _validate_layer(layer: Any, where: str) -> list[str]:
    if not isinstance(layer, dict):
        return [must(where, "a JSON object", layer)]
    if "type" not in layer:
        return [problem(where, "missing required field 'type'"), *_duplicates(where, layer)]
    kind = layer["type"]
    if not isinstance(kind, str):
        return [problem(where, must("type", "a Keras layer class name such as 'Conv2D'", kind))]
    if kind not in LAYER_TYPES:
        hint = f"; {_BUILDER_LAYERS[kind]}" if kind in _BUILDER_LAYERS else ""
        return [
            problem(
                where, (f"unknown layer type {kind!r}" + hint) if hint else _unknown("layer type", kind, LAYER_TYPES)
            )
        ]
    where = f"{where} ({kind})"
    rules = LAYER_TYPES[kind]
    problems = _duplicates(where, layer)
    messages = (_check_field(rules, key, value) for key, value in layer.items() if key != "type")
    problems += [problem(where, message) for message in messages if message]
    return problems + [problem(where, f"missing required field {key!r}") for key in rules.required if key not in layer]


def _validate_output(layer: dict[str, Any], where: str) -> list[str]:
    """The last layer gives the class probabilities that training and inference expect."""
    if layer["type"] != "Dense":
        return [problem(where, OUTPUT_RULE)]
    problems = []
    if layer.get("units") != NUM_CLASSES:
        problems.append(problem(where, must("units", f'"{NUM_CLASSES}" in the output layer', layer.get("units"))))
    if layer.get("activation") != "softmax":
        rule = "'softmax' in the output layer (training expects probabilities)"
        problems.append(problem(where, must("activation", rule, layer.get("activation"))))
    return problems


def _validate_layers(layers: list[Any]) -> list[str]:
    problems: list[str] = []
    names: dict[str, int] = {}
    for i, layer in enumerate(layers):
        layer_problems = _validate_layer(layer, f"layers[{i}]")
        problems += layer_problems
        if layer_problems:
            continue
        where = f"layers[{i}] ({layer['type']})"
        name = layer.get("name")
        if name in RESERVED_LAYER_NAMES:
            problems.append(problem(where, f"layer name {name!r} is reserved for the builder's own layers"))
        elif name in names:
            problems.append(problem(where, f"layer name {name!r} is already used by layers[{names[name]}]"))
        elif name is not None:
            names[name] = i
        if i == len(layers) - 1:
            problems += _validate_output(layer, where)
    return problems


def validate_spec_data(data: Any, source: str) -> list[str]:
    """Every problem of a parsed spec, each as ``<source>: ...``; ``[]`` when valid.

    Example:
        >>> validate_spec_data({"name": "x", "layers": [{"type": "Dropout", "rate": 1.5}]}, "x.json")[0]
        "x.json: layers[0] (Dropout): 'rate' must be in [0, 1); got 1.5"
    """
    if not isinstance(data, dict):
        return [problem(source, f"the file must contain a JSON object; got {_json_kind(data)}")]
    problems = _duplicates("", data)
    problems += [_unknown("field", key, TOP_LEVEL_FIELDS) for key in data if key not in TOP_LEVEL_FIELDS]
    if "name" not in data:
        problems.append("missing required field 'name'")
    elif message := NAME.check("name", data["name"]):
        problems.append(message)
    if "description" in data and not isinstance(data["description"], str):
        problems.append(must("description", "a string", data["description"]))
    if "layers" not in data:
        problems.append("missing required field 'layers'")
    elif not isinstance(data["layers"], list) or not data["layers"]:
        problems.append(must("layers", "a non-empty list", data["layers"]))
    elif message := describe_limit("layers", len(data["layers"]), MAX_LAYERS):
        problems.append(message)
    else:
        layer_problems = _validate_layers(data["layers"])
        problems += layer_problems
        if not layer_problems:
            problems += estimate(data["layers"], CHECK_INPUT_SHAPE, CHECK_NUM_CLASSES).problems
    return [problem(source, p) for p in problems]


def spec_from_data(data: Any, source: str = "") -> ArchitectureSpec:
    """Validate a parsed spec and return it.

    Raises:
        FerError: with every problem, one per line.
    """
    problems = validate_spec_data(data, source or "<spec>")
    if problems:
        raise FerError(problems)
    return ArchitectureSpec(
        name=data["name"],
        description=data.get("description", ""),
        layers=tuple(json.loads(json.dumps(layer)) for layer in data["layers"]),  # plain dicts, own copies
        path=source,
        # ensure_ascii=False: the digest training histories have always recorded as spec_sha256.
        sha256=sha256_json(data, ensure_ascii=False),
    )


def load_spec(path: str | os.PathLike) -> ArchitectureSpec:
    """Load and validate an architecture spec file in one pass.

    Raises:
        FerError: listing every problem of the file, each as ``<path>: ...``.

    Example:
        >>> spec = load_spec("architectures/model_2_best.json")  # doctest: +SKIP
        >>> spec.name, len(spec.layers)  # doctest: +SKIP
        ('model_2_best', 23)
    """
    source = os.fspath(path)
    data = read_json_file(source, "spec", object_pairs_hook=_object_pairs)
    return spec_from_data(data, source)


def spec_files(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Expand folders to their ``*.json`` files (sorted); files are kept as given."""
    out: list[str] = []
    for path in paths:
        path = os.fspath(path)
        if os.path.isdir(path):
            out += [os.path.join(path, name) for name in sorted(os.listdir(path)) if name.endswith(".json")]
        else:
            out.append(path)
    return out


def load_paths(paths: Iterable[str | os.PathLike]) -> dict[str, ArchitectureSpec | list[str]]:
    """Load spec files and folders (all ``*.json`` in a folder); map file → its spec, or its problems.

    A folder without spec files maps to a problem of its own.
    """
    results: dict[str, ArchitectureSpec | list[str]] = {}
    for path in paths:
        path = os.fspath(path)
        files = spec_files([path])
        if os.path.isdir(path) and not files:
            results[path] = [problem(path, "folder has no *.json files")]
        for file in files:
            try:
                results[file] = load_spec(file)
            except FerError as err:
                results[file] = err.problems
    return results


def check_paths(paths: Iterable[str | os.PathLike]) -> dict[str, list[str]]:
    """Validate spec files and folders (all ``*.json`` in a folder); map file → problems.

    A file maps to ``[]`` when valid. A folder without spec files is a problem of its own.

    Example:
        >>> {f: p for f, p in check_paths(["architectures"]).items() if p}  # doctest: +SKIP
        {}
    """
    return {file: [] if isinstance(result, ArchitectureSpec) else result for file, result in load_paths(paths).items()}


def spec_estimate(
    spec: ArchitectureSpec, input_shape: tuple[int, int, int] = CHECK_INPUT_SHAPE, num_classes: int = CHECK_NUM_CLASSES
) -> Estimate:
    """Parameters and activation memory of a spec's model, without TensorFlow (see :mod:`fer_keras.model.estimate`).

    Example:
        >>> spec_estimate(load_spec("architectures/fer_vgg.json")).total_params  # doctest: +SKIP
        1167591
    """
    return estimate(spec.layers, input_shape, num_classes)
