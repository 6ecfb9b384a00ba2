"""Property test: the spec, grid, config and recipe validators never fail otherwise than by FerError.

Each validator reads a file through its public loader. Documents are random JSON (nested
dicts and lists of strings, ints, floats, NaN, infinities, 5,000-digit integers, 1,000-level
nesting) or near-valid (a valid document with one field replaced by such a value). Every
example must give a valid object, or a FerError whose every line names the file and is one
line; within a deadline and a memory bound. No TensorFlow: nothing here builds a model.
``FER_PROPERTY_EXAMPLES=2000`` runs more examples than CI's 120 per test.
"""

from __future__ import annotations

import copy
import json
import os
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fer_keras.data.recipe import Recipe, load_recipe
from fer_keras.errors import FerError
from fer_keras.model.spec import ArchitectureSpec, load_spec
from fer_keras.training.config import TrainConfig, load_config
from fer_keras.training.grid import expand_grid, load_grid

DEADLINE_MS = 2_000  # per example
MAX_PEAK_BYTES = 64 * 2**20  # Python allocations per example (tracemalloc peak)
PROPERTY = settings(
    max_examples=int(os.environ.get("FER_PROPERTY_EXAMPLES", "120")),  # more for a longer local hunt
    deadline=DEADLINE_MS,
    database=None,  # nothing written into the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@dataclass(frozen=True)
class Raw:
    """JSON text written as is: tokens json.dumps cannot produce (5,000-digit integers, 1e999, deep nesting)."""

    text: str


def dump(value: Any) -> str:
    """JSON text of ``value``; floats NaN/inf become the NaN/Infinity tokens, Raw is copied."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(dump(v) for v in value) + "]"
    return json.dumps(value)


SPECIAL = st.sampled_from(
    [
        Raw("9" * 5000),
        Raw("-" + "1" * 4301),
        Raw("1e999"),
        Raw("-1e999"),
        Raw("NaN"),
        Raw("Infinity"),
        Raw("[" * 1000 + "]" * 1000),
        Raw('{"a": ' * 70 + "1" + "}" * 70),
        10**12,
        2**63,
        -(2**31),
        10**300,
        0,
        -1,
        1,
        True,
        None,
        "",
        "../escape",
        "a/b",
        "nul\0byte",
        "num_classes",
        "x" * 5000,
    ]
)
# Strings and keys the validators know, so random documents sometimes look right.
WORDS = st.sampled_from(
    [
        "name", "layers", "type", "Conv2D", "Dense", "Dropout", "filters", "units", "kernel_size", "rate",
        "axes", "blocks", "datasets", "defaults", "augment", "arch", "data", "epochs", "learning_rate",
        "optimizer", "adam", "sgd", "rgb", "history_dir", "runs_dir", "target", "augmentations", "transform",
        "__class_fullname__", "Compose", "HorizontalFlip", "Affine", "transforms", "p", "seed", "softmax",
    ]
)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | WORDS
    | SPECIAL
)
KEYS = WORDS | st.text(max_size=8)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=16,
)

PIPELINE = {
    "__class_fullname__": "Compose",
    "p": 1.0,
    "transforms": [
        {"__class_fullname__": "Affine", "rotate": [-40, 40], "border_mode": 1, "p": 1.0},
        {"__class_fullname__": "HorizontalFlip", "p": 0.5},
    ],
}
VALID: dict[str, dict[str, Any]] = {
    "spec": {
        "name": "good",
        "layers": [
            {"type": "Conv2D", "filters": 8, "kernel_size": 3, "padding": "same", "activation": "relu"},
            {"type": "BatchNormalization", "momentum": 0.9},
            {"type": "MaxPooling2D", "pool_size": 2},
            {"type": "Dropout", "rate": 0.25},
            {"type": "Flatten"},
            {"type": "Dense", "units": "num_classes", "activation": "softmax"},
        ],
    },
    "grid": {
        "name": "g",
        "datasets": {"augment": "data/demo"},
        "defaults": {"epochs": 2, "history_dir": "h", "runs_dir": "r", "augment": {"flip": True, "zoom": 0.1}},
        "axes": {"arch": ["architectures/demo_small.json"], "optimizer": ["adam", "sgd"]},
        "blocks": [{"color_mode": ["rgb"], "batch_size": [16, 32]}, {"color_mode": ["grayscale"], "seed": [1, 2]}],
        "best_model": "models/x",
    },
    "config": {
        "arch": "architectures/fer_vgg.json",
        "data": "data/x",
        "optimizer": "adamw",
        "learning_rate": 0.001,
        "weight_decay": 0.02,
        "batch_size": 64,
        "color_mode": "grayscale",
        "image_size": [48, 48],
        "epochs": 40,
        "augment": {"flip": True, "rotation": 15, "zoom": 0.15, "noise": 0.02},
        "label_smoothing": 0.1,
        "lr_schedule": "cosine",
        "warmup_epochs": 1,
        "name": "run",
        "history_dir": "history",
        "runs_dir": "runs",
    },
    "recipe": {"name": "r", "target": {"happy": 10, "sad": 20}, "seed": 1, "augmentations": PIPELINE},
}
LOADERS: dict[str, tuple[Callable[[Path], Any], type | tuple[type, ...]]] = {
    "spec": (load_spec, ArchitectureSpec),
    "grid": (lambda path: expand_grid(load_grid(path)), list),
    "config": (load_config, TrainConfig),
    "recipe": (load_recipe, Recipe),
}


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key/index path into a JSON document (the document itself is ``()``)."""
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


@st.composite
def near_valid(draw, kind: str) -> Any:
    """A valid document of ``kind`` with one value replaced (or one key removed)."""
    doc = copy.deepcopy(VALID[kind])
    path = draw(st.sampled_from(_paths(doc)[1:]))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and draw(st.booleans()) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(JSON)
    return doc


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("property")
    # Warm up: albumentations' first import takes seconds, which is not the validator's time.
    for kind, (loader, _) in LOADERS.items():
        path = folder / f"{kind}.json"
        path.write_text(json.dumps(VALID[kind]), encoding="utf-8")
        loader(path)
    return folder


def check(folder: Path, kind: str, document: Any) -> None:
    """Validate ``document`` through the file loader of ``kind``; FerError lines name the file."""
    loader, valid_type = LOADERS[kind]
    path = folder / f"{kind}-example.json"
    path.write_text(dump(document), encoding="utf-8")
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = loader(path)
    except FerError as err:
        assert err.problems, "a FerError without a message"
        for line in err.problems:
            assert "\n" not in line and line.startswith(f"{path}: "), line
            assert len(line) < 2_000, line[:300]
    else:
        assert isinstance(result, valid_type)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < MAX_PEAK_BYTES, f"{peak / 2**20:.0f} MiB"
    assert time.perf_counter() - start < DEADLINE_MS / 1000


@pytest.mark.parametrize("kind", list(LOADERS))
@PROPERTY
@given(document=JSON)
def test_random_documents(folder, kind, document):
    check(folder, kind, document)


@pytest.mark.parametrize("kind", list(LOADERS))
@PROPERTY
@given(data=st.data())
def test_near_valid_documents(folder, kind, data):
    check(folder, kind, data.draw(near_valid(kind)))


@pytest.mark.parametrize("kind", list(LOADERS))
def test_the_valid_documents_are_valid(folder, kind):
    loader, valid_type = LOADERS[kind]
    assert isinstance(loader(folder / f"{kind}.json"), valid_type)
