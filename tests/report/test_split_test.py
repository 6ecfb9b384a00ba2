"""The best-model-on-test section: metrics, calibration, and the model's own class order."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from fer_keras.errors import FerError
from fer_keras.report.synthetic import class_centres, write_brightness_model, write_grey_images
from fer_keras.report.test_split import calibration, confident_mistakes, evaluate_predictions

# Deliberately not alphabetical: a report that sorts class names would mislabel every row.
ORDER = ["surprise", "angry", "happy"]


def test_confusion_matrix_follows_given_class_order():
    y_true = [0, 0, 1, 2, 2, 2]
    y_prob = np.eye(3)[[0, 2, 1, 2, 2, 1]] * 0.8 + 0.2 / 3
    ev = evaluate_predictions(y_true, y_prob, ORDER)
    cm = ev.metrics["confusion_matrix"]
    assert cm["labels"] == ORDER
    assert cm["counts"] == [[1, 0, 1], [0, 1, 0], [0, 1, 2]]
    assert cm["normalized"][0] == [0.5, 0.0, 0.5]
    assert list(ev.metrics["classification_report"])[:3] == ORDER
    assert ev.metrics["classification_report"]["happy"]["support"] == 3
    assert ev.metrics["accuracy"] == pytest.approx(4 / 6)
    assert ev.metrics["macro_f1"] == pytest.approx(f1_score(y_true, np.argmax(y_prob, 1), average="macro"))


def test_auc_and_average_precision_match_sklearn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, 200)
    logits = rng.normal(size=(200, 4)) + 2 * np.eye(4)[y_true]
    y_prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    m = evaluate_predictions(y_true, y_prob, ["d", "c", "b", "a"]).metrics
    onehot = np.eye(4)[y_true]
    for i, name in enumerate(["d", "c", "b", "a"]):
        assert m["roc_auc"]["per_class"][name] == pytest.approx(roc_auc_score(onehot[:, i], y_prob[:, i]))
        assert m["average_precision"]["per_class"][name] == pytest.approx(
            average_precision_score(onehot[:, i], y_prob[:, i])
        )
    assert m["roc_auc"]["macro"] == pytest.approx(roc_auc_score(y_true, y_prob, multi_class="ovr", average="macro"))
    assert m["roc_auc"]["micro"] == pytest.approx(roc_auc_score(onehot, y_prob, average="micro"))


def test_class_absent_from_test_split_has_no_auc_and_no_recall():
    y_prob = [[0.9, 0.05, 0.05], [0.4, 0.5, 0.1], [0.2, 0.7, 0.1]]
    m = evaluate_predictions([0, 0, 1], y_prob, ORDER).metrics
    assert m["roc_auc"]["per_class"]["happy"] is None
    assert m["roc_auc"]["macro"] == pytest.approx(np.mean([m["roc_auc"]["per_class"][c] for c in ORDER[:2]]))
    # The missing-class rule of fer-eval (fer_keras.metrics): no recall, left out of macro-F1.
    assert m["classification_report"]["happy"] == {"precision": None, "recall": None, "f1-score": None, "support": 0}
    assert m["missing_classes"] == ["happy"] and m["per_class_recall"]["happy"] is None
    assert m["macro_f1"] == pytest.approx(f1_score([0, 0, 1], [0, 1, 1], labels=[0, 1], average="macro"))
    assert m["classification_report"]["macro avg"]["f1-score"] == pytest.approx(m["macro_f1"])


def test_expected_calibration_error_by_hand():
    # Confidences 0.95 (right), 0.95 (wrong), 0.55 (right), 0.35 (right) with 15 bins.
    y_prob = np.array([[0.95, 0.05, 0.0], [0.95, 0.05, 0.0], [0.55, 0.45, 0.0], [0.35, 0.33, 0.32]])
    y_true = [0, 1, 0, 0]
    bins, ece = calibration(y_true, y_prob, 15)
    assert len(bins) == 15 and sum(b["count"] for b in bins) == 4
    assert bins[14]["count"] == 2 and bins[14]["accuracy"] == 0.5  # (14/15, 1]
    assert bins[8]["count"] == 1  # 0.55 in (8/15, 9/15]
    assert bins[5]["count"] == 1  # 0.35 in (5/15, 6/15]
    expected = 2 / 4 * abs(0.5 - 0.95) + 1 / 4 * abs(1 - 0.55) + 1 / 4 * abs(1 - 0.35)
    assert ece == pytest.approx(expected)


def test_confident_mistakes_most_confident_first():
    y_prob = np.array([[0.6, 0.4, 0.0], [0.1, 0.9, 0.0], [0.2, 0.1, 0.7], [0.0, 0.99, 0.01]])
    mistakes = confident_mistakes([0, 0, 0, 2], y_prob, ORDER)
    assert [m["index"] for m in mistakes] == [3, 1, 2]
    assert mistakes[0]["true"] == "happy" and mistakes[0]["predicted"] == "angry"
    assert mistakes[0]["confidence"] == 0.99


def test_bad_shapes_are_user_errors():
    with pytest.raises(FerError, match="'y_prob' must be of shape"):
        evaluate_predictions([0, 1], [[1.0, 0.0, 0.0]], ORDER)
    with pytest.raises(FerError, match=r"'y_true' must be class indices in \[0, 2\]; got \[5\]"):
        evaluate_predictions([0, 5], np.full((2, 3), 1 / 3), ORDER)


@pytest.fixture(scope="module")
def brightness_setup(tmp_path_factory):
    """A keras model folder with class order ORDER, and a test split whose predictions are known."""
    root = tmp_path_factory.mktemp("eval")
    model = write_brightness_model(root / "model", ORDER, metadata={"test_metrics": {"accuracy": 0.5}})
    c = class_centres(3)  # surprise dark, angry mid-grey, happy bright
    data = root / "data"
    write_grey_images(data / "test" / "surprise", [c[0], c[0] - 0.05, c[2]])  # 2 right, 1 → happy
    write_grey_images(data / "test" / "angry", [c[1], c[1] + 0.05])  # 2 right
    write_grey_images(data / "test" / "happy", [c[2], c[2] + 0.05, c[1]])  # 2 right, 1 → angry
    (data / "test" / "angry" / "broken.png").write_bytes(b"not a png")
    history = root / "history"
    history.mkdir()
    return root, model, data, history


def test_report_uses_model_class_order_end_to_end(brightness_setup):
    from fer_keras.report import build_report

    root, model, data, history = brightness_setup
    out = root / "reports" / "report.html"
    summary = build_report(history, out, model_dir=model, data_dir=data, progress=False)
    on_disk = json.loads((out.parent / "summary.json").read_text())
    cm = on_disk["evaluation"]["confusion_matrix"]
    assert cm["labels"] == ORDER
    assert cm["counts"] == [[2, 0, 1], [0, 2, 0], [0, 1, 2]]
    assert on_disk["evaluation"]["n"] == 8
    assert on_disk["evaluation"]["accuracy"] == pytest.approx(6 / 8)
    assert summary["model"]["available"] is True
    html = out.read_text()
    assert "broken.png" in html  # undecodable test files are listed, not fatal
    assert html.count('<figure><img alt="test/') == 2  # both mistakes in the gallery, with their images


def test_data_dir_defaults_to_the_model_config(brightness_setup, tmp_path):
    from fer_keras.report import build_report

    root, _, data, history = brightness_setup
    model = write_brightness_model(tmp_path / "model", ORDER, metadata={"config": {"data": str(data)}})
    summary = build_report(history, tmp_path / "r" / "report.html", model_dir=model, progress=False)
    assert summary["model"]["data_dir"] == str(data)
    assert summary["evaluation"]["n"] == 8


@pytest.mark.parametrize("case", ["no_model_folder", "bad_metadata", "no_data", "no_test_split"])
def test_missing_inputs_become_a_message(brightness_setup, tmp_path, case):
    from fer_keras.report import build_report

    root, model, data, history = brightness_setup
    model_dir, data_dir = model, data
    if case == "no_model_folder":
        model_dir = tmp_path / "absent"
    elif case == "bad_metadata":
        model_dir = tmp_path / "m"
        model_dir.mkdir()
        (model_dir / "metadata.json").write_text("{oops", encoding="utf-8")
    elif case == "no_data":
        data_dir = None  # the model records no dataset
    else:
        data_dir = tmp_path / "data_without_test"
        (data_dir / "train" / "angry").mkdir(parents=True)
    summary = build_report(
        history, tmp_path / "r" / "report.html", model_dir=model_dir, data_dir=data_dir, progress=False
    )
    assert summary["model"]["available"] is False
    assert summary["evaluation"] is None
    message = summary["model"]["message"]
    expected = {
        "no_model_folder": "no model folder",
        "bad_metadata": "not valid JSON",
        "no_data": "no --data",
        "no_test_split": "folder not found",
    }[case]
    assert expected in message
    assert message in (tmp_path / "r" / "report.html").read_text()
