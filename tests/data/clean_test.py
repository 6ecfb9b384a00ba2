"""fer_keras.data.clean: every planted defect is found exactly, with the documented removal policy."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_keras.data.clean import REMOVABLE_KINDS, find_problems, inspect_files, near_pairs, phash, removal_plan
from fer_keras.data.demo import make_demo_dataset
from fer_keras.errors import FerError

# The removal each planted defect must produce: path -> reason.
EXPECTED_REMOVALS = {
    "train/angry/zz_truncated.jpg": "corrupt",
    "train/angry/zz_not_an_image.png": "corrupt",
    "train/happy/zz_tiny.png": "small",
    "valid/sad/zz_black.png": "blank",
    "train/fear/zz_dup.jpg": "duplicate",
    "train/fear/zz_rgb_twin.png": "duplicate",
    "train/happy/happy_0001.png": "conflict",
    "train/sad/zz_conflict.png": "conflict",
    "train/neutral/neutral_0001.png": "leak",
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """A small demo dataset nobody modifies (tests copy it)."""
    root = tmp_path_factory.mktemp("pristine") / "data"
    make_demo_dataset(root, {"train": 4, "valid": 2, "test": 2}, seed=3)
    return root


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` by relative path, plus every folder (as 'dir')."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            out[os.path.relpath(os.path.join(dirpath, name), root)] = "dir"
        for name in filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return out


def plant_defects(root: Path, near_source: str) -> str:
    """Plant one of each defect in a demo dataset; returns the near-duplicate's path."""
    jpg = (root / "train/angry/angry_0000.jpg").read_bytes()
    (root / "train/angry/zz_truncated.jpg").write_bytes(jpg[: len(jpg) // 2])
    (root / "train/angry/zz_not_an_image.png").write_bytes(b"this is not a png")
    noise = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    Image.fromarray(noise).save(root / "train/happy/zz_tiny.png")
    Image.new("L", (48, 48), 0).save(root / "valid/sad/zz_black.png")
    shutil.copyfile(root / "train/fear/fear_0000.jpg", root / "train/fear/zz_dup.jpg")
    # The same pixels stored as RGB: decodes to the same image, so it is the same duplicate group.
    with Image.open(root / "train/fear/fear_0000.jpg") as img:
        img.convert("L").convert("RGB").save(root / "train/fear/zz_rgb_twin.png")
    shutil.copyfile(root / "train/happy/happy_0001.png", root / "train/sad/zz_conflict.png")
    shutil.copyfile(root / "train/neutral/neutral_0001.png", root / "test/neutral/zz_leak.png")
    near = str(Path(near_source).with_name("zz_near.png"))
    with Image.open(root / near_source) as img:
        pixels = np.asarray(img.convert("L"), dtype=np.int16) + 3  # a slightly brighter copy
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / near)
    return near


def near_sets(report: dict) -> set[frozenset[str]]:
    return {frozenset(f["path"] for f in g["files"]) for g in report["findings"]["near_duplicate"]}


@pytest.fixture
def planted(pristine, tmp_path) -> tuple[Path, dict, str]:
    """(root, baseline report of the clean copy, near-duplicate path) after planting."""
    root = tmp_path / "data"
    shutil.copytree(pristine, root)
    baseline = find_problems(root, near_duplicates=True)
    in_groups = {p for group in near_sets(baseline) for p in group}
    source = next(
        f"train/surprise/{n}"
        for n in sorted(os.listdir(root / "train/surprise"))
        if f"train/surprise/{n}" not in in_groups
    )
    near = plant_defects(root, source)
    return root, baseline, (source, near)


def test_demo_data_has_nothing_to_remove(pristine):
    report = find_problems(pristine)
    assert report["to_remove"] == []
    assert report["files_scanned"] == 7 * 8
    assert all(count == 0 for per_split in report["counts"].values() for count in per_split.values())


def test_every_planted_defect_is_found_exactly(planted):
    root, baseline, (source, near) = planted
    report = find_problems(root, near_duplicates=True)
    assert {item["path"]: item["reason"] for item in report["to_remove"]} == EXPECTED_REMOVALS
    findings = report["findings"]
    assert {f["path"] for f in findings["corrupt"]} == {
        "train/angry/zz_truncated.jpg",
        "train/angry/zz_not_an_image.png",
    }
    assert findings["small"] == [{"path": "train/happy/zz_tiny.png", "size": [8, 8]}]
    assert findings["blank"] == [{"path": "valid/sad/zz_black.png", "std": 0.0}]
    assert findings["duplicate"] == [
        {"kept": "train/fear/fear_0000.jpg", "remove": ["train/fear/zz_dup.jpg", "train/fear/zz_rgb_twin.png"]}
    ]
    [conflict] = findings["conflict"]
    assert (conflict["kept"], conflict["remove"]) == ([], ["train/happy/happy_0001.png", "train/sad/zz_conflict.png"])
    [leak] = findings["leak"]
    assert leak["kept"] == ["test/neutral/zz_leak.png"]  # test stays intact: the train copy goes
    assert leak["remove"] == ["train/neutral/neutral_0001.png"]
    # Near groups list every copy of each look; without the planted exact copies they are the baseline's.
    copies = {
        "train/fear/zz_dup.jpg",
        "train/fear/zz_rgb_twin.png",
        "train/sad/zz_conflict.png",
        "test/neutral/zz_leak.png",
    }
    found = near_sets(report)
    assert frozenset({source, near}) in found
    assert {group - copies for group in found} == near_sets(baseline) | {frozenset({source, near})}
    assert report["counts"]["duplicate"] == {"train": 2, "valid": 0, "test": 0, "total": 2}
    assert report["counts"]["blank"]["valid"] == 1


def test_a_label_clash_only_across_splits_keeps_the_protected_copy(pristine, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(pristine, root)
    shutil.copyfile(root / "valid/angry/angry_0000.jpg", root / "test/sad/zz.jpg")
    report = find_problems(root)
    assert {i["path"]: i["reason"] for i in report["to_remove"]} == {"valid/angry/angry_0000.jpg": "leak"}
    [conflict] = report["findings"]["conflict"]
    assert (conflict["kept"], conflict["remove"]) == (["test/sad/zz.jpg"], [])


def test_thresholds_and_kinds(planted):
    root, _, _ = planted
    report = find_problems(root, min_size=4, blank_std=0.0)
    reasons = {i["path"]: i["reason"] for i in report["to_remove"]}
    assert "train/happy/zz_tiny.png" not in reasons and "valid/sad/zz_black.png" not in reasons
    assert "near_duplicate" not in report["findings"]
    assert removal_plan(report, ["leak"]) == [("train/neutral/neutral_0001.png", "leak")]
    with pytest.raises(FerError, match=r"'kinds' must be one of .*; got 'leaks'; did you mean 'leak'\?"):
        removal_plan(report, ["leaks"])
    assert set(REMOVABLE_KINDS) == {"corrupt", "small", "blank", "duplicate", "conflict", "leak"}


def test_bad_arguments_are_one_clear_error(pristine, tmp_path):
    with pytest.raises(FerError, match=r"'min_size' must be >= 1; got 0"):
        find_problems(pristine, min_size=0)
    with pytest.raises(FerError, match=r"'near_distance' must be <= 8; got 20"):
        find_problems(pristine, near_distance=20)
    with pytest.raises(FerError, match="dataset folder not found"):
        find_problems(tmp_path / "missing")


def test_the_process_pool_gives_the_serial_results(pristine):
    paths = sorted(str(p) for p in pristine.rglob("*.*"))
    many = (paths * 10)[:600]  # above the pool threshold
    assert inspect_files(many, want_phash=True, workers=2) == inspect_files(many, want_phash=True, workers=1)


def test_near_pairs_match_brute_force():
    rng = np.random.default_rng(1)
    hashes = rng.integers(0, 2**63, 400, dtype=np.uint64)
    for _ in range(60):  # plant hashes a few bits away from existing ones
        value = int(hashes[rng.integers(0, len(hashes))])
        for bit in rng.choice(64, rng.integers(0, 6), replace=False):
            value ^= 1 << int(bit)
        hashes = np.append(hashes, np.uint64(value))
    dist = np.array([[bin(int(a) ^ int(b)).count("1") for b in hashes] for a in hashes])
    for limit in (0, 2, 4, 8):
        ii, jj = np.nonzero(np.triu(dist <= limit, 1))
        assert near_pairs(hashes, limit) == sorted(zip(ii.tolist(), jj.tolist(), dist[ii, jj].tolist()))


def test_phash_sees_through_small_changes_but_not_other_faces(pristine):
    with Image.open(pristine / "train/happy/happy_0000.jpg") as img:
        gray = img.convert("L")
    brighter = Image.fromarray(np.clip(np.asarray(gray, dtype=np.int16) + 3, 0, 255).astype(np.uint8))
    assert bin(phash(gray) ^ phash(brighter)).count("1") <= 2
    with Image.open(pristine / "train/sad/sad_0000.jpg") as other:
        assert bin(phash(gray) ^ phash(other)).count("1") > 8
