"""One training run: spec + dataset + optimizer → checkpoints, final model, history.

A run is resumable: after every epoch ``runs/<name>/last.keras`` (model and
optimizer state) and the history file are replaced atomically, so a run killed at
any moment (Ctrl-C, ``kill -9``, power loss) restarts from its last finished epoch.
Validation uses the whole ``valid`` split every epoch; ``test`` is never read here.
A NaN or infinite loss stops the run as ``failed`` with the epoch in its ``error``.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fer_keras.constants import (
    BEST_CHECKPOINT_FILE,
    COLOR_MODES,
    FINAL_MODEL_FILE,
    LAST_CHECKPOINT_FILE,
    RUN_CONFIG_FILE,
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_INTERRUPTED,
    STATUS_RUNNING,
)
from fer_keras.errors import FerError
from fer_keras.training.batchnorm import precise_bn_class, sync_batchnorm
from fer_keras.training.config import TrainConfig, config_differences
from fer_keras.training.devices import distribution, strategy_scope
from fer_keras.training.history import is_finished, new_history, now_iso, read_history, write_history
from fer_keras.training.tracking import Tracking

RunResult = dict[str, Any]


def run_dir(config: TrainConfig) -> Path:
    """``<runs_dir>/<name>`` (:attr:`TrainConfig.run_dir`)."""
    return config.run_dir


def make_optimizer(config: TrainConfig):
    """The optimizer the config names (the reference compiled adam whatever it named)."""
    import keras

    name, lr = config.optimizer, config.learning_rate
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=config.momentum, nesterov=config.nesterov)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=config.weight_decay)
    return keras.optimizers.Adam(learning_rate=lr)


def learning_rate_at(config: TrainConfig, epoch: int) -> float:
    """Per-epoch learning rate: linear warm-up, then constant or cosine decay to ~0."""
    base, warm, total = config.learning_rate, config.warmup_epochs, config.epochs
    if epoch < warm:
        return base * (epoch + 1) / warm
    if config.lr_schedule == "cosine":
        progress = (epoch - warm) / max(1, total - warm)
        return base * 0.5 * (1 + math.cos(math.pi * progress))
    return base


def class_weights_for(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """scikit-learn's "balanced" weights: n_samples / (n_classes * count)."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    out = dict.fromkeys(range(num_classes), 1.0)
    out.update({int(c): float(w) for c, w in zip(present, weights)})
    return out


def _save_atomic(model, path: Path) -> None:
    from fer_keras.atomic import atomic_path

    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


def _recorder_class():
    import keras

    class RunRecorder(keras.callbacks.Callback):
        """Saves best/last checkpoints and the history file after every epoch; stops on a NaN/inf loss.

        The loss check is keras.callbacks.TerminateOnNaN's (every batch), but it also
        remembers where, for the history's ``error``. An epoch that went non-finite is
        not recorded: the history and ``last.keras`` stay at the last finite epoch, so
        no NaN reaches a JSON file and a resume never starts from NaN weights.
        """

        # The batch check only reads logs and sets flags under a lock, so Keras may keep
        # dispatching batch callbacks asynchronously (no device sync per training step).
        async_safe = True

        def __init__(self, record: dict[str, Any], hist_file: Path, folder: Path, quiet: bool, log):
            super().__init__()
            self.record, self.hist_file, self.folder, self.quiet, self.log = record, hist_file, folder, quiet, log
            self._t0 = 0.0
            self._timed: list[float] = []  # epoch seconds of this process (a resumed run's earlier ones ran elsewhere)
            self._lock = threading.Lock()
            self._bad_batch: tuple[int, float] | None = None  # (batch, loss) of the first non-finite loss
            self.failure: str | None = None

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is None or math.isfinite(float(loss)):
                return
            with self._lock:  # async dispatch may deliver batches out of order: keep the first
                if self._bad_batch is None or batch < self._bad_batch[0]:
                    self._bad_batch = (batch, float(loss))
            self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            seconds = time.perf_counter() - self._t0
            self.record["wall_time_s"] = round(self.record["wall_time_s"] + seconds, 3)
            self.failure = self._non_finite(epoch, logs)
            if self.failure:
                self.model.stop_training = True
                return
            hist = self.record["history"]
            lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                hist[key].append(float(logs.get(key, float("nan"))))
            hist["lr"].append(lr)
            hist["epoch_seconds"].append(round(seconds, 3))
            self._timed.append(seconds)
            val_acc = hist["val_accuracy"][-1]
            best = self.record["best_val_accuracy"]
            if best is None or val_acc > best:
                self.record["best_val_accuracy"], self.record["best_epoch"] = val_acc, epoch + 1
                _save_atomic(self.model, self.folder / BEST_CHECKPOINT_FILE)
            _save_atomic(self.model, self.folder / LAST_CHECKPOINT_FILE)
            self.record["epochs_done"] = epoch + 1
            write_history(self.hist_file, self.record)
            if not self.quiet:
                self.log(
                    f"{self.record['name']} epoch {epoch + 1}/{self.params.get('epochs')}: "
                    f"loss {hist['loss'][-1]:.4f} acc {hist['accuracy'][-1]:.4f} "
                    f"val_loss {hist['val_loss'][-1]:.4f} val_acc {val_acc:.4f} ({seconds:.1f}s{self._eta(epoch)})"
                )

        def _eta(self, epoch: int) -> str:
            """``", ~N min left"``: the epochs still to run at this process's mean epoch time ("" when done)."""
            left = (int(self.params.get("epochs") or 0) - epoch - 1) * (sum(self._timed) / len(self._timed))
            if left <= 0:
                return ""
            return f", ~{left / 3600:.1f} h left" if left >= 5400 else f", ~{max(1, round(left / 60))} min left"

        def _non_finite(self, epoch: int, logs: dict[str, Any]) -> str | None:
            """Why epoch ``epoch`` (0-based) is unusable, or None."""
            with self._lock:
                bad, self._bad_batch = self._bad_batch, None
            if bad is not None:
                return f"loss became {bad[1]} at epoch {epoch + 1} (batch {bad[0] + 1})"
            for key in ("loss", "val_loss"):
                value = logs.get(key)
                if value is not None and not math.isfinite(float(value)):
                    return f"{key} became {float(value)} at epoch {epoch + 1}"
            return None

    return RunRecorder


def mixed_precision_policy() -> str:
    """``mixed_float16`` where a GPU is visible (tensor cores), else ``mixed_bfloat16`` (CPUs; pays off with AMX)."""
    import tensorflow as tf

    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def _prepare(config: TrainConfig, force: bool) -> tuple[dict[str, Any] | None, Path, bool]:
    """Decide between a fresh start and a resume: ``(record to resume or None, history file, finished)``."""
    folder = run_dir(config)
    hist_file = config.history_file
    if force or not hist_file.exists():
        for name in (LAST_CHECKPOINT_FILE, BEST_CHECKPOINT_FILE, FINAL_MODEL_FILE):
            (folder / name).unlink(missing_ok=True)
        return None, hist_file, False
    record = read_history(hist_file)
    diffs = config_differences(record["config"], config)
    if diffs:
        raise FerError(
            f"{hist_file}: existing run has a different config ({'; '.join(diffs)}); use --force to restart it"
        )
    record["config"] = config.to_dict()
    if is_finished(record, config.epochs):
        return record, hist_file, True
    if record["epochs_done"] == 0 or not (folder / LAST_CHECKPOINT_FILE).exists():
        return None, hist_file, False
    return record, hist_file, False


def train(
    config: TrainConfig,
    force: bool = False,
    quiet: bool = False,
    log=None,
    progress: bool = True,
    extra_callbacks: Sequence[Any] = (),
) -> RunResult:
    """Train one run described by ``config`` (made by ``resolve_config``, once, by the caller).

    Resumes from ``runs/<name>/last.keras`` when an unfinished run with the same
    config exists; a finished run is returned as is unless ``force``. ``quiet``
    silences everything; ``progress=False`` keeps the per-epoch lines but drops
    progress bars (what grid workers want). ``extra_callbacks``: Keras callbacks, called after
    the run's own recorder, so at an epoch's end the checkpoints and history file are already
    written (the Ray backend reports them to Tune from there).

    Returns:
        The final history record.

    Example:
        >>> cfg = resolve_config({"arch": "architectures/model_2_best.json", "data": "data/demo",
        ...                       "optimizer": "sgd", "batch_size": 32, "epochs": 2})  # doctest: +SKIP
        >>> train(cfg)["status"]  # doctest: +SKIP
        'done'
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"train() takes a TrainConfig (from resolve_config); got {type(config).__name__}")
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    from fer_keras.model.spec import load_spec

    spec = load_spec(config.arch)  # validate before spending time on data
    record, hist_file, finished = _prepare(config, force)
    if finished:
        if not quiet:
            log(f"{config.name}: already done ({record['epochs_done']} epochs); use --force to retrain")
        return record

    import keras

    from fer_keras.data.pipeline import load_split, make_dataset
    from fer_keras.model.builder import build_model

    if config.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(config.threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, config.threads))
    strategy = distribution(config)  # --devices: before anything else initialises TensorFlow's devices
    keras.utils.set_random_seed(config.seed)
    size = config.image_size
    bars_off = quiet or not progress
    train_data = load_split(config.data, "train", size, config.color_mode, quiet=bars_off)
    valid_data = load_split(config.data, "valid", size, config.color_mode, train_data.class_names, quiet=bars_off)
    class_names = train_data.class_names
    num_classes = len(class_names)
    folder = run_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    from fer_keras.atomic import write_json_atomic

    write_json_atomic(folder / RUN_CONFIG_FILE, {**config.to_dict(), "class_names": list(class_names)})

    previous_policy = keras.config.dtype_policy().name
    if config.mixed_precision:
        keras.config.set_dtype_policy(mixed_precision_policy())
    tracked = Tracking()
    try:
        with strategy_scope(strategy):  # variables (new or loaded) mirrored on every device
            if record is None:
                record = new_history(config.name, config.to_dict(), list(class_names), spec.sha256)
                model = build_model(
                    spec, (*size, COLOR_MODES[config.color_mode]), num_classes, output_float32=config.mixed_precision
                )
                model.compile(
                    optimizer=make_optimizer(config),
                    loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                    metrics=["accuracy"],
                )
                initial_epoch = 0
            else:
                model = keras.models.load_model(folder / LAST_CHECKPOINT_FILE)
                initial_epoch = record["epochs_done"]
        sync_batchnorm(model, strategy)
        if initial_epoch:
            if not quiet:
                log(f"{config.name}: resuming at epoch {initial_epoch + 1} from {folder / LAST_CHECKPOINT_FILE}")
        record.update(status=STATUS_RUNNING, error=None, finished_at=None)
        write_history(hist_file, record)
        tracked = Tracking.start(config, record, hist_file, log)

        train_ds = make_dataset(train_data, config.batch_size, num_classes, True, config.augment, config.seed)
        valid_ds = make_dataset(valid_data, config.batch_size, num_classes)
        recorder = _recorder_class()(record, hist_file, folder, quiet, log)
        callbacks = [
            keras.callbacks.LearningRateScheduler(lambda epoch, lr: learning_rate_at(config, epoch)),
            recorder,
            *tracked.callbacks,  # after the recorder: they mirror what it recorded
            *extra_callbacks,
        ]
        if config.lr_schedule == "constant" and not config.warmup_epochs:
            callbacks.pop(0)  # keep ReduceLROnPlateau (or the optimizer's own lr) in charge
        if config.precise_bn:
            rng = np.random.default_rng(config.seed)
            sample = rng.choice(len(train_data), size=min(config.precise_bn, len(train_data)), replace=False)
            callbacks.insert(0, precise_bn_class()(train_data.images[np.sort(sample)]))
        if config.reduce_lr:
            callbacks.append(keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=config.reduce_lr))
        if config.early_stopping:
            callbacks.append(keras.callbacks.EarlyStopping("val_accuracy", patience=config.early_stopping, mode="max"))
        weights = class_weights_for(train_data.labels, num_classes) if config.class_weights else None
        if initial_epoch < config.epochs:
            verbose = 1 if (not bars_off and sys.stderr.isatty()) else 0
            model.fit(
                train_ds,
                validation_data=valid_ds,
                epochs=config.epochs,
                initial_epoch=initial_epoch,
                class_weight=weights,
                callbacks=callbacks,
                verbose=verbose,
                shuffle=False,  # the tf.data pipeline shuffles itself
            )
        if recorder.failure:
            raise FerError(f"{config.name}: {recorder.failure}; training stopped (try a lower learning rate)")
        _save_atomic(model, folder / FINAL_MODEL_FILE)
        # Fewer epochs than asked without an exception means EarlyStopping ended the run: it is
        # finished, and reruns must not resume it.
        stopped_early = record["epochs_done"] < config.epochs
        record.update(status=STATUS_DONE, finished_at=now_iso(), stopped_early=stopped_early)
        write_history(hist_file, record)
        tracked.finish(STATUS_DONE)
        return record
    except KeyboardInterrupt:
        _mark(hist_file, record, STATUS_INTERRUPTED, "interrupted (Ctrl-C)", tracked)
        raise
    except FerError as err:
        _mark(hist_file, record, STATUS_FAILED, str(err), tracked)
        raise
    except Exception as err:
        _mark(hist_file, record, STATUS_FAILED, f"{type(err).__name__}: {err}", tracked)
        raise
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _mark(hist_file: Path, record: dict[str, Any] | None, status: str, error: str, tracked: Tracking) -> None:
    if record is None:
        return
    record.update(status=status, error=error, finished_at=now_iso())
    write_history(hist_file, record)
    tracked.finish(status)


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
