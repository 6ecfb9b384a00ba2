"""`fer-balance`: dry run, one-line recipe errors, and a kill -9 in the middle of a build."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_keras.cli.balance import main

ROOT = Path(__file__).resolve().parents[2]
FER2013 = ROOT.parent / "shared" / "datasets" / "fer2013"

PIPELINE = {
    "__class_fullname__": "Compose",
    "p": 1.0,
    "transforms": [
        {"__class_fullname__": "Affine", "rotate": [-40, 40], "scale": [0.8, 1.2], "border_mode": 1, "p": 1.0},
        {"__class_fullname__": "HorizontalFlip", "p": 0.5},
    ],
}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    from fer_keras.data.demo import make_demo_dataset

    root = tmp_path_factory.mktemp("cli_balance") / "src"
    make_demo_dataset(root, {"train": 4, "valid": 1, "test": 1}, seed=5)
    return root


def write_recipe(folder: Path, target, augmentations=None) -> Path:
    (folder / "balancing").mkdir(exist_ok=True)
    path = folder / "balancing" / "x.json"
    path.write_text(json.dumps({"target": target, "seed": 1, "augmentations": augmentations or PIPELINE}))
    return path


def test_dry_run_prints_the_plan_and_writes_nothing(source, tmp_path, capsys):
    recipe = write_recipe(
        tmp_path, {"angry": 2, "disgust": 9, "fear": 4, "happy": 4, "neutral": 4, "sad": 4, "surprise": 5}
    )
    out = tmp_path / "out"
    assert main(["--recipe", str(recipe), "--data", str(source), "--out", str(out), "--dry-run"]) == 0
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert "angry 4 → 2 trim 2" in lines
    assert "disgust 4 → 9 generate 5" in lines
    assert "happy 4 → 4 unchanged" in lines
    assert "train: 32 images (6 generated, 2 trimmed); valid/test: 14 linked" in lines
    assert not out.exists()


def test_build_then_rerun(source, tmp_path, capsys):
    recipe = write_recipe(tmp_path, 5)
    args = ["--recipe", str(recipe), "--data", str(source), "--out", str(tmp_path / "out"), "--workers", "1"]
    assert main(args) == 0
    assert "built in" in capsys.readouterr().out
    assert main(args) == 0
    assert "already up to date (35 train images); nothing to do" in capsys.readouterr().out


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_recipe_errors_are_one_line(source, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["--recipe", "balancing/x.json", "--data", str(source), "--out", str(tmp_path / "out")]
    write_recipe(tmp_path, -5)
    assert one_line_error(capsys, base) == (
        "error: balancing/x.json: 'target' must be a positive integer or a mapping of class to integer; got -5"
    )
    bad = json.loads(json.dumps(PIPELINE))
    bad["transforms"][1]["__class_fullname__"] = "HorizontalFlipp"
    write_recipe(tmp_path, 5, bad)
    assert one_line_error(capsys, base) == (
        "error: balancing/x.json: augmentations.transforms[1]: unknown albumentations transform 'HorizontalFlipp'; "
        "did you mean 'HorizontalFlip'?"
    )
    write_recipe(tmp_path, 5)
    assert one_line_error(capsys, [*base, "--workers", "0"]) == "error: --workers: 'workers' must be >= 1; got 0"
    missing = ["--recipe", "balancing/x.json", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]
    assert one_line_error(capsys, missing) == f"error: {tmp_path / 'nope'}: dataset folder not found"


def finished_images(folder: Path) -> list[Path]:
    # pathlib's glob also matches dot files: leave out the temporaries being written.
    return [p for p in folder.glob(".out.building-*/train/*/*_aug_*") if not p.name.startswith(".")]


def test_killed_build_completes_on_rerun(source, tmp_path):
    recipe = write_recipe(tmp_path, 200)  # ~1,400 images: seconds, long enough to kill mid-way
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "fer_keras.cli.balance", "--recipe", str(recipe), "--data", str(source)]
    cmd += ["--out", str(out), "--workers", "2", "-q"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "NO_ALBUMENTATIONS_UPDATE": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(finished_images(tmp_path)) < 20:
            assert proc.poll() is None, "the build finished before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its worker processes, as a crash would
        proc.wait()
    assert not out.exists()
    done_before = len(finished_images(tmp_path))
    assert done_before < 7 * 196
    rerun = subprocess.run(cmd[:-1], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed and finished" in rerun.stdout
    generated_now = int(rerun.stdout.split("train images, ")[1].split()[0])
    assert generated_now == 7 * 196 - done_before
    for emotion in ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"):
        assert len(list((out / "train" / emotion).iterdir())) == 200
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["balancing", "out"]


@pytest.mark.needs_fer2013
@pytest.mark.skipif(not FER2013.is_dir(), reason="needs ../shared/datasets/fer2013")
def test_dry_run_on_fer2013(tmp_path, capsys):
    recipe = ROOT / "balancing" / "balanced-2.json"
    assert main(["--recipe", str(recipe), "--data", str(FER2013), "--out", str(tmp_path / "b2"), "--dry-run"]) == 0
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert "disgust 436 → 30000 generate 29564" in lines
    assert "happy 7215 → 30000 generate 22785" in lines
    assert any(line.startswith("train: 210000 images (181291 generated, 0 trimmed)") for line in lines)


def test_dry_run_with_a_billion_per_class_is_refused_at_once(source, tmp_path, capsys, monkeypatch):
    """issue 16: `"target": 1000000000` used to grow past 1.5 GB planning, with no output."""
    import time
    import tracemalloc

    monkeypatch.chdir(tmp_path)
    write_recipe(tmp_path, 1_000_000_000)
    argv = ["--recipe", "balancing/x.json", "--data", str(source), "--out", str(tmp_path / "out"), "--dry-run"]
    tracemalloc.start()
    start = time.perf_counter()
    line = one_line_error(capsys, argv)
    seconds, (_, peak) = time.perf_counter() - start, tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert line == "error: balancing/x.json: target: got 1,000,000,000; limit 100,000"
    assert seconds < 5 and peak < 50 * 2**20
    write_recipe(tmp_path, 5)
    assert (
        one_line_error(capsys, [*argv, "--workers", "100000"]) == "error: --workers: workers: got 100,000; limit 1,024"
    )
