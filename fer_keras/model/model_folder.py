"""A model folder (``models/<name>/``): its metadata schema, reading it, writing it, loading its model.

A model folder holds ``metadata.json``, ``model.keras`` and ``architecture.json``
(format in docs/internals.md), later perhaps ``fer-export``'s exports. (Folders written
before 2026-12-02 also hold ``model.weights.h5``, the same weights again; it is no longer
written, which keeps an ensemble of two models under the repository's size limit.) This module is the only code that reads or writes one: :class:`ModelInfo` is the
validated metadata (the same checks on write and on read), :func:`write_model_folder`
builds a folder aside and swaps it in whole, :func:`load_keras_model` loads its model and
checks it against the metadata, and :func:`apply_tta` says what ``inference.tta`` means.

It lives in the model stage because a model folder is a trained model's saved form, and
every stage that writes or reads one (training, inference, report) comes after this one
(``tests/layering_test.py`` lets inference and report import ``fer_keras.model``).
Reading metadata never imports TensorFlow; :func:`load_keras_model` does, lazily.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_keras.atomic import atomic_dir, check_replaceable, remove_stale_temps, write_json_atomic
from fer_keras.constants import (
    ARCHITECTURE_FILE,
    COLOR_MODES,
    METADATA_FILE,
    MODEL_FILE,
    ONNX_FILE,
    WEIGHTS_FILE,
)
from fer_keras.errors import FerError, problem
from fer_keras.hashing import sha256_file
from fer_keras.model.class_prior import class_bias_problems
from fer_keras.model.crop import CropRule
from fer_keras.validation import describe_choice, describe_int, must

FORMAT_VERSION = 1
# Test-time augmentations a model folder may ask for (metadata ``inference.tta``):
# "flip" averages the probabilities of the image and its mirror image; "shift" averages
# the image and four copies moved by SHIFT_FRACTION of its side (up, down, left, right;
# edge pixels repeated): the "small crops" of the literature, which soften the model's
# sensitivity to where the detector put the box. Both together average all 10 views.
TTA_CHOICES: tuple[str, ...] = ("flip", "shift")
SHIFT_FRACTION = 0.04  # 2 pixels of a 48-pixel face
# What every model folder's metadata says about its input (the raw-pixel contract).
PREPROCESSING: dict[str, Any] = {
    "input": "float32 pixels in [0, 255], shape (batch, height, width, channels)",
    "resize": "bilinear (PIL) to input_size",
    "color": "rgb: RGB; grayscale: PIL 'L' conversion; transparency composited on white",
    "rescale_in_model": True,
}
# The files write_model_folder writes (a staging folder holds only these, or their temporaries).
MODEL_FOLDER_FILES: tuple[str, ...] = (MODEL_FILE, ARCHITECTURE_FILE, METADATA_FILE)


@dataclass(frozen=True)
class ModelInfo:
    """What ``metadata.json`` says about a model, validated.

    ``version`` is the metadata's ``version`` field when present, else the first 12
    hex digits of the weights file's SHA-256, so two different trainings of the same
    architecture never report the same version. ``path`` is the model folder (the model
    file for a model that has no folder, ``None`` when there is no file at all).
    """

    path: Path | None
    name: str
    version: str
    class_names: tuple[str, ...]
    input_size: tuple[int, int]
    color_mode: str
    metadata: dict[str, Any] = field(repr=False, compare=False)
    crop: CropRule = field(default_factory=CropRule)
    tta: tuple[str, ...] = ()
    class_bias: tuple[float, ...] = ()  # inference.class_bias (fer_keras.model.class_prior); () = none

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of one model input."""
        return (*self.input_size, COLOR_MODES[self.color_mode])


def metadata_problems(meta: Mapping[str, Any]) -> list[str]:
    """Every invalid field of a model folder's metadata (empty: valid); used on write and on read."""
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
    if isinstance(inference, dict) and isinstance(names, list):
        problems += class_bias_problems(inference.get("class_bias"), len(names))
    try:
        CropRule.from_metadata(meta.get("crop"))
    except FerError as err:
        problems += err.problems
    return problems


def _model_info(meta: dict[str, Any], path: Path, version: str) -> ModelInfo:
    """A :class:`ModelInfo` from metadata that :func:`metadata_problems` passed."""
    size = meta["input_size"]
    return ModelInfo(
        path,
        str(meta.get("name") or path.name),
        version,
        tuple(meta["class_names"]),
        (size[0], size[1]),
        meta["color_mode"],
        meta,
        CropRule.from_metadata(meta.get("crop")),
        tuple((meta.get("inference") or {}).get("tta", [])),
        tuple(float(b) for b in (meta.get("inference") or {}).get("class_bias") or ()),
    )


def read_model_info(model_dir: str | os.PathLike) -> ModelInfo:
    """Read and validate ``<model_dir>/metadata.json`` (cheap: no model is loaded).

    Raises:
        FerError: the folder or its metadata is missing, or a field is invalid
            (every invalid field is reported).

    Example:
        >>> info = read_model_info("models/best_model")  # doctest: +SKIP
        >>> info.class_names[3], info.input_size, info.color_mode  # doctest: +SKIP
        ('happy', (48, 48), 'grayscale')
    """
    path = Path(model_dir)
    if not path.is_dir():
        raise FerError(
            problem(str(path), "model folder not found (train and export a model first, or pass --model DIR)")
        )
    meta_path = path / METADATA_FILE
    if not meta_path.is_file():
        raise FerError(problem(str(meta_path), "not found (a model folder needs metadata.json)"))
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FerError(problem(str(meta_path), f"not valid JSON ({err})")) from None
    if not isinstance(meta, dict):
        raise FerError(problem(str(meta_path), must("the top level", "a JSON object", type(meta).__name__)))
    problems = metadata_problems(meta)
    if problems:
        raise FerError(problem(str(meta_path), p) for p in problems)
    return _model_info(meta, path, str(meta.get("version") or _file_version(path)))


def _file_version(path: Path) -> str:
    for candidate in (WEIGHTS_FILE, MODEL_FILE, ONNX_FILE):
        file = path / candidate
        if file.is_file():
            return sha256_file(file)[:12]
    return "unknown"


def is_model_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a model folder's ``metadata.json`` (what may be replaced by a new one).

    Example:
        >>> is_model_folder("models/best_model")  # doctest: +SKIP
        True
    """
    try:
        meta = json.loads((Path(folder) / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return (
        isinstance(meta, dict)
        and meta.get("format_version") == FORMAT_VERSION
        and isinstance(meta.get("class_names"), list)
        and isinstance(meta.get("input_size"), list)
        and isinstance(meta.get("color_mode"), str)
    )


def _is_model_staging(folder: Path) -> bool:
    """A model folder, or a staging folder of :func:`write_model_folder` killed before it was complete."""
    if is_model_folder(folder):
        return True
    temporaries = tuple(f".{name}." for name in MODEL_FOLDER_FILES)  # atomic_path's, of a killed write
    return all(
        entry.is_file() and (entry.name in MODEL_FOLDER_FILES or entry.name.startswith(temporaries))
        for entry in folder.iterdir()
    )


def check_replaceable_model_folder(out: str | os.PathLike) -> None:
    """Refuse an ``out`` that is a file or a non-empty folder other than a model folder.

    Raises:
        FerError: naming ``out``.
    """
    check_replaceable(out, is_model_folder, f"a model folder (no {METADATA_FILE} with model metadata)")


def write_model_folder(
    out: str | os.PathLike, model: Any, metadata: Mapping[str, Any], architecture: Mapping[str, Any]
) -> ModelInfo:
    """Write ``out/``: metadata, the Keras model (without optimizer state) and its architecture.

    Everything is checked before anything is written: the metadata (as
    :func:`read_model_info` checks it; ``format_version`` is added), the model's input
    and output shapes against it, and ``out`` itself (only an earlier model folder or an
    empty folder is replaced). The folder is built beside ``out`` and swapped in whole, so
    a crash never leaves a half-written model; the staging folders such a crash leaves are
    removed by the next write to the same ``out`` (two writes to one folder must not run
    at once). Exports written into an earlier folder go with it.

    Args:
        out: the model folder.
        model: a built Keras model.
        metadata: the metadata fields (docs/internals.md); JSON-ready, no NaN.
        architecture: the architecture spec the model was built from, as JSON.

    Returns:
        The written folder's :class:`ModelInfo`, read back.

    Raises:
        FerError: invalid metadata, a model that disagrees with it, or an ``out`` that must not be replaced.

    Example:
        >>> write_model_folder("models/mine", model, metadata, spec)  # doctest: +SKIP
        ModelInfo(path=PosixPath('models/mine'), name='mine', ...)
    """
    out = Path(out)
    meta_path = out / METADATA_FILE
    meta = {"format_version": FORMAT_VERSION, **metadata}
    problems = metadata_problems(meta)
    if meta["format_version"] != FORMAT_VERSION:
        problems.append(must("format_version", str(FORMAT_VERSION), meta["format_version"]))
    if not isinstance(architecture, Mapping):
        problems.append(must("architecture", "a JSON object (the architecture spec)", type(architecture).__name__))
    if problems:
        raise FerError(problem(str(meta_path), p) for p in problems)
    check_model_shapes(_model_info(meta, out, "unknown"), meta_path, model.input_shape, model.output_shape)
    check_replaceable_model_folder(out)
    remove_stale_temps(out, is_ours_dir=_is_model_staging)
    with atomic_dir(out) as staging:
        try:
            write_json_atomic(staging / METADATA_FILE, meta)
        except ValueError as err:  # a NaN metric: the message names the field
            raise FerError(str(err).replace(str(staging), str(out))) from None
        write_json_atomic(staging / ARCHITECTURE_FILE, dict(architecture))
        model.save(staging / MODEL_FILE)
    return read_model_info(out)


def check_model_shapes(
    info: ModelInfo, where: str | os.PathLike, input_shape: Sequence, output_shape: Sequence
) -> None:
    """Compare a model's own input/output shapes with its metadata (unknown dimensions pass).

    Raises:
        FerError: one problem per disagreeing shape, naming ``where``.
    """
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


def load_keras_model(info: ModelInfo) -> Any:
    """The folder's ``model.keras`` (uncompiled), checked against the metadata's shapes.

    Raises:
        FerError: the file is missing or unreadable, or its shapes disagree with ``info``.

    Example:
        >>> model = load_keras_model(read_model_info("models/best_model"))  # doctest: +SKIP
        >>> model.input_shape  # doctest: +SKIP
        (None, 48, 48, 1)
    """
    if info.path is None:
        raise FerError(problem(info.name, "has no model folder to load a model from"))
    path = info.path / MODEL_FILE
    if not path.is_file():
        raise FerError(problem(str(path), "not found (the keras runtime needs model.keras)"))
    import keras  # lazy: ~6 s of TensorFlow start-up

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001 - a damaged file is the user's to fix
        raise FerError(problem(str(path), f"cannot load the model ({type(err).__name__}: {err})")) from None
    check_model_shapes(info, path, model.input_shape, model.output_shape)
    return model


def _shifted(pixels: np.ndarray) -> list[np.ndarray]:
    """``pixels`` and four copies moved by :data:`SHIFT_FRACTION` of the side, edges repeated."""
    d = max(1, round(SHIFT_FRACTION * min(pixels.shape[1:3])))
    padded = np.pad(pixels, ((0, 0), (d, d), (d, d), (0, 0)), mode="edge")
    height, width = pixels.shape[1:3]
    offsets = ((d, d), (0, d), (2 * d, d), (d, 0), (d, 2 * d))  # centre, then moved down, up, right, left
    return [padded[:, y : y + height, x : x + width] for y, x in offsets]


def apply_tta(run: Callable[[np.ndarray], np.ndarray], pixels: np.ndarray, tta: Sequence[str]) -> np.ndarray:
    """``run`` (pixels → probabilities) on ``pixels`` under the test-time augmentation ``tta``.

    Every view goes to ``run`` in one call (one batch), and the probabilities of a face's
    views are averaged: ``flip`` adds the mirror image, ``shift`` four shifted copies
    (see :data:`TTA_CHOICES`); both give 10 views.

    Example:
        >>> apply_tta(lambda x: x[:, 0, :, 0], np.array([[[[1.0], [3.0]]]]), ["flip"]).tolist()
        [[2.0, 2.0]]
    """
    views = _shifted(pixels) if "shift" in tta else [pixels]
    if "flip" in tta:
        views += [view[:, :, ::-1] for view in views]
    if len(views) == 1:
        return np.asarray(run(pixels))
    probs = np.asarray(run(np.concatenate(views)))
    return probs.reshape(len(views), len(pixels), *probs.shape[1:]).mean(axis=0)
