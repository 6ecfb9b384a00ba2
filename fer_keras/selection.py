"""Best-model selection and export to ``models/best_model/``.

Selection uses ``valid`` only: the run with the highest best-epoch
``val_accuracy`` wins, and its best checkpoint is exported. The ``test`` split is
read once, *after* selection, to record the reported test metrics.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fer_keras.atomic import current_umask, write_json_atomic
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
from fer_keras.history import list_histories, read_history

PREPROCESSING = {
    "input": "float32 pixels in [0, 255], shape (batch, height, width, channels)",
    "resize": "bilinear (PIL) to input_size",
    "color": "rgb: RGB; grayscale: PIL 'L' conversion; transparency composited on white",
    "rescale_in_model": True,
}


def best_run(history_dir: str | os.PathLike, names: list[str] | None = None) -> dict[str, Any]:
    """The finished run with the highest ``best_val_accuracy`` (ties: fewer epochs, then name)."""
    candidates = []
    for path in list_histories(history_dir):
        try:
            record = read_history(path)
        except FerError:
            continue
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

    The folder is built beside ``out`` and swapped in, so a crash never leaves a
    half-exported model.

    Returns:
        The metadata written.

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

    import keras

    import fer_keras.layers  # noqa: F401 - registers fer_keras layers for load_model
    from fer_keras.dataset import load_split
    from fer_keras.train import evaluate_split

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
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes it 0700; the export is for everyone to read
    try:
        model.save(staging / MODEL_FILE)
        model.save_weights(staging / WEIGHTS_FILE)
        spec = json.loads(Path(config["arch"]).read_text(encoding="utf-8"))
        write_json_atomic(staging / ARCHITECTURE_FILE, spec)
        write_json_atomic(staging / METADATA_FILE, metadata)
        _swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return metadata


def _swap_in(staging: Path, out: Path) -> None:
    """Replace the whole ``out`` folder by ``staging``: exports of the previous model (ONNX, ...) go with it."""
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)
