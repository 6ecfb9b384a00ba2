"""fer_keras.data.folders: scanning the ``<root>/<split>/<emotion>/*`` layout without decoding anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_keras.data.folders import dataset_classes, is_image_file, list_classes, scan_split, scan_split_lenient
from fer_keras.errors import FerError


def _touch(root: Path, *names: str) -> None:
    """Create empty files (scanning never opens them) under ``root``."""
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def _one_line(err: pytest.ExceptionInfo[FerError]) -> str:
    [message] = err.value.problems
    assert "\n" not in message
    return message


@pytest.fixture
def layout(tmp_path) -> Path:
    """train: happy 3, angry 2 (plus files the scan must skip); valid: happy 1, angry 1."""
    _touch(
        tmp_path,
        "train/happy/b.png",
        "train/happy/a.JPG",  # extensions match in any case
        "train/happy/c.webp",
        "train/happy/.hidden.png",  # hidden files are not images
        "train/happy/notes.txt",
        "train/angry/x.jpeg",
        "train/angry/y.bmp",
        "train/.cache/z.png",  # hidden folders are not classes
        "valid/happy/v.png",
        "valid/angry/w.png",
    )
    (tmp_path / "train" / "README.md").write_text("not a class folder")
    return tmp_path


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.png", True), ("a.JPEG", True), ("a.tiff", True), ("a.txt", False), (".a.png", False), ("png", False)],
)
def test_is_image_file_goes_by_extension_and_skips_hidden_files(name, expected):
    assert is_image_file(name) is expected


def test_classes_are_the_sorted_visible_folders_of_train(layout):
    assert list_classes(layout / "train") == ("angry", "happy")
    assert dataset_classes(layout) == ("angry", "happy")
    assert dataset_classes(str(layout)) == ("angry", "happy")


def test_scan_split_labels_sorted_paths_in_class_order(layout):
    files = scan_split(layout, "train")
    assert files.split == "train" and files.root == layout and files.class_names == ("angry", "happy")
    assert [Path(p).name for p in files.paths] == ["x.jpeg", "y.bmp", "a.JPG", "b.png", "c.webp"]
    assert files.labels == (0, 0, 1, 1, 1)
    assert len(files) == 5 and files.counts() == {"angry": 2, "happy": 3}


def test_scan_split_follows_the_given_class_order(layout):
    files = scan_split(layout, "valid", ("happy", "angry"))
    assert [Path(p).name for p in files.paths] == ["v.png", "w.png"]
    assert files.labels == (0, 1) and files.counts() == {"happy": 1, "angry": 1}


def test_every_missing_or_empty_class_folder_is_named_one_per_line(layout):
    (layout / "test" / "angry").mkdir(parents=True)
    _touch(layout, "test/angry/.DS_Store.png")  # hidden: the folder still counts as empty
    with pytest.raises(FerError) as err:
        scan_split(layout, "test", ("angry", "happy"))
    assert err.value.problems == [
        f"{layout / 'test' / 'angry'}: empty class folder (no image files)",
        f"{layout / 'test' / 'happy'}: missing class folder",
    ]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root: None, "{root}: dataset folder not found"),
        (lambda root: root.mkdir(), "{root}/train: missing split folder (expected train, valid, test under {root})"),
        (lambda root: (root / "train").mkdir(parents=True), "{root}/train: no class folders"),
    ],
    ids=["no root", "no train", "no classes"],
)
def test_dataset_classes_errors_name_the_folder(tmp_path, setup, message):
    root = tmp_path / "data"
    setup(root)
    with pytest.raises(FerError) as err:
        dataset_classes(root)
    assert _one_line(err).startswith(message.format(root=root))


def test_scan_split_of_a_missing_split_names_it(layout):
    with pytest.raises(FerError) as err:
        scan_split(layout, "test")
    assert _one_line(err) == f"{layout / 'test'}: missing split folder"


def test_lenient_scan_allows_missing_classes_and_ignores_unknown_folders(layout):
    _touch(layout, "valid/unknown/u.png")
    files = scan_split_lenient(layout, "valid", ("angry", "disgust", "happy"))
    assert [Path(p).name for p in files.paths] == ["w.png", "v.png"]
    assert files.labels == (0, 2)
    assert files.counts() == {"angry": 1, "disgust": 0, "happy": 1}


def test_lenient_scan_of_a_flat_folder(tmp_path):
    _touch(tmp_path, "sad/1.png", "sad/2.png", "fear/3.jpg")
    files = scan_split_lenient(tmp_path, None, ("fear", "sad"))
    assert files.split == "" and files.labels == (0, 1, 1)


def test_lenient_scan_errors_name_the_folder(layout):
    with pytest.raises(FerError) as err:
        scan_split_lenient(layout, "test", ("angry",))
    assert _one_line(err) == f"{layout / 'test'}: folder not found"
    with pytest.raises(FerError) as err:
        scan_split_lenient(layout, "valid", ("fear", "sad"))
    assert _one_line(err) == f"{layout / 'valid'}: no images in any of the class folders fear, sad"
