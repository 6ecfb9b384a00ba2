"""Classification metrics: the one definition of accuracy, macro-F1, per-class recall and confusion.

Everything that scores predictions against labels calls :func:`classification_metrics`:
``fer-eval`` results, the ``valid_metrics``/``test_metrics`` an export records, and the
report's test-split section; so the same predictions give the same numbers everywhere.

The rule that needs a decision: a class with no true sample is *missing*. Its recall is
``None`` (nothing of it could be missed, so 0 would be a lie) and macro-F1 averages the
present classes only (a missing class would otherwise pull it down by a whole class's
share); its confusion-matrix column still counts the images wrongly predicted as it.
Evaluation sets from other sources (CK+, photos) often lack a class, which is why it matters.

Computed with numpy alone (no scikit-learn: ``fer-eval`` runs in the TensorFlow-free
install); ``classification_report`` has scikit-learn's ``output_dict`` shape and values,
which ``tests/metrics_test.py`` checks against scikit-learn itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fer_keras.errors import FerError
from fer_keras.validation import must

CONFUSION_AXES = "rows = true class, columns = predicted class, both in class_names order"


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class recall, support, confusion matrix and classification report.

    Args:
        y_true: true labels, indices into ``class_names``.
        y_pred: predicted labels, indices into ``class_names``.
        class_names: the model's class order (kept as given, never sorted).

    Returns:
        A JSON-ready dict: ``n``, ``class_names``, ``missing_classes``, ``accuracy``,
        ``macro_f1``, ``macro_f1_classes`` (the present classes it averages),
        ``per_class_recall`` (``None`` for missing classes), ``support``,
        ``confusion_matrix`` (``[true][predicted]`` counts), ``confusion_matrix_axes`` and
        ``classification_report`` (scikit-learn's, over the present classes, so its
        ``macro avg`` agrees with ``macro_f1``).

    Raises:
        FerError: empty or unequal label lists, or a label outside ``class_names``.

    Example:
        >>> m = classification_metrics([0, 0, 1], [0, 1, 1], ["happy", "sad", "fear"])
        >>> m["confusion_matrix"], m["per_class_recall"], m["missing_classes"]
        ([[1, 1, 0], [0, 1, 0], [0, 0, 0]], {'happy': 0.5, 'sad': 1.0, 'fear': None}, ['fear'])
    """
    names = list(class_names)
    k = len(names)
    y_true = np.asarray(y_true, dtype=int).ravel()
    y_pred = np.asarray(y_pred, dtype=int).ravel()
    if len(y_true) == 0 or y_true.shape != y_pred.shape:
        raise FerError(must("y_true, y_pred", "non-empty and of equal length", (len(y_true), len(y_pred))))
    for label, values in (("y_true", y_true), ("y_pred", y_pred)):
        bad = sorted(set(values[(values < 0) | (values >= k)].tolist()))
        if bad:
            raise FerError(must(label, f"class indices in [0, {k - 1}]", bad))

    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    support = matrix.sum(axis=1)
    present = [i for i in range(k) if support[i] > 0]
    report = _classification_report(matrix, present, names, set(y_true.tolist()) | set(y_pred.tolist()))
    return {
        "n": int(len(y_true)),
        "class_names": names,
        "missing_classes": [names[i] for i in range(k) if not support[i]],
        "accuracy": float(np.mean(y_true == y_pred)),
        "macro_f1": report["macro avg"]["f1-score"],
        "macro_f1_classes": [names[i] for i in present],
        "per_class_recall": {names[i]: (float(matrix[i, i] / support[i]) if support[i] else None) for i in range(k)},
        "support": {names[i]: int(support[i]) for i in range(k)},
        "confusion_matrix": matrix.tolist(),
        "confusion_matrix_axes": CONFUSION_AXES,
        "classification_report": report,
    }


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, 0 where the denominator is 0 (scikit-learn's ``zero_division=0``)."""
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _classification_report(matrix: np.ndarray, labels: list[int], names: list[str], seen: set[int]) -> dict[str, Any]:
    """scikit-learn's ``classification_report(labels=labels, output_dict=True, zero_division=0)``
    from a confusion matrix: per class and micro ("accuracy" when ``labels`` covers every
    class ``seen`` in the labels or predictions), macro and weighted averages."""
    tp = np.diag(matrix)[labels].astype(float)
    true = matrix.sum(axis=1)[labels].astype(float)
    pred = matrix.sum(axis=0)[labels].astype(float)
    precision, recall, f1 = _divide(tp, pred), _divide(tp, true), _divide(2 * tp, true + pred)
    report: dict[str, Any] = {}
    for j, i in enumerate(labels):
        report[names[i]] = {
            "precision": float(precision[j]),
            "recall": float(recall[j]),
            "f1-score": float(f1[j]),
            "support": float(true[j]),
        }
    total = float(true.sum())
    micro = [
        _divide(tp.sum(), pred.sum()),
        _divide(tp.sum(), true.sum()),
        _divide(2 * tp.sum(), true.sum() + pred.sum()),
    ]
    weights = true / total if total else np.zeros_like(true)
    averages = {
        "micro": micro,
        "macro": [precision.mean(), recall.mean(), f1.mean()],
        "weighted": [(precision * weights).sum(), (recall * weights).sum(), (f1 * weights).sum()],
    }
    for average, (p, r, f) in averages.items():
        report[f"{average} avg"] = {"precision": float(p), "recall": float(r), "f1-score": float(f), "support": total}
    if seen <= set(labels):
        report["accuracy"] = report.pop("micro avg")["precision"]
    # scikit-learn's key order: classes, then accuracy / micro avg, macro avg, weighted avg.
    order = [names[i] for i in labels] + [k for k in ("accuracy", "micro avg") if k in report]
    return {key: report[key] for key in [*order, "macro avg", "weighted avg"]}
