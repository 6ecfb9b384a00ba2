"""Export an ensemble of trained model folders as one model folder (``fer-ensemble``).

:func:`plan_ensemble` validates everything without TensorFlow (the member folders, that
they agree on class order, input, colour mode and crop rule, the data folder, and that
``out`` may be replaced); :func:`export_ensemble` then builds the averaged model
(:func:`fer_keras.model.ensemble.average_models`), measures every member and the
ensemble on ``valid`` under the same test-time augmentation, evaluates ``test`` once, and
writes the folder aside-then-swap (:func:`fer_keras.model.model_folder.write_model_folder`).
A member may itself be an ensemble folder: its members join the new ensemble one by one
(flattened, each with an equal share of the mean), so an ensemble grows by one model without
the earlier members' own folders.
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
from fer_keras.model.ensemble import MAX_MEMBERS, MIN_MEMBERS, ensemble_architecture, ensemble_problems
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
class Member:
    """One model the ensemble averages: a folder's model, or one member of an ensemble folder."""

    folder: ModelInfo
    index: int | None  # the nested ``member_<index>`` of an ensemble folder; None: the folder's model
    name: str
    version: str
    path: str  # the member's own folder as recorded (for a flattened member, where it was exported)
    spec: dict[str, Any]

    def record(self) -> dict[str, Any]:
        """The member's entry in the ensemble's metadata (without its metrics)."""
        record = {"name": self.name, "version": self.version, "path": self.path}
        if self.index is not None:
            record["from"] = str(self.folder.path)
        return record


@dataclass(frozen=True)
class EnsemblePlan:
    """A validated ensemble export: what :func:`export_ensemble` will do (``--dry-run`` shows it).

    ``members`` are the folders given; ``parts`` the models averaged (an ensemble folder
    contributes each of its members).
    """

    members: tuple[ModelInfo, ...]
    parts: tuple[Member, ...]
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


def _parts(info: ModelInfo) -> list[Member]:
    """The models ``info``'s folder contributes: itself, or each member of an ensemble folder."""
    spec = _read_spec(info)
    if "ensemble" not in spec:
        return [Member(info, None, info.name, info.version, str(info.path), spec)]
    specs, records = spec["ensemble"], (info.metadata.get("ensemble") or {}).get("members")
    if not (isinstance(specs, list) and isinstance(records, list) and len(specs) == len(records)):
        raise FerError(
            problem(str(info.path), "is an ensemble whose architecture.json and metadata.json disagree on its members")
        )
    return [
        Member(info, i, str(rec.get("name")), str(rec.get("version")), str(rec.get("path")), dict(spec_i))
        for i, (spec_i, rec) in enumerate(zip(specs, records))
    ]


def _parts_problems(parts: Sequence[Member]) -> list[str]:
    if not MIN_MEMBERS <= len(parts) <= MAX_MEMBERS:
        return [f"an ensemble averages {MIN_MEMBERS} to {MAX_MEMBERS} models; the folders given hold {len(parts)}"]
    seen: dict[str, Member] = {}
    problems = []
    for part in parts:
        first = seen.setdefault(part.version, part)
        if first is not part:
            problems.append(
                problem(str(part.folder.path), f"holds model {part.name} (version {part.version}) twice")
                if first.folder is part.folder
                else problem(
                    str(part.folder.path),
                    f"holds model {part.name} (version {part.version}), which {first.folder.path} holds too",
                )
            )
    return problems


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
        members: the member model folders (2 to 8 models in all), in the order recorded; an
            ensemble folder contributes each of its members.
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
    parts = [part for info in infos for part in _parts(info)]
    problems = _parts_problems(parts)
    if problems:
        raise FerError(problems)
    check_replaceable_model_folder(out)
    return EnsemblePlan(
        tuple(infos), tuple(parts), out, data, name, tuple(dict.fromkeys(tta)), evaluate_test, class_prior
    )


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
    from fer_keras.model.ensemble import average_models, nested_member

    first = plan.members[0]
    loaded = {info.path: load_keras_model(info) for info in plan.members}  # each folder once
    models = [nested_member(loaded[p.folder.path], p.index) for p in plan.parts]
    model = average_models(models, plan.name)
    classes = first.class_names
    valid = load_split(plan.data, "valid", first.input_size, first.color_mode, classes, quiet=quiet)
    members = []
    for part, member in zip(plan.parts, models):
        metrics, _ = evaluate_split(member, valid, tta=plan.tta)
        members.append({**part.record(), "valid_metrics": metrics})
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
    architecture = ensemble_architecture(plan.name, [p.spec for p in plan.parts])
    return write_model_folder(plan.out, model, metadata, architecture).metadata
