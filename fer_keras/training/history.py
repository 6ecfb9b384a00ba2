"""History files: one JSON per run, rewritten atomically after every epoch.

The format is documented in docs/internals.md. Readers (grid status, the report,
model selection) go through :func:`read_history` so a garbled file becomes a
:class:`~fer_keras.errors.FerError` naming it rather than a crash. NaN and infinity
are written as ``null`` (JSON has neither).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import os
import platform
from pathlib import Path
from typing import Any

from fer_keras import __version__
from fer_keras.atomic import write_json_atomic
from fer_keras.constants import HISTORY_SUFFIX, STATUS_DONE, STATUS_RUNNING
from fer_keras.errors import FerError

FORMAT_VERSION = 1
METRIC_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds")


def history_path(history_dir: str | os.PathLike, name: str) -> Path:
    """``<history_dir>/<name>_history.json``."""
    return Path(history_dir) / f"{name}{HISTORY_SUFFIX}"


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def library_versions() -> dict[str, str]:
    """Versions that affect results, read without importing TensorFlow if it isn't loaded."""
    from importlib import metadata

    versions = {"python": platform.python_version(), "fer_keras": __version__}
    for dist, key in (
        ("tensorflow-cpu", "tensorflow"),
        ("tensorflow", "tensorflow"),
        ("keras", "keras"),
        ("numpy", "numpy"),
    ):
        if key in versions:
            continue
        try:
            versions[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return versions


def new_history(name: str, config: dict[str, Any], class_names: list[str], spec_sha256: str) -> dict[str, Any]:
    """A fresh history record for a run that is about to start."""
    return {
        "format_version": FORMAT_VERSION,
        "name": name,
        "status": STATUS_RUNNING,
        "error": None,
        "config": config,
        "class_names": list(class_names),
        "history": {key: [] for key in METRIC_KEYS},
        "best_epoch": None,
        "best_val_accuracy": None,
        "epochs_done": 0,
        "wall_time_s": 0.0,
        "spec_sha256": spec_sha256,
        "versions": library_versions(),
        "started_at": now_iso(),
        "finished_at": None,
    }


def is_finished(record: dict[str, Any], epochs: int) -> bool:
    """Whether a run is complete for ``epochs``: done with them all, or stopped early by EarlyStopping."""
    if record.get("status") != STATUS_DONE:
        return False
    return record.get("epochs_done", 0) >= epochs or bool(record.get("stopped_early"))


def write_history(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Write a history record atomically (temp file + rename).

    NaN and infinity are written as ``null`` (see :func:`json_safe`): JSON has neither,
    and the write that records a run's failure must not fail itself.
    """
    write_json_atomic(path, json_safe(record))


def json_safe(value: Any) -> Any:
    """A copy of ``value`` with every NaN/inf number (Python or numpy) replaced by ``None``.

    Example:
        >>> json_safe({"loss": [0.5, float("nan")], "best": float("inf")})
        {'loss': [0.5, None], 'best': None}
    """
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    # numbers.Real covers numpy floating scalars too; integers (and bools) are always finite.
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return float(value) if math.isfinite(value) else None
    return value


def read_history(path: str | os.PathLike) -> dict[str, Any]:
    """Read and sanity-check one history file.

    Raises:
        FerError: unreadable JSON or a record without the required fields.
    """
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise FerError(f"{path}: cannot read history file ({err})") from err
    except json.JSONDecodeError as err:
        raise FerError(f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from err
    if not isinstance(record, dict):
        raise FerError(f"{path}: history must be a JSON object; got {type(record).__name__}")
    missing = [key for key in ("name", "status", "config", "history") if key not in record]
    if missing:
        raise FerError(f"{path}: not a fer_keras history file (missing {', '.join(missing)})")
    return record


def list_histories(history_dir: str | os.PathLike) -> list[Path]:
    """All history files in a folder, sorted by name."""
    folder = Path(history_dir)
    return sorted(folder.glob(f"*{HISTORY_SUFFIX}")) if folder.is_dir() else []
