"""History files: NaN/inf never reach the JSON, and reading back checks the format."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fer_keras.errors import FerError
from fer_keras.training.history import json_safe, new_history, read_history, write_history


def _raise_on_constant(name):
    raise AssertionError(f"bare {name} in the history file")


def test_non_finite_metrics_are_written_as_null(tmp_path):
    record = new_history("run", {"learning_rate": 0.01}, ["a", "b"], "abc")
    record["history"]["loss"] = [0.9, float("nan"), np.float32("inf")]
    record["history"]["val_loss"] = [np.float64("-inf")]
    record["history"]["val_accuracy"] = [np.float32(0.25)]
    record.update(best_val_accuracy=float("nan"), status="failed", error="run: loss became nan at epoch 2")
    path = tmp_path / "run_history.json"
    write_history(path, record)
    saved = json.loads(path.read_text(), parse_constant=_raise_on_constant)
    assert saved["history"]["loss"] == [0.9, None, None] and saved["history"]["val_loss"] == [None]
    assert saved["history"]["val_accuracy"] == [0.25] and saved["best_val_accuracy"] is None
    assert saved["status"] == "failed" and saved["error"].endswith("epoch 2")
    # The in-memory record is left as it was.
    assert math.isnan(record["history"]["loss"][1])
    assert read_history(path)["name"] == "run"


def test_json_safe_keeps_everything_else():
    value = {"n": 3, "ok": True, "none": None, "s": "nan", "nested": ({"x": 1.5},), "big": 1e308}
    assert json_safe(value) == {"n": 3, "ok": True, "none": None, "s": "nan", "nested": [{"x": 1.5}], "big": 1e308}


def test_unreadable_history_is_a_ferror_naming_the_file(tmp_path):
    path = tmp_path / "x_history.json"
    path.write_text('{"name": "x", "status": NaN')
    with pytest.raises(FerError, match=f"{path}: invalid JSON"):
        read_history(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read history file"),
        (b"", "invalid JSON at line 1, column 1"),
        (b'{"name": "x", "status": "done", "con', "invalid JSON at line 1"),
        (b"\xff\xfe not utf-8", "cannot read history file"),
        (b"[1, 2]", "history must be a JSON object; got list"),
        (b'{"name": "x", "status": "done"}', "not a fer_keras history file (missing config, history)"),
    ],
    ids=["missing", "empty", "truncated", "not utf-8", "not an object", "missing fields"],
)
def test_read_history_problems_are_one_line_ferrors_naming_the_file(tmp_path, content, message):
    path = tmp_path / "run_history.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(FerError) as err:
        read_history(path)
    [line] = err.value.problems
    assert line.startswith(f"{path}: ") and message in line and "\n" not in line


def test_read_history_of_a_folder_is_a_ferror(tmp_path):
    folder = tmp_path / "dir_history.json"
    folder.mkdir()
    with pytest.raises(FerError, match=f"{folder}: cannot read history file"):
        read_history(folder)
