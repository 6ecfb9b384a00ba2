"""The Python API: EmotionRecognizer on every kind of input, batching, validation, and parity with fer-predict."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from fer_keras.cli.predict import main as fer_predict
from fer_keras.constants import CLASS_NAMES, METADATA_FILE, ONNX_FILE
from fer_keras.errors import FerError
from fer_keras.inference.faces import Box
from fer_keras.inference.predictor import Predictor
from fer_keras.inference.recognizer import EmotionRecognizer, FaceResult, ImageResult
from tests.model_fixtures import DRAWN, face_photo, shared_model_folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return shared_model_folder(tmp_path_factory, onnx=True)


@pytest.fixture(scope="module")
def recognizer(model_dir):
    return EmotionRecognizer(model_dir, runtime="onnx", detector=DRAWN)


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("photos") / "one.png"  # lossless: the file and the image are the same pixels
    face_photo(("happy",)).save(path)
    return path


def probabilities(result: ImageResult) -> list[list[float]]:
    return [list(face.probabilities.values()) for face in result]


def test_a_path_gives_boxes_probabilities_in_class_order_and_the_top_emotion(recognizer, photo_file):
    result = recognizer.analyze(photo_file)
    assert isinstance(result, ImageResult) and (result.width, result.height) == (640, 480)
    assert result.source == str(photo_file) and len(result) == 1
    [face] = result
    assert isinstance(face, FaceResult) and face.detected and isinstance(face.box, Box)
    assert list(face.probabilities) == list(CLASS_NAMES) == list(recognizer.class_names)
    assert face.label == max(face.probabilities, key=face.probabilities.get) and face.score == max(
        face.probabilities.values()
    )
    assert abs(sum(face.probabilities.values()) - 1) < 1e-4
    assert result.to_dict() == {
        "source": str(photo_file),
        "width": 640,
        "height": 480,
        "faces": [
            {"box": face.box.as_list(), "detected": True, "label": face.label, "probabilities": face.probabilities}
        ],
    }
    json.dumps(result.to_dict())  # JSON-ready


def test_pil_rgb_bgr_and_grayscale_inputs_give_the_same_answer(recognizer, photo_file):
    photo = Image.open(photo_file).convert("RGB")
    rgb = np.asarray(photo)
    expected = recognizer.analyze(photo_file)
    for same in (
        recognizer.analyze(photo),
        recognizer.analyze(rgb),
        recognizer.analyze(rgb[:, :, ::-1].copy(), channels="bgr"),  # an OpenCV frame
        recognizer.analyze(np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 255, np.uint8)]), channels="bgr"),
    ):
        assert same.faces == expected.faces and same.source is None
    # The tiny model is grayscale: a 2-D array and an (H, W, 1) array of the same photo agree with it.
    gray = np.asarray(photo.convert("L"))
    for same in (recognizer.analyze(gray), recognizer.analyze(gray[:, :, None])):
        assert [f.box for f in same] == [f.box for f in expected]
        np.testing.assert_allclose(probabilities(same), probabilities(expected), atol=1e-5)


def test_a_bgr_frame_read_as_rgb_is_a_different_image(recognizer):
    from fer_keras.inference.inputs import image_from_array

    frame = np.zeros((2, 2, 3), np.uint8)
    frame[..., 0] = 255  # blue in OpenCV's BGR order
    assert image_from_array(frame, "bgr").getpixel((0, 0)) == (0, 0, 255)
    assert image_from_array(frame, "rgb").getpixel((0, 0)) == (255, 0, 0)


def test_a_list_is_analysed_in_one_model_call(model_dir, photo_file):
    real = Predictor.load(model_dir, runtime="onnx")
    calls = []

    def run(batch):
        calls.append(len(batch))
        return real.predict(batch)

    counting = Predictor.from_function(
        run,
        name="counting",
        class_names=real.class_names,
        input_size=real.info.input_size,
        color_mode=real.info.color_mode,
        crop=real.info.crop,
    )
    inputs = [photo_file, face_photo(("happy", "sad", "surprise")), np.asarray(face_photo()), Image.new("L", (50, 40))]
    results = EmotionRecognizer.from_predictor(counting, detector=DRAWN).analyze(inputs)
    assert [len(r) for r in results] == [1, 3, 1, 1]
    assert calls == [6]  # one call for the 6 regions of 4 images
    assert [r.source for r in results] == [str(photo_file), None, None, None]
    assert results[3].faces == [FaceResult(Box(0, 0, 50, 40), False, results[3][0].label, results[3][0].probabilities)]
    alone = EmotionRecognizer(model_dir, runtime="onnx", detector=DRAWN)
    for item, result in zip(inputs, results):
        assert alone.analyze(item).faces == result.faces
    assert EmotionRecognizer.from_predictor(counting).analyze([]) == [] and calls == [6]


def test_no_detect_classifies_the_whole_image(model_dir):
    [face] = EmotionRecognizer(model_dir, runtime="onnx", detect=False).analyze(face_photo(("happy", "sad")))
    assert face.box == Box(0, 0, 640, 480) and not face.detected


def test_the_constructor_only_validates_and_the_model_loads_once_on_first_use(model_dir, tmp_path):
    lazy = EmotionRecognizer(tmp_path / "no_model")  # no work, so no error yet
    assert "loaded=False" in repr(lazy)
    with pytest.raises(FerError, match="no_model: model folder not found"):
        lazy.load()
    recognizer = EmotionRecognizer(model_dir)
    with ThreadPoolExecutor(8) as pool:
        predictors = list(pool.map(lambda _: recognizer.predictor, range(16)))
    assert all(p is predictors[0] for p in predictors)
    assert recognizer.predictor.runtime == "onnx"  # auto: the folder has model.onnx
    assert recognizer.load() is recognizer and "loaded=True" in repr(recognizer)


def test_auto_runtime_falls_back_to_keras_without_model_onnx(model_dir, tmp_path):
    folder = shutil.copytree(model_dir, tmp_path / "model")
    (folder / ONNX_FILE).unlink()
    assert EmotionRecognizer(folder).predictor.runtime == "keras"


def test_the_tta_override_reaches_the_predictor(model_dir, photo_file):
    plain = EmotionRecognizer(model_dir, runtime="onnx", tta=[])
    flip = EmotionRecognizer(model_dir, runtime="onnx", tta=["flip"])
    assert (plain.predictor.tta, flip.predictor.tta) == ((), ("flip",))
    assert plain.analyze(photo_file).faces != flip.analyze(photo_file).faces


def test_the_folders_class_prior_correction_is_applied_unless_turned_off(model_dir, tmp_path, photo_file):
    from fer_keras.model.class_prior import apply_class_bias

    folder = shutil.copytree(model_dir, tmp_path / "model")
    meta = json.loads((folder / METADATA_FILE).read_text())
    bias = [0.0, 2.0, 0.0, -1.0, 0.0, 0.0, -1.0]
    meta["inference"] = {**meta.get("inference", {}), "class_bias": bias}
    (folder / METADATA_FILE).write_text(json.dumps(meta))
    corrected = EmotionRecognizer(folder, runtime="onnx", detector=DRAWN)
    plain = EmotionRecognizer(folder, runtime="onnx", detector=DRAWN, class_prior=False)
    assert corrected.predictor.class_bias == tuple(bias) and plain.predictor.class_bias == ()
    [face] = corrected.analyze(photo_file).faces
    [raw] = plain.analyze(photo_file).faces
    expected = apply_class_bias(np.array([list(raw.probabilities.values())]), bias)[0]
    np.testing.assert_allclose(list(face.probabilities.values()), expected, atol=1e-5)
    assert EmotionRecognizer.from_predictor(plain.predictor).class_prior is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"runtime": "tf"}, "'runtime' must be one of 'auto', 'keras', 'onnx'; got 'tf'"),
        ({"detector": "dnnn"}, "'detector' must be one of"),
        ({"detect": "yes"}, "'detect' must be"),
        ({"tta": "flip"}, "'tta' must be a list of names"),
        ({"tta": ["spin"]}, "'tta' must be one of 'flip'.*; got 'spin'"),
        ({"margin": -1.0}, "'margin' must be"),
        ({"class_prior": "yes"}, "'class_prior' must be"),
        ({"model": 3}, "'model' must be a model folder path or None; got 3"),
    ],
)
def test_bad_arguments_are_one_line_errors_naming_the_value(kwargs, message):
    with pytest.raises(FerError, match=message) as err:
        EmotionRecognizer(**kwargs)
    assert "\n" not in str(err.value)


def test_bad_inputs_are_one_line_errors_naming_the_input(recognizer, tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image")
    cases = [
        (tmp_path / "missing.png", f"{tmp_path / 'missing.png'}: file not found"),
        (tmp_path / "notes.jpg", f"{tmp_path / 'notes.jpg'}: not an image in a supported format"),
        (np.zeros((8, 8), np.float64), "image: a numpy image must be uint8 (pixels 0-255); got dtype float64"),
        (
            np.zeros((8, 8, 2), np.uint8),
            "image: a numpy image must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)",
        ),
        (np.zeros((0, 8), np.uint8), "image: a numpy image must have shape"),
        (42, "image: must be a path, bytes, a PIL image or a numpy array; got int"),
        ([face_photo(), np.zeros((4, 4, 3), np.int32)], "inputs[1]: a numpy image must be uint8"),
    ]
    for item, message in cases:
        with pytest.raises(FerError) as err:
            recognizer.analyze(item)
        assert str(err.value).startswith(message) and "\n" not in str(err.value), str(err.value)
    with pytest.raises(FerError, match="'channels' must be one of 'rgb', 'bgr'; got 'bgra'"):
        recognizer.analyze(face_photo(), channels="bgra")


def test_fer_predict_and_the_api_give_identical_probabilities(model_dir, photo_file, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert fer_predict([str(photo_file), "--model", str(model_dir), "--json", "--out", str(out), "-q"]) == 0
    report = json.loads(out.read_text())
    assert report["model"]["runtime"] == "onnx"  # auto
    api = EmotionRecognizer(model_dir).analyze(photo_file)
    assert report["files"][0]["faces"] == api.to_dict()["faces"]


def test_the_package_exports_the_api_lazily():
    import fer_keras

    assert fer_keras.EmotionRecognizer is EmotionRecognizer and "EmotionRecognizer" in dir(fer_keras)
    with pytest.raises(AttributeError, match="no attribute 'Recognizer'"):
        fer_keras.Recognizer  # noqa: B018 - the attribute access is the test
