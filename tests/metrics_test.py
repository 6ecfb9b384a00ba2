"""fer_keras.metrics: exact metrics on a known confusion, the missing-class rule, bad labels."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sklearn.metrics import f1_score

from fer_keras.errors import FerError
from fer_keras.metrics import classification_metrics
from tests.model_fixtures import REPO_ROOT, subprocess_env


def test_metrics_on_a_known_confusion():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    m = classification_metrics(y_true, y_pred, ["happy", "sad", "fear", "angry"])
    assert m["confusion_matrix"] == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert m["per_class_recall"] == {"happy": 2 / 3, "sad": 0.5, "fear": 1.0, "angry": None}
    assert m["support"] == {"happy": 3, "sad": 2, "fear": 1, "angry": 0}
    assert m["missing_classes"] == ["angry"]
    assert m["accuracy"] == pytest.approx(4 / 6) and m["n"] == 6
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, labels=[0, 1, 2], average="macro"))
    assert m["macro_f1_classes"] == ["happy", "sad", "fear"]
    assert set(m["classification_report"]) >= {"happy", "sad", "fear", "macro avg"}
    assert "angry" not in m["classification_report"]
    assert m["classification_report"]["macro avg"]["f1-score"] == pytest.approx(m["macro_f1"])
    json.dumps(m)  # JSON-ready: no numpy scalars left


def test_a_missing_class_that_is_predicted_counts_in_its_column_only():
    # 'neutral' has no true sample but is predicted once: its column shows it, its recall is None,
    # and macro-F1 is over the two present classes (a 0 for 'neutral' would pull it down by a third).
    m = classification_metrics([0, 0, 1], [0, 2, 1], ["happy", "sad", "neutral"])
    assert m["confusion_matrix"] == [[1, 0, 1], [0, 1, 0], [0, 0, 0]]
    assert m["per_class_recall"]["neutral"] is None
    assert m["macro_f1"] == pytest.approx(f1_score([0, 0, 1], [0, 2, 1], labels=[0, 1], average="macro"))
    assert m["macro_f1"] > f1_score([0, 0, 1], [0, 2, 1], labels=[0, 1, 2], average="macro", zero_division=0)


def test_the_class_order_is_kept():
    m = classification_metrics([1, 1, 0], [1, 0, 0], ["surprise", "angry"])
    assert m["class_names"] == ["surprise", "angry"]
    assert m["confusion_matrix"] == [[1, 0], [1, 1]]
    assert list(m["per_class_recall"]) == ["surprise", "angry"]


def test_bad_labels_are_user_errors():
    with pytest.raises(FerError, match=r"'y_pred' must be class indices in \[0, 1\]; got \[5\]"):
        classification_metrics([0, 1], [0, 5], ["a", "b"])
    with pytest.raises(FerError, match=r"'y_true' must be class indices in \[0, 1\]; got \[-1\]"):
        classification_metrics([-1, 1], [0, 1], ["a", "b"])
    with pytest.raises(FerError, match="non-empty and of equal length"):
        classification_metrics([], [], ["a", "b"])
    with pytest.raises(FerError, match="non-empty and of equal length"):
        classification_metrics([0, 1], [0], ["a", "b"])


def test_importing_it_stays_light():
    code = "import sys, fer_keras.metrics; sys.exit(1 if 'sklearn' in sys.modules else 0)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=subprocess_env(), timeout=60)
    assert done.returncode == 0


def test_numpy_metrics_equal_scikit_learns_on_random_labels():
    """fer_keras.metrics has no scikit-learn (the TensorFlow-free install); its numbers are scikit-learn's."""
    import numpy as np
    from sklearn.metrics import classification_report, confusion_matrix

    rng = np.random.default_rng(0)
    names = list("abcdefg")
    for _ in range(200):
        n = int(rng.integers(1, 40))  # few labels and few classes: missing and predicted-only classes happen
        y_true = rng.integers(0, rng.integers(1, 8), n)
        y_pred = rng.integers(0, rng.integers(1, 8), n)
        m = classification_metrics(y_true, y_pred, names)
        present = sorted(set(y_true.tolist()))
        expected = classification_report(
            y_true, y_pred, labels=present, target_names=[names[i] for i in present], output_dict=True, zero_division=0
        )
        assert list(m["classification_report"]) == list(expected)
        for key, value in expected.items():
            assert m["classification_report"][key] == pytest.approx(value, abs=1e-12), key
        expected_f1 = f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
        assert m["macro_f1"] == pytest.approx(expected_f1, abs=1e-12)
        assert m["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=list(range(7))).tolist()
