"""fer-eval end to end on a real (tiny, hand-weighted) model folder, with the stub peer."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fer_keras.cli.eval import main
from fer_keras.constants import CLASS_NAMES, METADATA_FILE, MODEL_FILE
from fer_keras.inference.fer_peer import write_stub_model
from tests.inference.labelled_eval_test import LEVEL, PLANTED, expected_matrix, write_planted
from tests.model_fixtures import REPO_ROOT, face_photo, subprocess_env


@pytest.fixture(scope="module")
def brightness_model(tmp_path_factory):
    """A saved 8x8 grayscale model folder predicting class k for mean grey levels near ``LEVEL`` k."""
    import keras

    folder = tmp_path_factory.mktemp("model")
    inputs = keras.Input((8, 8, 1), name="pixels")
    dense = keras.layers.Dense(7, activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(inputs)), name="brightness")
    centers = np.array([LEVEL[n] for n in CLASS_NAMES], dtype=np.float32)
    # -s (m - c_k)^2 up to a term shared by all classes: the nearest centre wins.
    dense.set_weights([(2 * 0.02 * centers)[None, :], -0.02 * centers**2])
    model.save(folder / MODEL_FILE)
    meta = {"name": "brightness", "class_names": list(CLASS_NAMES), "input_size": [8, 8], "color_mode": "grayscale"}
    (folder / METADATA_FILE).write_text(json.dumps(meta))
    return folder


@pytest.fixture(scope="module")
def stub_peer(tmp_path_factory):
    return write_stub_model(tmp_path_factory.mktemp("peer") / "emotion_model.hdf5")


def test_eval_writes_one_result_per_set_and_model(brightness_model, stub_peer, tmp_path, capsys):
    write_planted(tmp_path / "fer" / "test")
    flat = write_planted(tmp_path / "photos", {("happy", "happy"): 2, ("sad", "angry"): 1})
    out = tmp_path / "eval"
    code = main(
        ["--model", str(brightness_model), "--data", str(tmp_path / "fer"), str(flat), "--peer", "fer"]
        + ["--peer-model", str(stub_peer), "--out", str(out), "--batch-size", "5", "-q"]
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "fer.json",
        "fer__peer-fer.json",
        "photos.json",
        "photos__peer-fer.json",
    ]
    fer = json.loads((out / "fer.json").read_text())
    assert fer["confusion_matrix"] == expected_matrix().tolist()
    assert fer["model"] == "brightness" and fer["split"] == "test" and fer["n"] == sum(PLANTED.values())
    assert fer["missing_classes"] == ["neutral"] and fer["per_class_recall"]["neutral"] is None

    photos = json.loads((out / "photos.json").read_text())
    assert photos["split"] is None and photos["missing_classes"] == ["angry", "disgust", "fear", "neutral", "surprise"]
    assert photos["per_class_recall"] == {n: {"happy": 1.0, "sad": 0.0}.get(n) for n in CLASS_NAMES}
    assert photos["macro_f1_classes"] == ["happy", "sad"]

    peer = json.loads((out / "photos__peer-fer.json").read_text())
    assert peer["model"] == "fer-peer" and peer["class_names"] == list(CLASS_NAMES)
    assert peer["peer"]["package"] == "fer" and peer["peer"]["is_pypi_release"] is False
    assert np.asarray(peer["confusion_matrix"]).sum() == 3

    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:5] == ["dataset", "model", "n", "acc", "macro-F1"]
    assert [line.split()[:2] for line in table[1:5]] == [
        ["fer", "brightness"],
        ["fer", "fer-peer"],
        ["photos", "brightness"],
        ["photos", "fer-peer"],
    ]
    assert table[1].split()[3] == f"{np.trace(expected_matrix()) / 19:.1%}"
    assert any("macro_f1 is over the 6 present classes" in line for line in table)


def test_detect_faces_reports_images_without_a_face(brightness_model, tmp_path, capsys):
    folder = tmp_path / "photos" / "happy"
    folder.mkdir(parents=True)
    face_photo(("happy",), size=(320, 240), face_size=120).save(folder / "face.jpg")
    Image.new("L", (60, 60), LEVEL["happy"]).save(folder / "blank.png")
    args = ["--model", str(brightness_model), "--data", str(tmp_path / "photos"), "--detect-faces"]
    assert main([*args, "--out", str(tmp_path / "eval"), "-q"]) == 0
    assert json.loads((tmp_path / "eval" / "photos.json").read_text())["faces"]["whole_image"] == 1
    assert "photos / brightness: 1 of 2 image(s) had no detected face" in capsys.readouterr().out


def test_user_errors_are_one_line(brightness_model, tmp_path, capsys):
    write_planted(tmp_path / "set", {("happy", "happy"): 1})
    (tmp_path / "set" / "contempt").mkdir()
    Image.new("L", (8, 8), 0).save(tmp_path / "set" / "contempt" / "x.png")
    out = tmp_path / "eval"
    assert main(["--model", str(brightness_model), "--data", str(tmp_path / "set"), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "contempt unknown to brightness" in err[0]
    assert not out.exists()

    assert main(["--model", str(tmp_path / "nope"), "--data", str(tmp_path / "set")]) == 1
    assert "model folder not found" in capsys.readouterr().err
    assert main(["--model", str(brightness_model), "--data", str(tmp_path / "set"), "--batch-size", "0"]) == 1
    assert "'--batch-size' must be >= 1; got 0" in capsys.readouterr().err


def test_dry_run_in_a_fresh_process_writes_nothing(brightness_model, tmp_path):
    write_planted(tmp_path / "ds" / "valid", {("happy", "happy"): 2, ("sad", "sad"): 1})
    out = tmp_path / "eval"
    args = ["--model", str(brightness_model), "--data", str(tmp_path / "ds"), "--split", "valid", "--peer", "fer"]
    done = subprocess.run(
        [sys.executable, "-m", "fer_keras.cli.eval", *args, "--out", str(out), "--dry-run"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=subprocess_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "ds-valid: 3 images" in done.stdout and "(split valid); missing angry, disgust" in done.stdout
    assert "nothing written" in done.stdout and not out.exists()
