"""fer_keras.model.model_folder: the metadata schema, read and write checks, the atomic swap, model loading, TTA."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fer_keras.constants import ARCHITECTURE_FILE, CLASS_NAMES, METADATA_FILE, MODEL_FILE, ONNX_FILE, WEIGHTS_FILE
from fer_keras.errors import FerError
from fer_keras.model.crop import CropRule
from fer_keras.model.model_folder import (
    FORMAT_VERSION,
    MODEL_FOLDER_FILES,
    PREPROCESSING,
    apply_tta,
    is_model_folder,
    load_keras_model,
    read_model_info,
    write_model_folder,
)
from tests.model_fixtures import shared_model_folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return shared_model_folder(tmp_path_factory)


@pytest.fixture
def model_copy(model_dir, tmp_path):
    return shutil.copytree(model_dir, tmp_path / "model")


@pytest.fixture(scope="module")
def keras_model(model_dir):
    return load_keras_model(read_model_info(model_dir))


def rewrite_metadata(folder, **changes):
    path = folder / METADATA_FILE
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def new_metadata(**changes):
    meta = {
        "name": "mine",
        "class_names": list(CLASS_NAMES),
        "input_size": [48, 48],
        "color_mode": "grayscale",
        "preprocessing": PREPROCESSING,
        "crop": CropRule().to_dict(),
        "inference": {"tta": ["flip"]},
        "valid_metrics": {"accuracy": 0.5, "loss": 1.0, "n": 4},
    }
    return meta | changes


ARCHITECTURE = {"name": "tiny", "layers": [{"type": "Dense", "units": "num_classes", "activation": "softmax"}]}


# --- reading ---


def test_model_info_reads_the_metadata(model_dir):
    info = read_model_info(model_dir)
    assert info.name == "tiny_test_model" and info.path == model_dir
    assert info.class_names[3] == "happy" and len(info.class_names) == 7
    assert info.input_size == (48, 48) and info.color_mode == "grayscale"
    assert info.input_shape == (48, 48, 1)
    # No 'version' in the metadata: a short hash of the weights file.
    assert len(info.version) == 12 and int(info.version, 16) >= 0
    # No 'crop' (a folder from before crop rules were recorded): the legacy rule; no TTA.
    assert info.crop == CropRule.from_metadata(None) and info.tta == ()


def test_metadata_version_crop_and_tta_are_read(model_copy):
    rewrite_metadata(model_copy, version="2024.1", crop={"margin": 0.1}, inference={"tta": ["flip"]})
    info = read_model_info(model_copy)
    assert info.version == "2024.1" and info.crop == CropRule(margin=0.1) and info.tta == ("flip",)


def test_missing_model_folder_is_one_clear_line(tmp_path):
    with pytest.raises(FerError) as err:
        read_model_info(tmp_path / "nope")
    assert err.value.problems == [
        f"{tmp_path / 'nope'}: model folder not found (train and export a model first, or pass --model DIR)"
    ]


def test_missing_or_broken_metadata(model_copy):
    (model_copy / METADATA_FILE).write_text("{not json")
    with pytest.raises(FerError, match="metadata.json: not valid JSON"):
        read_model_info(model_copy)
    (model_copy / METADATA_FILE).write_text("[1, 2]")
    with pytest.raises(FerError, match="metadata.json: 'the top level' must be a JSON object; got 'list'"):
        read_model_info(model_copy)
    (model_copy / METADATA_FILE).unlink()
    with pytest.raises(FerError, match="metadata.json: not found"):
        read_model_info(model_copy)


def test_every_invalid_metadata_field_is_reported(model_copy):
    rewrite_metadata(
        model_copy,
        class_names=["happy"],
        input_size=[48],
        color_mode="RGB",
        inference={"tta": ["rotate"]},
        crop={"fill": "blur"},
    )
    with pytest.raises(FerError) as err:
        read_model_info(model_copy)
    text = str(err.value)
    assert len(err.value.problems) == 5
    assert all(p.startswith(f"{model_copy / METADATA_FILE}: ") for p in err.value.problems)
    assert "'class_names' must be a list of at least 2" in text
    assert "'input_size' must be [height, width]; got [48]" in text
    assert "'color_mode' must be one of 'rgb', 'grayscale'; got 'RGB'; did you mean 'rgb'?" in text
    assert "'inference.tta' must be a list of flip, shift; got ['rotate']" in text
    assert "crop: 'fill' must be one of edge, clip; got 'blur'" in text


def test_is_model_folder_recognises_only_model_metadata(model_dir, tmp_path):
    assert is_model_folder(model_dir)
    assert not is_model_folder(tmp_path)
    (tmp_path / METADATA_FILE).write_text(json.dumps({"class_names": [], "input_size": [], "color_mode": "rgb"}))
    assert not is_model_folder(tmp_path)  # no format_version: not written by fer_keras


# --- writing ---


def test_written_folder_reads_back_with_crop_and_tta(keras_model, tmp_path):
    out = tmp_path / "models" / "mine"
    info = write_model_folder(out, keras_model, new_metadata(), ARCHITECTURE)
    assert sorted(p.name for p in out.iterdir()) == sorted(MODEL_FOLDER_FILES)
    assert info == read_model_info(out) and info.tta == ("flip",) and info.crop == CropRule()
    meta = json.loads((out / METADATA_FILE).read_text())
    assert meta["format_version"] == FORMAT_VERSION and list(meta)[0] == "format_version"
    assert meta["crop"] == CropRule().to_dict() and meta["inference"] == {"tta": ["flip"]}
    assert json.loads((out / ARCHITECTURE_FILE).read_text()) == ARCHITECTURE
    assert is_model_folder(out) and (out / MODEL_FILE).stat().st_size > 0 and not (out / WEIGHTS_FILE).exists()
    pixels = np.random.default_rng(0).integers(0, 256, (3, 48, 48, 1)).astype(np.float32)
    np.testing.assert_allclose(
        load_keras_model(info).predict_on_batch(pixels), keras_model.predict_on_batch(pixels), atol=1e-6
    )


def test_a_new_folder_replaces_an_earlier_one_whole(keras_model, model_dir, tmp_path):
    out = shutil.copytree(model_dir, tmp_path / "best")
    (out / ONNX_FILE).write_bytes(b"an export of the earlier model")
    stale = tmp_path / ".best.k3j_x9qa"  # a staging folder of a write killed halfway
    stale.mkdir()
    (stale / MODEL_FILE).write_bytes(b"half")
    write_model_folder(out, keras_model, new_metadata(name="second"), ARCHITECTURE)
    assert read_model_info(out).name == "second" and not (out / ONNX_FILE).exists()
    assert sorted(tmp_path.iterdir()) == [out]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"class_names": ["a", "a"]}, "'class_names' must be unique"),
        ({"inference": {"tta": "flip"}}, "'inference.tta' must be a list of flip, shift; got 'flip'"),
        (
            {"inference": {"tta": [], "class_bias": [0.1, -0.1]}},
            "'inference.class_bias' must be a list of 7 finite numbers (one per class); got [0.1, -0.1]",
        ),
        ({"crop": {"margin": 5}}, "crop: 'margin' must be in [0, 2]; got 5"),
        ({"format_version": 2}, "'format_version' must be 1; got 2"),
        ({"class_names": ["a", "b", "c"]}, "model output is (None, 7) but metadata lists 3 class_names"),
        ({"input_size": [64, 64]}, "model input is (None, 48, 48, 1) but metadata says (N, 64, 64, 1)"),
        ({"valid_metrics": {"loss": float("nan")}}, "valid_metrics.loss is not a finite number"),
    ],
)
def test_nothing_is_written_for_invalid_metadata(keras_model, tmp_path, changes, message):
    out = tmp_path / "mine"
    with pytest.raises(FerError) as err:
        write_model_folder(out, keras_model, new_metadata(**changes), ARCHITECTURE)
    assert message in str(err.value) and str(out / METADATA_FILE) in str(err.value)
    assert list(tmp_path.iterdir()) == []  # no folder, no staging folder


def test_a_folder_of_the_users_is_never_replaced(keras_model, tmp_path):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "t.txt").write_text("mine")
    with pytest.raises(FerError, match="thesis: exists and is not a model folder .*refusing to replace it"):
        write_model_folder(mine, keras_model, new_metadata(), ARCHITECTURE)
    with pytest.raises(FerError, match="'architecture' must be a JSON object"):
        write_model_folder(tmp_path / "x", keras_model, new_metadata(), ["not", "a", "spec"])
    assert sorted(tmp_path.iterdir()) == [mine] and (mine / "t.txt").read_text() == "mine"


# --- loading ---


def test_load_checks_the_model_against_the_metadata(model_copy):
    rewrite_metadata(model_copy, class_names=["a", "b", "c"], input_size=[64, 64])
    with pytest.raises(FerError) as err:
        load_keras_model(read_model_info(model_copy))
    assert [p.split(": ", 1)[0] for p in err.value.problems] == [str(model_copy / MODEL_FILE)] * 2
    assert "metadata says (N, 64, 64, 1)" in str(err.value) and "metadata lists 3 class_names" in str(err.value)
    (model_copy / MODEL_FILE).write_bytes(b"not a model")
    with pytest.raises(FerError, match="model.keras: cannot load the model"):
        load_keras_model(read_model_info(model_copy))
    (model_copy / MODEL_FILE).unlink()
    with pytest.raises(FerError, match="model.keras: not found"):
        load_keras_model(read_model_info(model_copy))


def test_flip_tta_is_the_mean_of_the_image_and_its_mirror():
    calls = []

    def run(batch):
        calls.append(len(batch))
        return batch[:, 0, :, 0]  # the first row: mirroring reverses it

    pixels = np.array([[[[1.0], [2.0], [6.0]]], [[[0.0], [0.0], [3.0]]]])  # (2, 1, 3, 1)
    assert apply_tta(run, pixels, ()).tolist() == [[1.0, 2.0, 6.0], [0.0, 0.0, 3.0]]
    assert apply_tta(run, pixels, ["flip"]).tolist() == [[3.5, 2.0, 3.5], [1.5, 0.0, 1.5]]
    assert calls == [2, 4]  # one call on both views


def test_shift_tta_averages_the_image_and_four_copies_moved_two_pixels():
    calls = []

    def run(batch):
        calls.append(len(batch))
        return batch[:, 24, 24, :]  # the centre pixel

    rows = np.arange(48, dtype=np.float32) ** 2  # each pixel holds its row index squared
    pixels = np.broadcast_to(rows[None, :, None, None], (3, 48, 48, 1)).copy()
    # centre, moved down (row 22), up (row 26), right and left (row 24): (3 * 576 + 484 + 676) / 5
    np.testing.assert_allclose(apply_tta(run, pixels, ["shift"]), [[577.6]] * 3, rtol=1e-6)
    np.testing.assert_allclose(apply_tta(run, pixels, ["flip", "shift"]), [[577.6]] * 3, rtol=1e-6)
    assert calls == [15, 30]  # every view of every face in one call
