"""Report section 4: the shipped model on the ``test`` split.

Finds the model folder and its dataset (``--data``, else the ``data`` of the model's
recorded config, else that of its source run's history), runs the evaluation and
draws its figures. Anything missing becomes a message in the section, never an
exception: a report is still useful before a model is exported.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fer_keras.errors import FerError
from fer_keras.report import figures
from fer_keras.report import test_split_figures as evaluation_figures
from fer_keras.report.runs import Run
from fer_keras.report.test_split import Predictions, evaluate_predictions, predict_split


def resolve_data_dir(path: str | os.PathLike, history_dir: str | os.PathLike) -> Path | None:
    """A dataset path as recorded in a config: relative to the cwd, else to the project root.

    Configs store paths as typed on the command line (relative to where training
    ran), and the project root is the history folder's parent.
    """
    candidates = [Path(path)]
    if not Path(path).is_absolute():
        candidates.append(Path(history_dir).resolve().parent / path)
    return next((c for c in candidates if c.is_dir()), None)


def data_dir_for_model(
    metadata: dict[str, Any], runs: list[Run], history_dir: str | os.PathLike
) -> tuple[Path | None, str]:
    """The dataset the model was trained on, and a note saying where that came from."""
    config = metadata.get("config")
    recorded = config.get("data") if isinstance(config, dict) else None
    origin = "the model's metadata config"
    if not recorded:
        source = metadata.get("source_run")
        match = next((r for r in runs if r.name == source), None)
        recorded = match.config.get("data") if match else None
        origin = f"the history of its source run {source!r}"
    if not recorded:
        return None, "no --data given and the model records no dataset"
    found = resolve_data_dir(recorded, history_dir)
    if found is None:
        return None, f"dataset {recorded!r} (from {origin}) not found; pass --data DIR"
    return found, f"from {origin}"


def plan_model_section(
    model_dir: str | os.PathLike | None,
    data_dir: str | os.PathLike | None,
    runs: list[Run],
    history_dir: str | os.PathLike,
) -> tuple[dict[str, Any], Path | None]:
    """The section's context so far, and the dataset to predict on (``None``: nothing to run).

    Cheap (reads metadata.json only), so the slow prediction can run elsewhere.
    Context keys: ``available`` (bool), ``message`` (why not, when not), ``metadata``,
    ``data_dir``, ``metrics`` (JSON-ready), ``figures`` (data URIs), ``gallery``,
    ``failures`` (undecodable files).
    """
    section: dict[str, Any] = {
        "available": False,
        "message": "",
        "model_dir": None,
        "data_dir": None,
        "metadata": {},
        "metrics": None,
        "figures": {},
        "gallery": [],
        "failures": [],
    }
    if model_dir is None:
        section["message"] = "no model folder given (--model DIR)"
        return section, None
    section["model_dir"] = str(model_dir)
    from fer_keras.model.model_folder import read_model_info

    if not Path(model_dir).is_dir():
        section["message"] = f"{model_dir}: no model folder (export one with `fer-grid select`, or pass --model DIR)"
        return section, None
    try:
        info = read_model_info(model_dir)
    except FerError as err:
        section["message"] = str(err)
        return section, None
    meta = info.metadata
    section["metadata"] = {
        "name": info.name,
        "class_names": list(info.class_names),
        "input_size": list(info.input_size),
        "color_mode": info.color_mode,
        "source_run": meta.get("source_run"),
        "valid_metrics": meta.get("valid_metrics"),
        "test_metrics": meta.get("test_metrics"),
    }
    if data_dir is not None:
        data, origin = Path(data_dir), "from --data"
        if not data.is_dir():
            data, origin = None, f"{data_dir}: dataset folder not found"
    else:
        data, origin = data_dir_for_model(meta, runs, history_dir)
    section["data_origin"] = origin
    if data is None:
        section["message"] = origin
        return section, None
    section["data_dir"] = str(data)
    return section, data


def complete_model_section(section: dict[str, Any], preds: Predictions) -> dict[str, Any]:
    """Metrics, figures and the mistakes gallery from the model's test-split predictions."""
    ev = evaluate_predictions(preds.y_true, preds.y_prob, preds.class_names)
    names = list(preds.class_names)
    section.update(available=True, metrics=ev.metrics, failures=[{"path": p, "reason": r} for p, r in preds.failures])
    section["figures"] = {
        "confusion": evaluation_figures.confusion_matrices(ev.curves["counts"], ev.curves["normalized"], names),
        "roc": evaluation_figures.roc_curves(ev.curves["roc"], names),
        "pr": evaluation_figures.pr_curves(ev.curves["pr"], names),
        "reliability": evaluation_figures.reliability_diagram(ev.metrics["calibration_bins"], ev.metrics["ece"]),
    }
    data = Path(section["data_dir"])
    for mistake in ev.mistakes:
        i = mistake["index"]
        path = Path(preds.paths[i])
        shown = path.relative_to(data) if path.is_relative_to(data) else path
        section["gallery"].append(mistake | {"path": str(shown), "image": figures.image_data_uri(preds.images[i])})
    return section


def model_section(
    model_dir: str | os.PathLike | None,
    data_dir: str | os.PathLike | None,
    runs: list[Run],
    history_dir: str | os.PathLike,
    progress: bool = False,
) -> dict[str, Any]:
    """Plan, predict and complete the section in this process (see :func:`plan_model_section`)."""
    section, data = plan_model_section(model_dir, data_dir, runs, history_dir)
    if data is None:
        return section
    try:
        preds = predict_split(model_dir, data, "test", progress=progress)
    except FerError as err:
        section["message"] = str(err)
        return section
    return complete_model_section(section, preds)
