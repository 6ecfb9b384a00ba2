"""fer-data end to end: exit codes, one-line errors, reports, apply + restore, and no TensorFlow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from fer_keras.cli.data import main
from fer_keras.constants import CLASS_NAMES, QUARANTINE_JOURNAL_FILE, QUARANTINE_MANIFEST_FILE
from tests.conftest import ROOT
from tests.data.clean_test import EXPECTED_REMOVALS, plant_defects, pristine, tree_hashes  # noqa: F401 - fixture
from tests.data.csv_import_test import good_rows, write_csv


@pytest.fixture
def dataset(pristine, tmp_path):  # noqa: F811 - the imported fixture
    root = tmp_path / "data"
    shutil.copytree(pristine, root)
    plant_defects(root, "train/surprise/surprise_0000.jpg")
    return root


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_demo_and_stats_write_the_default_report(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "d", "--train", "2", "--valid", "1", "--test", "1", "--seed", "5"]) == 0
    assert "train 14, valid 7, test 7 images" in capsys.readouterr().out
    assert main(["-q", "stats", "d"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["split", *CLASS_NAMES, "total"] and "wrote reports/dataset_stats.json" in out
    stats = json.loads((tmp_path / "reports" / "dataset_stats.json").read_text())
    assert stats["split_totals"] == {"train": 14, "valid": 7, "test": 7}
    assert main(["stats", "d", "--out", "elsewhere/s.json", "-q"]) == 0
    assert json.loads((tmp_path / "elsewhere" / "s.json").read_text())["total"] == 28


def test_clean_reports_then_apply_and_restore_round_trip(dataset, tmp_path, capsys):
    before = tree_hashes(dataset)
    report_path = tmp_path / "clean.json"
    assert main(["clean", str(dataset), "--report", str(report_path), "-q"]) == 0
    out = capsys.readouterr().out
    assert f"{len(EXPECTED_REMOVALS)} to remove" in out and "run with --apply" in out
    report = json.loads(report_path.read_text())
    assert {i["path"]: i["reason"] for i in report["to_remove"]} == EXPECTED_REMOVALS
    assert tree_hashes(dataset) == before  # reporting moves nothing

    assert main(["clean", str(dataset), "--report", str(report_path), "--apply", "--kinds", "blank,leak", "-q"]) == 0
    assert "moved 2 file(s)" in capsys.readouterr().out
    assert (
        not (dataset / "valid/sad/zz_black.png").exists() and not (dataset / "train/neutral/neutral_0001.png").exists()
    )
    assert main(["clean", str(dataset), "--report", str(report_path), "--apply", "-q"]) == 0
    out = capsys.readouterr().out
    assert f"moved {len(EXPECTED_REMOVALS) - 2} file(s)" in out and "undo with: fer-data restore" in out
    assert main(["clean", str(dataset), "--report", str(report_path), "-q"]) == 0
    assert "0 to remove" in capsys.readouterr().out

    assert main(["restore", str(dataset), "-q"]) == 0
    assert f"restored {len(EXPECTED_REMOVALS)} file(s)" in capsys.readouterr().out
    assert tree_hashes(dataset) == before


def test_clean_dry_run_and_near_duplicates(dataset, tmp_path, capsys):
    before = tree_hashes(dataset)
    args = ["clean", str(dataset), "--report", str(tmp_path / "r.json"), "--near-duplicates", "-q"]
    assert main([*args, "--apply", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would move train/fear/zz_dup.jpg (duplicate)" in out and "near_duplicate" in out
    assert tree_hashes(dataset) == before and not (tmp_path / "data.quarantine").exists()
    groups = json.loads((tmp_path / "r.json").read_text())["findings"]["near_duplicate"]
    assert any(
        {f["path"] for f in g["files"]} == {"train/surprise/surprise_0000.jpg", "train/surprise/zz_near.png"}
        for g in groups
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["stats", "{tmp}/missing"], "dataset folder not found"),
        (["clean", "{data}", "--kinds", "blank,dupes"], "'--kinds' must be one of"),
        (["clean", "{data}", "--min-size", "0"], "'min_size' must be >= 1; got 0"),
        (["clean", "{data}", "--apply", "--quarantine", "{data}/q"], "must be outside the dataset folder"),
        (["restore", "{data}"], "no quarantine folder"),
        (["import-csv", "{tmp}/missing.csv", "{tmp}/out"], "CSV file not found"),
    ],
)
def test_user_errors_exit_1_with_one_line(dataset, tmp_path, capsys, argv, expected):
    argv = [a.format(tmp=tmp_path, data=dataset) for a in argv]
    assert main([*argv, "-q"]) == 1
    assert expected in one_line_error(capsys)


def test_restore_from_a_folder_not_made_by_apply_is_refused_and_keeps_it(dataset, tmp_path, capsys):
    qdir = tmp_path / "scratch" / "q"
    (qdir / "a" / "b").mkdir(parents=True)
    (qdir / QUARANTINE_MANIFEST_FILE).write_text('{"a":1}\n')
    (qdir / QUARANTINE_JOURNAL_FILE).write_text("x\n")
    assert main(["restore", str(dataset), "--quarantine", str(qdir), "-q"]) == 1
    assert f"{qdir}: not a quarantine made by fer-data clean --apply" in one_line_error(capsys)
    assert sorted(p.name for p in qdir.iterdir()) == sorted(["a", QUARANTINE_JOURNAL_FILE, QUARANTINE_MANIFEST_FILE])
    assert (qdir / "a" / "b").is_dir()


@pytest.mark.parametrize(
    ("quarantine", "expected"),
    [
        ("{data}/q", "must be outside the dataset folder"),
        ("{tmp}/notes", "not a quarantine made by fer-data clean --apply"),
        ("{tmp}/a_file", "--quarantine must be a folder; this is a file"),
        ("{tmp}/theirs", "the quarantine of the dataset"),
    ],
)
def test_clean_apply_with_an_unusable_quarantine_writes_nothing(dataset, tmp_path, monkeypatch, capsys, quarantine,
                                                                 expected):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.txt").write_text("mine")
    (tmp_path / "a_file").write_text("mine")
    other = shutil.copytree(dataset, tmp_path / "other")
    assert (
        main(["clean", str(other), "--apply", "--kinds", "blank", "--quarantine", str(tmp_path / "theirs"), "-q"]) == 0
    )
    capsys.readouterr()
    (tmp_path / "reports" / "clean_report.json").unlink()
    before, listing = tree_hashes(dataset), sorted(p.name for p in tmp_path.iterdir())
    for extra in ([], ["--report", str(tmp_path / "r.json")], ["--dry-run"]):
        argv = ["clean", str(dataset), "--apply", "--quarantine", quarantine.format(tmp=tmp_path, data=dataset)]
        assert main([*argv, *extra, "-q"]) == 1
        assert expected in one_line_error(capsys)
    assert tree_hashes(dataset) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing and not any((tmp_path / "reports").iterdir())


def test_import_csv_exit_codes(tmp_path, capsys):
    _, rows = good_rows(3)
    assert main(["import-csv", str(write_csv(tmp_path / "ok.csv", rows)), str(tmp_path / "ok"), "-q"]) == 0
    assert "wrote 3 PNG images" in capsys.readouterr().out
    rows.append(("1", "1 2 3", "Training"))
    bad = write_csv(tmp_path / "bad.csv", rows)
    assert main(["import-csv", str(bad), str(tmp_path / "bad"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines() == [
        f"error: {bad}:5: 'pixels' must be 2304 space-separated integers (48x48); got 3 values",
        "error: nothing written; fix the rows or pass --skip-bad",
    ]
    assert main(["import-csv", str(bad), str(tmp_path / "bad"), "--skip-bad", "-q"]) == 0
    captured = capsys.readouterr()
    assert "1 bad row(s) skipped" in captured.out and f"warning: {bad}:5: 'pixels'" in captured.err


def test_the_data_tools_never_import_tensorflow(dataset, tmp_path):
    _, rows = good_rows(2)
    csv_path = write_csv(tmp_path / "f.csv", rows)
    script = f"""
import sys
from fer_keras.cli.data import main
for argv in (
    ["demo", {str(tmp_path / "demo")!r}, "--train", "1", "--valid", "1", "--test", "1"],
    ["stats", {str(dataset)!r}, "--out", {str(tmp_path / "s.json")!r}],
    ["clean", {str(dataset)!r}, "--report", {str(tmp_path / "c.json")!r}, "--near-duplicates", "--apply"],
    ["restore", {str(dataset)!r}],
    ["import-csv", {str(csv_path)!r}, {str(tmp_path / "imp")!r}],
):
    assert main([*argv, "-q"]) == 0, argv
heavy = sorted(m for m in ("tensorflow", "keras", "albumentations", "cv2") if m in sys.modules)
assert not heavy, heavy
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    help_run = subprocess.run(
        [sys.executable, "-m", "fer_keras.cli.data", "--help"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert help_run.returncode == 0 and "import-csv" in help_run.stdout
