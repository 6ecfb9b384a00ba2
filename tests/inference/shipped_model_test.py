"""The model shipped in models/best_model/: it loads, agrees with its metadata, and is not broken or swapped."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_keras.constants import CLASS_NAMES, METADATA_FILE
from fer_keras.data.demo import draw_face
from fer_keras.data.folders import scan_split
from fer_keras.data.images import load_images
from tests.conftest import ROOT

SHIPPED = ROOT / "models" / "best_model"
# A guard against a broken or swapped model, not a benchmark: the floor is the accuracy
# the shipped model measured on the whole FER2013 test split (metadata.json) minus 2.5
# standard errors of a 500-image sample (about 2.2 points each).
SAMPLE_MARGIN = 0.055

pytestmark = pytest.mark.skipif(not (SHIPPED / METADATA_FILE).is_file(), reason="no shipped model")


@pytest.fixture(scope="module")
def metadata() -> dict:
    return json.loads((SHIPPED / METADATA_FILE).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def predictor():
    from fer_keras.inference.predictor import Predictor

    return Predictor.load(SHIPPED)


def test_metadata_is_complete_and_the_folder_is_small(metadata):
    assert tuple(metadata["class_names"]) == CLASS_NAMES
    assert metadata["color_mode"] in ("rgb", "grayscale") and len(metadata["input_size"]) == 2
    for key in ("valid_metrics", "test_metrics", "reproduce"):
        assert metadata[key], key
    assert metadata.get("source_run") or metadata.get("ensemble"), "neither a source run nor ensemble members"
    assert "fer-train" in metadata["reproduce"] and "fer-data clean" in metadata["reproduce"]
    size = sum(f.stat().st_size for f in SHIPPED.rglob("*") if f.is_file())
    assert size < 25 * 2**20, f"models/best_model is {size / 2**20:.1f} MiB"


def test_outputs_match_the_metadata_and_generated_faces_classify(predictor, metadata):
    rng = np.random.default_rng(0)
    faces = [draw_face(emotion, rng, size=96, rgb=True) for emotion in CLASS_NAMES]
    probs = predictor.predict_images(faces)
    assert probs.shape == (len(CLASS_NAMES), len(metadata["class_names"]))
    assert np.all(np.isfinite(probs)) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert predictor.info.input_shape == (*metadata["input_size"], 1 if metadata["color_mode"] == "grayscale" else 3)


def test_accuracy_on_500_fer2013_test_images(fer2013, predictor, metadata):
    files = scan_split(fer2013, "test", tuple(metadata["class_names"]))
    pick = np.random.default_rng(0).choice(len(files.paths), 500, replace=False)
    images, ok, _ = load_images([files.paths[i] for i in pick], tuple(metadata["input_size"]), metadata["color_mode"])
    labels = np.asarray(files.labels)[pick][ok]
    accuracy = float((predictor.predict(images).argmax(axis=1) == labels).mean())
    floor = metadata["test_metrics"]["accuracy"] - SAMPLE_MARGIN
    assert accuracy >= floor, f"accuracy {accuracy:.3f} on 500 test images; the shipped model measured {floor:.3f}+"


def test_the_shipped_onnx_export_agrees_with_keras(predictor):
    from fer_keras.constants import ONNX_FILE
    from fer_keras.inference.export import DEFAULT_TOLERANCES, sidecar_path
    from fer_keras.inference.predictor import Predictor

    if not (SHIPPED / ONNX_FILE).is_file():
        pytest.skip("no ONNX export shipped")
    rng = np.random.default_rng(1)
    faces = [draw_face(emotion, rng, size=64) for emotion in CLASS_NAMES]
    # The export's own parity bound for how its weights are stored (float16: 1e-3), which its sidecar records.
    weights = json.loads(sidecar_path(SHIPPED / ONNX_FILE).read_text(encoding="utf-8"))["weights"]
    onnx = Predictor.load(SHIPPED, runtime="onnx")
    diff = np.abs(onnx.predict_images(faces) - predictor.predict_images(faces)).max()
    assert diff < DEFAULT_TOLERANCES[weights], f"{weights} ONNX differs from Keras by {diff:.3g}"


def test_the_crop_rule_in_the_metadata_is_the_one_inference_applies(predictor, metadata):
    """The shipped framing is recorded, and every inference path reads it from there."""
    from fer_keras.inference.faces import crop_faces, find_faces
    from fer_keras.inference.predict import classify, crop_rule
    from fer_keras.model.crop import CropRule
    from tests.model_fixtures import face_photo

    recorded = CropRule.from_metadata(metadata["crop"])
    assert predictor.info.crop == recorded == crop_rule(predictor)
    assert recorded.square and recorded.fill == "edge"
    assert predictor.tta == tuple(metadata.get("inference", {}).get("tta", []))
    photo = face_photo(("happy",))
    seen = []
    original = predictor.predict_images
    predictor.predict_images = lambda images: seen.extend(images) or original(images)
    try:
        classify(predictor, [photo])
    finally:
        del predictor.predict_images
    [expected] = crop_faces(photo, find_faces(photo), recorded)
    assert np.array_equal(np.asarray(seen[0]), np.asarray(expected))


def test_the_class_prior_correction_in_the_metadata_is_the_one_inference_applies(predictor, metadata):
    """``inference.class_bias`` follows from its recorded derivation, and predictions are the model's corrected by it."""
    from fer_keras.inference.predictor import Predictor
    from fer_keras.model.class_prior import apply_class_bias, class_bias_from_counts

    bias = metadata.get("inference", {}).get("class_bias") or []
    assert predictor.class_bias == tuple(bias)
    if not bias:
        assert not metadata.get("class_prior")
        return
    record = metadata["class_prior"]
    counts = [record["train_counts"][name] for name in metadata["class_names"]]
    assert bias == record["class_bias"] == class_bias_from_counts(counts, record["tau"])
    rng = np.random.default_rng(2)
    faces = [draw_face(emotion, rng, size=64) for emotion in CLASS_NAMES]
    plain = Predictor.load(SHIPPED, class_prior=False).predict_images(faces)
    np.testing.assert_allclose(predictor.predict_images(faces), apply_class_bias(plain, bias), atol=1e-6)
