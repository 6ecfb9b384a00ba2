"""Best-model selection and export to ``models/best_model/``.

Selection uses ``valid`` only: the run with the highest best-epoch
``val_accuracy`` wins, and its best checkpoint is exported as a model folder
(:mod:`fer_keras.model.model_folder`) with the crop rule and test-time augmentation
inference is to use, and optionally a class-prior correction chosen on ``valid``
(:mod:`fer_keras.model.class_prior`). The ``test`` split is read once, *after* selection,
to record the reported test metrics; both splits are scored as inference will run the
model (with its TTA and class-prior correction): :func:`measure_model`, shared with
``fer-ensemble``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from fer_keras.constants import BEST_CHECKPOINT_FILE, BEST_MODEL_DIR, STATUS_DONE
from fer_keras.errors import FerError, problem
from fer_keras.model.class_prior import apply_class_bias, check_class_prior, class_prior_record
from fer_keras.model.crop import CropRule
from fer_keras.model.model_folder import (
    PREPROCESSING,
    TTA_CHOICES,
    apply_tta,
    check_replaceable_model_folder,
    write_model_folder,
)
from fer_keras.training.config import TrainConfig
from fer_keras.training.history import history_path, list_histories, read_history
from fer_keras.validation import check_choice, must


def check_model_out(out: str | os.PathLike, history_dir: str | os.PathLike, run_dirs: Iterable[Path] = ()) -> None:
    """Refuse a model folder that export would wrongly replace (the whole folder is swapped out).

    ``out`` may be missing, an empty folder or an earlier model folder, and must not be,
    contain or lie inside the history folder or a run's folder.

    Raises:
        FerError: the first problem, naming ``out``.
    """
    out = Path(out)
    resolved = out.resolve()
    for kind, folder in [("the history folder", Path(history_dir)), *(("the run folder", d) for d in run_dirs)]:
        other = folder.resolve()
        if resolved == other or resolved.is_relative_to(other) or other.is_relative_to(resolved):
            raise FerError(
                f"{out}: the model folder must be outside {kind} {folder} and not contain it "
                "(the model folder is replaced whole); pick another --out"
            )
    check_replaceable_model_folder(out)


def _records(history_dir: str | os.PathLike) -> list[dict[str, Any]]:
    records = []
    for path in list_histories(history_dir):
        try:
            records.append(read_history(path))
        except FerError:
            continue
    return records


def _run_dir(record: dict[str, Any]) -> Path | None:
    # Every history of the folder, whatever wrote it: its run folder is protected if it names one,
    # even when the rest of its config would not resolve (so not through TrainConfig).
    runs_dir = record["config"].get("runs_dir") if isinstance(record.get("config"), dict) else None
    return Path(runs_dir) / record["name"] if isinstance(runs_dir, str) else None


def best_run(history_dir: str | os.PathLike, names: list[str] | None = None) -> dict[str, Any]:
    """The finished run with the highest ``best_val_accuracy`` (ties: fewer epochs, then name)."""
    candidates = []
    for record in _records(history_dir):
        if names is not None and record["name"] not in names:
            continue
        if record.get("status") == STATUS_DONE and record.get("best_val_accuracy") is not None:
            candidates.append(record)
    if not candidates:
        raise FerError(f"{history_dir}: no finished runs to select from")
    return max(candidates, key=lambda r: (r["best_val_accuracy"], -(r.get("best_epoch") or 0), r["name"]))


def choose_export(
    history_dir: str | os.PathLike, out: str | os.PathLike, names: list[str] | None = None
) -> tuple[dict[str, Any], TrainConfig]:
    """The run :func:`export_best` would export to ``out`` (its history record and config), checked; no model loaded.

    Raises:
        FerError: no finished run, an invalid recorded config, a missing checkpoint, or an
            ``out`` that must not be replaced (:func:`check_model_out`).
    """
    record = best_run(history_dir, names)
    config = TrainConfig.from_dict(record["config"], where=f"{history_path(history_dir, record['name'])}: config")
    checkpoint = Path(config.runs_dir) / record["name"] / BEST_CHECKPOINT_FILE
    if not checkpoint.exists():
        raise FerError(f"{checkpoint}: best checkpoint of run {record['name']!r} is missing")
    check_model_out(out, history_dir, filter(None, map(_run_dir, _records(history_dir))))
    return record, config


def export_best(
    history_dir: str | os.PathLike = "history",
    out: str | os.PathLike = BEST_MODEL_DIR,
    names: list[str] | None = None,
    evaluate_test: bool = True,
    reproduce: str | None = None,
    quiet: bool = False,
    *,
    crop: CropRule | None = None,
    tta: Sequence[str] = (),
    class_prior: str | float | None = None,
) -> dict[str, Any]:
    """Select the best run and write its model folder ``out/`` (architecture, weights, model, metadata).

    ``out`` is checked first (:func:`check_model_out`: only an earlier model folder or
    an empty folder is replaced), before any model is loaded; the folder is written by
    :func:`fer_keras.model.model_folder.write_model_folder` (built aside, swapped in whole).
    The recorded ``valid_metrics`` and ``test_metrics`` are those of the model as it will
    run, with ``tta`` applied.

    Args:
        history_dir: the history folder whose finished runs compete.
        out: the model folder to write.
        names: only these runs compete (default: all).
        evaluate_test: also record ``test_metrics`` (the ``test`` split is read once, after selection).
        reproduce: the commands that reproduce the run, kept in the metadata.
        quiet: no progress bars.
        crop: the crop rule recorded for inference on photos (default :class:`CropRule`).
        tta: the test-time augmentation recorded for inference (``inference.tta``; default none).
        class_prior: class-prior correction recorded for inference (``inference.class_bias``):
            ``None`` (off), ``"auto"`` (``tau`` chosen on valid) or a ``tau`` in [0, 1].

    Returns:
        The metadata written.

    Raises:
        FerError: a bad argument, no finished run, a missing checkpoint or architecture, or an
            ``out`` that must not be replaced.

    Example:
        >>> meta = export_best("history", "models/best_model", tta=["flip"])  # doctest: +SKIP
        >>> meta["source_run"], meta["inference"]  # doctest: +SKIP
        ('model_2_best_sgd_rgb_128_augment', {'tta': ['flip']})
    """
    if isinstance(tta, str):
        raise FerError(must("tta", f"a list of {', '.join(TTA_CHOICES)}", tta))
    for item in tta:
        check_choice("tta", item, TTA_CHOICES)
    tta = list(dict.fromkeys(tta))
    class_prior = check_class_prior(class_prior)
    crop = CropRule() if crop is None else crop
    if not isinstance(crop, CropRule):
        raise FerError(must("crop", "a CropRule", crop))
    record, config = choose_export(history_dir, out, names)
    checkpoint = Path(config.runs_dir) / record["name"] / BEST_CHECKPOINT_FILE
    out = Path(out)
    architecture = _read_architecture(config.arch, record["name"])

    import keras

    from fer_keras.data.pipeline import load_split

    model = keras.models.load_model(checkpoint, compile=False)  # no optimizer state in the export
    size = config.image_size
    classes = tuple(record["class_names"])
    valid = load_split(config.data, "valid", size, config.color_mode, classes, quiet=quiet)
    test = None
    if evaluate_test and (Path(config.data) / "test").is_dir():
        test = partial(load_split, config.data, "test", size, config.color_mode, classes, quiet=quiet)
    measured = measure_model(model, valid, test, tta, class_prior, config.data)
    metadata = {
        "name": record["name"],
        "class_names": list(classes),
        "input_size": list(size),
        "color_mode": config.color_mode,
        "preprocessing": PREPROCESSING,
        "crop": crop.to_dict(),
        "inference": measured["inference"],
        "source_run": record["name"],
        "best_epoch": record["best_epoch"],
        "selected_by": "highest val_accuracy over finished runs (valid split); test evaluated once after selection",
        "valid_metrics": measured["valid_metrics"],
        "test_metrics": measured["test_metrics"],
        "class_prior": measured["class_prior"],
        "config": config.to_dict(),
        "versions": record.get("versions", {}),
        "reproduce": reproduce,
    }
    return write_model_folder(out, model, metadata, architecture).metadata


def measure_model(
    model, valid, load_test, tta: Sequence[str], class_prior: str | float | None, data: str | os.PathLike
) -> dict[str, Any]:
    """Score ``model`` as inference will run it: ``valid``, then ``test`` once (when ``load_test`` is given).

    With ``class_prior`` (checked by :func:`~fer_keras.model.class_prior.check_class_prior`),
    the correction is chosen on ``valid`` from the probabilities already computed (``tau``
    over the training counts of ``<data>/train``), and both splits are scored with it.

    Returns:
        ``{"inference", "valid_metrics", "test_metrics", "class_prior"}`` for the metadata
        (``test_metrics`` and ``class_prior`` ``None`` when not measured / off).
    """
    tta = list(tta)
    counts = None if class_prior is None else train_counts(data, valid.class_names)  # a bad folder fails first
    valid_metrics, valid_probs = evaluate_split(model, valid, tta=tta)
    inference: dict[str, Any] = {"tta": tta}
    record = None
    if counts is not None:
        record = class_prior_record(class_prior, valid.labels, valid_probs, counts, valid.class_names)
        inference["class_bias"] = record["class_bias"]
        valid_metrics = split_metrics(valid, apply_class_bias(valid_probs, record["class_bias"]))
    test_metrics = None
    if load_test is not None:
        test_metrics, _ = evaluate_split(model, load_test(), tta=tta, class_bias=inference.get("class_bias", ()))
    return {"inference": inference, "valid_metrics": valid_metrics, "test_metrics": test_metrics, "class_prior": record}


def train_counts(data: str | os.PathLike, class_names: Sequence[str]) -> list[int]:
    """Images per class of ``<data>/train``, in ``class_names`` order: the prior a model learnt.

    Raises:
        FerError: the split is missing, or a class folder is missing or empty
            (:func:`fer_keras.data.folders.scan_split`).
    """
    from fer_keras.data.folders import scan_split

    counts = scan_split(data, "train", tuple(class_names)).counts()
    return [counts[name] for name in class_names]


def evaluate_split(
    model, data, batch_size: int = 256, tta: Sequence[str] = (), class_bias: Sequence[float] = ()
) -> tuple[dict[str, Any], np.ndarray]:
    """Metrics of ``model`` on a loaded split, under test-time augmentation ``tta`` and the
    class-prior correction ``class_bias``; also the probabilities (before the correction).

    The metrics are accuracy, loss, n, macro-F1 and per-class recall
    (:func:`fer_keras.metrics.classification_metrics`, so a class without images has
    recall ``None`` and is left out of macro-F1).
    """

    def run(batch: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_on_batch(batch))

    images = data.images
    probs = np.concatenate(
        [apply_tta(run, images[i : i + batch_size].astype(np.float32), tta) for i in range(0, len(images), batch_size)]
    )
    return split_metrics(data, apply_class_bias(probs, class_bias)), probs


def split_metrics(data, probs: np.ndarray) -> dict[str, Any]:
    """Accuracy, loss, n, macro-F1 and per-class recall of probabilities on a loaded split."""
    import keras

    from fer_keras.metrics import classification_metrics

    onehot = np.eye(len(data.class_names), dtype=np.float32)[data.labels]
    loss = float(np.mean(keras.losses.categorical_crossentropy(onehot, probs)))
    scores = classification_metrics(data.labels, probs.argmax(axis=1), data.class_names)
    metrics = {"accuracy": scores["accuracy"], "loss": loss, "n": int(len(data))}
    return metrics | {key: scores[key] for key in ("macro_f1", "per_class_recall")}


def _read_architecture(path: str | os.PathLike, run: str) -> dict[str, Any]:
    """The run's architecture spec as JSON, copied into the model folder as is."""
    try:
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FerError(problem(str(path), f"cannot read the architecture of run {run!r} ({err})")) from None
    if not isinstance(spec, dict):
        raise FerError(problem(str(path), must("the architecture", "a JSON object", type(spec).__name__)))
    return spec
