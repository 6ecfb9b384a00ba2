"""Shared fixtures: tiny generated datasets and specs. No test needs the network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fer_keras.environment import quiet_environment

quiet_environment()  # before any test module imports TensorFlow or albumentations

ROOT = Path(__file__).resolve().parents[1]
FER2013 = ROOT.parent / "shared" / "datasets" / "fer2013"

TINY_SPEC = {
    "name": "tiny",
    "layers": [
        {"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "relu", "padding": "same"},
        {"type": "MaxPooling2D", "pool_size": 2},
        {"type": "Conv2D", "filters": 16, "kernel_size": 3, "activation": "relu", "padding": "same"},
        {"type": "GlobalAveragePooling2D"},
        {"type": "Dense", "units": "num_classes", "activation": "softmax"},
    ],
}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A 7-class demo dataset with 8/4/4 images per class (read-only for tests)."""
    from fer_keras.data.demo import make_demo_dataset

    root = tmp_path_factory.mktemp("tiny") / "data"
    make_demo_dataset(root, {"train": 8, "valid": 4, "test": 4}, seed=1)
    return root


@pytest.fixture
def tiny_spec(tmp_path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_SPEC), encoding="utf-8")
    return path


@pytest.fixture
def fer2013() -> Path:
    if not (FER2013 / "test").is_dir():
        pytest.skip(f"{FER2013} is absent")
    return FER2013
