"""Training runs as the report sees them: history files → one row per run.

Every file in the history folder ends up somewhere in the report: readable runs
(whatever their status) become :class:`Run` objects and rows of :func:`runs_frame`;
files that :func:`fer_keras.training.history.read_history` rejects are kept as
:class:`Unreadable` so the report can list them instead of crashing.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_keras.errors import FerError
from fer_keras.training.history import METRIC_KEYS, list_histories, read_history

# The reference run name, parsed from the right because model names contain underscores.
_NAME_RE = re.compile(
    r"^(?P<model>.+)_(?P<optimizer>[a-z]+)_(?P<color_mode>rgb|grayscale)_(?P<batch_size>\d+)_"
    r"(?P<variant>augment|balanced-2|balanced)(?P<suffix>.*)$"
)
FRAME_COLUMNS = (
    "name",
    "status",
    "model",
    "optimizer",
    "color_mode",
    "batch_size",
    "variant",
    "class_weights",
    "seed",
    "suffix",
    "epochs_done",
    "wall_time_s",
    "mean_epoch_s",
    "max_val_accuracy",
    "best_epoch",
    "final_val_accuracy",
    "max_accuracy",
    "min_loss",
    "min_val_loss",
    "error",
)


@dataclass
class Run:
    """One readable history file.

    ``curves`` maps each metric of ``fer_keras.training.history.METRIC_KEYS`` to a float array
    (``NaN`` where a value is missing or not a number). ``config`` is the history's ``config`` as
    recorded, read tolerantly with ``.get``: not a :class:`~fer_keras.training.config.TrainConfig`,
    because the report lists every history file, including those of older versions and partial
    or foreign records that would not resolve (a missing field falls back to the run name).
    """

    path: Path
    name: str
    status: str
    error: str | None
    config: dict[str, Any]
    curves: dict[str, np.ndarray]
    record: dict[str, Any] = field(repr=False)

    @property
    def epochs(self) -> int:
        return max((len(v) for v in self.curves.values()), default=0)

    def axes(self) -> dict[str, Any]:
        """Grid axes of the run (model, optimizer, colour, batch, variant...), config first, name second."""
        parsed = _NAME_RE.match(self.name)
        named = parsed.groupdict() if parsed else {}
        cfg = self.config
        model = cfg.get("model") or (Path(str(cfg["arch"])).stem if cfg.get("arch") else named.get("model"))
        batch = cfg.get("batch_size", named.get("batch_size"))
        return {
            "model": model,
            "optimizer": cfg.get("optimizer", named.get("optimizer")),
            "color_mode": cfg.get("color_mode", named.get("color_mode")),
            "batch_size": int(batch) if _is_intlike(batch) else None,
            "variant": cfg.get("variant", named.get("variant")),
            "class_weights": bool(cfg.get("class_weights", False)),
            "seed": cfg.get("seed"),
            "suffix": cfg.get("name_suffix", named.get("suffix", "")) or "",
        }


@dataclass(frozen=True)
class Unreadable:
    """A history file the report could not use, with the reason."""

    path: Path
    message: str


@dataclass
class RunSet:
    runs: list[Run]
    unreadable: list[Unreadable]


def load_runs(history_dir: str | os.PathLike) -> RunSet:
    """Read every ``*_history.json`` of ``history_dir``; bad files are collected, not raised.

    Raises:
        FerError: ``history_dir`` is not a folder.

    Example:
        >>> runs = load_runs("history")  # doctest: +SKIP
        >>> [r.name for r in runs.runs][:1], len(runs.unreadable)  # doctest: +SKIP
        (['model_2_best_sgd_rgb_128_augment'], 0)
    """
    folder = Path(history_dir)
    if not folder.is_dir():
        raise FerError(f"{folder}: history folder not found (train runs first, or pass --history DIR)")
    runs: list[Run] = []
    unreadable: list[Unreadable] = []
    for path in list_histories(folder):
        try:
            record = read_history(path)
            runs.append(_to_run(path, record))
        except FerError as err:
            unreadable.append(Unreadable(path, str(err)))
        except (TypeError, ValueError, AttributeError) as err:
            # Valid JSON with the right keys but values of the wrong shape.
            unreadable.append(Unreadable(path, f"{path}: malformed history ({type(err).__name__}: {err})"))
    return RunSet(runs, unreadable)


def _to_run(path: Path, record: dict[str, Any]) -> Run:
    config = record.get("config")
    if not isinstance(config, dict):
        raise FerError(f"{path}: 'config' must be an object; got {type(config).__name__}")
    hist = record.get("history")
    if not isinstance(hist, dict):
        raise FerError(f"{path}: 'history' must be an object; got {type(hist).__name__}")
    curves = {key: _floats(hist.get(key)) for key in METRIC_KEYS}
    error = record.get("error")
    return Run(
        path=path,
        name=str(record.get("name")),
        status=str(record.get("status")),
        error=None if error is None else str(error),
        config=config,
        curves=curves,
        record=record,
    )


def _floats(values: Any) -> np.ndarray:
    if not isinstance(values, list):
        return np.zeros(0)
    return np.array([float(v) if _is_number(v) else math.nan for v in values], dtype=float)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_intlike(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value.isdigit())


def _nanmax(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else math.nan


def _nanmin(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.min()) if finite.size else math.nan


def run_row(run: Run) -> dict[str, Any]:
    """The scalar summary of one run (one row of :func:`runs_frame`)."""
    c = run.curves
    val_acc = c["val_accuracy"]
    finite = np.isfinite(val_acc)
    # First epoch reaching the maximum, 1-based like the history file's best_epoch.
    best_epoch = int(np.argmax(np.where(finite, val_acc, -np.inf))) + 1 if finite.any() else None
    seconds = c["epoch_seconds"][np.isfinite(c["epoch_seconds"])]
    wall = run.record.get("wall_time_s")
    return {
        "name": run.name,
        "status": run.status,
        **run.axes(),
        "epochs_done": run.epochs,
        "wall_time_s": float(wall) if _is_number(wall) else float(seconds.sum()),
        "mean_epoch_s": float(seconds.mean()) if seconds.size else math.nan,
        "max_val_accuracy": _nanmax(val_acc),
        "best_epoch": best_epoch,
        "final_val_accuracy": float(val_acc[-1]) if val_acc.size else math.nan,
        "max_accuracy": _nanmax(c["accuracy"]),
        "min_loss": _nanmin(c["loss"]),
        "min_val_loss": _nanmin(c["val_loss"]),
        "error": run.error,
    }


def runs_frame(runs: list[Run]):
    """A pandas DataFrame with one row per run and the columns of ``FRAME_COLUMNS``."""
    import pandas as pd

    frame = pd.DataFrame([run_row(r) for r in runs], columns=list(FRAME_COLUMNS))
    # Nullable integers: a run without epochs has no best epoch, and 49 must not print as 49.0.
    for col in ("batch_size", "best_epoch", "epochs_done"):
        frame[col] = frame[col].astype("Int64")
    return frame
