"""Every ``benchmarks/bench_*.py --quick`` runs to completion (CI smoke test of the benchmarks).

Each script runs in its own process with a timeout, two at a time (started together by a
module fixture; most of a quick run is one core's TensorFlow start-up, and the suite has two
cores). A benchmark that cannot run here
skips itself: exit code 77 (the automake convention), or a non-zero exit with a stderr
line starting with ``skipped:`` (e.g. ``skipped: ../shared/datasets/fer2013 not found``).
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.model_fixtures import REPO_ROOT, subprocess_env

BENCHMARKS = sorted((REPO_ROOT / "benchmarks").glob("bench_*.py"))
EXIT_SKIP = 77
TIMEOUT_S = 300
CONCURRENT = 2


def _quick(script: Path, cwd: Path) -> subprocess.CompletedProcess | None:
    """``script --quick`` in ``cwd``; None when it ran over :data:`TIMEOUT_S`."""
    try:
        return subprocess.run(
            [sys.executable, str(script), "--quick"],
            capture_output=True,
            text=True,
            cwd=cwd,  # a benchmark that writes into the working folder cannot touch the repository
            env=subprocess_env(),
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return None


@pytest.fixture(scope="module")
def quick_runs(request, tmp_path_factory) -> dict[str, Future]:
    """The quick run of every benchmark selected (``-k`` runs only those), started at once on :data:`CONCURRENT` workers."""
    selected = [
        item.callspec.params["script"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_quick_mode_runs"
    ]
    pool = ThreadPoolExecutor(max_workers=CONCURRENT)
    runs = {p.stem: pool.submit(_quick, p, tmp_path_factory.mktemp(p.stem)) for p in selected}
    yield runs
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("script", BENCHMARKS, ids=[p.stem for p in BENCHMARKS])
def test_quick_mode_runs(script, quick_runs):
    done = quick_runs[script.stem].result()
    if done is None:
        pytest.fail(f"{script.name} --quick took more than {TIMEOUT_S} s")
    reason = next((line for line in done.stderr.splitlines() if line.startswith("skipped:")), None)
    if done.returncode == EXIT_SKIP or (done.returncode != 0 and reason):
        pytest.skip(reason or f"{script.name} skipped itself (exit {EXIT_SKIP})")
    tail = "\n".join((done.stdout + "\n" + done.stderr).strip().splitlines()[-15:])
    assert done.returncode == 0, f"{script.name} --quick exited {done.returncode}:\n{tail}"
    assert done.stdout.strip(), f"{script.name} --quick printed nothing"


def test_every_benchmark_is_found():
    names = {p.stem for p in BENCHMARKS}
    assert {"bench_train", "bench_pipeline", "bench_accuracy"} <= names
