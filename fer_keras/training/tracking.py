"""Experiment tracking beside the history file: TensorBoard (``--tensorboard DIR``) and MLflow (``--mlflow URI``).

Both are optional mirrors of what the run records anyway: the history JSON stays the
source of truth (selection, the report and resuming read only it), so a tracking server
that stops answering mid-run costs a warning, never the run. Each is imported only when
asked; both are the ``track`` extra (TensorFlow's summary writers need the ``tensorboard`` package).

TensorBoard logs to ``DIR/<run name>`` (``train``/``validation`` subfolders, the Keras
callback's layout): per-epoch scalars, the model's graph, and the learning rate of every
epoch (``epoch_learning_rate``: the warm-up and cosine schedule set it per epoch).

An MLflow run is named after the training run, in the experiment named after its grid
(``fer_keras`` for a single ``fer-train``), tagged ``run`` and ``grid``; params are the
resolved config (:meth:`~fer_keras.training.config.TrainConfig.to_dict`, nested values
flattened with dots), metrics the history's per-epoch values (step = epoch, 1-based),
artifacts the history JSON (``history/``) and the best checkpoint (``model/``). A resumed
training run continues its unfinished MLflow run.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

from fer_keras.constants import BEST_CHECKPOINT_FILE, STATUS_DONE, STATUS_FAILED
from fer_keras.errors import FerError
from fer_keras.training.config import TrainConfig

DEFAULT_EXPERIMENT = "fer_keras"  # the MLflow experiment of runs that belong to no grid
TAG_RUN, TAG_GRID = "run", "grid"
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds")
# fer_keras status → MLflow run status when the training run ends.
MLFLOW_STATUS = {STATUS_DONE: "FINISHED", STATUS_FAILED: "FAILED"}  # anything else (interrupted): KILLED


def tensorboard_dir(config: TrainConfig) -> Path | None:
    """``<tensorboard>/<run name>``, or ``None`` when TensorBoard is off."""
    return Path(config.tensorboard) / config.name if config.tensorboard else None


def tensorboard_callback(config: TrainConfig):
    """The Keras TensorBoard callback of a run (per-epoch scalars incl. the learning rate, the graph).

    Raises:
        FerError: the ``tensorboard`` package (the ``track`` extra) is missing: TensorFlow's
            summary writers need it.
    """
    import keras

    from fer_keras.extras import require

    require("tensorboard", "track", who="--tensorboard")

    return keras.callbacks.TensorBoard(
        log_dir=str(tensorboard_dir(config)), histogram_freq=0, write_graph=True, update_freq="epoch"
    )


def import_mlflow():
    """``mlflow`` (the ``track`` extra), or a one-line FerError saying which extra to install."""
    from fer_keras.extras import require

    return require("mlflow", "track", who="--mlflow")


def flat_params(values: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config values as MLflow params: ``{"augment": {"flip": True}}`` → ``{"augment.flip": "True"}``.

    Example:
        >>> flat_params({"seed": 1, "augment": {"zoom": 0.1}, "threads": None})
        {'seed': '1', 'augment.zoom': '0.1', 'threads': 'None'}
    """
    out: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(flat_params(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


class Tracking:
    """The tracking of one training run: Keras callbacks during ``fit``, :meth:`finish` at the end.

    ``Tracking()`` tracks nothing (the default); :meth:`start` connects to what the config names.
    """

    def __init__(self, callbacks: list | None = None, mlflow_run: MlflowRun | None = None):
        self.callbacks = callbacks or []
        self.mlflow_run = mlflow_run

    @classmethod
    def start(cls, config: TrainConfig, record: dict[str, Any], hist_file: Path, log=None) -> Tracking:
        """Set up what ``config`` asks for (``record``: the run's history record, updated in place).

        Raises:
            FerError: MLflow is not installed, or its tracking server refuses the run.
        """
        callbacks = []
        if config.tensorboard:
            callbacks.append(tensorboard_callback(config))
        run = None
        if config.mlflow:
            run = MlflowRun.start(config, record, hist_file, log)
            callbacks.append(run.callback())
        return cls(callbacks, run)

    def finish(self, status: str) -> None:
        """End the tracking with the run's final status (logs the history and best model to MLflow)."""
        if self.mlflow_run is not None:
            self.mlflow_run.finish(status)
            self.mlflow_run = None


class MlflowRun:
    """One training run mirrored to an MLflow tracking server (or folder), through ``MlflowClient``."""

    def __init__(self, client, run_id: str, config: TrainConfig, record: dict[str, Any], hist_file: Path, log):
        self.client, self.run_id, self.config = client, run_id, config
        self.record, self.hist_file = record, hist_file
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.warned = False

    @classmethod
    def start(cls, config: TrainConfig, record: dict[str, Any], hist_file: Path, log=None) -> MlflowRun:
        """Create the MLflow run (or reopen the unfinished one of a resumed run) and log the params."""
        mlflow = import_mlflow()
        from mlflow.entities import Param

        client = mlflow.tracking.MlflowClient(tracking_uri=config.mlflow)
        experiment = config.grid or DEFAULT_EXPERIMENT
        try:
            found = client.get_experiment_by_name(experiment)
            experiment_id = found.experiment_id if found else client.create_experiment(experiment)
            run_id = cls._unfinished_run(client, experiment_id, config.name) if record.get("epochs_done") else None
            if run_id is None:
                tags = {TAG_RUN: config.name, TAG_GRID: config.grid or ""}
                run_id = client.create_run(experiment_id, tags=tags, run_name=config.name).info.run_id
            else:
                client.update_run(run_id, status="RUNNING")
            logged = client.get_run(run_id).data.params
            # MLflow params are write-once: a resumed run keeps the values it started with
            # (only fields outside a run's identity, such as epochs or devices, can differ).
            params = [Param(k, v) for k, v in flat_params(config.to_dict()).items() if k not in logged]
            for start in range(0, len(params), 100):  # MLflow's limit of params per batch
                client.log_batch(run_id, params=params[start : start + 100])
        except Exception as err:  # noqa: BLE001 - any client error (HTTP, store) becomes one line
            raise FerError(
                f"--mlflow {config.mlflow}: cannot start the MLflow run ({type(err).__name__}: {err})"
            ) from err
        return cls(client, run_id, config, record, hist_file, log)

    @staticmethod
    def _unfinished_run(client, experiment_id: str, name: str) -> str | None:
        runs = client.search_runs(
            [experiment_id], filter_string=f"tags.{TAG_RUN} = '{name}'", order_by=["attributes.start_time DESC"]
        )
        return next((r.info.run_id for r in runs if r.info.status != "FINISHED"), None)

    def callback(self):
        """A Keras callback logging each recorded epoch's metrics (add it after the run's recorder)."""
        import keras

        run = self

        class MlflowEpochs(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                run.log_epoch(epoch + 1)

        return MlflowEpochs()

    def log_epoch(self, epoch: int) -> None:
        """Log epoch ``epoch`` (1-based) from the history record, if the recorder recorded it."""
        if self.record.get("epochs_done") != epoch:
            return  # a non-finite epoch: not in the history, so not tracked either
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = []
        for key in EPOCH_METRICS:
            value = self.record["history"][key][epoch - 1]
            if value is not None and math.isfinite(value):
                metrics.append(Metric(key, float(value), now, epoch))
        self._safely(lambda: self.client.log_batch(self.run_id, metrics=metrics))

    def finish(self, status: str) -> None:
        """Log the history JSON and the best checkpoint, and end the run as FINISHED, FAILED or KILLED."""
        best = self.config.run_dir / BEST_CHECKPOINT_FILE

        def end() -> None:
            if self.record.get("best_val_accuracy") is not None:
                self.client.log_metric(self.run_id, "best_val_accuracy", float(self.record["best_val_accuracy"]))
            if self.hist_file.exists():
                self.client.log_artifact(self.run_id, str(self.hist_file), artifact_path="history")
            if status == STATUS_DONE and best.exists():
                self.client.log_artifact(self.run_id, str(best), artifact_path="model")
            self.client.set_terminated(self.run_id, status=MLFLOW_STATUS.get(status, "KILLED"))

        self._safely(end)

    def _safely(self, call) -> None:
        try:
            call()
        except Exception as err:  # noqa: BLE001 - tracking must never cost the run (the history is the truth)
            if not self.warned:
                self.log(f"{self.config.name}: MLflow logging failed, training goes on: {type(err).__name__}: {err}")
                self.warned = True
