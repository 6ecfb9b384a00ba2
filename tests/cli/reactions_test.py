"""fer-reactions: exit codes, one error line, -q, --dry-run."""

import json

import pytest

from fer_keras.cli.reactions import main
from tests.reactions.videos import segment_video

pytest.importorskip("norfair")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return segment_video(tmp_path_factory.mktemp("v") / "viewer.mp4", [("angry", 1.0)])


def test_writes_the_output_folder(tmp_path, video, capsys):
    out = tmp_path / "out"
    code = main([str(video), "--out", str(out), "--fps", "2", "--runtime", "onnx", "-q"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.strip() == str(out) and captured.err == ""
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sources"][0]["name"] == "viewer.mp4" and summary["settings"]["fps"] == 2


def test_dry_run_writes_nothing(tmp_path, video, capsys):
    times = tmp_path / "times.csv"
    times.write_text("name,start_s,end_s\nad,0,1\n")
    code = main([str(video), "--out", str(tmp_path / "out"), "--align", str(times), "--dry-run"])
    assert code == 0
    assert capsys.readouterr().out.startswith("would analyse 1 video(s) and 0 photo(s)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["times.csv"]


def test_bad_segment_file_is_one_error_line(tmp_path, video, capsys):
    times = tmp_path / "times.csv"
    times.write_text("name,start_s,end_s\nintro,0,5\nproduct,4,9\n")
    code = main([str(video), "--out", str(tmp_path / "out"), "--align", str(times)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [f"error: {times}, row 3: segment 'product' (4-9 s) overlaps segment 'intro' of row 2 (0-5 s)"]
    assert not (tmp_path / "out").exists()


def test_only_bad_inputs_exit_1_with_one_line_each(tmp_path, capsys):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    (tmp_path / "nothing").mkdir()
    code = main([str(empty), str(tmp_path / "nothing"), "--out", str(tmp_path / "out"), "-q", "--runtime", "onnx"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [
        f"warning: {tmp_path / 'nothing'}: no images or videos in this folder; skipped",
        f"warning: {empty}: empty file (0 bytes); skipped",
        "error: none of the 1 source(s) could be analysed; nothing written",
    ]
    assert not (tmp_path / "out").exists()


def test_bad_option_values(tmp_path, video, capsys):
    assert main([str(video), "--out", str(tmp_path / "o"), "--fps", "0", "--dry-run"]) == 1
    assert "'fps' must be in (0, 60]" in capsys.readouterr().err
