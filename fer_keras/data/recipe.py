"""Balancing recipes (``balancing/*.json``): what ``fer-balance`` builds, validated in one pass.

A recipe names the images per class to reach, how to trim classes above it, the
output format, the random seed and the augmentation pipeline in albumentations'
own serialization format (the output of ``albumentations.to_dict``, or just its
``"transform"`` part)::

    {
      "name": "balanced",
      "target": 10000,                      # or {"angry": 10000, "disgust": 8000, ...}
      "trim": "smallest_first",             # or "random"
      "output_format": "png",               # or "jpg"
      "seed": 42,
      "augmentations": {"__version__": "2.0.8", "transform": {"__class_fullname__": "Compose", ...}}
    }

Every problem is reported as ``<recipe file>: <field>: <what is wrong>``. ``target`` is
at most :data:`~fer_keras.validation.MAX_TARGET_PER_CLASS` per class, and every number
of the augmentation pipeline must be finite.
"""

from __future__ import annotations

import inspect
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_keras.errors import FerError, did_you_mean, problem
from fer_keras.hashing import sha256_json
from fer_keras.validation import (
    unknown_fields,
    MAX_CLASSES,
    MAX_SEED,
    MAX_TARGET_PER_CLASS,
    JsonConstant,
    clip,
    describe_choice,
    describe_int,
    describe_limit,
    is_int,
    must,
    read_json_file,
    shown,
)

TRIM_POLICIES: tuple[str, ...] = ("smallest_first", "random")
OUTPUT_FORMATS: tuple[str, ...] = ("png", "jpg")
RECIPE_FIELDS: tuple[str, ...] = ("name", "description", "target", "trim", "output_format", "seed", "augmentations")
# The fields that change the built images; name and description do not.
HASHED_FIELDS: tuple[str, ...] = ("target", "trim", "output_format", "seed", "augmentations")


@dataclass(frozen=True)
class Recipe:
    """A validated balancing recipe. Build one with :func:`load_recipe` or :func:`parse_recipe`."""

    name: str
    target: int | dict[str, int]
    augmentations: dict[str, Any]
    trim: str = "smallest_first"
    output_format: str = "png"
    seed: int = 0
    description: str = ""
    file: str = field(default="", compare=False)  # where it was loaded from, for messages

    def target_for(self, class_name: str) -> int:
        """The number of ``train`` images ``class_name`` must end up with."""
        if isinstance(self.target, int):
            return self.target
        return self.target[class_name]

    def to_dict(self) -> dict[str, Any]:
        """The recipe as JSON data (what the build manifest records)."""
        return {f: getattr(self, f) for f in RECIPE_FIELDS}

    def sha256(self) -> str:
        """Hash of the fields that determine the output (not ``name``/``description``)."""
        data = {f: getattr(self, f) for f in HASHED_FIELDS}
        # ensure_ascii=True: the digest balance manifests and build keys have always recorded.
        return sha256_json(data, ensure_ascii=True)

    def build_pipeline(self):
        """Instantiate the albumentations pipeline (an ``A.Compose``); imports albumentations."""
        return build_pipeline(self.augmentations)


def load_recipe(path: str | os.PathLike) -> Recipe:
    """Read and validate a recipe file.

    Raises:
        FerError: unreadable file or invalid fields, one line per problem, each naming
            the file and the field.

    Example:
        >>> recipe = load_recipe("balancing/balanced.json")  # doctest: +SKIP
        >>> recipe.target_for("disgust")  # doctest: +SKIP
        10000
    """
    where = os.fspath(path)
    data = read_json_file(where, "recipe")
    return parse_recipe(data, where=where, default_name=Path(path).stem)


def parse_recipe(data: Any, where: str = "recipe", default_name: str = "recipe") -> Recipe:
    """Validate recipe data (already parsed JSON). See :func:`load_recipe`."""
    if not isinstance(data, dict):
        raise FerError(problem(where, must("recipe", "a JSON object", data)))
    problems = unknown_fields(where, data, RECIPE_FIELDS)
    for required in ("target", "augmentations"):
        if required not in data:
            problems.append(problem(where, f"missing field '{required}'"))
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        problems.append(problem(where, must("name", "a non-empty string", name)))
    description = data.get("description", "")
    if not isinstance(description, str):
        problems.append(problem(where, must("description", "a string", description)))
    if "target" in data:
        message = describe_target(data["target"])
        if message:
            problems.append(problem(where, message))
    trim = data.get("trim", "smallest_first")
    output_format = data.get("output_format", "png")
    seed = data.get("seed", 0)
    for message in (
        describe_choice("trim", trim, TRIM_POLICIES),
        describe_choice("output_format", output_format, OUTPUT_FORMATS),
        describe_int("seed", seed, minimum=0, maximum=MAX_SEED),
    ):
        if message:
            problems.append(problem(where, message))
    if "augmentations" in data:
        problems.extend(problem(where, m) for m in describe_augmentations(data["augmentations"]))
    if problems:
        raise FerError(problems)
    target = data["target"]
    return Recipe(
        name=name,
        description=description,
        target=dict(target) if isinstance(target, dict) else target,
        trim=trim,
        output_format=output_format,
        seed=seed,
        augmentations=data["augmentations"],
        file=where,
    )


def describe_target(value: Any) -> str | None:
    """``None`` if ``value`` is a positive integer or a non-empty mapping of class to positive integer.

    Each count is at most :data:`~fer_keras.validation.MAX_TARGET_PER_CLASS`, and a mapping
    names at most :data:`~fer_keras.validation.MAX_CLASSES` classes.
    """
    rule = "a positive integer or a mapping of class to integer"
    if is_int(value):
        return must("target", rule, value) if value < 1 else describe_limit("target", value, MAX_TARGET_PER_CLASS)
    if not isinstance(value, dict) or not value:
        return must("target", rule, value)
    if message := describe_limit("target classes", len(value), MAX_CLASSES):
        return message
    for key, count in value.items():
        if not is_int(count) or count < 1:
            return must(f"target.{key}", "a positive integer", count)
        if message := describe_limit(f"target.{key}", count, MAX_TARGET_PER_CLASS):
            return message
    return None


def _transform_classes() -> dict[str, type]:
    """Serializable albumentations transforms and compositions, by short class name."""
    import albumentations  # noqa: F401 - importing registers every transform
    from albumentations.core.composition import BaseCompose
    from albumentations.core.serialization import SERIALIZABLE_REGISTRY
    from albumentations.core.transforms_interface import BasicTransform

    return {
        name: cls
        for name, cls in SERIALIZABLE_REGISTRY.items()
        if issubclass(cls, (BasicTransform, BaseCompose)) and not inspect.isabstract(cls)
    }


def _root(value: Any) -> tuple[Any, str]:
    # Accept the full ``A.to_dict`` output or just its "transform" part.
    if isinstance(value, dict) and "transform" in value and "__class_fullname__" not in value:
        return value["transform"], "augmentations.transform"
    return value, "augmentations"


def describe_augmentations(value: Any) -> list[str]:
    """Problems with a serialized albumentations pipeline, each prefixed by its path.

    Example: ``augmentations.transforms[1]: unknown albumentations transform 'HorizontalFlipp';
    did you mean 'HorizontalFlip'?``
    """
    if not isinstance(value, dict):
        return [must("augmentations", "an albumentations pipeline (the output of A.to_dict)", value)]
    not_finite = _non_finite(value, "augmentations")
    if not_finite:
        return not_finite
    root, path = _root(value)
    return _describe_node(root, path, _transform_classes())


def _non_finite(value: Any, path: str) -> list[str]:
    """NaN, Infinity or a number too large for a float anywhere in parsed JSON, each with its path."""
    problems = []
    stack = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            stack.extend((child, f"{where}.{key}") for key, child in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((child, f"{where}[{i}]") for i, child in reversed(list(enumerate(node))))
        elif isinstance(node, JsonConstant) or (isinstance(node, (int, float)) and not _is_finite(node)):
            problems.append(f"{where}: must be a finite number; got {shown(node)}")
    return problems


def _is_finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _describe_node(node: Any, path: str, classes: dict[str, type]) -> list[str]:
    from albumentations.core.composition import BaseCompose
    from albumentations.core.serialization import shorten_class_name

    if not isinstance(node, dict) or not isinstance(node.get("__class_fullname__"), str):
        return [f"{path}: must be a serialized transform (an object with '__class_fullname__'); got {shown(node)}"]
    name = shorten_class_name(node["__class_fullname__"])
    cls = classes.get(name)
    if cls is None:
        return [f"{path}: unknown albumentations transform {shown(name)}{did_you_mean(name, classes)}"]
    args = {k: v for k, v in node.items() if k != "__class_fullname__"}
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        accepted = [p for p in params if p != "self"]
        unknown = [k for k in args if k not in accepted]
        if unknown:
            return [f"{path}: {name} has no argument {shown(unknown[0])}{did_you_mean(unknown[0], accepted)}"]
    if issubclass(cls, BaseCompose):
        children = args.get("transforms")
        if not isinstance(children, list) or not children:
            return [f"{path}: 'transforms' must be a non-empty list of transforms; got {shown(children)}"]
        problems: list[str] = []
        for i, child in enumerate(children):
            problems.extend(_describe_node(child, f"{path}.transforms[{i}]", classes))
        return problems
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # argument problems are reported as errors above/below
            cls(**args)
    except Exception as err:  # noqa: BLE001 - pydantic ValidationError, TypeError, ValueError...
        return [f"{path}: invalid {name} arguments: {_first_error(err)}"]
    return []


def _first_error(err: Exception) -> str:
    # pydantic's ValidationError lists every failed union branch; the first says enough.
    # albumentations re-raises pydantic's ValidationError as a ValueError "from" it.
    errors = getattr(err.__cause__, "errors", None) or getattr(err, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            loc = ".".join(str(part) for part in first.get("loc", ())[:1])
            return f"'{loc}' {first.get('msg', '').lower()}; got {shown(first.get('input'))}"
        except Exception:  # noqa: BLE001 - fall back to the plain message
            pass
    lines = str(err).splitlines()
    return clip(lines[0]) if lines else type(err).__name__


def build_pipeline(augmentations: dict[str, Any]):
    """An ``A.Compose`` from a serialized pipeline (as validated by :func:`describe_augmentations`).

    A pipeline whose root is a single transform is wrapped in ``A.Compose``.
    """
    import albumentations as A

    root, _ = _root(augmentations)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline = A.from_dict({"transform": root})
    return pipeline if isinstance(pipeline, A.Compose) else A.Compose([pipeline])


def reseed(pipeline, seed: int) -> None:
    """Give every transform of ``pipeline`` its own random state derived from ``seed``.

    ``Compose.set_random_seed`` hands all transforms the *same* seed, which would
    correlate them (the flip decision would follow the rotation draw); here each
    node gets an independent stream from one ``SeedSequence``.
    """
    import random

    import numpy as np
    from albumentations.core.composition import BaseCompose

    nodes = []
    stack = [pipeline]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(reversed(getattr(node, "transforms", None) or []))
    states = np.random.SeedSequence(seed).generate_state(len(nodes))
    for node, state in zip(nodes, states):
        state = int(state)
        if isinstance(node, BaseCompose):
            # What BaseCompose.set_random_seed does, minus re-seeding every child
            # (each child gets its own state in this loop): half the cost per image.
            node.seed, node.random_generator, node.py_random = state, np.random.default_rng(state), random.Random(state)
        else:
            node.set_random_seed(state)
