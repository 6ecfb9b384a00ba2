"""`fer-report` command line: defaults, outputs, one-line errors, no TensorFlow unless evaluating."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fer_keras.cli.report import main
from fer_keras.report.synthetic import dump, write_synthetic_histories

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_write_report_summary_and_ranking(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FER_KERAS_MODEL", "models/best_model")  # the default model: here, an absent folder
    write_synthetic_histories("history", n_runs=4, epochs=3, failed=1, interrupted=1, garbled=1)
    dump("reports/eval/fer2013.json", {"dataset": "fer2013", "accuracy": 0.6, "macro_f1": 0.5})
    assert main(["-q"]) == 0
    out = capsys.readouterr().out
    assert "report: reports/report.html" in out
    assert "4 runs, 1 unreadable" in out
    assert "no test evaluation (models/best_model: no model folder" in out
    for name in ("report.html", "summary.json", "ranking.csv"):
        assert (tmp_path / "reports" / name).is_file()
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert summary["comparisons"]["eval"][0]["dataset"] == "fer2013"
    assert summary["ranking"]["by_status"] == {"done": 2, "failed": 1, "interrupted": 1}


def test_explicit_paths_and_reports_folder(tmp_path, capsys):
    write_synthetic_histories(tmp_path / "h", n_runs=2, epochs=2, failed=0, interrupted=0)
    dump(tmp_path / "inputs" / "dataset_stats.json", {"counts": {"train": {"a": 1, "b": 2}}})
    out = tmp_path / "elsewhere" / "r.html"
    code = main(
        ["--history", str(tmp_path / "h"), "--out", str(out), "--no-model", "--reports", str(tmp_path / "inputs"), "-q"]
    )
    assert code == 0
    summary = json.loads((out.parent / "summary.json").read_text())
    assert summary["dataset"]["counts"] == {"train": {"a": 1, "b": 2}}
    assert summary["model"]["message"] == "no model folder given (--model DIR)"
    assert f"report: {out}" in capsys.readouterr().out


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["--history", str(tmp_path / "missing"), "--out", str(tmp_path / "r.html"), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "history folder not found" in err[0]
    (tmp_path / "h").mkdir()
    assert main(["--history", str(tmp_path / "h"), "--out", str(tmp_path / "r.pdf"), "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: 'out_html' must be a path ending in .html; got '{tmp_path / 'r.pdf'}'"


def test_report_without_model_never_imports_tensorflow(tmp_path):
    write_synthetic_histories(tmp_path / "h", n_runs=3, epochs=3)
    code = (
        "import sys; from fer_keras.cli.report import main; "
        f"rc = main(['--history', {str(tmp_path / 'h')!r}, '--out', {str(tmp_path / 'r' / 'report.html')!r}, "
        f"'--model', {str(tmp_path / 'absent')!r}, '-q']); "
        "print(rc, 'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 False False"


def test_module_entry_point_help():
    done = subprocess.run(
        [sys.executable, "-m", "fer_keras.cli.report", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert "--history" in done.stdout and "--no-model" in done.stdout


def test_model_evaluated_in_a_worker_process(tmp_path):
    """The CLI process itself never imports TensorFlow: section 4 predicts in a spawned worker."""
    from fer_keras.report.synthetic import class_centres, write_brightness_model, write_grey_images

    order = ["sad", "happy"]
    model = write_brightness_model(tmp_path / "model", order)
    c = class_centres(2)
    write_grey_images(tmp_path / "data" / "test" / "sad", [c[0], c[1]])
    write_grey_images(tmp_path / "data" / "test" / "happy", [c[1]])
    write_synthetic_histories(tmp_path / "h", n_runs=2, epochs=2, failed=0, interrupted=0)
    out = tmp_path / "r" / "report.html"
    code = (
        "import sys; from fer_keras.cli.report import main; "
        f"rc = main(['--history', {str(tmp_path / 'h')!r}, '--out', {str(out)!r}, '--model', {str(model)!r}, "
        f"'--data', {str(tmp_path / 'data')!r}, '-q']); "
        "print(rc, 'tensorflow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "0 False"
    assert "test accuracy 0.6667" in lines[0]
    summary = json.loads((out.parent / "summary.json").read_text())
    assert summary["evaluation"]["confusion_matrix"]["counts"] == [[1, 1], [0, 1]]
    assert summary["evaluation"]["confusion_matrix"]["labels"] == order


def test_dry_run_lists_inputs_and_writes_nothing(tmp_path, capsys):
    write_synthetic_histories(tmp_path / "h", n_runs=3, epochs=2, failed=1, interrupted=0, garbled=1)
    out = tmp_path / "r" / "report.html"
    assert main(["--history", str(tmp_path / "h"), "--out", str(out), "--model", str(tmp_path / "m"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"history: {tmp_path / 'h'}: 3 runs (2 done, 1 failed), 1 unreadable"
    assert "no model folder" in lines[1]
    assert lines[-1].startswith(f"would write: {out}")
    assert not out.parent.exists()
