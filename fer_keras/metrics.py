"""Classification metrics: the one definition of accuracy, macro-F1, per-class recall and confusion.

Everything that scores predictions against labels calls :func:`classification_metrics`:
``fer-eval`` results, the ``valid_metrics``/``test_metrics`` an export records, and the
report's test-split section; so the same predictions give the same numbers everywhere.

The rule that needs a decision: a class with no true sample is *missing*. Its recall is
``None`` (nothing of it could be missed, so 0 would be a lie) and macro-F1 averages the
present classes only (a missing class would otherwise pull it down by a whole class's
share); its confusion-matrix column still counts the images wrongly predicted as it.
Evaluation sets from other sources (CK+, photos) often lack a class, which is why it matters.

scikit-learn is imported when a function runs, so importing this module stays cheap.
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

    from sklearn.metrics import classification_report, confusion_matrix, f1_score

    matrix = confusion_matrix(y_true, y_pred, labels=list(range(k)))
    support = matrix.sum(axis=1)
    present = [i for i in range(k) if support[i] > 0]
    report = classification_report(
        y_true,
        y_pred,
        labels=present,
        target_names=[names[i] for i in present],
        output_dict=True,
        zero_division=0,
    )
    return {
        "n": int(len(y_true)),
        "class_names": names,
        "missing_classes": [names[i] for i in range(k) if not support[i]],
        "accuracy": float(np.mean(y_true == y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "macro_f1_classes": [names[i] for i in present],
        "per_class_recall": {names[i]: (float(matrix[i, i] / support[i]) if support[i] else None) for i in range(k)},
        "support": {names[i]: int(support[i]) for i in range(k)},
        "confusion_matrix": matrix.tolist(),
        "confusion_matrix_axes": CONFUSION_AXES,
        "classification_report": _plain(report),
    }


def _plain(value: Any) -> Any:
    """scikit-learn's report with numpy scalars turned into JSON numbers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value.item() if hasattr(value, "item") else value
