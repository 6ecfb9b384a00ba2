"""Model folders and the Predictor: metadata validation, both runtimes, thread safety."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from fer_keras.constants import METADATA_FILE, MODEL_FILE, ONNX_FILE
from fer_keras.errors import FerError
from fer_keras.inference.predictor import Predictor, load_model_info
from tests.model_fixtures import REPO_ROOT, shared_model_folder, subprocess_env


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return shared_model_folder(tmp_path_factory, onnx=True)


@pytest.fixture
def model_copy(model_dir, tmp_path):
    return shutil.copytree(model_dir, tmp_path / "model")


def rewrite_metadata(folder, **changes):
    path = folder / METADATA_FILE
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def random_pixels(n, shape=(48, 48, 1), seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def test_model_info_reads_the_metadata(model_dir):
    info = load_model_info(model_dir)
    assert info.name == "tiny_test_model"
    assert info.class_names[3] == "happy" and len(info.class_names) == 7
    assert info.input_size == (48, 48) and info.color_mode == "grayscale"
    assert info.input_shape == (48, 48, 1)
    # No 'version' in the metadata: a short hash of the weights file.
    assert len(info.version) == 12 and int(info.version, 16) >= 0


def test_metadata_version_wins(model_copy):
    rewrite_metadata(model_copy, version="2024.1")
    assert load_model_info(model_copy).version == "2024.1"


def test_missing_model_folder_is_one_clear_line(tmp_path):
    with pytest.raises(FerError) as err:
        load_model_info(tmp_path / "nope")
    assert err.value.problems == [
        f"{tmp_path / 'nope'}: model folder not found (train and export a model first, or pass --model DIR)"
    ]


def test_missing_or_broken_metadata(model_copy):
    (model_copy / METADATA_FILE).write_text("{not json")
    with pytest.raises(FerError, match="metadata.json: not valid JSON"):
        load_model_info(model_copy)
    (model_copy / METADATA_FILE).unlink()
    with pytest.raises(FerError, match="metadata.json: not found"):
        load_model_info(model_copy)


def test_every_invalid_metadata_field_is_reported(model_copy):
    rewrite_metadata(model_copy, class_names=["happy"], input_size=[48], color_mode="RGB")
    with pytest.raises(FerError) as err:
        load_model_info(model_copy)
    text = str(err.value)
    assert len(err.value.problems) == 3
    assert "'class_names' must be a list of at least 2" in text
    assert "'input_size' must be [height, width]; got [48]" in text
    assert "'color_mode' must be one of 'rgb', 'grayscale'; got 'RGB'; did you mean 'rgb'?" in text


@pytest.mark.parametrize("runtime", ["keras", "onnx"])
def test_predict_returns_probabilities(model_dir, runtime):
    predictor = Predictor.load(model_dir, runtime=runtime)
    probs = predictor.predict(random_pixels(5))
    assert probs.shape == (5, 7) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert predictor.predict(random_pixels(0)).shape == (0, 7)


def test_runtimes_agree_and_match_the_keras_model(model_dir):
    import keras

    x = random_pixels(6, seed=3)
    expected = keras.saving.load_model(model_dir / MODEL_FILE).predict(x.astype("float32"), verbose=0)
    for runtime in ("keras", "onnx"):
        np.testing.assert_allclose(Predictor.load(model_dir, runtime=runtime).predict(x), expected, atol=1e-5)


def test_batches_are_split_without_changing_results(model_dir):
    x = random_pixels(7, seed=1)
    whole = Predictor.load(model_dir, runtime="onnx").predict(x)
    split = Predictor.load(model_dir, runtime="onnx", batch_size=3).predict(x)
    np.testing.assert_allclose(split, whole, atol=1e-6)


def test_predict_images_resizes_and_converts(model_dir):
    predictor = Predictor.load(model_dir, runtime="onnx")
    rgb = Image.new("RGB", (100, 80), (200, 30, 30))
    gray = rgb.convert("L").resize((48, 48), Image.BILINEAR)
    a = predictor.predict_images([rgb])
    b = predictor.predict(np.asarray(gray, np.uint8)[None, :, :, None])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_wrong_input_shape_is_rejected(model_dir):
    predictor = Predictor.load(model_dir, runtime="onnx")
    with pytest.raises(FerError, match=r"'pixels' must be a batch of shape \(N, 48, 48, 1\); got \(2, 48, 48, 3\)"):
        predictor.predict(np.zeros((2, 48, 48, 3), np.uint8))


@pytest.mark.parametrize("runtime", ["keras", "onnx"])
def test_metadata_that_disagrees_with_the_model(model_copy, runtime):
    rewrite_metadata(model_copy, class_names=["a", "b", "c"], input_size=[64, 64])
    with pytest.raises(FerError) as err:
        Predictor.load(model_copy, runtime=runtime)
    text = str(err.value)
    assert "metadata says (N, 64, 64, 1)" in text and "metadata lists 3 class_names" in text


def test_missing_model_files(model_copy):
    (model_copy / ONNX_FILE).unlink()
    with pytest.raises(FerError, match=r"model.onnx: not found \(export it with fer-export, or use --runtime keras\)"):
        Predictor.load(model_copy, runtime="onnx")
    (model_copy / MODEL_FILE).unlink()
    with pytest.raises(FerError, match="model.keras: not found"):
        Predictor.load(model_copy, runtime="keras")


def test_corrupt_model_file_is_a_user_error(model_copy):
    (model_copy / ONNX_FILE).write_bytes(b"not a model")
    with pytest.raises(FerError, match="model.onnx: cannot load the model"):
        Predictor.load(model_copy, runtime="onnx")


def test_bad_arguments(model_dir):
    with pytest.raises(FerError, match="'runtime' must be one of 'keras', 'onnx'; got 'onx'; did you mean 'onnx'"):
        Predictor.load(model_dir, runtime="onx")
    with pytest.raises(FerError, match="'batch_size' must be >= 1"):
        Predictor.load(model_dir, batch_size=0)


@pytest.mark.parametrize("runtime", ["keras", "onnx"])
def test_concurrent_calls_give_the_sequential_results(model_dir, runtime):
    predictor = Predictor.load(model_dir, runtime=runtime)
    inputs = [random_pixels(1 + i % 3, seed=i) for i in range(12)]
    expected = [predictor.predict(x) for x in inputs]
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(predictor.predict, inputs))
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, atol=1e-6)


def test_onnx_runtime_never_imports_tensorflow(model_dir):
    code = (
        "import sys, numpy as np\n"
        "from fer_keras.inference.predictor import Predictor\n"
        f"p = Predictor.load({str(model_dir)!r}, runtime='onnx')\n"
        "assert p.predict(np.zeros((2, 48, 48, 1), np.uint8)).shape == (2, 7)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "print('imported:', bad[:5])\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_flip_tta_averages_the_image_and_its_mirror(model_copy):
    plain = Predictor.load(model_copy, runtime="onnx", tta=[])
    pixels = random_pixels(5)
    expected = (plain.predict(pixels) + plain.predict(pixels[:, :, ::-1])) / 2
    rewrite_metadata(model_copy, inference={"tta": ["flip"]})
    tta = Predictor.load(model_copy, runtime="onnx")
    assert tta.tta == ("flip",) and load_model_info(model_copy).tta == ("flip",)
    np.testing.assert_allclose(tta.predict(pixels), expected, atol=1e-6)
    assert Predictor.load(model_copy, runtime="onnx", tta=[]).tta == ()


def test_bad_tta_and_crop_metadata_are_reported(model_copy):
    rewrite_metadata(model_copy, inference={"tta": ["rotate"]})
    with pytest.raises(FerError, match=r"inference\.tta"):
        load_model_info(model_copy)
    rewrite_metadata(model_copy, inference={}, crop={"margin": -1})
    with pytest.raises(FerError, match="'margin' must be"):
        load_model_info(model_copy)
    with pytest.raises(FerError, match="'tta' must be one of 'flip'; got 'spin'"):
        Predictor.load(model_copy, runtime="onnx", tta=["spin"])
