"""The Predictor: both runtimes, shape checks, TTA, thread safety, predictors built from functions.

Reading and writing model folders is tested in tests/model/model_folder_test.py.
"""

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
from fer_keras.inference.predictor import Predictor, load_model_info, resolve_runtime
from fer_keras.model.crop import CropRule
from fer_keras.model.model_folder import read_model_info
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


def test_auto_runtime_is_onnx_when_the_folder_has_model_onnx(model_copy):
    assert resolve_runtime(model_copy) == "onnx" and Predictor.load(model_copy, runtime="auto").runtime == "onnx"
    assert resolve_runtime(model_copy, "keras") == "keras"
    (model_copy / ONNX_FILE).unlink()
    assert resolve_runtime(model_copy) == "keras" and Predictor.load(model_copy, runtime="auto").runtime == "keras"


def test_the_keras_runtime_without_keras_says_what_to_install(model_dir):
    code = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('keras', 'tensorflow'): raise ModuleNotFoundError(name, name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from fer_keras.errors import FerError\n"
        "from fer_keras.inference.predictor import Predictor\n"
        "try:\n"
        f"    Predictor.load({str(model_dir)!r}, runtime='keras')\n"
        "except FerError as err:\n"
        "    print(err)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=60
    )
    message = "the keras runtime ({}: model.onnx not used) needs the [train] extra (No module named 'keras'): "
    assert message.format(model_dir) + "pip install 'fer_keras[train]'" in proc.stdout, proc.stdout + proc.stderr


def test_bad_arguments(model_dir):
    with pytest.raises(
        FerError, match="'runtime' must be one of 'auto', 'keras', 'onnx'; got 'onx'; did you mean 'onnx'"
    ):
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
    assert tta.tta == ("flip",) and read_model_info(model_copy).tta == ("flip",)
    np.testing.assert_allclose(tta.predict(pixels), expected, atol=1e-6)
    assert Predictor.load(model_copy, runtime="onnx", tta=[]).tta == ()


def test_bad_tta_argument_is_refused(model_copy):
    with pytest.raises(FerError, match="'tta' must be one of 'flip'.*; got 'spin'"):
        Predictor.load(model_copy, runtime="onnx", tta=["spin"])


def test_the_metadata_reader_keeps_its_old_name():
    assert load_model_info is read_model_info  # fer_keras.serve.app and fer_keras.cli.predict import it so


def test_a_predictor_from_a_function_validates_batches_and_applies_tta():
    calls = []

    def run(batch):
        calls.append(batch.shape)
        return np.stack([batch[:, :, :2, 0].mean(axis=(1, 2)), batch[:, :, 2:, 0].mean(axis=(1, 2))], axis=1)

    left = np.zeros((5, 4, 4, 1), np.uint8)
    left[:, :, :2] = 200  # bright left half: class 'left' wins, and its mirror image says 'right'
    p = Predictor.from_function(
        run, name="halves", class_names=["left", "right"], input_size=(4, 4), color_mode="grayscale", batch_size=2
    )
    assert (p.name, p.class_names, p.info.path, p.info.crop, p.runtime) == (
        "halves", ("left", "right"), None, CropRule(), "function"
    )  # fmt: skip
    assert p.predict(left).argmax(axis=1).tolist() == [0] * 5
    assert calls == [(2, 4, 4, 1), (2, 4, 4, 1), (1, 4, 4, 1)]  # batched, as float32
    flip = Predictor.from_function(
        run, name="halves", class_names=["left", "right"], input_size=(4, 4), color_mode="grayscale", tta=["flip"]
    )
    np.testing.assert_allclose(flip.predict(left), np.full((5, 2), 100.0))  # the mean of both views
    with pytest.raises(FerError, match=r"'pixels' must be a batch of shape \(N, 4, 4, 1\)"):
        p.predict(np.zeros((1, 4, 4, 3), np.uint8))


def test_a_predictor_from_a_function_reports_every_bad_field():
    with pytest.raises(FerError) as err:
        Predictor.from_function(
            lambda x: x, name="bad", class_names=["a"], input_size=(0, 4), color_mode="RGB", crop="tight"
        )
    assert [p.split(":")[0] for p in err.value.problems] == ["bad"] * 4
    text = str(err.value)
    assert "'class_names' must be a list of at least 2" in text and "'input_size[0]' must be >= 1" in text
    assert "'color_mode' must be one of" in text and "'crop' must be a CropRule" in text
