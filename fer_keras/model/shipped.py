"""Where the shipped model lives: the one default model folder of every command and the API.

Resolution order (first that exists wins):

1. the ``FER_KERAS_MODEL`` environment variable (a model folder);
2. the copy packaged inside the installed wheel (``fer_keras/_model``, package data found
   with :mod:`importlib.resources`);
3. ``models/best_model`` of the repository checkout the package was imported from (an
   editable, developer install).

``--model DIR`` on a command overrides all three.

The packaged copy is made at build time (``setup.py`` copies :data:`PACKAGED_FILES` of
``models/best_model`` into the wheel), never committed: ``models/best_model`` stays the one
source. To ship a retrained model: ``fer-grid select --out models/best_model`` (then
``fer-export models/best_model --format onnx``) and rebuild the wheel (``python -m build``);
``tests/packaging/wheel_test.py`` checks the built wheel's copy against the folder byte for byte.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from fer_keras.constants import (
    ARCHITECTURE_FILE,
    BEST_MODEL_DIR,
    EXPORT_SIDECAR_SUFFIX,
    METADATA_FILE,
    MODEL_FILE,
    ONNX_FILE,
)

MODEL_ENV = "FER_KERAS_MODEL"
PACKAGED_MODEL = "_model"
# The files of models/best_model the wheel carries (setup.py's list must equal it; a test checks).
# model.weights.h5 stays out: model.keras holds the same weights.
PACKAGED_FILES = (METADATA_FILE, ONNX_FILE, ONNX_FILE + EXPORT_SIDECAR_SUFFIX, MODEL_FILE, ARCHITECTURE_FILE)


def packaged_model_dir() -> Path | None:
    """The model folder inside the installed package, or ``None`` when there is none."""
    folder = Path(str(resources.files("fer_keras"))) / PACKAGED_MODEL
    return folder if (folder / METADATA_FILE).is_file() else None


def repository_model_dir() -> Path | None:
    """``models/best_model`` of the checkout this package was imported from, or ``None``."""
    folder = Path(__file__).resolve().parents[2] / BEST_MODEL_DIR
    return folder if (folder / METADATA_FILE).is_file() else None


def default_model_dir() -> Path:
    """The default model folder (see the module docstring for the order).

    Never raises: when nothing is found it returns ``models/best_model`` relative to the
    working directory, so the loader's error names the path a user expects.
    """
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env)
    return packaged_model_dir() or repository_model_dir() or Path(BEST_MODEL_DIR)
