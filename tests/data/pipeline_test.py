"""load_split: decoding a split into memory, and refusing classes or splits with no usable image."""

from __future__ import annotations

import shutil

import pytest

from fer_keras.data.pipeline import load_split
from fer_keras.errors import FerError

GARBAGE = b"\x00\x01 definitely not an image \xff" * 8


def _copy(tiny_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    return data


def _spoil(folder) -> int:
    """Overwrite every file of ``folder`` with garbage bytes; return how many."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    for path in files:
        path.write_bytes(GARBAGE)
    return len(files)


def test_load_split_decodes_every_image(tiny_data):
    train = load_split(tiny_data, "train", (48, 48), "grayscale", quiet=True)
    assert train.images.shape == (56, 48, 48, 1) and train.images.dtype.name == "uint8"
    assert train.class_counts().tolist() == [8] * 7 and not train.failures


def test_some_corrupt_files_are_skipped_with_a_warning(tmp_path, tiny_data, capsys):
    data = _copy(tiny_data, tmp_path)
    bad = data / "train" / "sad" / "zz_broken.png"
    bad.write_bytes(GARBAGE)
    train = load_split(data, "train", (48, 48), "grayscale", quiet=True)
    assert len(train) == 56 and [path for path, _ in train.failures] == [str(bad)]
    assert f"skipped unreadable image {bad}" in capsys.readouterr().err


def test_class_whose_files_are_all_corrupt_is_an_error_naming_it_and_the_count(tmp_path, tiny_data):
    data = _copy(tiny_data, tmp_path)
    folder = data / "train" / "fear"
    count = _spoil(folder)
    with pytest.raises(FerError) as info:
        load_split(data, "train", (48, 48), "grayscale", quiet=True)
    [message] = info.value.problems
    assert message.startswith(f"{folder}: ") and f"all {count} image files failed to decode" in message
    assert "\n" not in message


def test_every_spoiled_class_is_named(tmp_path, tiny_data):
    data = _copy(tiny_data, tmp_path)
    spoiled = [data / "valid" / "angry", data / "valid" / "surprise"]
    for folder in spoiled:
        _spoil(folder)
    with pytest.raises(FerError) as info:
        load_split(data, "valid", (48, 48), "rgb", quiet=True)
    assert [p.split(": ")[0] for p in info.value.problems] == [str(f) for f in spoiled]


def test_split_with_no_readable_image_is_one_error_naming_it_and_the_count(tmp_path, tiny_data):
    data = _copy(tiny_data, tmp_path)
    count = sum(_spoil(folder) for folder in (data / "valid").iterdir())
    with pytest.raises(FerError) as info:
        load_split(data, "valid", (48, 48), "grayscale", quiet=True)
    [message] = info.value.problems
    assert message.startswith(f"{data / 'valid'}: ") and f"all {count} image files failed to decode" in message
