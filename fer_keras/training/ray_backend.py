"""The Ray Tune backend of ``fer-grid``: one trial per run, results shipped back to the driver.

No disk is assumed shared between the driver (the machine running ``fer-grid``) and the
nodes. A trial trains in Tune's working folder on its node (its own ``history/`` and
``runs/``); after every epoch it reports the epoch's metrics to Tune with a checkpoint
(history JSON, ``last.keras``, ``best.keras``), and at the end its history, best and final
models. Tune persists checkpoints to ``storage`` (a folder or URI every node can reach;
default ``<runs_dir>/ray_results``, enough on one machine) and a callback in the driver
copies them into the driver's ``history/`` and ``runs/<name>/``, where selection works as
after the local backend.

Resume: the driver records each unfinished run's latest checkpoint
(``runs/<name>/ray_checkpoint.json``); a rerun trains the runs that are not done, each from
its recorded checkpoint. Tune's retries of a trial (a node lost) resume the same way.
``scheduler="asha"``: Tune's ASHA stops unpromising runs early (on ``best_val_accuracy``); a
stopped run is done, with ``stopped_early`` and ``stopped_by: "asha"``.

Every node needs fer_keras and the grid's data and architecture files at the driver's
absolute paths. This module is the driver's side; what runs on a node is
:mod:`fer_keras.training.ray_trial`.
"""

from __future__ import annotations

import datetime as dt
import os
import posixpath
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from fer_keras.atomic import atomic_path, write_json_atomic
from fer_keras.constants import (
    BEST_CHECKPOINT_FILE,
    FINAL_MODEL_FILE,
    LAST_CHECKPOINT_FILE,
    RUN_CONFIG_FILE,
    RUNS_DIR,
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_INTERRUPTED,
    STATUS_RUNNING,
)
from fer_keras.errors import FerError
from fer_keras.training.config import TrainConfig
from fer_keras.training.history import new_history, now_iso, read_history, write_history
from fer_keras.training.ray_trial import HISTORY_FILE, run_trial

Outcome = dict[str, Any]
SCHEDULERS = ("fifo", "asha")
RAY_CHECKPOINT_FILE = "ray_checkpoint.json"  # in runs/<name>/ on the driver: where the run's latest checkpoint lies
ASHA_REDUCTION_FACTOR = 3
STORAGE_HINT = "; is --storage a folder or URI that every node and this machine can reach?"


def asha_grace_period(epochs: int) -> int:
    """Epochs every run trains before ASHA may stop it: a tenth of the longest run, at least 1."""
    return max(1, epochs // 10)


def run_ray(
    runs: list[TrainConfig],
    workers: int = 1,
    force: bool = False,
    quiet: bool = False,
    on_done: Callable[[Outcome], None] | None = None,
    address: str | None = None,
    storage: str | None = None,
    gpus_per_run: float = 0.0,
    scheduler: str = "fifo",
    name: str = "grid",
) -> list[Outcome]:
    """Train ``runs`` as Ray Tune trials and bring every result back to this machine's folders.

    Args:
        runs: the runs to train (their ``history_dir``/``runs_dir`` are the driver's folders).
        workers: trials at once; each asks for ``CPUs // workers`` CPUs (of the largest node).
        force: retrain from scratch, ignoring recorded checkpoints.
        quiet: no per-epoch lines from the trials.
        on_done: called with each run's outcome as its trial ends.
        address: an existing Ray cluster (``ray start --head`` elsewhere); default: a local Ray.
        storage: where Tune persists checkpoints: a folder or URI every node can reach
            (default ``<runs_dir>/ray_results``, on the driver's disk).
        gpus_per_run: GPUs each trial asks for (fractions share a GPU).
        scheduler: ``fifo`` (every run to the end) or ``asha`` (early stopping of unpromising runs).
        name: names Tune's experiment folder (``<name>-<timestamp>`` under ``storage``).

    Returns:
        One outcome per run (``name``, ``status``, ``val_accuracy`` or ``error``, ``node``).

    Raises:
        FerError: Ray missing, or a cluster without the resources a trial asks for.
        KeyboardInterrupt: the driver was interrupted (finished runs are kept; rerun to resume).
    """
    from fer_keras.extras import require

    ray = require("ray", "ray", "--backend ray")
    tune = require("ray.tune", "ray", "--backend ray")

    storage = storage or os.path.abspath(os.path.join(runs[0].runs_dir if runs else RUNS_DIR, "ray_results"))
    if "://" not in storage:
        storage = os.path.abspath(storage)
    cores = os.cpu_count() or 1
    # A local instance is retried once: on a busy machine its raylet can miss Ray's fixed startup waits.
    for attempt in range(1 if address else 2):
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=not quiet, ignore_reinit_error=True,
                     num_cpus=None if address else cores)  # fmt: skip
            break
        except Exception as err:  # noqa: BLE001 - Ray raises many kinds (ConnectionError, RuntimeError, its own)
            ray.shutdown()
            if attempt == 0 and not address:
                continue
            where = f"join the Ray cluster at {address}" if address else "start a local Ray instance"
            raise FerError(f"--backend ray: cannot {where}: {type(err).__name__}: {err}") from err
    try:
        cpus = _cpus_per_run(ray.nodes(), workers, gpus_per_run)
        by_name = {run.name: run for run in runs}
        # Trials read data and architecture at the driver's absolute paths; threads follow their CPUs.
        shipped = {
            run.name: replace(
                run, arch=os.path.abspath(run.arch), data=os.path.abspath(run.data), threads=run.threads or cpus
            )
            for run in runs
        }
        resume = {} if force else {run.name: _recorded_checkpoint(run) for run in runs}
        params = [{"name": run.name, "resume": resume.get(run.name) or ""} for run in runs]
        collector = _collector_class(tune)(by_name, storage, on_done, scheduler)
        tuner = tune.Tuner(
            tune.with_resources(
                tune.with_parameters(run_trial, configs=shipped, force=force, quiet=quiet),
                {"cpu": cpus, "gpu": gpus_per_run},
            ),
            param_space={"run": tune.grid_search(params)},
            tune_config=tune.TuneConfig(
                max_concurrent_trials=workers,
                scheduler=_scheduler(tune, scheduler, max(run.epochs for run in runs)),
                trial_dirname_creator=lambda trial: f"{trial.config['run']['name']}_{trial.trial_id}",
            ),
            run_config=tune.RunConfig(
                storage_path=storage,
                name=f"{name}-{dt.datetime.now():%Y%m%d-%H%M%S}",
                callbacks=[collector],
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                failure_config=tune.FailureConfig(max_failures=2),
                verbose=0,
            ),
        )
        # Tune's own console tables would interleave with fer-grid's progress bar; verbose=0 silences the old ones.
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        tuner.fit()
    finally:
        ray.shutdown()
    missing = [run for run in runs if run.name not in collector.outcomes]
    if missing:  # Tune returned without ending these trials: it was interrupted (Ctrl-C / SIGINT)
        for run in missing:
            _mark_interrupted(run)
        raise KeyboardInterrupt
    return [collector.outcomes[run.name] for run in runs]


def _cpus_per_run(nodes: list[dict[str, Any]], workers: int, gpus_per_run: float) -> int:
    """CPUs per trial: the cluster's CPUs shared by ``workers`` trials, within the largest node."""
    alive = [node.get("Resources", {}) for node in nodes if node.get("Alive")]
    per_node = max((res.get("CPU", 0) for res in alive), default=0)
    total = sum(res.get("CPU", 0) for res in alive)
    if per_node < 1:
        raise FerError("the Ray cluster has no node with a CPU to train on")
    if gpus_per_run and not any(res.get("GPU", 0) >= gpus_per_run for res in alive):
        raise FerError(f"--gpus-per-run {gpus_per_run:g}: no node of the Ray cluster has that many GPUs")
    return int(max(1, min(per_node, total // workers)))


def _scheduler(tune, scheduler: str, epochs: int):
    if scheduler != "asha":
        return None
    from ray.tune.schedulers import ASHAScheduler

    # max_t beyond the last epoch: ASHA stops a run that reaches max_t, and a run's last
    # report (its final model) comes after its last epoch's.
    return ASHAScheduler(time_attr="epoch", metric="best_val_accuracy", mode="max", max_t=epochs + 1,
                         grace_period=min(epochs, asha_grace_period(epochs)),
                         reduction_factor=ASHA_REDUCTION_FACTOR)  # fmt: skip


def _recorded_checkpoint(run: TrainConfig) -> str | None:
    """The latest checkpoint an earlier session recorded for ``run`` (a URI), or None."""
    path = run.run_dir / RAY_CHECKPOINT_FILE
    try:
        from fer_keras.validation import read_json_file

        return str(read_json_file(path, "Ray checkpoint record")["checkpoint"])
    except (FerError, KeyError, TypeError):
        return None


def _mark_interrupted(run: TrainConfig) -> None:
    try:
        record = read_history(run.history_file)
    except FerError:
        return
    if record.get("status") == STATUS_RUNNING:
        record.update(status=STATUS_INTERRUPTED, error="interrupted (Ctrl-C)", finished_at=now_iso())
        write_history(run.history_file, record)


def _failed_record(run: TrainConfig, error: str) -> dict[str, Any]:
    """The run's history on this machine (what the checkpoints brought so far), marked failed."""
    try:
        record = read_history(run.history_file)
    except FerError:
        record = new_history(run.name, run.to_dict(), [], "")
    record.update(status=STATUS_FAILED, error=error, finished_at=now_iso())
    return record


def _checkpoint_uri(storage: str, checkpoint) -> str:
    """A URI for ``checkpoint`` that a later session can open: ``storage`` + its path below storage's root."""
    import pyarrow.fs

    base, _, query = storage.partition("?")
    _, root = pyarrow.fs.FileSystem.from_uri(storage)
    relative = posixpath.relpath(checkpoint.path, root)
    return f"{base.rstrip('/')}/{relative}" + (f"?{query}" if query else "")


def _fetch(checkpoint, file: str, dest: Path) -> bool:
    """Copy one file of a (possibly remote) checkpoint to ``dest`` atomically; False if absent."""
    import pyarrow.fs

    source = posixpath.join(checkpoint.path, file)
    fs = checkpoint.filesystem
    if fs.get_file_info(source).type != pyarrow.fs.FileType.File:
        return False
    with atomic_path(dest, suffix=dest.suffix) as tmp, fs.open_input_stream(source) as src, open(tmp, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    return True


def _collector_class(tune):
    class Collector(tune.Callback):
        """Runs in the driver: mirrors every checkpoint's history and, at a trial's end, its models."""

        def __init__(
            self,
            runs: dict[str, TrainConfig],
            storage: str,
            on_done: Callable[[Outcome], None] | None = None,
            scheduler: str = "fifo",
        ):
            self.runs, self.storage, self.on_done, self.scheduler = runs, storage, on_done, scheduler
            self.outcomes: dict[str, Outcome] = {}

        def _history(self, run: TrainConfig, checkpoint) -> dict[str, Any]:
            tmp = run.run_dir / f".{HISTORY_FILE}.fetch"
            try:
                if not _fetch(checkpoint, HISTORY_FILE, tmp):
                    raise FerError(f"{checkpoint.path}: no {HISTORY_FILE} in the trial's checkpoint{STORAGE_HINT}")
                record = read_history(tmp)
            finally:
                tmp.unlink(missing_ok=True)
            record["config"] = run.to_dict()  # the driver's folders, not the trial's
            return record

        def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
            run = self.runs[trial.config["run"]["name"]]
            try:
                record = self._history(run, checkpoint)
            except (OSError, FerError):
                return  # the end of the trial says what went wrong
            if record.get("status") == STATUS_RUNNING:
                pointer = {
                    "checkpoint": _checkpoint_uri(self.storage, checkpoint),
                    "epochs_done": record["epochs_done"],
                }
                write_json_atomic(run.run_dir / RAY_CHECKPOINT_FILE, pointer)
            write_history(run.history_file, record)  # progress on this machine: fer-grid --dry-run, fer-report

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._finish(trial, None)

        def on_trial_error(self, iteration, trials, trial, **info):
            lines = str(trial.get_error() or "unknown error").strip().splitlines() or ["unknown error"]
            host = (trial.last_result or {}).get("host") or "?"
            self._finish(trial, f"Ray trial failed on {host} (after Tune's retries): {lines[-1][:500]}")

        def _finish(self, trial, error: str | None) -> None:
            run = self.runs[trial.config["run"]["name"]]
            result = trial.last_result or {}
            outcome: Outcome = {"name": run.name, "node": result.get("node"), "cwd": result.get("cwd")}
            checkpoint = trial.checkpoint
            try:
                if checkpoint is None:
                    raise FerError(error or "the trial reported no checkpoint")
                record = self._history(run, checkpoint)
                _fetch(checkpoint, BEST_CHECKPOINT_FILE, run.run_dir / BEST_CHECKPOINT_FILE)
                _fetch(checkpoint, RUN_CONFIG_FILE, run.run_dir / RUN_CONFIG_FILE)
                final = _fetch(checkpoint, FINAL_MODEL_FILE, run.run_dir / FINAL_MODEL_FILE)
                if not final and error is None and record.get("status") == STATUS_RUNNING:
                    if self.scheduler != "asha":
                        raise FerError("the trial ended before its run finished")
                    # ASHA stopped it after an epoch: done, with the best epoch it reached.
                    _fetch(checkpoint, LAST_CHECKPOINT_FILE, run.run_dir / FINAL_MODEL_FILE)
                    record.update(status=STATUS_DONE, stopped_early=True, stopped_by="asha", finished_at=now_iso())
                if error is not None and record.get("status") != STATUS_DONE:
                    record.update(status=STATUS_FAILED, error=error, finished_at=now_iso())
            except (OSError, FerError) as err:
                reason = f"{err}{STORAGE_HINT}" if isinstance(err, OSError) else str(err)
                record = _failed_record(run, error or reason)
            if result.get("cwd"):  # where it trained: Tune's working folder on a Ray node, not this machine's folders
                record["trained_on"] = {key: result.get(key) for key in ("node", "host", "cwd")}
            write_history(run.history_file, record)
            if record["status"] == STATUS_DONE:
                (run.run_dir / RAY_CHECKPOINT_FILE).unlink(missing_ok=True)
                outcome.update(status=STATUS_DONE, val_accuracy=record.get("best_val_accuracy"))
            else:
                outcome.update(status=STATUS_FAILED, error=record.get("error") or "failed")
            self.outcomes[run.name] = outcome
            if self.on_done:
                self.on_done(outcome)

    return Collector
