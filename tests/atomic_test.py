"""fer_keras.atomic: JSON without NaN, the replace rule, atomic folders, and stale-temporary cleanup."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from fer_keras.atomic import (
    atomic_dir,
    atomic_path,
    check_replaceable,
    remove_stale_temps,
    write_json_atomic,
    write_text_atomic,
)
from fer_keras.errors import FerError


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"valid_metrics": {"loss": math.nan}}, "valid_metrics.loss"),
        ({"history": {"loss": [0.5, math.inf]}}, r"history.loss\[1\]"),
        ({"lr": np.float32("nan")}, "lr"),
    ],
)
def test_json_with_nan_or_infinity_is_refused_and_nothing_is_written(tmp_path, data, where):
    path = tmp_path / "m.json"
    path.write_text('{"earlier": 1}\n')
    with pytest.raises(ValueError, match=rf"m.json: {where} is not a finite number; JSON has no NaN"):
        write_json_atomic(path, data)
    assert json.loads(path.read_text()) == {"earlier": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]  # no temporary left either
    write_json_atomic(path, {"loss": np.float32(0.25), "n": np.int64(3)})
    assert json.loads(path.read_text()) == {"loss": 0.25, "n": 3}


def test_check_replaceable_allows_only_missing_empty_or_recognised(tmp_path):
    def is_ours(folder):
        return (folder / "ours.json").is_file()

    check_replaceable(tmp_path / "missing", is_ours, "ours")
    (tmp_path / "empty").mkdir()
    check_replaceable(tmp_path / "empty", is_ours, "ours")
    (tmp_path / "earlier").mkdir()
    (tmp_path / "earlier" / "ours.json").write_text("{}")
    check_replaceable(tmp_path / "earlier", is_ours, "ours")
    (tmp_path / "thesis").mkdir()
    (tmp_path / "thesis" / "t.txt").write_text("thesis")
    with pytest.raises(FerError, match=r"thesis: exists and is not an output of ours; refusing to replace it"):
        check_replaceable(tmp_path / "thesis", is_ours, "an output of ours")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FerError, match=r"file: exists and is a file; refusing to replace it"):
        check_replaceable(tmp_path / "file", is_ours, "ours")


def test_atomic_dir_swaps_the_folder_in_whole(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with atomic_dir(out) as tmp:
        (tmp / "new.txt").write_text("new")
        assert (out / "old.txt").is_file()  # the old folder stays until the swap
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("killed")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_remove_stale_temps_takes_only_the_exact_patterns(tmp_path):
    target = tmp_path / "model.onnx"
    stale = [tmp_path / ".model.onnx.k3j_x9qa.onnx", tmp_path / ".model.onnx.abcd1234.tmp"]
    keep = [
        tmp_path / ".model.onnx.backup.onnx",  # not 8 random characters
        tmp_path / ".model.onnx.k3j_x9qa.onnx.mine",
        tmp_path / "model.onnx.k3j_x9qa.onnx",  # no leading dot
        tmp_path / ".other.onnx.k3j_x9qa.onnx",  # another target
    ]
    for path in stale + keep:
        path.write_text("x")
    assert remove_stale_temps(target, suffix=".onnx") == [stale[0]]
    assert remove_stale_temps(target) == [stale[1]]
    assert sorted(tmp_path.iterdir()) == sorted(keep)


def test_remove_stale_temps_folders_need_recognised_content_and_old_ones_are_put_back(tmp_path):
    target = tmp_path / "out"

    def is_ours(folder):
        return all(p.name == "ours.bin" for p in folder.iterdir())

    staging, user = tmp_path / ".out.abcdefgh", tmp_path / ".out.notes123"
    for folder, name in [(staging, "ours.bin"), (user, "thesis.txt")]:
        folder.mkdir()
        (folder / name).write_text("x")
    (tmp_path / ".out.qwertyui").mkdir()  # an empty staging folder
    assert remove_stale_temps(target) == []  # without is_ours_dir, no folder is touched
    assert remove_stale_temps(target, is_ours_dir=is_ours) == [staging, tmp_path / ".out.qwertyui"]
    assert (user / "thesis.txt").is_file()
    # A swap killed between its two renames: the previous output is put back, not deleted.
    old = tmp_path / ".out.zzzzzzzz.old"
    old.mkdir()
    (old / "ours.bin").write_text("previous")
    assert remove_stale_temps(target, is_ours_dir=is_ours) == [old]
    assert (target / "ours.bin").read_text() == "previous"
    legacy = tmp_path / ".out.old"
    legacy.mkdir()
    (legacy / "ours.bin").write_text("older")
    assert remove_stale_temps(target, is_ours_dir=is_ours) == [legacy]
    assert not legacy.exists() and (target / "ours.bin").read_text() == "previous"


@pytest.fixture
def umask():
    """``os.umask``, with the process's umask restored after the test."""
    old = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(old)


def test_atomic_path_crash_mid_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_path(target, suffix=".json") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.json.") and tmp.suffix == ".json"
        tmp.write_text("half of the new")
        raise KeyboardInterrupt  # killed mid-write
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_write_text_atomic_failing_mid_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("old")
    # A lone surrogate cannot be encoded: write_text fails after opening (and truncating) the temporary.
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(target, "new text \ud800")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_write_text_atomic_creates_missing_folders(tmp_path):
    target = tmp_path / "a" / "b" / "c.txt"
    write_text_atomic(target, "x")
    assert target.read_text() == "x"


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600), (0o002, 0o664)])
def test_written_file_mode_follows_the_umask(tmp_path, umask, mask, mode):
    target = tmp_path / "out.txt"
    target.write_text("old")
    target.chmod(0o600)  # the mode of the replaced file does not carry over
    umask(mask)
    write_text_atomic(target, "new")
    assert target.stat().st_mode & 0o777 == mode
    with atomic_path(tmp_path / "other.bin", suffix=".bin") as tmp:
        tmp.write_bytes(b"x")
    assert (tmp_path / "other.bin").stat().st_mode & 0o777 == mode
