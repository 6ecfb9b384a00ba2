"""``build_report``: every section computed, rendered into one HTML file, plus summary.json and ranking.csv."""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from fer_keras import __version__
from fer_keras.atomic import atomic_path, write_json_atomic, write_text_atomic
from fer_keras.constants import EVAL_DIR, REPORT_RANKING_FILE, REPORT_SUMMARY_FILE
from fer_keras.errors import FerError
from fer_keras.report import figures
from fer_keras.report.comparisons import eval_rows, variants_section
from fer_keras.report.dataset_section import balanced_dirs, dataset_section
from fer_keras.report.model_section import complete_model_section, plan_model_section
from fer_keras.report.ranking import per_model_extremes, rank_runs, ranking_stats
from fer_keras.report.render import render_html
from fer_keras.report.runs import Run, load_runs, runs_frame
from fer_keras.report.seed_stats import seed_statistics
from fer_keras.report.test_split import predict_split
from fer_keras.training.history import now_iso
from fer_keras.validation import check_bool, must

EVAL_SUBDIR = Path(EVAL_DIR).name  # reports/eval → <reports_dir>/eval
# In this order; "model on test" is what remains of it after the rest (it runs in parallel).
STEPS = ("runs", "dataset", "ranking", "grid plots", "comparisons", "run details", "model on test", "write")


def build_report(
    history_dir: str | os.PathLike,
    out_html: str | os.PathLike,
    model_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
    reports_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Write the analysis report ``out_html`` and ``summary.json`` + ``ranking.csv`` beside it.

    Args:
        history_dir: folder of ``*_history.json`` files (may be empty).
        out_html: the report file (``.html``); its folder is created.
        model_dir: the shipped model folder evaluated on the test split (``None``: skip;
            a missing folder is reported in the section, not raised).
        data_dir: dataset whose ``test`` split is evaluated; default: the model's.
        progress: show a progress bar.
        reports_dir: where ``dataset_stats.json``, ``clean_report.json`` and ``eval/*.json``
            are looked for; default: ``out_html``'s folder.

    Returns:
        The summary (also written to ``summary.json``).

    Raises:
        FerError: ``history_dir`` is not a folder, or ``out_html`` does not end in ``.html``.

    Example:
        >>> summary = build_report("history", "reports/report.html", "models/best_model")  # doctest: +SKIP
        >>> summary["ranking"]["best"]["name"]  # doctest: +SKIP
        'model_2_best_sgd_rgb_128_augment'
    """
    out_html = Path(out_html)
    if out_html.suffix.lower() not in (".html", ".htm"):
        raise FerError(must("out_html", "a path ending in .html", str(out_html)))
    check_bool("progress", progress)
    reports = Path(reports_dir) if reports_dir is not None else out_html.parent
    from tqdm.auto import tqdm

    with tqdm(total=len(STEPS), desc="report", disable=not progress, leave=False) as bar:
        return _build(Path(history_dir), out_html, model_dir, data_dir, reports, bar)


def _build(history_dir: Path, out_html: Path, model_dir, data_dir, reports: Path, bar) -> dict[str, Any]:
    timings: dict[str, float] = {}
    bar.set_postfix_str(STEPS[0])

    def step(name: str, start: float) -> float:
        timings[name] = round(time.perf_counter() - start, 3)
        bar.update(1)
        bar.set_postfix_str(STEPS[STEPS.index(name) + 1])  # what runs next (the slow part shows)
        return time.perf_counter()

    t = t0 = time.perf_counter()
    run_set = load_runs(history_dir)
    frame = runs_frame(run_set.runs)
    t = step("runs", t)
    model, data = plan_model_section(model_dir, data_dir, run_set.runs, history_dir)
    worker = PredictionWorker.start(model_dir, data) if data is not None else None
    try:
        data_for_stats = Path(model["data_dir"]) if model.get("data_dir") else (Path(data_dir) if data_dir else None)
        dataset = dataset_section(reports, data_for_stats, balanced_dirs(run_set.runs, history_dir))
        t = step("dataset", t)
        ranked = rank_runs(frame)
        stats = ranking_stats(ranked, model["metadata"].get("source_run"))
        seeds = seed_statistics(run_set.runs)
        t = step("ranking", t)
        grid = grid_section(ranked, run_set.runs, stats)
        t = step("grid plots", t)
        rows, classes, problems = eval_rows(reports / EVAL_SUBDIR)
        comparisons = {
            "variants": variants_section(frame),
            "eval": rows,
            "eval_classes": classes,
            "eval_problems": problems,
        }
        t = step("comparisons", t)
        details = run_details(ranked, run_set.runs)
        t = step("run details", t)
        if worker is not None:
            worker.finish(model)
        t = step("model on test", t)
    finally:
        if worker is not None:
            worker.close()

    summary = {
        "generated_at": now_iso(),
        "fer_keras": __version__,
        "inputs": {
            "history_dir": str(history_dir),
            "model_dir": None if model_dir is None else str(model_dir),
            "data_dir": model.get("data_dir") or (None if data_dir is None else str(data_dir)),
            "reports_dir": str(reports),
        },
        "runs": {
            "total": len(run_set.runs),
            "unreadable": [{"path": str(u.path), "error": u.message} for u in run_set.unreadable],
        },
        "ranking": stats,
        "seed_stats": seeds,
        "model": {key: model.get(key) for key in ("available", "message", "model_dir", "data_dir", "metadata")},
        "evaluation": model["metrics"],
        "dataset": {
            "counts": dataset["counts"],
            "counts_source": dataset["counts_source"],
            "color_modes": dataset["modes"],
            "balancing": [{k: b.get(k) for k in ("variant", "path", "counts")} for b in dataset["balancing"]],
            "clean": (dataset["clean"] or {}).get("counts"),
            "notes": dataset["notes"],
        },
        "comparisons": {
            "variants": comparisons["variants"]["rows"],
            "eval": [{k: v for k, v in r.items() if k != "raw"} for r in rows],
        },
        "timings_s": timings,
    }
    summary = jsonable(summary)
    context = {
        "title": "fer_keras analysis report",
        "summary": summary,
        "dataset": dataset,
        "ranked": ranked.to_dict(orient="records"),
        "stats": stats,
        "seeds": seeds,
        "unreadable": run_set.unreadable,
        "grid": grid,
        "model": model,
        "comparisons": comparisons,
        "details": details,
    }
    html = render_html(context)
    write_text_atomic(out_html, html)
    with atomic_path(out_html.parent / REPORT_RANKING_FILE, suffix=".csv") as tmp:
        ranked.to_csv(tmp, index=False)
    timings["write"] = round(time.perf_counter() - t, 3)
    timings["total"] = round(time.perf_counter() - t0, 3)
    summary["timings_s"] = dict(timings)
    write_json_atomic(out_html.parent / REPORT_SUMMARY_FILE, summary)
    bar.update(1)
    return summary


def describe_inputs(
    history_dir: str | os.PathLike,
    out_html: str | os.PathLike,
    model_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    reports_dir: str | os.PathLike | None = None,
) -> list[str]:
    """What a report would read and write, one line each, without drawing or predicting (``--dry-run``)."""
    from fer_keras.report.dataset_section import CLEAN_FILE, STATS_FILE

    out_html = Path(out_html)
    reports = Path(reports_dir) if reports_dir is not None else out_html.parent
    run_set = load_runs(history_dir)
    statuses: dict[str, int] = {}
    for run in run_set.runs:
        statuses[run.status] = statuses.get(run.status, 0) + 1
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) or "none"
    model, data = plan_model_section(model_dir, data_dir, run_set.runs, history_dir)
    lines = [
        f"history: {history_dir}: {len(run_set.runs)} runs ({by_status}), {len(run_set.unreadable)} unreadable",
        f"model: {model['model_dir']}: "
        + (f"test split of {data} ({model['data_origin']})" if data else model["message"]),
    ]
    for name in (STATS_FILE, CLEAN_FILE):
        lines.append(f"{name}: {'found' if (reports / name).is_file() else 'absent'} in {reports}")
    evals = sorted((reports / EVAL_SUBDIR).glob("*.json")) if (reports / EVAL_SUBDIR).is_dir() else []
    lines.append(f"eval results: {len(evals)} in {reports / EVAL_SUBDIR}")
    for variant, folder in balanced_dirs(run_set.runs, history_dir).items():
        lines.append(f"{variant}: {folder}")
    lines.append(
        f"would write: {out_html}, {out_html.parent / REPORT_SUMMARY_FILE}, {out_html.parent / REPORT_RANKING_FILE}"
    )
    return lines


class PredictionWorker:
    """Predicts the test split in a spawned process while this one draws the other sections.

    Importing TensorFlow costs ~6 s of CPU, about as much as all the grid figures:
    on two cores, doing both at once nearly halves the wait. ``spawn`` (not fork) so
    the child starts clean of this process's threads and matplotlib state. When Keras
    is already imported here (a notebook, a test) there is nothing to hide and the
    prediction runs in this process instead.
    """

    def __init__(self, model_dir: str | os.PathLike, data: Path, pool=None, future=None):
        self.model_dir, self.data, self.pool, self.future = model_dir, data, pool, future

    @classmethod
    def start(cls, model_dir: str | os.PathLike, data: Path) -> PredictionWorker:
        """Start predicting (in a spawned process unless Keras is already imported here)."""
        if "keras" in sys.modules:
            return cls(model_dir, data)
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return cls(model_dir, data, pool, pool.submit(predict_split, model_dir, data, "test"))

    def finish(self, section: dict[str, Any]) -> None:
        """Wait for the predictions and complete ``section`` (or record why it cannot be)."""
        from concurrent.futures.process import BrokenProcessPool

        try:
            try:
                if self.future is None:
                    preds = predict_split(self.model_dir, self.data, "test")
                else:
                    preds = self.future.result()
            except BrokenProcessPool:
                # The worker died (e.g. out of memory): retry here, where a real error shows.
                preds = predict_split(self.model_dir, self.data, "test")
        except FerError as err:
            section["message"] = str(err)
            return
        complete_model_section(section, preds)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def grid_section(ranked, runs: list[Run], stats: dict[str, Any]) -> dict[str, Any]:
    """Figures and the per-model table of section 3 (empty when no run has a val_accuracy)."""
    import pandas as pd

    section: dict[str, Any] = {"figures": {}, "per_model": per_model_extremes(ranked), "best_run": None}
    finite = ranked[np.isfinite(ranked["max_val_accuracy"].astype(float))]
    if finite.empty:
        return section
    by_name = {r.name: r for r in runs}
    order = [n for n in ranked["name"] if by_name[n].epochs > 0]
    section["figures"] = {
        "optimizer_batch": figures.optimizer_batch_bars(finite),
        "histogram": figures.val_accuracy_histogram(finite["max_val_accuracy"].astype(float).to_numpy()),
        "heatmap": figures.epoch_heatmap(order, [by_name[n].curves["val_accuracy"] for n in order]),
        "per_model": figures.per_model_strips(finite),
        "boxen": figures.boxen_extremes(finite),
    }
    best = stats.get("best")
    if best:
        run = by_name[best["name"]]
        row = ranked[ranked["name"] == run.name].iloc[0]
        section["best_run"] = best["name"]
        section["figures"]["best_curves"] = figures.training_curves(
            run.curves,
            f"{run.name}: train vs validation",
            None if pd.isna(row["best_epoch"]) else int(row["best_epoch"]),
        )
    return section


def run_details(ranked, runs: list[Run]) -> list[dict[str, Any]]:
    """Per run (ranking order): config, timing, status/error and two sparklines."""
    import json

    by_name = {r.name: r for r in runs}
    out = []
    for row in ranked.to_dict(orient="records"):
        run = by_name[row["name"]]
        c = run.curves
        out.append(
            {
                "row": row,
                "config": json.dumps(run.config, indent=2, default=str),
                "started_at": run.record.get("started_at"),
                "finished_at": run.record.get("finished_at"),
                "path": str(run.path),
                "accuracy_svg": figures.sparkline_svg(
                    {"accuracy": c["accuracy"], "val_accuracy": c["val_accuracy"]},
                    title=f"{run.name}: accuracy (blue) and val_accuracy (orange)",
                ),
                "loss_svg": figures.sparkline_svg(
                    {"loss": c["loss"], "val_loss": c["val_loss"]},
                    title=f"{run.name}: loss (blue) and val_loss (orange)",
                ),
            }
        )
    return out


def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars/arrays unwrapped, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is not None and type(value).__name__ in ("NAType", "NaTType"):
        return None
    return value
