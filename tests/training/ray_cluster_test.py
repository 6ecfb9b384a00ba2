"""fer-grid on a real two-node Ray cluster on this machine, and a driver interrupted then resumed.

The head (``ray start --head``, no CPUs: nothing trains there) and one worker node (1 CPU,
its own ``--temp-dir``) are separate ``ray start --block`` processes, each in its own
session; fer-grid runs as a third process with ``--ray-address`` and ``--storage`` in a
folder of its own. Trials train in Tune's working folder on the worker node, so every
history and model the driver's folders end up with came back through Tune's checkpoints.
Teardown stops exactly the processes of the two nodes' sessions, by PID (``ray stop``
would stop every Ray on the machine).

Slow: starting two Ray nodes and a TensorFlow trial takes minutes on a busy 2-core machine.
``grid_runner_test.py::test_ray_backend_runs_a_two_run_grid`` is the light CI variant
(local Ray, separate storage, trials in Tune's working folders).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_keras.constants import METADATA_FILE
from fer_keras.training.history import read_history
from fer_keras.training.ray_nodes import free_port, start_node, stop_node
from tests.conftest import ROOT

pytest.importorskip("ray.tune")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head without CPUs and a 1-CPU worker node; yields (address, env for fer-grid, worker temp dir)."""
    root = tmp_path_factory.mktemp("ray")
    port = free_port()
    # Ray 2.5x turns token authentication on for new clusters: every process gets the same token.
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
           "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}  # fmt: skip
    common = ["--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
    head = start_node(["--head", "--port", str(port), "--num-cpus", "0", "--include-dashboard=false",
                        "--temp-dir", str(root / "head"), *common], root / "head.log", env, attempts=4)  # fmt: skip
    worker = None
    try:
        worker = start_node(["--address", f"127.0.0.1:{port}", "--num-cpus", "1",
                              "--temp-dir", str(root / "worker"), *common], root / "worker.log", env, attempts=4)  # fmt: skip
        yield f"127.0.0.1:{port}", env, root / "worker"
    finally:
        for proc in (worker, head):
            if proc is not None:
                stop_node(proc)


def _grid(folder: Path, data: Path, epochs: int, optimizers: list[str]) -> Path:
    grid = {
        "datasets": {"augment": str(data)},
        "defaults": {"epochs": epochs, "augment": False, "precise_bn": 0},
        "axes": {"arch": [str(ROOT / "architectures" / "demo_small.json")], "optimizer": optimizers},
        "blocks": [{"batch_size": [16]}],
        "best_model": "best",
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "grid.json").write_text(json.dumps(grid))
    return folder / "grid.json"


def _fer_grid(folder: Path, env: dict[str, str], address: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "fer_keras.cli.grid", str(folder / "grid.json"), "--backend", "ray",
            "--ray-address", address, "--storage", str(folder.parent / f"{folder.name}-storage"), *extra]  # fmt: skip


def test_every_run_comes_back_from_the_worker_node(cluster, tiny_data, tmp_path):
    address, env, worker_dir = cluster
    driver = tmp_path / "driver"
    _grid(driver, tiny_data, 1, ["adam", "sgd"])
    started = time.time()
    out = subprocess.run(_fer_grid(driver, env, address), cwd=driver, env=env, capture_output=True, text=True,
                         timeout=1800)  # fmt: skip
    print(f"fer-grid on the 2-node cluster took {time.time() - started:.0f} s")
    assert out.returncode == 0, out.stderr[-4000:]
    names = ["demo_small_adam_rgb_16_augment", "demo_small_sgd_rgb_16_augment"]
    for name in names:
        record = read_history(driver / "history" / f"{name}_history.json")
        assert record["status"] == "done" and record["epochs_done"] == 1
        assert record["config"]["runs_dir"] == "runs"  # the driver's folders, not the trial's
        trial_dir = Path(record["trained_on"]["cwd"])
        # Trained in Tune's working folder on the worker node, never in the driver's folders.
        assert trial_dir.is_relative_to(worker_dir) and not trial_dir.is_relative_to(driver)
        assert (driver / "runs" / name / "best.keras").is_file()
    meta = json.loads((driver / "best" / METADATA_FILE).read_text())
    assert meta["source_run"] in names and "best model:" in out.stdout


def test_interrupted_driver_resumes_unfinished_runs_from_their_last_epoch(cluster, tiny_data, tmp_path):
    address, env, _ = cluster
    driver = tmp_path / "driver"
    _grid(driver, tiny_data, 6, ["adam", "sgd"])
    cmd = _fer_grid(driver, env, address, "--no-select")
    first, second = (driver / "history" / f"demo_small_{o}_rgb_16_augment_history.json" for o in ("adam", "sgd"))
    log = open(tmp_path / "first.log", "wb")
    proc = subprocess.Popen(cmd, cwd=driver, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 1500
    while time.time() < deadline and proc.poll() is None:
        try:
            if read_history(first)["status"] == "done" and read_history(second)["epochs_done"] >= 2:
                break
        except Exception:  # noqa: BLE001 - not written yet
            pass
        time.sleep(0.5)
    assert proc.poll() is None, (tmp_path / "first.log").read_text()[-4000:]
    proc.send_signal(signal.SIGINT)  # Ctrl-C of the driver only: the cluster stays up
    assert proc.wait(timeout=300) == 130, (tmp_path / "first.log").read_text()[-4000:]
    log.close()
    stopped = read_history(second)
    killed_at = stopped["epochs_done"]
    assert stopped["status"] == "interrupted" and 2 <= killed_at < 6
    first_mtime = first.stat().st_mtime_ns
    out = subprocess.run(cmd, cwd=driver, env=env, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-4000:]
    assert "1 already done, 1 to train" in out.stderr
    assert f"resuming at epoch {killed_at + 1} from" in out.stderr
    record = read_history(second)
    assert record["status"] == "done" and record["epochs_done"] == 6 and len(record["history"]["loss"]) == 6
    assert first.stat().st_mtime_ns == first_mtime
