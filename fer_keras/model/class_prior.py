"""Class-prior correction (logit adjustment): what ``inference.class_bias`` means and how it is chosen.

FER2013's classes are far from balanced (``disgust`` is 1.3 % of train, ``happy`` 26 %), so a
model trained on it under-predicts the rare classes: high accuracy, weak recall (and
macro-F1) on ``disgust`` and ``fear``. Post-hoc logit adjustment (Menon et al., "Long-tail
learning via logit adjustment", ICLR 2021) subtracts ``tau * log(train prior)`` from the
model's log-probabilities: ``tau = 0`` is the model as trained (accuracy-optimal under the
training prior), ``tau = 1`` optimises balanced error. A model folder stores the result as
``inference.class_bias`` (one additive log-space offset per class, mean 0), so inference
needs neither the training counts nor ``tau``; the metadata's top-level ``class_prior``
record keeps how it was derived. :func:`apply_class_bias` is the one place the bias is applied (after test-time
augmentation and ensemble averaging, on the final probabilities).

``tau`` is chosen on ``valid`` (:func:`choose_tau`): the grid :data:`TAUS`, scored by the
mean of accuracy and macro-F1, the two numbers the model is judged on; ties go to the
smaller ``tau`` (the smaller change). Numpy only: no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fer_keras.errors import FerError
from fer_keras.validation import check_float, is_number, must

TAUS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))
OBJECTIVE = "mean of accuracy and macro-F1 on valid"
_SETTING = '"auto" or a tau in [0, 1]'  # what an export's class_prior setting may be
_EPS = 1e-12  # floor for log(probability): a class the model gives exactly 0 stays last, not -inf


def class_bias_from_counts(counts: Sequence[int], tau: float) -> list[float]:
    """The additive log-space bias ``-tau * log(prior)`` for training class counts, centred on 0.

    Args:
        counts: training images per class, in the model's class order (all > 0).
        tau: the correction's strength, in [0, 1].

    Raises:
        FerError: a count that is not a positive integer, or ``tau`` out of range.

    Example:
        >>> class_bias_from_counts([300, 100], 1.0)  # doctest: +ELLIPSIS
        [-0.549..., 0.549...]
    """
    check_float("tau", tau, 0.0, 1.0)
    values = np.asarray(counts)
    if values.ndim != 1 or len(values) < 2 or not all(isinstance(c, (int, np.integer)) and c > 0 for c in counts):
        raise FerError(must("counts", "at least 2 positive integers (training images per class)", list(counts)))
    log_prior = np.log(values / values.sum())
    bias = -tau * (log_prior - log_prior.mean())
    return [round(float(b), 6) + 0.0 for b in bias]  # + 0.0: no "-0.0" in metadata


def apply_class_bias(probs: np.ndarray, bias: Sequence[float]) -> np.ndarray:
    """``softmax(log(probs) + bias)`` row-wise: probabilities after the correction (``()``: unchanged).

    Example:
        >>> apply_class_bias(np.array([[0.6, 0.4]]), [0.0, np.log(2.0)]).round(3).tolist()
        [[0.429, 0.571]]
    """
    if not len(bias):
        return probs
    logits = np.log(np.maximum(np.asarray(probs, dtype=np.float64), _EPS)) + np.asarray(bias, dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def class_bias_problems(value: Any, num_classes: int) -> list[str]:
    """Why ``inference.class_bias`` is invalid for a model of ``num_classes`` classes (empty: valid)."""
    if value is None:
        return []
    if not (isinstance(value, list) and len(value) == num_classes and all(is_number(v) for v in value)):
        return [must("inference.class_bias", f"a list of {num_classes} finite numbers (one per class)", value)]
    return []


def choose_tau(
    labels: np.ndarray,
    probs: np.ndarray,
    counts: Sequence[int],
    class_names: Sequence[str],
    taus: Sequence[float] = TAUS,
) -> dict[str, Any]:
    """Pick ``tau`` on a labelled split (``valid``) by :data:`OBJECTIVE`; the record kept in metadata.

    Args:
        labels: true labels of the split.
        probs: the model's probabilities on it, as it runs (test-time augmentation applied).
        counts: training images per class (the prior the model learnt).
        class_names: the model's class order.
        taus: the candidates.

    Returns:
        ``{"tau", "class_bias", "train_counts", "objective", "candidates"}``: ``candidates``
        lists each ``tau``'s accuracy and macro-F1, so the choice is on record.

    Example:
        >>> record = choose_tau(np.array([0, 1, 1]), np.array([[0.6, 0.4]] * 3), [300, 100], ["a", "b"])
        >>> record["tau"], record["candidates"][0]["accuracy"]
        (1.0, 0.3333)
    """
    names = list(class_names)
    candidates = _candidates(labels, probs, counts, names, taus)
    best = max(candidates, key=lambda c: (c["accuracy"] + c["macro_f1"], -c["tau"]))
    return _record(best["tau"], counts, names, OBJECTIVE, candidates)


def _candidates(labels, probs, counts, names: list[str], taus: Sequence[float]) -> list[dict[str, float]]:
    """Each ``tau``'s accuracy and macro-F1 on the labelled split."""
    from fer_keras.metrics import classification_metrics

    out = []
    for tau in taus:
        scores = classification_metrics(
            labels, apply_class_bias(probs, class_bias_from_counts(counts, tau)).argmax(1), names
        )
        out.append({"tau": tau, "accuracy": round(scores["accuracy"], 4), "macro_f1": round(scores["macro_f1"], 4)})
    return out


def _record(tau: float, counts, names: list[str], objective: str, candidates: list) -> dict[str, Any]:
    return {
        "tau": tau,
        "class_bias": class_bias_from_counts(counts, tau),
        "train_counts": dict(zip(names, (int(c) for c in counts))),
        "objective": objective,
        "candidates": candidates,
    }


def describe_record(record: Mapping[str, Any]) -> str:
    """One line for a CLI: the chosen ``tau`` and its valid scores."""
    chosen = next(c for c in record["candidates"] if c["tau"] == record["tau"])
    plain = record["candidates"][0]
    return (
        f"class-prior correction tau {record['tau']:g}: valid accuracy {chosen['accuracy']:.2%}, "
        f"macro-F1 {chosen['macro_f1']:.2%} (tau 0: {plain['accuracy']:.2%}, {plain['macro_f1']:.2%})"
    )


def check_class_prior(value: Any) -> str | float | None:
    """Validate an export's ``class_prior`` setting: ``None`` (off), ``"auto"`` or a ``tau`` in [0, 1].

    Example:
        >>> check_class_prior("auto"), check_class_prior(0.4), check_class_prior(None)
        ('auto', 0.4, None)
    """
    if value is None or value == "auto":
        return value
    if not is_number(value) or not 0.0 <= value <= 1.0:
        raise FerError(must("class_prior", _SETTING, value))
    return float(value)


def class_prior_record(
    class_prior: str | float, labels: np.ndarray, probs: np.ndarray, counts: Sequence[int], class_names: Sequence[str]
) -> dict[str, Any]:
    """The metadata record for a checked ``class_prior`` setting: :func:`choose_tau` over
    :data:`TAUS` for ``"auto"``, else the given ``tau`` (scored beside ``tau = 0``)."""
    if class_prior == "auto":
        return choose_tau(labels, probs, counts, class_names)
    tau, names = float(class_prior), list(class_names)
    return _record(tau, counts, names, "given", _candidates(labels, probs, counts, names, sorted({0.0, tau})))


def class_prior_from_text(text: str | None) -> str | float | None:
    """A command line's ``--class-prior`` value: ``auto`` or a ``tau`` in [0, 1] (``None``: off).

    Example:
        >>> class_prior_from_text("0.3"), class_prior_from_text("auto")
        (0.3, 'auto')
    """
    if text is None or text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 <= value <= 1.0:  # also refuses "nan"
        raise FerError(must("--class-prior", _SETTING, text))
    return value
