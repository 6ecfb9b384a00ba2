"""A model's metrics on a labelled image set (``fer-eval``).

An evaluation set is a split of the folder layout (``<root>/test/<emotion>/*``) or a
flat ``<root>/<emotion>/*`` folder. Sets from other sources rarely have all seven
classes: a class the model knows but the set lacks is *missing* (see
:mod:`fer_keras.metrics` for what that does to recall and macro-F1); a class folder the
model does not know is an error. With ``detect_faces`` each photo is cropped to its
largest face (the detectors and crop rule of ``fer-predict`` and the Python API:
:mod:`fer_keras.inference.recognizer`) and classified whole when none is found, which is counted.

Results are JSON-ready dicts whose key names ``fer-report`` reads (``dataset``, ``n``,
``accuracy``, ``macro_f1``, ``per_class_recall``, ...). The model is a
:class:`~fer_keras.inference.predictor.Predictor` (a model folder, or the ``fer`` peer);
TensorFlow is never imported here.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from fer_keras.atomic import write_json_atomic
from fer_keras.constants import COLOR_MODES, SPLITS
from fer_keras.data.folders import list_classes, scan_split_lenient
from fer_keras.data.images import load_images, map_files, to_array
from fer_keras.errors import FerError, did_you_mean, problem
from fer_keras.inference.faces import DEFAULT_DETECTOR, DETECTORS, Face, crop_faces, find_faces
from fer_keras.inference.predictor import Predictor
from fer_keras.inference.recognizer import crop_rule
from fer_keras.metrics import classification_metrics
from fer_keras.model.crop import CropRule
from fer_keras.validation import check_choice, check_int, must

DEFAULT_BATCH_SIZE = 256


@dataclass
class EvalSet:
    """The files of one evaluation set, labelled by class *name* (models differ in order).

    ``boxes[i]`` is the detected face to crop from ``paths[i]`` (``None``: the whole image);
    ``boxes`` itself is ``None`` when faces were not detected. Files the detector could
    not read are left out of ``paths`` and listed in ``failures``.
    """

    name: str
    path: Path
    split: str | None
    folder_classes: tuple[str, ...]
    paths: list[str]
    labels: list[str]
    boxes: list[Face | None] | None = None
    failures: list[tuple[str, str]] | None = None
    detect_seconds: float = 0.0
    detector: str | None = None  # which detector found ``boxes``

    def __len__(self) -> int:
        return len(self.paths)


def _locate(path: Path, split: str) -> tuple[Path, str | None, str]:
    """``(folder holding the class folders, split or None, dataset name)`` of ``path``."""
    if not path.is_dir():
        raise FerError(problem(str(path), "dataset folder not found"))
    if (path / split).is_dir():
        return path / split, split, path.name if split == "test" else f"{path.name}-{split}"
    present = [s for s in SPLITS if (path / s).is_dir()]
    if present:
        raise FerError(problem(str(path), f"no '{split}' split folder (found {', '.join(present)}; use --split)"))
    if path.name in SPLITS:  # a split folder passed directly: name it after its dataset
        parent = path.resolve().parent.name
        return path, path.name, parent if path.name == "test" else f"{parent}-{path.name}"
    return path, None, path.name


def load_eval_set(
    path: str | os.PathLike,
    split: str = "test",
    detect_faces: bool = False,
    workers: int | None = None,
    progress=None,
    detector: str = DEFAULT_DETECTOR,
) -> EvalSet:
    """Scan an evaluation set; with ``detect_faces`` also find the largest face of each image.

    Args:
        path: a dataset root with a ``split`` folder, or a flat ``<emotion>/`` folder.
        split: which split of a dataset root (``test`` by default).
        detect_faces: run the face detector of ``fer-predict`` on every image.
        workers: detection threads (default: 2 per CPU, at most 8).
        progress: an optional tqdm bar advanced once per detected image.
        detector: which detector (one of ``DETECTORS``; default ``ssd``).

    Raises:
        FerError: missing folder, no class folders, or no images.

    Example:
        >>> data = load_eval_set("/data/fer2013")  # doctest: +SKIP
        >>> data.name, data.split, len(data)  # doctest: +SKIP
        ('fer2013', 'test', 3589)
    """
    check_choice("split", split, SPLITS)
    check_choice("detector", detector, DETECTORS)
    root = Path(path)
    folder, split_used, name = _locate(root, split)
    classes = list_classes(folder)
    if not classes:
        raise FerError(problem(str(folder), "no class folders (expected <emotion>/ folders of images)"))
    files = scan_split_lenient(folder, None, classes)
    data = EvalSet(name, root, split_used, classes, list(files.paths), [classes[i] for i in files.labels], failures=[])
    if detect_faces:
        detect_set_faces(data, workers, progress, detector)
    return data


def detect_set_faces(
    data: EvalSet, workers: int | None = None, progress=None, detector: str = DEFAULT_DETECTOR
) -> EvalSet:
    """Find the largest face of every image of ``data`` (in place; see :func:`load_eval_set`)."""
    check_choice("detector", detector, DETECTORS)
    start = time.perf_counter()
    boxes, data.failures = _detect_all(data.paths, workers, progress, detector)
    failed = {path for path, _ in data.failures}
    keep = [i for i, path in enumerate(data.paths) if path not in failed]
    data.paths, data.labels = [data.paths[i] for i in keep], [data.labels[i] for i in keep]
    data.boxes = [boxes[i] for i in keep]
    data.detect_seconds = time.perf_counter() - start
    data.detector = detector
    return data


def _open(path: str) -> Image.Image:
    with Image.open(path) as img:
        img.load()
        return ImageOps.exif_transpose(img)


def _detect_all(paths: Sequence[str], workers: int | None, progress, detector: str) -> tuple[list[Face | None], list]:
    boxes: list[Face | None] = [None] * len(paths)

    def work(i: int) -> None:
        faces = find_faces(_open(paths[i]), detect=True, detector=detector)  # largest first
        boxes[i] = faces[0] if faces[0].detected else None

    return boxes, map_files(paths, work, workers, progress)


def _load_crops(
    paths: Sequence[str], boxes: Sequence[Face | None], size: tuple[int, int], color_mode: str, rule: CropRule, progress
) -> tuple[np.ndarray, list[int], list[tuple[str, str]]]:
    """Like :func:`fer_keras.data.images.load_images`, cropping ``boxes[i]`` (by ``rule``) first."""
    out = np.empty((len(paths), *size, COLOR_MODES[color_mode]), dtype=np.uint8)
    ok = np.zeros(len(paths), dtype=bool)

    def work(i: int) -> None:
        img = _open(paths[i])
        if boxes[i] is not None:
            img = crop_faces(img, [boxes[i]], rule)[0]
        out[i] = to_array(img, size, color_mode)
        ok[i] = True

    failures = map_files(paths, work, None, progress)
    idx = np.flatnonzero(ok)
    return out[idx], idx.tolist(), failures


def check_classes(data: EvalSet, class_names: Sequence[str], model: str) -> list[str]:
    """The classes ``model`` knows that ``data`` has no image of (raises if ``data`` has unknown ones).

    Raises:
        FerError: a class folder of ``data`` is not one of ``class_names`` (named, with a hint).
    """
    unknown = [c for c in data.folder_classes if c not in class_names]
    if unknown:
        hints = "".join(did_you_mean(c, class_names) for c in unknown[:1])
        raise FerError(
            problem(
                str(data.path),
                f"class folder(s) {', '.join(unknown)} unknown to {model} "
                f"(its classes: {', '.join(class_names)}){hints}",
            )
        )
    present = set(data.labels)
    return [c for c in class_names if c not in present]


def evaluate(
    predictor: Predictor,
    data: EvalSet,
    batch_size: int = DEFAULT_BATCH_SIZE,
    margin: float | None = None,
    progress=None,
) -> dict[str, Any]:
    """Run ``predictor`` on ``data`` and compute every metric (see :func:`fer_keras.metrics.classification_metrics`).

    Args:
        predictor: the model to evaluate; its ``class_names`` order is the result's.
        data: from :func:`load_eval_set` (the same set can serve several models).
        batch_size: images per ``predictor.predict`` call (one progress step each).
        margin: the widening of detected faces before cropping (default: the model's crop rule).
        progress: optional ``callable(total, desc)`` returning a tqdm-like bar.

    Returns:
        A JSON-ready result: dataset, dataset_path, split, n, model, class_names,
        missing_classes, accuracy, macro_f1, per_class_recall, confusion_matrix,
        classification_report, faces (with detection), failures and timings.

    Raises:
        FerError: a class folder unknown to the model, or no readable image.

    Example:
        >>> model = Predictor.load("models/best_model")  # doctest: +SKIP
        >>> result = evaluate(model, load_eval_set("/data/fer2013"))  # doctest: +SKIP
        >>> round(result["accuracy"], 3), result["missing_classes"]  # doctest: +SKIP
        (0.7, [])
    """
    check_int("batch_size", batch_size, minimum=1)
    rule = crop_rule(predictor, margin)
    names = tuple(predictor.class_names)
    size, color_mode = predictor.info.input_size, predictor.info.color_mode
    check_classes(data, names, predictor.name)
    bar = progress(len(data), f"decode {data.name}") if progress else None
    start = time.perf_counter()
    try:
        if data.boxes is None:
            images, ok, failures = load_images(data.paths, size, color_mode, progress=bar)
        else:
            images, ok, failures = _load_crops(data.paths, data.boxes, size, color_mode, rule, bar)
    finally:
        if bar is not None:
            bar.close()
    decode_seconds = time.perf_counter() - start
    failures = sorted(failures + (data.failures or []))
    if not ok:
        raise FerError(
            problem(str(data.path), f"none of the {len(data) + len(data.failures or [])} images could be read")
        )

    bar = progress(len(images), f"predict {predictor.name}") if progress else None
    start = time.perf_counter()
    try:
        probs = []
        for i in range(0, len(images), batch_size):
            probs.append(predictor.predict(images[i : i + batch_size]))
            if bar is not None:
                bar.update(len(probs[-1]))
    finally:
        if bar is not None:
            bar.close()
    predict_seconds = time.perf_counter() - start
    probs = np.concatenate(probs)
    if probs.shape != (len(images), len(names)):
        raise FerError(
            problem(predictor.name, must("predictions", f"of shape ({len(images)}, {len(names)})", probs.shape))
        )

    index = {name: i for i, name in enumerate(names)}
    y_true = [index[data.labels[i]] for i in ok]
    metrics = classification_metrics(y_true, probs.argmax(axis=1), names)
    result: dict[str, Any] = {
        "dataset": data.name,
        "dataset_path": str(data.path),
        "split": data.split,
        "model": predictor.name,
        "model_path": None if predictor.info.path is None else str(predictor.info.path),
        **metrics,
        "faces": _face_counts(data, ok, rule),
        "failures": [{"path": p, "reason": r} for p, r in failures],
        "timings": {
            "detect_s": round(data.detect_seconds, 3),
            "decode_s": round(decode_seconds, 3),
            "predict_s": round(predict_seconds, 3),
            "images_per_s": round(len(images) / predict_seconds, 1) if predict_seconds > 0 else None,
        },
        "evaluated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if metrics["missing_classes"]:
        result["note"] = (
            f"missing classes ({', '.join(metrics['missing_classes'])}) have null recall; "
            f"macro_f1 is over the {len(metrics['macro_f1_classes'])} present classes"
        )
    return result


def _face_counts(data: EvalSet, ok: Sequence[int], rule: CropRule) -> dict[str, Any] | None:
    if data.boxes is None:
        return None
    found = sum(data.boxes[i] is not None for i in ok)
    return {
        "detected": int(found),
        "whole_image": int(len(ok) - found),
        "detector": data.detector,
        "crop": rule.to_dict(),
    }


def result_filename(dataset: str, peer: str | None = None) -> str:
    """``<dataset>.json``, or ``<dataset>__peer-<peer>.json`` for a peer model's result."""
    return f"{dataset}__peer-{peer}.json" if peer else f"{dataset}.json"


def write_result(result: dict[str, Any], out_dir: str | os.PathLike, peer: str | None = None) -> Path:
    """Write ``result`` atomically to ``<out_dir>/<dataset>[__peer-<peer>].json``; return the path."""
    path = Path(out_dir) / result_filename(result["dataset"], peer)
    write_json_atomic(path, result)
    return path


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """A compact plain-text table: one row per result, recall per class in percent.

    Example:
        >>> print(format_table([{"dataset": "d", "model": "m", "n": 2, "accuracy": 0.5, "macro_f1": 0.4,
        ...                      "class_names": ["a", "b"], "per_class_recall": {"a": 1.0, "b": None}}]))
        dataset  model      n    acc  macro-F1      a      b
        d        m          2  50.0%     40.0%   100%      -
    """
    if not results:
        return ""
    classes: list[str] = []
    for r in results:
        classes += [c for c in r["class_names"] if c not in classes]
    wd = max(7, *(len(r["dataset"]) for r in results))
    wm = max(5, *(len(r["model"]) for r in results))
    cols = [max(5, len(c[:8])) for c in classes]
    head = f"{'dataset':<{wd}}  {'model':<{wm}}  {'n':>5}  {'acc':>5}  {'macro-F1':>8}"
    lines = [head + "".join(f"  {c[:8]:>{w}}" for c, w in zip(classes, cols))]
    for r in results:
        line = f"{r['dataset']:<{wd}}  {r['model']:<{wm}}  {r['n']:>5}  {r['accuracy']:>5.1%}  {r['macro_f1']:>8.1%}"
        for c, w in zip(classes, cols):
            value = r["per_class_recall"].get(c)
            line += f"  {('-' if value is None else f'{value:.0%}'):>{w}}"
        lines.append(line)
    return "\n".join(lines)
