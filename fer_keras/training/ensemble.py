"""Export an ensemble of trained model folders as one model folder (``fer-ensemble``).

:func:`plan_ensemble` validates everything without TensorFlow (the member folders, that
they agree on class order, input, colour mode and crop rule, the data folder, and that
``out`` may be replaced); :func:`export_ensemble` then builds the averaged model
(:func:`fer_keras.model.ensemble.average_models`), measures every member and the
ensemble on ``valid`` under the same test-time augmentation, evaluates ``test`` once, and
writes the folder aside-then-swap (:func:`fer_keras.model.model_folder.write_model_folder`).
Whether the ensemble earns its cost is decided on ``valid``: its metadata keeps each
member's valid metrics beside its own, so the gain is on record. An optional class-prior
correction of the averaged probabilities is chosen on ``valid`` too
(:func:`fer_keras.training.selection.measure_model`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from fer_keras.constants import ARCHITECTURE_FILE
from fer_keras.errors import FerError, problem
from fer_keras.model.class_prior import check_class_prior
from fer_keras.model.ensemble import ensemble_architecture, ensemble_problems
from fer_keras.model.model_folder import (
    PREPROCESSING,
    TTA_CHOICES,
    ModelInfo,
    check_replaceable_model_folder,
    load_keras_model,
    read_model_info,
    write_model_folder,
)
from fer_keras.training.selection import evaluate_split, measure_model
from fer_keras.validation import check_choice, describe_stem, must


@dataclass(frozen=True)
class EnsemblePlan:
    """A validated ensemble export: what :func:`export_ensemble` will do (``--dry-run`` shows it)."""

    members: tuple[ModelInfo, ...]
    specs: tuple[dict[str, Any], ...]
    out: Path
    data: Path
    name: str
    tta: tuple[str, ...]
    evaluate_test: bool
    class_prior: str | float | None = None


def _read_spec(info: ModelInfo) -> dict[str, Any]:
    path = Path(info.path) / ARCHITECTURE_FILE
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FerError(problem(str(path), f"cannot read the member's architecture ({err})")) from None
    if not isinstance(spec, dict):
        raise FerError(problem(str(path), must("the architecture", "a JSON object", type(spec).__name__)))
    return spec


def plan_ensemble(
    members: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    data: str | os.PathLike,
    *,
    name: str | None = None,
    tta: Sequence[str] = (),
    evaluate_test: bool = True,
    class_prior: str | float | None = None,
) -> EnsemblePlan:
    """Validate an ensemble export without loading a model (no TensorFlow).

    Args:
        members: the member model folders (2 to 8), in the order recorded.
        out: the model folder to write (only an earlier model folder or an empty folder is replaced).
        data: a dataset folder with ``valid/`` (and ``test/`` for the one-time test evaluation).
        name: the ensemble's name (default: ``out``'s folder name).
        tta: the test-time augmentation recorded for inference and used for every measurement.
        evaluate_test: also record ``test_metrics``.
        class_prior: class-prior correction of the ensemble (``None``: off, ``"auto"``: ``tau``
            chosen on valid, or a ``tau`` in [0, 1]; :mod:`fer_keras.model.class_prior`),
            over the training counts of ``data/train``.

    Raises:
        FerError: every problem found, each naming its folder or field.
    """
    if isinstance(tta, str):
        raise FerError(must("tta", f"a list of {', '.join(TTA_CHOICES)}", tta))
    for item in tta:
        check_choice("tta", item, TTA_CHOICES)
    class_prior = check_class_prior(class_prior)
    out, data = Path(out), Path(data)
    name = name or out.name
    problems = [m for m in (describe_stem("name", name),) if m]
    infos: list[ModelInfo] = []
    for member in members:
        try:
            infos.append(read_model_info(member))
        except FerError as err:
            problems += err.problems
    if not problems:
        problems += ensemble_problems(infos)
    if not (data / "valid").is_dir():
        problems.append(problem(str(data), "has no valid/ folder (the ensemble is measured on valid)"))
    if class_prior is not None and not (data / "train").is_dir():
        problems.append(problem(str(data), "has no train/ folder (the class-prior correction needs its counts)"))
    if any(Path(m.path).resolve() == out.resolve() for m in infos):
        problems.append(problem(str(out), "is one of the members; write the ensemble to another folder"))
    if problems:
        raise FerError(problems)
    check_replaceable_model_folder(out)
    specs = tuple(_read_spec(info) for info in infos)
    return EnsemblePlan(tuple(infos), specs, out, data, name, tuple(dict.fromkeys(tta)), evaluate_test, class_prior)


def export_ensemble(plan: EnsemblePlan, quiet: bool = False, reproduce: str | None = None) -> dict[str, Any]:
    """Build, measure and write the ensemble ``plan`` describes; returns the metadata written.

    Every member and the ensemble are measured on ``valid`` with ``plan.tta``; ``test`` is
    read once, for the ensemble only, after that.

    Example:
        >>> plan = plan_ensemble(["models/a", "models/b"], "models/ab", "data/fer2013-clean", tta=["flip"])  # doctest: +SKIP
        >>> export_ensemble(plan)["valid_metrics"]["accuracy"]  # doctest: +SKIP
        0.68
    """
    from fer_keras.data.pipeline import load_split
    from fer_keras.model.ensemble import average_models

    first = plan.members[0]
    models = [load_keras_model(info) for info in plan.members]
    model = average_models(models, plan.name)
    classes = first.class_names
    valid = load_split(plan.data, "valid", first.input_size, first.color_mode, classes, quiet=quiet)
    members = []
    for info, member in zip(plan.members, models):
        metrics, _ = evaluate_split(member, valid, tta=plan.tta)
        members.append({"name": info.name, "version": info.version, "path": str(info.path), "valid_metrics": metrics})
    test = None
    if plan.evaluate_test and (plan.data / "test").is_dir():
        test = partial(load_split, plan.data, "test", first.input_size, first.color_mode, classes, quiet=quiet)
    measured = measure_model(model, valid, test, plan.tta, plan.class_prior, plan.data)
    metadata = {
        "name": plan.name,
        "class_names": list(classes),
        "input_size": list(first.input_size),
        "color_mode": first.color_mode,
        "preprocessing": PREPROCESSING,
        "crop": first.crop.to_dict(),
        "inference": measured["inference"],
        "ensemble": {"members": members, "combine": "mean of class probabilities"},
        "selected_by": "members and test-time augmentation chosen on the valid split; test evaluated once afterwards",
        "valid_metrics": measured["valid_metrics"],
        "test_metrics": measured["test_metrics"],
        "class_prior": measured["class_prior"],
        "data": str(plan.data),
        "reproduce": reproduce,
    }
    architecture = ensemble_architecture(plan.name, plan.specs)
    return write_model_folder(plan.out, model, metadata, architecture).metadata
