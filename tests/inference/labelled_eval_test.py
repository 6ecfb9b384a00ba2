"""fer_keras.inference.labelled_eval: exact metrics on planted confusions, set layouts, missing/unknown classes, faces.

The metrics themselves are tested in tests/metrics_test.py; here a stub Predictor runs on image sets.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import f1_score

from fer_keras.constants import CLASS_NAMES
from fer_keras.errors import FerError
from fer_keras.inference.labelled_eval import (
    evaluate,
    format_table,
    load_eval_set,
    result_filename,
    write_result,
)
from fer_keras.inference.predictor import Predictor
from fer_keras.model.crop import CropRule
from tests.model_fixtures import face_photo

# A grey level per class: the stub classifier predicts class k for images whose mean is
# in [32 k, 32 k + 32).
LEVEL = {name: 16 + 32 * k for k, name in enumerate(CLASS_NAMES)}

# (true class, predicted class) → number of images: a known, lopsided confusion.
PLANTED = {
    ("angry", "angry"): 3,
    ("angry", "fear"): 1,
    ("disgust", "angry"): 2,
    ("fear", "fear"): 2,
    ("fear", "sad"): 2,
    ("happy", "happy"): 4,
    ("sad", "sad"): 1,
    ("sad", "neutral"): 1,
    ("surprise", "surprise"): 2,
    ("surprise", "happy"): 1,
}  # no neutral images: 'neutral' is a missing class that is still predicted once


def stub(predict, class_names=CLASS_NAMES, size=(8, 8), name="stub", **kwargs) -> Predictor:
    """A grayscale Predictor around ``predict``."""
    return Predictor.from_function(
        predict, name=name, class_names=class_names, input_size=size, color_mode="grayscale", **kwargs
    )


def brightness_classifier(calls: list | None = None, class_names=CLASS_NAMES, size=(8, 8)) -> Predictor:
    """Predicts class k for images whose mean grey level is in [32 k, 32 k + 32); logs batch sizes in ``calls``."""

    def predict(pixels):
        if calls is not None:
            calls.append(len(pixels))
        k = np.clip(pixels.reshape(len(pixels), -1).mean(axis=1) // 32, 0, len(class_names) - 1).astype(int)
        return np.eye(len(class_names), dtype=np.float32)[k]

    return stub(predict, class_names, size, source="stub.keras")


def write_planted(folder, planted=PLANTED, size=(20, 16)):
    counter = 0
    for (true, pred), count in planted.items():
        (folder / true).mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            Image.new("L", size, LEVEL[pred]).save(folder / true / f"img_{counter:03d}.png")
            counter += 1
    return folder


def expected_matrix(planted=PLANTED):
    index = {n: i for i, n in enumerate(CLASS_NAMES)}
    matrix = np.zeros((7, 7), dtype=int)
    for (true, pred), count in planted.items():
        matrix[index[true], index[pred]] += count
    return matrix


def test_evaluate_reproduces_the_planted_confusion(tmp_path):
    write_planted(tmp_path / "set" / "test")
    data = load_eval_set(tmp_path / "set")
    assert (data.name, data.split, len(data)) == ("set", "test", sum(PLANTED.values()))
    calls = []
    result = evaluate(brightness_classifier(calls), data, batch_size=4)

    matrix = expected_matrix()
    assert result["confusion_matrix"] == matrix.tolist()
    assert result["missing_classes"] == ["neutral"]
    support = matrix.sum(axis=1)
    assert result["per_class_recall"] == {
        name: (None if support[i] == 0 else matrix[i, i] / support[i]) for i, name in enumerate(CLASS_NAMES)
    }
    assert result["per_class_recall"]["disgust"] == 0.0 and result["per_class_recall"]["happy"] == 1.0
    assert result["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())
    y_true = np.repeat(np.arange(7), support)
    y_pred = np.concatenate([np.repeat(np.arange(7), row) for row in matrix])
    present = [i for i in range(7) if support[i]]
    assert result["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, labels=present, average="macro"))
    assert "6 present classes" in result["note"]
    assert result["n"] == 19 and result["class_names"] == list(CLASS_NAMES)
    assert result["model"] == "stub" and result["split"] == "test" and result["faces"] is None
    assert result["model_path"] == "stub.keras"
    assert set(result["timings"]) == {"detect_s", "decode_s", "predict_s", "images_per_s"}
    assert calls == [4, 4, 4, 4, 3]  # batched as asked


def test_results_follow_the_model_class_order(tmp_path):
    write_planted(tmp_path / "set" / "test", {("happy", "happy"): 2, ("sad", "sad"): 1})
    # A model whose output index 0 is 'sad' and 1 is 'happy': our stub predicts index
    # k from the grey level, so remap the planted levels accordingly.
    names = ("sad", "happy")

    def predict(pixels):
        level = pixels.reshape(len(pixels), -1).mean(axis=1)
        return np.stack([level == LEVEL["sad"], level == LEVEL["happy"]], axis=1).astype(np.float32)

    result = evaluate(stub(predict, names, name="two"), load_eval_set(tmp_path / "set"))
    assert result["class_names"] == ["sad", "happy"]
    assert result["confusion_matrix"] == [[1, 0], [0, 2]]
    assert result["per_class_recall"] == {"sad": 1.0, "happy": 1.0} and result["missing_classes"] == []


def test_flat_folders_and_split_folders_are_sets(tmp_path):
    write_planted(tmp_path / "photos")
    flat = load_eval_set(tmp_path / "photos")
    assert (flat.name, flat.split) == ("photos", None)
    assert evaluate(brightness_classifier(), flat)["confusion_matrix"] == expected_matrix().tolist()

    write_planted(tmp_path / "ds" / "valid")
    by_split = load_eval_set(tmp_path / "ds", split="valid")
    assert (by_split.name, by_split.split) == ("ds-valid", "valid")
    direct = load_eval_set(tmp_path / "ds" / "valid")  # a split folder passed itself
    assert (direct.name, direct.split, len(direct)) == ("ds-valid", "valid", len(by_split))


def test_a_missing_split_names_the_ones_found(tmp_path):
    write_planted(tmp_path / "ds" / "train")
    with pytest.raises(FerError, match="no 'test' split folder \\(found train; use --split\\)"):
        load_eval_set(tmp_path / "ds")
    with pytest.raises(FerError, match="dataset folder not found"):
        load_eval_set(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FerError, match="no class folders"):
        load_eval_set(tmp_path / "empty")


def test_unknown_class_folders_are_an_error_naming_them(tmp_path):
    write_planted(tmp_path / "set", {("happy", "happy"): 1})
    (tmp_path / "set" / "contempt").mkdir()
    Image.new("L", (8, 8), 0).save(tmp_path / "set" / "contempt" / "a.png")
    (tmp_path / "set" / "Sad").mkdir()
    Image.new("L", (8, 8), 0).save(tmp_path / "set" / "Sad" / "b.png")
    with pytest.raises(FerError) as err:
        evaluate(brightness_classifier(), load_eval_set(tmp_path / "set"))
    message = str(err.value)
    assert "Sad, contempt" in message and "unknown to stub" in message and "did you mean 'sad'?" in message


def test_unreadable_images_are_skipped_and_listed(tmp_path):
    write_planted(tmp_path / "set", {("happy", "happy"): 2})
    (tmp_path / "set" / "happy" / "broken.jpg").write_bytes(b"not a jpeg")
    for detect in (False, True):
        result = evaluate(brightness_classifier(), load_eval_set(tmp_path / "set", detect_faces=detect))
        assert result["n"] == 2
        assert [f["path"].endswith("broken.jpg") for f in result["failures"]] == [True]


def test_detect_faces_crops_photos_and_counts_the_ones_without_a_face(tmp_path):
    folder = tmp_path / "photos" / "happy"
    folder.mkdir(parents=True)
    face_photo(("happy",), size=(320, 240), face_size=120).save(folder / "face.jpg")
    Image.new("RGB", (120, 90), (90, 90, 90)).save(folder / "blank.png")
    seen = []

    def predict(pixels):
        seen.extend(pixels)
        return np.eye(7, dtype=np.float32)[[3] * len(pixels)]

    data = load_eval_set(tmp_path / "photos", detect_faces=True)
    assert data.boxes[0] is None and data.boxes[1] is not None  # blank.png sorts first
    result = evaluate(stub(predict, size=(48, 48), name="m"), data)
    assert result["faces"] == {"detected": 1, "whole_image": 1, "detector": "ssd", "crop": CropRule().to_dict()}
    assert result["accuracy"] == 1.0
    # The blank photo went in whole (flat grey); the face crop has the drawn features.
    assert seen[0].std() < 1 and seen[1].std() > 10
    # The model's own crop rule is used, and --margin-style overrides keep its square/fill.
    wide = stub(predict, size=(48, 48), crop=CropRule(margin=0.3, square=False, fill="clip"))
    assert evaluate(wide, data)["faces"]["crop"] == CropRule(0.3, False, "clip").to_dict()
    assert evaluate(wide, data, margin=0.1)["faces"]["crop"] == CropRule(0.1, False, "clip").to_dict()


def test_results_are_written_under_the_dataset_name(tmp_path):
    write_planted(tmp_path / "set", {("happy", "happy"): 1, ("sad", "fear"): 1})
    result = evaluate(brightness_classifier(), load_eval_set(tmp_path / "set"))
    assert result_filename("fer2013") == "fer2013.json"
    assert result_filename("fer2013", "fer") == "fer2013__peer-fer.json"
    path = write_result(result, tmp_path / "out", peer="fer")
    assert path == tmp_path / "out" / "set__peer-fer.json"
    saved = json.loads(path.read_text())
    for key in (
        "dataset",
        "dataset_path",
        "split",
        "n",
        "class_names",
        "missing_classes",
        "accuracy",
        "macro_f1",
        "per_class_recall",
        "confusion_matrix",
        "classification_report",
        "model",
        "timings",
    ):
        assert key in saved
    table = format_table([result]).splitlines()
    assert table[0].split()[:5] == ["dataset", "model", "n", "acc", "macro-F1"]
    assert table[1].split()[:5] == ["set", "stub", "2", "50.0%", "50.0%"]
    assert table[1].split().count("-") == 5  # five classes without images
