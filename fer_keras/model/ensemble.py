"""An ensemble of model folders as one Keras model: the members' probabilities, averaged.

An ensemble is saved as an ordinary model folder (:mod:`fer_keras.model.model_folder`):
its ``model.keras`` takes the same raw-pixel input and returns the mean of its members'
class probabilities, so every inference path (Keras, ONNX, TTA, the crop rule) runs it
unchanged, and ONNX runs the whole ensemble in one session call. Its ``architecture.json``
lists the members' specs under ``ensemble``; its metadata names the members.

Members must agree on everything an inference path reads from the metadata (class order,
input size, colour mode, crop rule): :func:`ensemble_problems` says where they differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fer_keras.errors import FerError, problem
from fer_keras.model.model_folder import ModelInfo

MIN_MEMBERS = 2
MAX_MEMBERS = 8
# What every member must share, as (label, getter) pairs: an inference path reads these once per folder.
_SHARED = (
    ("class_names", lambda info: list(info.class_names)),
    ("input_size", lambda info: list(info.input_size)),
    ("color_mode", lambda info: info.color_mode),
    ("crop", lambda info: info.crop.to_dict()),
)


def ensemble_problems(members: Sequence[ModelInfo]) -> list[str]:
    """Every reason ``members`` cannot form one ensemble (empty: they can).

    Example:
        >>> ensemble_problems([])
        ['an ensemble needs 2 to 8 model folders; got 0']
    """
    if not MIN_MEMBERS <= len(members) <= MAX_MEMBERS:
        return [f"an ensemble needs {MIN_MEMBERS} to {MAX_MEMBERS} model folders; got {len(members)}"]
    problems = []
    paths = [str(m.path) for m in members]
    if len(set(paths)) != len(paths):
        problems.append(
            f"the same model folder is given twice: {', '.join(sorted({p for p in paths if paths.count(p) > 1}))}"
        )
    first = members[0]
    for label, get in _SHARED:
        for other in members[1:]:
            if get(other) != get(first):
                problems.append(problem(str(other.path), f"{label} is {get(other)} but {first.path} has {get(first)}"))
    return problems


def ensemble_architecture(name: str, specs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``architecture.json`` of an ensemble: its members' specs, in member order."""
    return {
        "name": name,
        "description": f"mean of the class probabilities of {len(specs)} models",
        "ensemble": [dict(spec) for spec in specs],
    }


def member_name(index: int) -> str:
    """The name :func:`average_models` gives its member ``index`` (what :func:`nested_member` looks up)."""
    return f"member_{index}"


def nested_member(model: Any, index: int | None) -> Any:
    """``model`` itself (``index`` None), or member ``index`` of an ensemble built by :func:`average_models`.

    Raises:
        FerError: ``model`` has no such member.
    """
    if index is None:
        return model
    try:
        return model.get_layer(member_name(index))
    except ValueError:
        raise FerError(problem(model.name, f"is not an ensemble with a {member_name(index)}")) from None


def average_models(models: Sequence[Any], name: str) -> Any:
    """One Keras model returning the mean of ``models``' outputs on a shared input.

    Args:
        models: loaded Keras models with equal input and output shapes.
        name: the ensemble model's name.

    Returns:
        A functional ``keras.Model`` holding every member as a nested model (renamed
        ``member_<i>`` so their layer names never collide).

    Raises:
        FerError: fewer than 2 models, or models whose shapes differ.
    """
    import keras  # lazy: TensorFlow start-up

    if len(models) < MIN_MEMBERS:
        raise FerError(problem("ensemble", f"needs at least {MIN_MEMBERS} models; got {len(models)}"))
    shapes = {(tuple(m.input_shape[1:]), tuple(m.output_shape[1:])) for m in models}
    if len(shapes) != 1:
        raise FerError(problem("ensemble", f"members differ in input/output shapes: {sorted(shapes)}"))
    inputs = keras.Input(models[0].input_shape[1:], name="pixels")
    # Wrapping each member in a functional model of its own gives it a unique name (two
    # trainings of one spec have equal layer names) without copying its weights.
    outputs = [keras.Model(m.inputs[0], m.outputs[0], name=member_name(i))(inputs) for i, m in enumerate(models)]
    mean = keras.layers.Average(name="probabilities")(outputs)
    return keras.Model(inputs, mean, name=name)
