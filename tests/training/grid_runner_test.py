"""fer-grid end to end on tiny data: completion, rerun, SIGKILL resume, failures, Ray, select."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_keras.cli.grid import main as grid_main
from fer_keras.constants import METADATA_FILE, MODEL_FILE
from fer_keras.training.history import list_histories, read_history
from fer_keras.training.selection import best_run
from tests.conftest import ROOT, TINY_SPEC


def _write_grid(tmp_path: Path, data: Path, **extra) -> Path:
    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps(TINY_SPEC))
    grid = {
        "datasets": {"augment": str(data)},
        "defaults": {"epochs": 1, "history_dir": str(tmp_path / "history"), "runs_dir": str(tmp_path / "runs"),
                     "augment": False},
        "axes": {"arch": [str(spec)], "optimizer": ["adam", "rmsprop"]},
        "blocks": [{"color_mode": ["rgb"], "batch_size": [16, 32]}, {"color_mode": ["grayscale"], "batch_size": [16, 32]}],
        "best_model": str(tmp_path / "best"),
    }  # fmt: skip
    for key, value in extra.items():
        grid[key] = {**grid[key], **value} if isinstance(value, dict) else value
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(grid))
    return path


def test_grid_of_8_runs_completes_exports_best_and_second_run_does_nothing(tmp_path, tiny_data, capsys):
    grid = _write_grid(tmp_path, tiny_data)
    assert grid_main([str(grid), "--workers", "2", "-q"]) == 0
    records = [read_history(p) for p in list_histories(tmp_path / "history")]
    assert len(records) == 8 and {r["status"] for r in records} == {"done"}
    meta = json.loads((tmp_path / "best" / METADATA_FILE).read_text())
    top = max(r["best_val_accuracy"] for r in records)
    best = next(r for r in records if r["name"] == meta["source_run"])
    assert best["best_val_accuracy"] == top
    assert meta["class_names"] == list(records[0]["class_names"]) and meta["input_size"] == [48, 48]
    assert meta["valid_metrics"]["accuracy"] == pytest.approx(best["best_val_accuracy"], abs=1e-6)
    assert meta["test_metrics"]["n"] == 28 and (tmp_path / "best" / MODEL_FILE).exists()
    mtimes = {p: p.stat().st_mtime_ns for p in list_histories(tmp_path / "history")}
    capsys.readouterr()
    assert grid_main([str(grid), "--no-select"]) == 0
    assert "8 already done, 0 to train" in capsys.readouterr().err
    assert mtimes == {p: p.stat().st_mtime_ns for p in list_histories(tmp_path / "history")}
    assert grid_main([str(grid), "--dry-run"]) == 0
    assert "8 runs: 0 todo, 8 done, 0 failed, 0 interrupted" in capsys.readouterr().out
    # `select --run` exports a named run (not the best) and records how to reproduce it.
    worst = min(records, key=lambda r: r["best_val_accuracy"])["name"]
    out = tmp_path / "chosen"
    args = ["select", "--history", str(tmp_path / "history"), "--run", worst, "--out", str(out), "-q"]
    assert grid_main([*args, "--reproduce", "fer-train --config x.json", "--no-test"]) == 0
    chosen = json.loads((out / METADATA_FILE).read_text())
    assert chosen["source_run"] == worst and chosen["reproduce"] == "fer-train --config x.json"
    assert chosen["test_metrics"] is None and oct(out.stat().st_mode & 0o777) != "0o700"


def test_sigkilled_run_resumes_from_its_checkpoint(tmp_path, tiny_data):
    grid = _write_grid(tmp_path, tiny_data, defaults={"epochs": 12}, axes={"optimizer": ["adam"]},
                       blocks=[{"batch_size": [32, 16]}])  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "fer_keras.cli.grid", str(grid), "--no-select"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    first, second = (tmp_path / "history" / f"tiny_adam_rgb_{b}_augment_history.json" for b in (32, 16))
    deadline = time.time() + 240
    while time.time() < deadline:
        try:
            if read_history(second)["epochs_done"] >= 2:
                break
        except Exception:  # noqa: BLE001 - not written yet
            pass
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = read_history(second)["epochs_done"]
    assert read_history(first)["status"] == "done" and 2 <= killed_at < 12
    first_mtime = first.stat().st_mtime_ns
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "1 already done, 1 to train" in out.stderr
    assert f"resuming at epoch {killed_at + 1} from" in out.stderr
    record = read_history(second)
    assert record["status"] == "done" and record["epochs_done"] == 12 and len(record["history"]["loss"]) == 12
    assert first.stat().st_mtime_ns == first_mtime
    assert not list(tmp_path.rglob("*.tmp"))


def test_failing_run_is_recorded_and_others_finish(tmp_path, tiny_data, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"name": "broken", "layers": [{"type": "Conv2d", "filters": 8}]}))
    spec = tmp_path / "tiny.json"
    grid = _write_grid(tmp_path, tiny_data, axes={"arch": [str(spec), str(broken)], "optimizer": ["adam"]},
                       blocks=[{"batch_size": [16]}])  # fmt: skip
    assert grid_main([str(grid), "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "problem: " in out and "unknown layer type 'Conv2d'; did you mean 'Conv2D'?" in out
    assert grid_main([str(grid), "-q"]) == 1
    err = capsys.readouterr().err
    assert "1 run(s) failed: broken_adam_rgb_16_augment" in err
    failed = read_history(tmp_path / "history" / "broken_adam_rgb_16_augment_history.json")
    assert failed["status"] == "failed" and "Conv2d" in failed["error"]
    assert read_history(tmp_path / "history" / "tiny_adam_rgb_16_augment_history.json")["status"] == "done"
    assert grid_main([str(grid), "--dry-run"]) == 1
    assert "failed      broken_adam_rgb_16_augment" in capsys.readouterr().out


def test_ray_backend_runs_a_two_run_grid(tmp_path, tiny_data):
    """Local Ray, storage in its own folder: results reach the driver's folders through Tune's checkpoints.

    The two-node cluster version is ``ray_cluster_test.py`` (slow).
    """
    pytest.importorskip("ray.tune")
    grid = _write_grid(tmp_path, tiny_data, axes={"optimizer": ["adam", "sgd"]}, blocks=[{"batch_size": [16]}])
    storage = tmp_path / "storage"
    args = ["--backend", "ray", "--workers", "2", "--storage", str(storage), "-q"]
    assert grid_main([str(grid), *args]) == 0
    records = [read_history(p) for p in list_histories(tmp_path / "history")]
    assert sorted(r["name"] for r in records) == ["tiny_adam_rgb_16_augment", "tiny_sgd_rgb_16_augment"]
    assert {r["status"] for r in records} == {"done"}
    for record in records:
        trial_dir = Path(record["trained_on"]["cwd"])  # Tune's working folder of the trial
        assert not trial_dir.is_relative_to(tmp_path) and record["config"]["runs_dir"] == str(tmp_path / "runs")
        assert (tmp_path / "runs" / record["name"] / "best.keras").is_file()
    assert list(storage.glob("grid-*/tiny_*/checkpoint_*"))  # what the trials persisted, and the driver read
    meta = json.loads((tmp_path / "best" / METADATA_FILE).read_text())
    assert meta["source_run"] == best_run(tmp_path / "history")["name"]


def test_select_uses_valid_accuracy_only(tmp_path):
    from fer_keras.training.history import history_path, new_history, write_history

    for name, val, status in [("a", 0.5, "done"), ("b", 0.7, "done"), ("c", 0.9, "failed"), ("d", 0.6, "done")]:
        record = new_history(name, {}, [], "")
        # "test_accuracy" is a decoy: selection must never look at test numbers.
        record.update(status=status, best_val_accuracy=val, best_epoch=1, test_accuracy=1 - val)
        write_history(history_path(tmp_path, name), record)
    assert best_run(tmp_path)["name"] == "b"
    assert best_run(tmp_path, names=["a", "d"])["name"] == "d"
