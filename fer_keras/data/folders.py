"""The MMAFEDB folder layout: ``<root>/{train,valid,test}/<emotion>/*.<image>``.

Scanning is pure file-system work (no TensorFlow, no decoding), shared by the
training pipeline and the data tools.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fer_keras.constants import IMAGE_EXTENSIONS, SPLITS
from fer_keras.errors import FerError


@dataclass(frozen=True)
class SplitFiles:
    """The image files of one split, with integer labels in ``class_names`` order."""

    split: str
    root: Path
    class_names: tuple[str, ...]
    paths: tuple[str, ...]
    labels: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(self.class_names, 0)
        for label in self.labels:
            out[self.class_names[label]] += 1
        return out


def is_image_file(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def list_classes(split_dir: Path) -> tuple[str, ...]:
    """Sorted class folder names of one split folder."""
    return tuple(sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith(".")))


def dataset_classes(root: str | os.PathLike) -> tuple[str, ...]:
    """The class names of a dataset: the sorted class folders of its ``train`` split.

    Raises:
        FerError: the root or its ``train`` folder is missing or has no class folders.
    """
    root = Path(root)
    if not root.is_dir():
        raise FerError(f"{root}: dataset folder not found")
    train = root / "train"
    if not train.is_dir():
        raise FerError(f"{train}: missing split folder (expected {', '.join(SPLITS)} under {root})")
    classes = list_classes(train)
    if not classes:
        raise FerError(f"{train}: no class folders (expected <emotion>/ folders of images)")
    return classes


def scan_split(root: str | os.PathLike, split: str, class_names: tuple[str, ...] | None = None) -> SplitFiles:
    """List the images of one split, labelled by ``class_names`` (default: the dataset's).

    A class folder that is missing or empty is an error naming the folder, except in
    evaluation splits of datasets that simply lack a class (pass ``allow_missing``
    through :func:`scan_split_lenient` for that).

    Example:
        >>> files = scan_split("data/demo", "train")  # doctest: +SKIP
        >>> files.counts()["happy"]  # doctest: +SKIP
        40
    """
    root = Path(root)
    class_names = class_names or dataset_classes(root)
    split_dir = root / split
    if not split_dir.is_dir():
        raise FerError(f"{split_dir}: missing split folder")
    problems = []
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(class_names):
        folder = split_dir / name
        if not folder.is_dir():
            problems.append(f"{folder}: missing class folder")
            continue
        files = sorted(e.path for e in os.scandir(folder) if e.is_file() and is_image_file(e.name))
        if not files:
            problems.append(f"{folder}: empty class folder (no image files)")
        paths.extend(files)
        labels.extend([label] * len(files))
    if problems:
        raise FerError(problems)
    return SplitFiles(split, root, tuple(class_names), tuple(paths), tuple(labels))


def scan_split_lenient(root: str | os.PathLike, split: str | None, class_names: tuple[str, ...]) -> SplitFiles:
    """Like :func:`scan_split` but classes may be missing or empty (for evaluation sets).

    ``split=None`` reads a flat ``<root>/<emotion>/`` folder. Folders whose name is not
    in ``class_names`` are ignored.
    """
    root = Path(root)
    split_dir = root / split if split else root
    if not split_dir.is_dir():
        raise FerError(f"{split_dir}: folder not found")
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(class_names):
        folder = split_dir / name
        if folder.is_dir():
            files = sorted(e.path for e in os.scandir(folder) if e.is_file() and is_image_file(e.name))
            paths.extend(files)
            labels.extend([label] * len(files))
    if not paths:
        raise FerError(f"{split_dir}: no images in any of the class folders {', '.join(class_names)}")
    return SplitFiles(split or "", root, tuple(class_names), tuple(paths), tuple(labels))
