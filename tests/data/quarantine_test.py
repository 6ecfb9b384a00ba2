"""fer_keras.data.quarantine: apply + restore never loses a byte, from any interrupted state."""

from __future__ import annotations

import errno
import json
import shutil

import pytest

from fer_keras.data import quarantine
from fer_keras.data.clean import find_problems, removal_plan
from fer_keras.constants import QUARANTINE_JOURNAL_FILE, QUARANTINE_MANIFEST_FILE, QUARANTINE_MARKER_FILE
from fer_keras.errors import FerError
from fer_keras.data.quarantine import (
    check_quarantine,
    default_quarantine,
    quarantine_files,
    restore_files,
    sha256_file,
)
from tests.data.clean_test import EXPECTED_REMOVALS, plant_defects, pristine, tree_hashes  # noqa: F401 - fixture

# Every planted file to remove, plus a few in eval splits and nested deeper.
PLAN = sorted(EXPECTED_REMOVALS.items())


@pytest.fixture
def dataset(pristine, tmp_path):  # noqa: F811 - the imported fixture
    root = tmp_path / "data"
    shutil.copytree(pristine, root)
    plant_defects(root, "train/surprise/surprise_0000.jpg")
    return root


def test_apply_then_restore_is_byte_identical(dataset):
    before = tree_hashes(dataset)
    plan = removal_plan(find_problems(dataset))
    assert sorted(plan) == PLAN
    summary = quarantine_files(dataset, plan)
    qdir = default_quarantine(dataset)
    assert summary["quarantine"] == str(qdir) and summary["moved"] == len(PLAN)
    assert summary["by_reason"]["conflict"] == 2
    manifest = json.loads((qdir / QUARANTINE_MANIFEST_FILE).read_text())
    assert [(f["path"], f["reason"]) for f in manifest["files"]] == PLAN
    for entry in manifest["files"]:
        assert not (dataset / entry["path"]).exists()
        moved = qdir / entry["path"]
        assert sha256_file(moved) == before[entry["path"]] and moved.stat().st_size == entry["size"]
    # The dataset lost exactly the planned files (folders stay, even emptied ones).
    assert tree_hashes(dataset) == {k: v for k, v in before.items() if k not in dict(PLAN)}

    assert restore_files(dataset) == {"quarantine": str(qdir), "restored": len(PLAN), "already_in_place": 0}
    assert tree_hashes(dataset) == before
    assert not qdir.exists()


def test_dry_runs_change_nothing(dataset):
    before = tree_hashes(dataset)
    assert quarantine_files(dataset, PLAN, dry_run=True)["moved"] == len(PLAN)
    assert tree_hashes(dataset) == before and not default_quarantine(dataset).exists()
    quarantine_files(dataset, PLAN)
    moved = tree_hashes(default_quarantine(dataset))
    assert restore_files(dataset, dry_run=True)["restored"] == len(PLAN)
    assert tree_hashes(default_quarantine(dataset)) == moved


def test_an_interrupted_apply_is_undone_by_restore(dataset, monkeypatch):
    before = tree_hashes(dataset)
    real_move, calls = quarantine.move_file, []

    def crash_on_third(src, dst):
        calls.append(src)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real_move(src, dst)

    monkeypatch.setattr(quarantine, "move_file", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        quarantine_files(dataset, PLAN)
    qdir = default_quarantine(dataset)
    assert (qdir / QUARANTINE_JOURNAL_FILE).is_file() and not (qdir / QUARANTINE_MANIFEST_FILE).exists()
    monkeypatch.setattr(quarantine, "move_file", real_move)
    summary = restore_files(dataset)
    assert (summary["restored"], summary["already_in_place"]) == (2, len(PLAN) - 2)
    assert tree_hashes(dataset) == before and not qdir.exists()


def test_moves_across_file_systems_copy_then_delete(dataset, monkeypatch):
    before = tree_hashes(dataset)
    real_rename = quarantine.os.rename

    def cross_device(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(quarantine.os, "rename", cross_device)
    quarantine_files(dataset, PLAN)
    # A copy that finished but whose source was never deleted: both places hold the same bytes.
    rel = PLAN[0][0]
    shutil.copy2(default_quarantine(dataset) / rel, dataset / rel)
    monkeypatch.setattr(quarantine.os, "rename", real_rename)
    summary = restore_files(dataset)
    assert (summary["restored"], summary["already_in_place"]) == (len(PLAN) - 1, 1)
    assert tree_hashes(dataset) == before and not default_quarantine(dataset).exists()


def test_restore_refuses_to_overwrite_a_different_file(dataset):
    before = tree_hashes(dataset)
    quarantine_files(dataset, PLAN)
    rel = "valid/sad/zz_black.png"
    (dataset / rel).write_bytes(b"a new file the user put there")
    with pytest.raises(FerError) as err:
        restore_files(dataset)
    assert f"{dataset / rel}: refusing to overwrite a different file" in str(err.value)
    assert "1 file(s) kept in" in err.value.problems[-1]
    qdir = default_quarantine(dataset)
    assert [f["path"] for f in json.loads((qdir / QUARANTINE_MANIFEST_FILE).read_text())["files"]] == [rel]
    assert sha256_file(qdir / rel) == before[rel]  # the original is safe in the quarantine
    (dataset / rel).unlink()
    assert restore_files(dataset)["restored"] == 1
    assert tree_hashes(dataset) == before


def test_a_quarantined_file_changed_in_place_is_not_restored(dataset):
    quarantine_files(dataset, PLAN[:1])
    rel = PLAN[0][0]
    (default_quarantine(dataset) / rel).write_bytes(b"edited")
    with pytest.raises(FerError, match="changed since it was quarantined"):
        restore_files(dataset)
    assert not (dataset / rel).exists()


def test_two_applies_then_one_restore(dataset, tmp_path):
    before = tree_hashes(dataset)
    qdir = tmp_path / "elsewhere"
    quarantine_files(dataset, PLAN[:3], qdir)
    quarantine_files(dataset, PLAN[3:], qdir)
    manifest = json.loads((qdir / QUARANTINE_MANIFEST_FILE).read_text())
    assert len(manifest["files"]) == len(PLAN)
    assert restore_files(dataset, qdir)["restored"] == len(PLAN)
    assert tree_hashes(dataset) == before and not qdir.exists()


def test_bad_requests_fail_before_anything_moves(dataset, tmp_path):
    before = tree_hashes(dataset)
    with pytest.raises(FerError, match="must be outside the dataset folder"):
        quarantine_files(dataset, PLAN, dataset / "q")
    with pytest.raises(FerError, match=r"train/angry/nope.jpg: not found"):
        quarantine_files(dataset, [*PLAN, ("train/angry/nope.jpg", "blank")])
    with pytest.raises(FerError, match="must be relative to the dataset folder"):
        quarantine_files(dataset, [("../outside.jpg", "blank")])
    assert tree_hashes(dataset) == before and not default_quarantine(dataset).exists()
    with pytest.raises(FerError, match="no quarantine folder"):
        restore_files(dataset)


def _fake_quarantine(folder):
    """The issue-16 repro: a folder with a manifest, a journal and empty sub-folders, not made by apply."""
    (folder / "a" / "b").mkdir(parents=True)
    (folder / QUARANTINE_MANIFEST_FILE).write_text('{"a": 1}\n')
    (folder / QUARANTINE_JOURNAL_FILE).write_text("x\n")
    return tree_listing(folder)


def tree_listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_restore_refuses_a_folder_not_made_by_apply_and_deletes_nothing(dataset, tmp_path):
    qdir = tmp_path / "scratch" / "q"
    listing = _fake_quarantine(qdir)
    for dry_run in (True, False):
        with pytest.raises(FerError, match=rf"{qdir}: not a quarantine made by fer-data clean --apply"):
            restore_files(dataset, qdir, dry_run=dry_run)
    assert tree_listing(qdir) == listing
    (qdir / QUARANTINE_MANIFEST_FILE).unlink()
    (qdir / QUARANTINE_JOURNAL_FILE).unlink()
    with pytest.raises(FerError, match="not a quarantine made by"):
        restore_files(dataset, qdir)  # empty sub-folders alone are no quarantine either
    assert (qdir / "a" / "b").is_dir()


def test_a_quarantine_of_another_dataset_is_refused(dataset, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(dataset, other)
    qdir = tmp_path / "q"
    quarantine_files(dataset, PLAN[:2], qdir)
    listing, before = tree_listing(qdir), tree_hashes(other)
    marker = json.loads((qdir / QUARANTINE_MARKER_FILE).read_text())
    assert marker["dataset"] == str(dataset.resolve())
    with pytest.raises(FerError, match=rf"{qdir}: the quarantine of the dataset {dataset}, not of {other}"):
        restore_files(other, qdir)
    with pytest.raises(FerError, match="the quarantine of the dataset"):
        quarantine_files(other, PLAN[2:3], qdir)
    assert tree_listing(qdir) == listing and tree_hashes(other) == before
    assert restore_files(dataset, qdir)["restored"] == 2 and not qdir.exists()


def test_apply_refuses_a_file_or_a_folder_of_the_users(dataset, tmp_path):
    before = tree_hashes(dataset)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.txt").write_text("mine")
    (tmp_path / "a_file").write_text("mine")
    with pytest.raises(FerError, match="not a quarantine made by fer-data clean --apply"):
        quarantine_files(dataset, PLAN, tmp_path / "notes", dry_run=True)
    with pytest.raises(FerError, match="must be a folder; this is a file"):
        check_quarantine(dataset, tmp_path / "a_file")
    assert tree_hashes(dataset) == before and sorted(p.name for p in (tmp_path / "notes").iterdir()) == ["thesis.txt"]
    # An empty folder becomes a quarantine (marked), and is removed again once everything is back.
    (tmp_path / "empty").mkdir()
    quarantine_files(dataset, PLAN[:1], tmp_path / "empty")
    assert (tmp_path / "empty" / QUARANTINE_MARKER_FILE).is_file()
    restore_files(dataset, tmp_path / "empty")
    assert tree_hashes(dataset) == before and not (tmp_path / "empty").exists()


def test_the_marker_is_written_before_the_journal(dataset, monkeypatch):
    def crash(*args):
        raise KeyboardInterrupt

    qdir = default_quarantine(dataset)
    monkeypatch.setattr(quarantine, "write_marker", crash)
    with pytest.raises(KeyboardInterrupt):
        quarantine_files(dataset, PLAN)
    assert not (qdir / QUARANTINE_JOURNAL_FILE).exists()  # no journal without a marker
    monkeypatch.undo()
    monkeypatch.setattr(quarantine, "move_file", crash)
    with pytest.raises(KeyboardInterrupt):
        quarantine_files(dataset, PLAN)
    assert sorted(p.name for p in qdir.iterdir()) == sorted([QUARANTINE_JOURNAL_FILE, QUARANTINE_MARKER_FILE])
    monkeypatch.undo()
    assert restore_files(dataset)["already_in_place"] == len(PLAN) and not qdir.exists()


def test_restore_removes_only_what_apply_created(dataset, tmp_path):
    before = tree_hashes(dataset)
    qdir = default_quarantine(dataset)
    quarantine_files(dataset, PLAN)
    (qdir / "mine" / "deeper").mkdir(parents=True)  # the user's empty folders, outside journaled paths
    (qdir / "train" / "keep_me").mkdir()
    restore_files(dataset)
    assert tree_hashes(dataset) == before
    assert tree_listing(qdir) == [QUARANTINE_MARKER_FILE, "mine", "mine/deeper", "train", "train/keep_me"]
    assert restore_files(dataset)["restored"] == 0  # still a quarantine: restoring again is harmless
    assert (qdir / "mine" / "deeper").is_dir()


def test_a_quarantine_from_before_the_marker_still_restores(dataset, tmp_path):
    before = tree_hashes(dataset)
    qdir = default_quarantine(dataset)
    quarantine_files(dataset, PLAN)
    (qdir / QUARANTINE_MARKER_FILE).unlink()  # as written by older fer_keras: its manifest names the dataset
    assert restore_files(dataset, dry_run=True)["restored"] == len(PLAN)
    assert not (qdir / QUARANTINE_MARKER_FILE).exists()  # a dry run writes nothing
    assert restore_files(dataset)["restored"] == len(PLAN)
    assert tree_hashes(dataset) == before and not qdir.exists()
