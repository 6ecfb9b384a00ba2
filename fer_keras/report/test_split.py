"""The best model on the ``test`` split: predictions and every metric the report shows.

The ``test`` split is read here, once, for reporting only (selection uses ``valid``).
Labels always follow the model's recorded ``class_names`` order, never a sorted
one: index ``i`` of a probability vector means ``class_names[i]``. Accuracy, macro-F1,
recall and the confusion counts are :func:`fer_keras.metrics.classification_metrics`'s
(the numbers ``fer-eval`` gives); what needs probabilities (ROC, PR, calibration) is here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_keras.errors import FerError
from fer_keras.metrics import classification_metrics
from fer_keras.validation import check_int, must

ECE_BINS = 15
GALLERY_SIZE = 12


@dataclass
class Predictions:
    """Model outputs on one split, aligned with the files that decoded."""

    class_names: tuple[str, ...]
    y_true: np.ndarray
    y_prob: np.ndarray
    paths: list[str]
    images: np.ndarray = field(repr=False)
    failures: list[tuple[str, str]]


@dataclass
class Evaluation:
    """``metrics`` is JSON-ready (goes to summary.json); ``curves`` feed the plots."""

    metrics: dict[str, Any]
    curves: dict[str, Any] = field(repr=False)
    mistakes: list[dict[str, Any]]


def predict_split(
    model_dir: str | os.PathLike, data_dir: str | os.PathLike, split: str = "test", progress: bool = False
) -> Predictions:
    """Run the model of ``model_dir`` on ``<data_dir>/<split>`` (raw pixels, batched).

    Class folders missing from the split are allowed (an evaluation set may lack a class).

    Raises:
        FerError: invalid model folder, missing split, or no readable image.

    Example:
        >>> preds = predict_split("models/best_model", "data/demo")  # doctest: +SKIP
        >>> preds.y_prob.shape  # doctest: +SKIP
        (105, 7)
    """
    from tqdm.auto import tqdm

    from fer_keras.data.folders import scan_split_lenient
    from fer_keras.data.images import load_images
    from fer_keras.inference.predictor import Predictor
    from fer_keras.model.model_folder import read_model_info

    info = read_model_info(model_dir)  # cheap: a bad folder fails before any decoding
    files = scan_split_lenient(data_dir, split, info.class_names)
    with tqdm(total=len(files), desc=f"decode {split}", disable=not progress, leave=False) as bar:
        images, ok, failures = load_images(files.paths, info.input_size, info.color_mode, progress=bar)
    if len(ok) == 0:
        raise FerError(f"{Path(data_dir) / split}: none of the {len(files)} images could be decoded")
    predictor = Predictor.load(model_dir, runtime="keras")
    y_prob = predictor.predict(images)
    labels = np.asarray(files.labels)[ok]
    return Predictions(info.class_names, labels, y_prob, [files.paths[i] for i in ok], images, failures)


def evaluate_predictions(
    y_true, y_prob, class_names: tuple[str, ...] | list[str], n_bins: int = ECE_BINS, gallery: int = GALLERY_SIZE
) -> Evaluation:
    """Confusion matrices, classification report, ROC/PR curves and calibration.

    A class without test images is *missing* (as in ``fer-eval``): its classification-report
    row has support 0 and no precision, recall or F1, and macro-F1 is over the present classes.

    Args:
        y_true: integer labels, indices into ``class_names``.
        y_prob: ``(N, len(class_names))`` probabilities in the same class order.
        class_names: the model's class order (kept as given: never sorted).
        n_bins: equal-width confidence bins of the reliability diagram / ECE.
        gallery: how many of the most confident mistakes to keep.

    Raises:
        FerError: shapes or labels that do not fit ``class_names``.

    Example:
        >>> ev = evaluate_predictions([0, 1], [[0.9, 0.1], [0.3, 0.7]], ["surprise", "angry"])
        >>> ev.metrics["confusion_matrix"]["counts"]
        [[1, 0], [0, 1]]
    """
    names = list(class_names)
    y_true = np.asarray(y_true, dtype=int)
    y_prob = np.asarray(y_prob, dtype=float)
    k = len(names)
    check_int("n_bins", n_bins, minimum=1)
    if y_prob.ndim != 2 or y_prob.shape != (len(y_true), k):
        raise FerError(must("y_prob", f"of shape ({len(y_true)}, {k})", y_prob.shape))
    scores = classification_metrics(y_true, y_prob.argmax(axis=1), names)  # also checks the labels
    counts = np.asarray(scores["confusion_matrix"])
    row_sums = counts.sum(axis=1, keepdims=True)
    normalized = np.divide(counts, row_sums, out=np.zeros(counts.shape, dtype=float), where=row_sums > 0)
    report = scores["classification_report"]
    roc, pr, auc_metrics = _curves(y_true, y_prob, names)
    bins, ece = calibration(y_true, y_prob, n_bins)
    metrics = {
        "n": scores["n"],
        "class_names": names,
        "missing_classes": scores["missing_classes"],
        "accuracy": scores["accuracy"],
        "macro_f1": scores["macro_f1"],
        "weighted_f1": float(report["weighted avg"]["f1-score"]),
        "per_class_recall": scores["per_class_recall"],
        "confusion_matrix": {
            "labels": names,
            "rows": "true class",
            "columns": "predicted class",
            "counts": counts.tolist(),
            "normalized": np.round(normalized, 6).tolist(),
        },
        "classification_report": _clean_report(report, names),
        **auc_metrics,
        "ece": ece,
        "ece_bins": n_bins,
        "calibration_bins": bins,
    }
    return Evaluation(
        metrics,
        {"roc": roc, "pr": pr, "counts": counts, "normalized": normalized},
        confident_mistakes(y_true, y_prob, names, gallery),
    )


def _clean_report(report: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The classification report in the model's class order, a missing class as an empty row."""
    out = {}
    for key in [*names, "macro avg", "weighted avg"]:
        row = report.get(key)
        if row is None:  # a missing class: left out of the scores, as in fer-eval
            out[key] = {"precision": None, "recall": None, "f1-score": None, "support": 0}
        else:
            scores = {m: float(row[m]) for m in ("precision", "recall", "f1-score")}
            out[key] = scores | {"support": int(row["support"])}
    return out


def _curves(y_true: np.ndarray, y_prob: np.ndarray, names: list[str]) -> tuple[dict, dict, dict]:
    """One-vs-rest ROC and PR curves; a class without positives (or negatives) has no curve."""
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    onehot = np.eye(len(names), dtype=int)[y_true]
    roc: dict[str, Any] = {"per_class": {}}
    pr: dict[str, Any] = {"per_class": {}}
    aucs: dict[str, float | None] = {}
    aps: dict[str, float | None] = {}
    for i, name in enumerate(names):
        positives = int(onehot[:, i].sum())
        if positives == 0 or positives == len(y_true):
            aucs[name] = aps[name] = None
            continue
        fpr, tpr, _ = roc_curve(onehot[:, i], y_prob[:, i])
        aucs[name] = float(auc(fpr, tpr))
        roc["per_class"][name] = {"fpr": fpr, "tpr": tpr, "auc": aucs[name]}
        precision, recall, _ = precision_recall_curve(onehot[:, i], y_prob[:, i])
        aps[name] = float(average_precision_score(onehot[:, i], y_prob[:, i]))
        pr["per_class"][name] = {"precision": precision, "recall": recall, "ap": aps[name]}
    micro = macro = micro_ap = None
    if roc["per_class"]:
        fpr, tpr, _ = roc_curve(onehot.ravel(), y_prob.ravel())
        micro = float(auc(fpr, tpr))
        roc["micro"] = {"fpr": fpr, "tpr": tpr, "auc": micro}
        # Macro average: mean TPR of the defined classes on the union of their FPR grids.
        grid = np.unique(np.concatenate([c["fpr"] for c in roc["per_class"].values()]))
        mean_tpr = np.mean([np.interp(grid, c["fpr"], c["tpr"]) for c in roc["per_class"].values()], axis=0)
        macro = float(np.mean([c["auc"] for c in roc["per_class"].values()]))
        roc["macro"] = {"fpr": grid, "tpr": mean_tpr, "auc": macro}
        precision, recall, _ = precision_recall_curve(onehot.ravel(), y_prob.ravel())
        micro_ap = float(average_precision_score(onehot.ravel(), y_prob.ravel()))
        pr["micro"] = {"precision": precision, "recall": recall, "ap": micro_ap}
    metrics = {
        "roc_auc": {"per_class": aucs, "micro": micro, "macro": macro},
        "average_precision": {"per_class": aps, "micro": micro_ap},
    }
    return roc, pr, metrics


def calibration(y_true, y_prob, n_bins: int = ECE_BINS) -> tuple[list[dict[str, Any]], float]:
    """Reliability bins and expected calibration error of the top-class confidence.

    Bins are equal-width on (0, 1]; a prediction of confidence ``c`` falls in bin
    ``ceil(c * n_bins) - 1``. ECE = sum over bins of ``count / N * |accuracy - confidence|``.
    """
    y_true = np.asarray(y_true, dtype=int)
    y_prob = np.asarray(y_prob, dtype=float)
    confidence = y_prob.max(axis=1)
    correct = y_prob.argmax(axis=1) == y_true
    index = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    bins = []
    ece = 0.0
    for b in range(n_bins):
        members = index == b
        count = int(members.sum())
        acc = float(correct[members].mean()) if count else None
        conf = float(confidence[members].mean()) if count else None
        if count:
            ece += count / len(y_true) * abs(acc - conf)
        bins.append(
            {"lower": b / n_bins, "upper": (b + 1) / n_bins, "count": count, "accuracy": acc, "confidence": conf}
        )
    return bins, float(ece)


def confident_mistakes(y_true, y_prob, names: list[str], limit: int = GALLERY_SIZE) -> list[dict[str, Any]]:
    """The wrong predictions with the highest confidence, most confident first."""
    y_true = np.asarray(y_true, dtype=int)
    y_prob = np.asarray(y_prob, dtype=float)
    pred = y_prob.argmax(axis=1)
    wrong = np.flatnonzero(pred != y_true)
    order = wrong[np.argsort(-y_prob[wrong, pred[wrong]], kind="stable")][:limit]
    return [
        {
            "index": int(i),
            "true": names[y_true[i]],
            "predicted": names[pred[i]],
            "confidence": float(y_prob[i, pred[i]]),
            "true_probability": float(y_prob[i, y_true[i]]),
        }
        for i in order
    ]
