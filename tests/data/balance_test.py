"""Balancing builds a new folder with exact counts, never touches the source, and is idempotent."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import pytest

from fer_keras.data import balance_augment, balance_plan
from fer_keras.data.balance import balance, describe_plan, link_or_copy, plan_balance
from fer_keras.errors import FerError
from fer_keras.data.recipe import parse_recipe

PIPELINE = {
    "__class_fullname__": "Compose",
    "p": 1.0,
    "transforms": [
        {"__class_fullname__": "Affine", "rotate": [-40, 40], "translate_percent": [-0.2, 0.2], "border_mode": 1},
        {"__class_fullname__": "HorizontalFlip", "p": 0.5},
    ],
}
# 6 originals per class: grow, trim and keep.
TARGETS = {"angry": 4, "disgust": 10, "fear": 6, "happy": 13, "neutral": 3, "sad": 8, "surprise": 7}


def make_recipe(**changes):
    data = {"name": "test", "target": dict(TARGETS), "trim": "smallest_first", "seed": 7, "augmentations": PIPELINE}
    data.update(changes)
    return parse_recipe(data, where="test.json")


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    from fer_keras.data.demo import make_demo_dataset

    root = tmp_path_factory.mktemp("balance") / "src"
    make_demo_dataset(root, {"train": 6, "valid": 2, "test": 2}, seed=3)
    return root


def tree_digest(root: Path) -> str:
    """Names, contents and mtimes of every file under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            digest.update(f"{path.relative_to(root)}\0{st.st_mtime_ns}\0".encode() + path.read_bytes())
    return digest.hexdigest()


def file_times(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


def count_images(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if not p.name.startswith("."))


def test_balance_reaches_exact_targets_and_links_originals(source, tmp_path):
    before = tree_digest(source)
    out = tmp_path / "out"
    result = balance(make_recipe(), source, out, workers=1)
    assert tree_digest(source) == before  # the source is never written
    assert result.status == "built" and result.generated == sum(max(0, t - 6) for t in TARGETS.values())
    for name, target in TARGETS.items():
        assert count_images(out / "train" / name) == target
    for split in ("valid", "test"):
        for name in TARGETS:
            originals = sorted(p.name for p in (source / split / name).iterdir())
            assert sorted(p.name for p in (out / split / name).iterdir()) == originals
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["counts_before"] == dict.fromkeys(TARGETS, 6) and manifest["counts_after"] == TARGETS
    assert manifest["recipe_sha256"] == make_recipe().sha256()
    # Trimmed files: listed, the smallest ones, not linked into the output.
    trimmed = manifest["trimmed"]["neutral"]
    assert len(trimmed) == 3
    sizes = sorted((source / p).stat().st_size for p in (source / "train" / "neutral").iterdir())
    assert sorted((source / p).stat().st_size for p in trimmed) == sizes[:3]
    assert not any((out / p).exists() for p in trimmed)
    # Kept originals are hard links to the source files (same inode).
    kept = [p for p in (out / "train" / "fear").iterdir()]
    assert len(kept) == 6
    for path in kept:
        assert path.stat().st_ino == (source / "train" / "fear" / path.name).stat().st_ino
    # Every generated file is recorded with its source image, which is a kept original.
    generated = manifest["generated"]["happy"]
    assert sorted(generated) == [f"happy_aug_{n:06d}.png" for n in range(7)]
    for name, src in generated.items():
        assert (out / "train" / "happy" / name).is_file() and (out / src).is_file()
    assert not list(tmp_path.glob(".out.*"))  # no staging folder left behind


def test_second_run_writes_nothing(source, tmp_path):
    out = tmp_path / "out"
    balance(make_recipe(), source, out, workers=1)
    times = file_times(out)
    result = balance(make_recipe(), source, out, workers=1)
    assert result.status == "up-to-date" and result.generated == 0
    assert file_times(out) == times
    assert "already up to date" in describe_plan(plan_balance(make_recipe(), source, out))


def test_images_do_not_depend_on_worker_count(source, tmp_path):
    recipe = make_recipe(target=8)
    balance(recipe, source, tmp_path / "one", workers=1)
    balance(recipe, source, tmp_path / "two", workers=2)
    names = sorted(p.name for p in (tmp_path / "one" / "train" / "sad").glob("*_aug_*"))
    assert len(names) == 2
    for name in names:
        one = (tmp_path / "one" / "train" / "sad" / name).read_bytes()
        assert one == (tmp_path / "two" / "train" / "sad" / name).read_bytes()


def test_changed_recipe_rebuilds_into_a_fresh_folder(source, tmp_path):
    out = tmp_path / "out"
    balance(make_recipe(), source, out, workers=1)
    first = (out / "train" / "happy" / "happy_aug_000000.png").read_bytes()
    result = balance(make_recipe(seed=8, trim="random"), source, out, workers=1)
    assert result.status == "built" and not result.resumed
    assert (out / "train" / "happy" / "happy_aug_000000.png").read_bytes() != first
    assert json.loads((out / "manifest.json").read_text())["recipe"]["seed"] == 8
    assert count_images(out / "train" / "neutral") == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # swapped, old build and staging gone


def test_interrupted_build_resumes_where_it_stopped(source, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real = balance_augment.augment_file
    calls = []

    def dying(*args, **kwargs):
        if len(calls) == 5:
            raise KeyboardInterrupt
        calls.append(args[2])
        real(*args, **kwargs)

    monkeypatch.setattr(balance_augment, "augment_file", dying)
    with pytest.raises(KeyboardInterrupt):
        balance(make_recipe(), source, out, workers=1)
    assert not out.exists()  # the output never holds a half-built dataset
    plan = plan_balance(make_recipe(), source, out)
    assert "would resume an interrupted build (5 of 14 images exist)" in describe_plan(plan)
    (Path(calls[0]).parent / ".leftover.png.123.tmp").write_bytes(b"half")
    kept = {p: Path(p).stat().st_mtime_ns for p in calls}
    monkeypatch.setattr(balance_augment, "augment_file", real)
    result = balance(make_recipe(), source, out, workers=1)
    assert result.resumed and result.generated == 9
    for name, target in TARGETS.items():
        assert count_images(out / "train" / name) == target
    assert not list(out.rglob("*.tmp"))
    for path in kept:  # finished images of the first attempt were kept, not redone
        moved = out / Path(path).relative_to(plan.staging)
        assert moved.stat().st_mtime_ns == kept[path]


def test_refuses_unsafe_output_folders(source, tmp_path):
    with pytest.raises(FerError, match="must be a new folder outside the source"):
        plan_balance(make_recipe(), source, source / "train" / "balanced")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FerError, match="is not a fer-balance output"):
        balance(make_recipe(), source, foreign, workers=1)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_per_class_target_must_match_the_classes(source, tmp_path):
    targets = dict(TARGETS)
    targets["hapy"] = targets.pop("happy")
    with pytest.raises(FerError) as info:
        plan_balance(make_recipe(target=targets), source, tmp_path / "out")
    lines = str(info.value).splitlines()
    assert lines[0].startswith("test.json: target.hapy: no class 'hapy' in") and lines[0].endswith("'happy'?")
    assert lines[1] == "test.json: 'target' has no count for class 'happy'"


def test_dry_run_plan_lists_every_class(source, tmp_path):
    text = describe_plan(plan_balance(make_recipe(), source, tmp_path / "out"))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert "angry 6 → 4 trim 2" in lines
    assert "happy 6 → 13 generate 7" in lines
    assert "fear 6 → 6 unchanged" in lines
    assert "train: 51 images (14 generated, 5 trimmed); valid/test: 28 linked" in text
    assert not (tmp_path / "out").exists()


def test_copies_when_hard_links_fail(tmp_path, monkeypatch):
    src = tmp_path / "a.png"
    src.write_bytes(b"pixels")

    def no_link(*_):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    link_or_copy(src, tmp_path / "b.png")
    assert (tmp_path / "b.png").read_bytes() == b"pixels"
    assert (tmp_path / "b.png").stat().st_ino != src.stat().st_ino


def test_targets_above_the_limits_are_refused_before_planning(source, tmp_path, monkeypatch):
    from fer_keras.data.recipe import Recipe

    # A Recipe built in code skips parse_recipe: plan_balance checks the limit itself.
    recipe = Recipe(name="big", target=10**9, augmentations=PIPELINE, file="big.json")
    with pytest.raises(FerError) as info:
        plan_balance(recipe, source, tmp_path / "out")
    assert info.value.problems == ["big.json: target: got 1,000,000,000; limit 100,000"]
    monkeypatch.setattr(balance_plan, "MAX_IMAGES", 50)
    with pytest.raises(FerError) as info:
        plan_balance(make_recipe(), source, tmp_path / "out")
    assert info.value.problems == ["test.json: target: got 51 train images in total (7 classes); limit 50"]
