"""The Ray backend without a cluster: option checks, resources, and the driver's collector on real Tune checkpoints.

The collector is what brings a trial's results back to the driver's folders; here it gets
real ``ray.tune.Checkpoint`` objects in a storage folder, as Tune hands them over, from a
stand-in for Tune's trial record. The cluster tests (``ray_cluster_test.py``) run it for real.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from fer_keras.cli.grid import main as grid_main
from fer_keras.errors import FerError
from fer_keras.training import ray_backend, ray_trial
from fer_keras.training.config import resolve_config
from fer_keras.training.grid_runner import check_ray_options
from fer_keras.training.history import new_history, read_history
from fer_keras.training.selection import best_run


def test_ray_only_options_and_bad_values_are_refused_before_planning(tmp_path, capsys):
    grid = tmp_path / "missing.json"  # never read: the options are checked first
    cases = [
        (["--storage", "s3://bucket/x"], "--storage: only with --backend ray"),
        (["--scheduler", "asha"], "--scheduler asha: only with --backend ray"),
        (["--gpus-per-run", "1"], "--gpus-per-run: only with --backend ray"),
        (["--backend", "ray", "--gpus-per-run", "-1"], "'gpus_per_run' must be"),
        (["--backend", "ray", "--gpus-per-run", "1.5"], "at most 1 or a whole number"),
        (["--backend", "ray", "--gpus-per-run", "nan"], "'gpus_per_run' must be"),
        (["--backend", "ray", "--workers", "0"], "'--workers' must be >= 1"),
    ]
    for args, message in cases:
        assert grid_main([str(grid), *args, "--dry-run"]) == 1
        assert message in capsys.readouterr().err
    check_ray_options("ray", 2, "s3://bucket/grids?region=x", 0.5, "asha")  # valid: no error
    with pytest.raises(FerError, match="scheduler"):
        check_ray_options("ray", 1, scheduler="hyperband")


def test_cpus_per_run_share_the_cluster_within_one_node():
    def node(cpus, gpus=0, alive=True):
        return {"Alive": alive, "Resources": {"CPU": cpus, "GPU": gpus}}

    assert ray_backend._cpus_per_run([node(0), node(1)], 1, 0) == 1  # head without CPUs + 1-CPU worker
    assert ray_backend._cpus_per_run([node(8), node(8)], 4, 0) == 4
    assert ray_backend._cpus_per_run([node(2), node(2)], 1, 0) == 2  # never more than one node has
    assert ray_backend._cpus_per_run([node(2)], 8, 0) == 1
    with pytest.raises(FerError, match="no node"):
        ray_backend._cpus_per_run([node(0), node(4, alive=False)], 1, 0)
    with pytest.raises(FerError, match="--gpus-per-run 2"):
        ray_backend._cpus_per_run([node(4, 1)], 1, 2)
    assert ray_backend._cpus_per_run([node(4, 1)], 2, 0.5) == 2
    assert [ray_backend.asha_grace_period(e) for e in (1, 9, 10, 50)] == [1, 1, 1, 5]


@pytest.fixture(scope="module")
def tune():
    return pytest.importorskip("ray.tune")


def _run(tmp_path: Path, name: str):
    return resolve_config({"arch": "a/tiny.json", "data": "d", "name": name, "epochs": 4,
                           "history_dir": str(tmp_path / "driver" / "history"),
                           "runs_dir": str(tmp_path / "driver" / "runs")})  # fmt: skip


def _checkpoint(tune, storage: Path, trial: str, index: int, run, status: str, epochs: int, val: float, files):
    """A checkpoint folder as a trial persists it: history (trial's own folders) and model files."""
    folder = storage / "exp" / trial / f"checkpoint_{index:06d}"
    folder.mkdir(parents=True)
    trial_config = {**run.to_dict(), "history_dir": "/node/work/history", "runs_dir": "/node/work/runs"}
    record = new_history(run.name, trial_config, ["a", "b"], "sha")
    record.update(status=status, epochs_done=epochs, best_val_accuracy=val, best_epoch=epochs)
    record["history"]["val_accuracy"] = [val] * epochs
    (folder / ray_trial.HISTORY_FILE).write_text(json.dumps(record))
    for file in files:
        (folder / file).write_bytes(f"{trial} {index} {file}".encode())
    return tune.Checkpoint(str(folder))


def _trial(run, checkpoint, **result):
    info = {"node": "node-2", "host": "worker", "cwd": "/node/work", **result}
    error = RuntimeError("node lost")
    return SimpleNamespace(
        config={"run": {"name": run.name}}, checkpoint=checkpoint, last_result=info, get_error=lambda: error
    )


def test_collector_brings_each_trial_back_to_the_driver_folders(tmp_path, tune):
    storage = tmp_path / "storage"
    done, stopped, cut, lost = (_run(tmp_path, n) for n in ("done", "stopped", "cut", "lost"))
    seen = []
    collector = ray_backend._collector_class(tune)(
        {r.name: r for r in (done, stopped, cut, lost)}, str(storage), seen.append, "asha"
    )
    # After an epoch: the driver mirrors the history (its own folders in config) and records the checkpoint.
    first = _checkpoint(tune, storage, "done_1", 0, done, "running", 1, 0.3, ["last.keras", "best.keras"])
    collector.on_checkpoint(0, [], _trial(done, first), first)
    mirrored = read_history(done.history_file)
    assert mirrored["status"] == "running" and mirrored["epochs_done"] == 1
    assert mirrored["config"] == done.to_dict()
    pointer = json.loads((done.run_dir / ray_backend.RAY_CHECKPOINT_FILE).read_text())
    assert pointer == {"checkpoint": first.path, "epochs_done": 1}
    assert ray_backend._recorded_checkpoint(done) == first.path
    # The end: history, best and final models come back; the checkpoint record goes.
    files = ["best.keras", "final.keras", "config.json"]
    last = _checkpoint(tune, storage, "done_1", 1, done, "done", 4, 0.6, files)
    collector.on_checkpoint(1, [], _trial(done, last), last)
    collector.on_trial_complete(1, [], _trial(done, last, run_status="done"))
    record = read_history(done.history_file)
    assert record["status"] == "done" and record["config"] == done.to_dict()
    assert record["trained_on"] == {"node": "node-2", "host": "worker", "cwd": "/node/work"}
    assert (done.run_dir / "best.keras").read_bytes() == b"done_1 1 best.keras"
    assert (done.run_dir / "final.keras").read_bytes() == b"done_1 1 final.keras"
    assert not (done.run_dir / ray_backend.RAY_CHECKPOINT_FILE).exists()
    # ASHA stopped a run after epoch 2: done, stopped early, its last model is its final one.
    ckpt = _checkpoint(tune, storage, "stopped_2", 1, stopped, "running", 2, 0.5, ["last.keras", "best.keras"])
    collector.on_trial_complete(2, [], _trial(stopped, ckpt, run_status="running"))
    record = read_history(stopped.history_file)
    assert record["status"] == "done" and record["stopped_early"] and record["stopped_by"] == "asha"
    assert (stopped.run_dir / "final.keras").read_bytes() == b"stopped_2 1 last.keras"
    # A trial that errored (node lost, retries spent) keeps the epochs its checkpoints brought.
    ckpt = _checkpoint(tune, storage, "cut_3", 0, cut, "running", 3, 0.9, ["last.keras", "best.keras"])
    collector.on_checkpoint(3, [], _trial(cut, ckpt), ckpt)
    collector.on_trial_error(3, [], _trial(cut, None))
    record = read_history(cut.history_file)
    assert record["status"] == "failed" and record["epochs_done"] == 3 and "Ray trial failed" in record["error"]
    assert "node lost" in record["error"]
    # A checkpoint the driver cannot read (storage not shared): failed, saying what to check.
    gone = tune.Checkpoint(str(storage / "exp" / "elsewhere" / "checkpoint_000000"))
    collector.on_trial_complete(4, [], _trial(lost, gone, run_status="done"))
    assert "--storage" in read_history(lost.history_file)["error"]
    assert [o["name"] for o in seen] == ["done", "stopped", "cut", "lost"]
    assert [o["status"] for o in seen] == ["done", "done", "failed", "failed"]
    # Selection then works on the driver's folder as usual: finished runs only, best valid accuracy.
    assert best_run(done.history_dir)["name"] == "done"


def test_a_fifo_trial_ending_mid_run_is_not_taken_for_done(tmp_path, tune):
    run = _run(tmp_path, "early")
    collector = ray_backend._collector_class(tune)({run.name: run}, str(tmp_path / "s"))
    ckpt = _checkpoint(tune, tmp_path / "s", "early_1", 0, run, "running", 1, 0.5, ["last.keras", "best.keras"])
    collector.on_trial_complete(0, [], _trial(run, ckpt, run_status="running"))
    assert collector.outcomes["early"]["status"] == "failed"
    assert "ended before its run finished" in read_history(run.history_file)["error"]


def test_trial_unpacks_a_recorded_checkpoint_where_train_resumes(tmp_path, tune):
    run = _run(tmp_path, "again")
    ckpt = _checkpoint(tune, tmp_path / "s", "again_1", 0, run, "running", 2, 0.5, ["last.keras", "best.keras"])
    work = resolve_config({**run.to_dict(), "history_dir": str(tmp_path / "w" / "history"),
                           "runs_dir": str(tmp_path / "w" / "runs")})  # fmt: skip
    assert ray_trial._unpack(ckpt, work, quiet=True)
    assert read_history(work.history_file)["epochs_done"] == 2
    assert (work.run_dir / "last.keras").read_bytes() == b"again_1 0 last.keras"
    assert not ray_trial._unpack(tune.Checkpoint(str(tmp_path / "nothing")), work, quiet=True)


def test_checkpoint_uri_keeps_the_storage_scheme_and_query(tmp_path, tune):
    local = tmp_path / "store"
    ckpt = SimpleNamespace(path=str(local / "exp" / "t" / "checkpoint_000001"))
    assert ray_backend._checkpoint_uri(str(local), ckpt) == str(local / "exp" / "t" / "checkpoint_000001")
    # Tune's path on the storage file system, as pyarrow resolves the URI (mock://: netloc is not in the path).
    remote = SimpleNamespace(path="grids/exp/t/checkpoint_000002")
    uri = ray_backend._checkpoint_uri("mock://bucket/grids?param=1", remote)
    assert uri == "mock://bucket/grids/exp/t/checkpoint_000002?param=1"
