"""Tiny model folders and face photos for the inference, predict and serve tests.

``make_model_folder`` writes the ``models/best_model/`` layout of docs/internals.md
around a few-hundred-parameter CNN (random weights: tests check plumbing, not
accuracy). ``face_photo`` composes drawn demo faces, which OpenCV's Haar cascade
detects, onto a plain background.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from fer_keras.constants import (
    ARCHITECTURE_FILE,
    CLASS_NAMES,
    COLOR_MODES,
    METADATA_FILE,
    MODEL_FILE,
    ONNX_FILE,
)
from fer_keras.data.demo import draw_face
from fer_keras.environment import QUIET_ENVIRONMENT, quiet_environment

REPO_ROOT = Path(__file__).resolve().parents[1]


def make_model_folder(
    out: str | os.PathLike,
    *,
    color_mode: str = "grayscale",
    input_size: tuple[int, int] = (48, 48),
    onnx: bool = False,
    class_names: tuple[str, ...] = CLASS_NAMES,
    seed: int = 0,
) -> Path:
    """Build and save a tiny model folder; with ``onnx=True`` also ``model.onnx``.

    Returns the folder. Imports TensorFlow (~6 s the first time in a process).
    """
    quiet_environment()
    import keras

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    height, width = input_size
    inputs = keras.Input((height, width, COLOR_MODES[color_mode]), name="pixels")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(class_names), activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="tiny_test_model")
    # A model must have been called once before Keras can export it.
    model.predict(np.zeros((1, height, width, COLOR_MODES[color_mode]), np.float32), verbose=0)
    model.save(out / MODEL_FILE)
    architecture = {
        "name": "tiny_test_model",
        "description": "test fixture",
        "layers": [
            {"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "relu"},
            {"type": "GlobalAveragePooling2D"},
            {"type": "Dense", "units": "num_classes", "activation": "softmax"},
        ],
    }
    (out / ARCHITECTURE_FILE).write_text(json.dumps(architecture, indent=2))
    metadata = {
        "format_version": 1,
        "name": "tiny_test_model",
        "class_names": list(class_names),
        "input_size": [height, width],
        "color_mode": color_mode,
        "preprocessing": {"input": "float32 pixels in [0, 255]", "resize": "bilinear", "rescale_in_model": True},
        "source_run": "tests/model_fixtures.py",
    }
    (out / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
    if onnx:
        model.export(str(out / ONNX_FILE), format="onnx", verbose=False)
    return out


_SHARED: dict[tuple, Path] = {}


def shared_model_folder(tmp_path_factory, **kwargs) -> Path:
    """One :func:`make_model_folder` per set of arguments per test session (read-only: copy to modify)."""
    key = tuple(sorted(kwargs.items()))
    if key not in _SHARED or not _SHARED[key].is_dir():
        _SHARED[key] = make_model_folder(tmp_path_factory.mktemp("model"), **kwargs)
    return _SHARED[key]


# The detector for photos of several drawn faces (face_photo): Haar finds every drawn face;
# the default SSD, trained on real faces, scores some cartoon faces under its threshold (it
# finds real faces in several-face photos: detectors_test.py). Tests that count drawn faces pin it.
DRAWN = "haar"
DRAWN_CLI = ["--detector", DRAWN]


def face_photo(
    emotions: tuple[str, ...] = ("happy",),
    size: tuple[int, int] = (640, 480),
    face_size: int = 150,
    seed: int = 0,
) -> Image.Image:
    """An RGB photo with one drawn face per emotion, side by side, that Haar detects."""
    rng = np.random.default_rng(seed)
    width, height = size
    photo = Image.new("RGB", size, (120, 140, 160))
    step = width // len(emotions)
    for i, emotion in enumerate(emotions):
        x = i * step + (step - face_size) // 2
        y = (height - face_size) // 2 + (40 if i % 2 else -40) * (len(emotions) > 1)
        photo.paste(draw_face(emotion, rng, size=face_size, rgb=True), (x, max(0, y)))
    return photo


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def subprocess_env() -> dict[str, str]:
    """Environment for running fer_keras in a subprocess from the repository root."""
    # Forced, not defaults: tests compare a subprocess's stderr, whatever the developer's shell sets.
    env = {**os.environ, **QUIET_ENVIRONMENT}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    return env


@contextlib.contextmanager
def running_server(app) -> Iterator[tuple[str, int]]:
    """``(host, port)`` of uvicorn serving ``app`` on a free 127.0.0.1 port in a background thread."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
