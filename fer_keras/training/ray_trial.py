"""One Ray Tune trial of ``fer-grid --backend ray``: runs on a Ray node, in its Tune working folder.

A trial trains its run in that folder (its own ``history/`` and ``runs/``), starting from a
checkpoint when Tune retries it or an earlier session recorded one, and reports every
recorded epoch to Tune with a checkpoint (history JSON, ``last.keras``, ``best.keras``); its
last report carries the best and final models and the resolved config. The driver side,
which collects these into its own folders, is :mod:`fer_keras.training.ray_backend`.
"""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

from fer_keras.constants import (
    BEST_CHECKPOINT_FILE,
    FINAL_MODEL_FILE,
    HISTORY_DIR,
    LAST_CHECKPOINT_FILE,
    RUN_CONFIG_FILE,
    RUNS_DIR,
    STATUS_RUNNING,
)
from fer_keras.training.config import TrainConfig
from fer_keras.training.history import read_history

HISTORY_FILE = "history.json"  # the history record inside a checkpoint


def run_trial(params: dict[str, Any], configs: dict[str, TrainConfig], force: bool, quiet: bool) -> None:
    """Train one run in this node's trial folder; report every epoch and the end to Tune."""
    from ray import tune

    from fer_keras.training.grid_runner import run_one

    work = Path.cwd()  # Tune's working directory of this trial, on this node
    run = params["run"]
    config = replace(configs[run["name"]], history_dir=str(work / HISTORY_DIR), runs_dir=str(work / RUNS_DIR))
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # trials sharing a GPU must not grab all its memory
    checkpoint = tune.get_checkpoint()  # set when Tune retries this trial
    if checkpoint is None and run["resume"]:
        checkpoint = tune.Checkpoint(run["resume"])  # recorded by an earlier fer-grid session
    restored = checkpoint is not None and _unpack(checkpoint, config, quiet)
    info = {"node": _node_id(), "host": socket.gethostname(), "cwd": str(work)}
    reporter = _reporter_class()(config, info)
    outcome = run_one(config, force and not restored, quiet, extra_callbacks=[reporter])
    _report(config, {**info, "run_status": outcome["status"], "error": outcome.get("error") or ""}, final=True)


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - informative only
        return ""


def _unpack(checkpoint, config: TrainConfig, quiet: bool) -> bool:
    """Put a checkpoint's history and models where train() resumes from; False if unreadable."""
    try:
        with checkpoint.as_directory() as folder:
            folder = Path(folder)
            config.run_dir.mkdir(parents=True, exist_ok=True)
            for file in (LAST_CHECKPOINT_FILE, BEST_CHECKPOINT_FILE):
                if (folder / file).exists():
                    shutil.copy2(folder / file, config.run_dir / file)
            config.history_file.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / HISTORY_FILE, config.history_file)
        return True
    except Exception as err:  # noqa: BLE001 - a lost checkpoint means starting over, not failing
        if not quiet:
            print(f"{config.name}: cannot read checkpoint {checkpoint.path} ({err}); starting over", flush=True)
        return False


def _report(config: TrainConfig, extra: dict[str, Any], final: bool) -> None:
    """Report the run's latest epoch to Tune with its files as a checkpoint (persisted to storage)."""
    from ray import tune

    record = read_history(config.history_file)
    stage = Path.cwd() / "checkpoint_stage"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    files = (
        (BEST_CHECKPOINT_FILE, FINAL_MODEL_FILE, RUN_CONFIG_FILE)
        if final
        else (LAST_CHECKPOINT_FILE, BEST_CHECKPOINT_FILE)
    )
    for file in files:
        if (config.run_dir / file).exists():
            os.link(config.run_dir / file, stage / file)  # same folder tree: no copy
    shutil.copy2(config.history_file, stage / HISTORY_FILE)
    hist = record["history"]
    metrics = {
        "epoch": record.get("epochs_done", 0),
        "best_val_accuracy": record.get("best_val_accuracy") or 0.0,
        **{key: (hist[key][-1] if hist.get(key) else None) for key in ("loss", "accuracy", "val_loss", "val_accuracy")},
        "run_status": STATUS_RUNNING,
        **extra,
    }
    try:
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(stage))  # persisted before it returns
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _reporter_class():
    import keras

    class TuneReporter(keras.callbacks.Callback):
        """Reports each recorded epoch (after the run's recorder wrote its files) to Tune."""

        def __init__(self, config: TrainConfig, info: dict[str, Any]):
            super().__init__()
            self.config, self.info = config, info

        def on_epoch_end(self, epoch, logs=None):
            record = read_history(self.config.history_file)
            if record.get("epochs_done", 0) == epoch + 1:  # a non-finite epoch is not recorded: nothing to report
                _report(self.config, self.info, final=False)

    return TuneReporter
