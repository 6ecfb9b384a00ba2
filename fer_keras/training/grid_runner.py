"""Running a grid's runs: local process pool or Ray Tune, same files either way.

Each run trains in its own fresh process (``spawn``, one task per process), so a
crash or a leaked TensorFlow graph in one run never touches another, and CPU
threads are split between the workers. Finished runs are skipped because
:func:`fer_keras.training.train.train` resumes or returns them from their history files.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from fer_keras.constants import STATUS_DONE, STATUS_FAILED
from fer_keras.errors import FerError
from fer_keras.training.history import history_path, new_history, now_iso, write_history

Outcome = dict[str, Any]


def _gpu_count() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    return (
        len([d for d in os.listdir("/dev") if d.startswith("nvidia") and d[6:].isdigit()])
        if os.path.isdir("/dev")
        else 0
    )


def run_one(config: dict[str, Any], force: bool, quiet: bool, gpu: int | None = None) -> Outcome:
    """Train one run in this process and describe the outcome (never raises, but Ctrl-C)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    from fer_keras.training.train import train

    try:
        record = train(config, force=force, quiet=quiet, progress=False)
        return {"name": config["name"], "status": record["status"], "val_accuracy": record["best_val_accuracy"]}
    except FerError as err:
        record_failure(config, str(err))
        return {"name": config["name"], "status": STATUS_FAILED, "error": str(err)}
    except Exception as err:  # noqa: BLE001 - a failing run must not stop the grid
        detail = "".join(traceback.format_exception_only(type(err), err)).strip()
        record_failure(config, detail)
        return {"name": config["name"], "status": STATUS_FAILED, "error": detail}


def record_failure(config: dict[str, Any], error: str) -> None:
    """Make sure a failed run has a history file saying why (train() writes one once it started)."""
    path = history_path(config["history_dir"], config["name"])
    if path.exists():
        from fer_keras.training.history import read_history

        try:
            record = read_history(path)
        except FerError:
            record = None
        if record is not None and record.get("status") == STATUS_FAILED:
            return
    record = new_history(config["name"], config, [], "")
    record.update(status=STATUS_FAILED, error=error, finished_at=now_iso())
    write_history(path, record)


def run_local(
    runs: list[dict[str, Any]],
    workers: int = 1,
    force: bool = False,
    quiet: bool = False,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Train ``runs`` with ``workers`` processes at once; returns one outcome per run."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    gpus = _gpu_count()
    cores = os.cpu_count() or 1
    threads = max(1, cores // max(1, workers))
    outcomes: list[Outcome] = []
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, max_tasks_per_child=1) as pool:
        futures = {}
        for i, config in enumerate(runs):
            config = {**config, "threads": config.get("threads") or (threads if workers > 1 else None)}
            gpu = i % gpus if gpus > 1 else None
            futures[pool.submit(run_one, config, force, quiet, gpu)] = config
        try:
            for future in as_completed(futures):
                try:
                    outcome = future.result()
                except Exception as err:  # noqa: BLE001 - the worker process died (e.g. killed, OOM)
                    config = futures[future]
                    record_failure(config, f"worker process died: {err}")
                    outcome = {"name": config["name"], "status": STATUS_FAILED, "error": f"worker process died: {err}"}
                outcomes.append(outcome)
                if on_done:
                    on_done(outcome)
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            raise
    return outcomes


def run_ray(
    runs: list[dict[str, Any]],
    workers: int = 1,
    force: bool = False,
    quiet: bool = False,
    on_done: Callable[[Outcome], None] | None = None,
    address: str | None = None,
) -> list[Outcome]:
    """Train ``runs`` as Ray Tune trials (one trial per run), same history files.

    Ray is optional: install with ``pip install 'ray[tune]'``. ``address`` joins an
    existing cluster (``ray start --head`` elsewhere); without it a local Ray
    instance is started on this machine.
    """
    try:
        import ray
        from ray import tune
    except ImportError as err:
        raise FerError("--backend ray needs Ray Tune: pip install 'ray[tune]'") from err

    cores = os.cpu_count() or 1
    cpus_per_run = max(1, cores // max(1, workers))
    by_name = {run["name"]: {**run, "threads": run.get("threads") or cpus_per_run} for run in runs}
    storage = os.path.abspath(os.path.join(runs[0]["runs_dir"] if runs else "runs", "ray_results"))
    ray.init(address=address, include_dashboard=False, log_to_driver=not quiet, ignore_reinit_error=True,
             num_cpus=None if address else cores)  # fmt: skip

    def trainable(params: dict[str, Any]) -> None:
        outcome = run_one(by_name[params["name"]], force, quiet)
        tune.report({"done": outcome["status"] == STATUS_DONE, "val_accuracy": outcome.get("val_accuracy") or 0.0})

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": cpus_per_run}),
        param_space={"name": tune.grid_search(list(by_name))},
        tune_config=tune.TuneConfig(max_concurrent_trials=workers),
        run_config=tune.RunConfig(storage_path=storage, name="grid", verbose=0),
    )
    try:
        tuner.fit()
    finally:
        ray.shutdown()
    from fer_keras.training.grid import run_status

    outcomes = []
    for name, config in by_name.items():
        status = run_status(config)
        outcome = {"name": name, "status": status}
        if status != STATUS_DONE:
            outcome["error"] = _history_error(config)
        outcomes.append(outcome)
        if on_done:
            on_done(outcome)
    return outcomes


def _history_error(config: dict[str, Any]) -> str:
    from fer_keras.training.history import read_history

    try:
        return read_history(history_path(config["history_dir"], config["name"])).get("error") or "not finished"
    except FerError as err:
        return str(err)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
