"""Best-model selection and export to ``models/best_model/``.

Selection uses ``valid`` only: the run with the highest best-epoch
``val_accuracy`` wins, and its best checkpoint is exported. The ``test`` split is
read once, *after* selection, to record the reported test metrics.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fer_keras.atomic import atomic_dir, check_replaceable, remove_stale_temps, write_json_atomic
from fer_keras.constants import (
    ARCHITECTURE_FILE,
    BEST_CHECKPOINT_FILE,
    BEST_MODEL_DIR,
    METADATA_FILE,
    MODEL_FILE,
    STATUS_DONE,
    WEIGHTS_FILE,
)
from fer_keras.errors import FerError
from fer_keras.training.history import list_histories, read_history

PREPROCESSING = {
    "input": "float32 pixels in [0, 255], shape (batch, height, width, channels)",
    "resize": "bilinear (PIL) to input_size",
    "color": "rgb: RGB; grayscale: PIL 'L' conversion; transparency composited on white",
    "rescale_in_model": True,
}


# The files export_best writes into a model folder (a staging folder holds only these, or their temporaries).
MODEL_FOLDER_FILES: tuple[str, ...] = (MODEL_FILE, WEIGHTS_FILE, ARCHITECTURE_FILE, METADATA_FILE)


def is_model_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a model folder's ``metadata.json`` (format of docs/internals.md).

    Example:
        >>> is_model_folder("models/best_model")  # doctest: +SKIP
        True
    """
    try:
        meta = json.loads((Path(folder) / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return (
        isinstance(meta, dict)
        and meta.get("format_version") == 1
        and isinstance(meta.get("class_names"), list)
        and isinstance(meta.get("input_size"), list)
        and isinstance(meta.get("color_mode"), str)
    )


def _is_model_staging(folder: Path) -> bool:
    """A model folder, or a staging folder of :func:`export_best` killed before it was complete."""
    if is_model_folder(folder):
        return True
    temporaries = tuple(f".{name}." for name in MODEL_FOLDER_FILES)  # atomic_path's, of a killed write
    return all(
        entry.is_file() and (entry.name in MODEL_FOLDER_FILES or entry.name.startswith(temporaries))
        for entry in folder.iterdir()
    )


def check_model_out(out: str | os.PathLike, history_dir: str | os.PathLike, run_dirs: Iterable[Path] = ()) -> None:
    """Refuse a model folder that export would wrongly replace (the whole folder is swapped out).

    ``out`` may be missing, an empty folder or an earlier model folder, and must not be,
    contain or lie inside the history folder or a run's folder.

    Raises:
        FerError: the first problem, naming ``out``.
    """
    out = Path(out)
    resolved = out.resolve()
    for kind, folder in [("the history folder", Path(history_dir)), *(("the run folder", d) for d in run_dirs)]:
        other = folder.resolve()
        if resolved == other or resolved.is_relative_to(other) or other.is_relative_to(resolved):
            raise FerError(
                f"{out}: the model folder must be outside {kind} {folder} and not contain it "
                "(the model folder is replaced whole); pick another --out"
            )
    check_replaceable(out, is_model_folder, f"a model folder (no {METADATA_FILE} with model metadata)")


def _records(history_dir: str | os.PathLike) -> list[dict[str, Any]]:
    records = []
    for path in list_histories(history_dir):
        try:
            records.append(read_history(path))
        except FerError:
            continue
    return records


def _run_dir(record: dict[str, Any]) -> Path | None:
    runs_dir = record["config"].get("runs_dir") if isinstance(record.get("config"), dict) else None
    return Path(runs_dir) / record["name"] if isinstance(runs_dir, str) else None


def best_run(history_dir: str | os.PathLike, names: list[str] | None = None) -> dict[str, Any]:
    """The finished run with the highest ``best_val_accuracy`` (ties: fewer epochs, then name)."""
    candidates = []
    for record in _records(history_dir):
        if names is not None and record["name"] not in names:
            continue
        if record.get("status") == STATUS_DONE and record.get("best_val_accuracy") is not None:
            candidates.append(record)
    if not candidates:
        raise FerError(f"{history_dir}: no finished runs to select from")
    return max(candidates, key=lambda r: (r["best_val_accuracy"], -(r.get("best_epoch") or 0), r["name"]))


def export_best(
    history_dir: str | os.PathLike = "history",
    out: str | os.PathLike = BEST_MODEL_DIR,
    names: list[str] | None = None,
    evaluate_test: bool = True,
    reproduce: str | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Select the best run and write ``out/`` (architecture, weights, model, metadata).

    ``out`` is checked first (:func:`check_model_out`: only an earlier model folder or
    an empty folder is replaced), before any model is loaded. The folder is built
    beside ``out`` and swapped in, so a crash never leaves a half-exported model; the
    staging folders such a crash leaves are removed by the next export to the same
    ``out`` (which assumes two exports to one folder never run at once).

    Returns:
        The metadata written.

    Raises:
        FerError: no finished run, a missing checkpoint, or an ``out`` that must not be replaced.

    Example:
        >>> meta = export_best("history", "models/best_model")  # doctest: +SKIP
        >>> meta["source_run"]  # doctest: +SKIP
        'model_2_best_sgd_rgb_128_augment'
    """
    record = best_run(history_dir, names)
    config = record["config"]
    checkpoint = Path(config["runs_dir"]) / record["name"] / BEST_CHECKPOINT_FILE
    if not checkpoint.exists():
        raise FerError(f"{checkpoint}: best checkpoint of run {record['name']!r} is missing")
    out = Path(out)
    check_model_out(out, history_dir, filter(None, map(_run_dir, _records(history_dir))))
    remove_stale_temps(out, is_ours_dir=_is_model_staging)

    import keras

    from fer_keras.data.pipeline import load_split
    from fer_keras.training.train import evaluate_split

    model = keras.models.load_model(checkpoint, compile=False)  # no optimizer state in the export
    size = tuple(config["image_size"])
    classes = tuple(record["class_names"])
    valid = load_split(config["data"], "valid", size, config["color_mode"], classes, quiet=quiet)
    valid_metrics, _ = evaluate_split(model, valid)
    test_metrics = None
    if evaluate_test and (Path(config["data"]) / "test").is_dir():
        test = load_split(config["data"], "test", size, config["color_mode"], classes, quiet=quiet)
        test_metrics, _ = evaluate_split(model, test)
    metadata = {
        "format_version": 1,
        "name": record["name"],
        "class_names": list(classes),
        "input_size": list(size),
        "color_mode": config["color_mode"],
        "preprocessing": PREPROCESSING,
        "source_run": record["name"],
        "best_epoch": record["best_epoch"],
        "selected_by": "highest val_accuracy over finished runs (valid split); test evaluated once after selection",
        "valid_metrics": valid_metrics,
        "test_metrics": test_metrics,
        "config": config,
        "versions": record.get("versions", {}),
        "reproduce": reproduce,
    }
    with atomic_dir(out) as staging:
        model.save(staging / MODEL_FILE)
        model.save_weights(staging / WEIGHTS_FILE)
        spec = json.loads(Path(config["arch"]).read_text(encoding="utf-8"))
        write_json_atomic(staging / ARCHITECTURE_FILE, spec)
        write_json_atomic(staging / METADATA_FILE, metadata)
    return metadata
