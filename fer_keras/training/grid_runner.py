"""Running a grid: plan it (:func:`plan_grid`), train its runs, export the best (:func:`run_grid`).

:func:`plan_grid` decides everything before any training: the runs, their status, the
problems preflight finds and the model folder selection will replace (checked first, so a
grid never trains for hours and then refuses its output). :func:`run_grid` records the
runs with problems as failed, trains the others (local process pool, or Ray Tune trials
through :mod:`fer_keras.training.ray_backend`; same files either way) and exports the best
finished run of the whole grid.

Each run trains in its own fresh process (``spawn``, one task per process), so a
crash or a leaked TensorFlow graph in one run never touches another, and CPU
threads are split between the workers. Finished runs are skipped because
:func:`fer_keras.training.train.train` resumes or returns them from their history files.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fer_keras.constants import BEST_MODEL_DIR, STATUS_DONE, STATUS_FAILED, STATUS_INTERRUPTED
from fer_keras.errors import FerError
from fer_keras.training.config import TrainConfig
from fer_keras.training.grid import STATUS_TODO, expand_grid, load_grid, preflight, run_status, select_runs
from fer_keras.training.history import new_history, now_iso, write_history
from fer_keras.validation import check_choice, check_int

Outcome = dict[str, Any]
BACKENDS = ("local", "ray")
PLAN_STATUSES = (STATUS_TODO, STATUS_DONE, STATUS_FAILED, STATUS_INTERRUPTED)


@dataclass(frozen=True)
class GridPlan:
    """What a grid will do, decided before any training.

    Attributes:
        path: the grid file, as given (it names the grid in messages and in ``reproduce``).
        runs: every run of the grid; all of them compete when the best is selected.
        chosen: the runs to consider now (those matching ``only``).
        statuses: run name → ``todo``, ``done``, ``failed`` or ``interrupted`` (all ``todo`` when forced).
        problems: run name → what preflight found wrong (spec, dataset); such runs are recorded as failed.
        force: retrain the chosen runs from scratch.
        best_model: the model folder the best run is exported to; ``None``: no selection.
    """

    path: str
    runs: tuple[TrainConfig, ...]
    chosen: tuple[TrainConfig, ...]
    statuses: dict[str, str]
    problems: dict[str, list[str]]
    force: bool = False
    best_model: str | None = None

    @property
    def history_dir(self) -> str:
        return self.chosen[0].history_dir

    @property
    def blocked(self) -> list[TrainConfig]:
        """Chosen runs with problems: they are recorded as failed, not trained."""
        return [run for run in self.chosen if self.problems[run.name]]

    @property
    def todo(self) -> list[TrainConfig]:
        """Chosen runs to train: no problem, and forced or not done."""
        return [
            run
            for run in self.chosen
            if not self.problems[run.name] and (self.force or self.statuses[run.name] != STATUS_DONE)
        ]

    @property
    def skipped(self) -> int:
        """Chosen runs already done (left alone)."""
        return len(self.chosen) - len(self.todo) - len(self.blocked)

    def counts(self) -> dict[str, int]:
        """How many chosen runs have each status, in :data:`PLAN_STATUSES` order."""
        values = list(self.statuses.values())
        return {status: values.count(status) for status in PLAN_STATUSES}


@dataclass(frozen=True)
class GridResult:
    """What :func:`run_grid` did.

    Attributes:
        plan: the plan it ran.
        outcomes: one per trained run (``name``, ``status``, ``error`` or ``val_accuracy``).
        failures: run name → error, for every chosen run that failed (preflight problems included).
        best: the metadata of the exported model; ``None`` without selection or when it failed.
        select_error: why selection failed; set only when runs failed too (otherwise it raises).
    """

    plan: GridPlan
    outcomes: tuple[Outcome, ...] = ()
    failures: dict[str, str] = field(default_factory=dict)
    best: dict[str, Any] | None = None
    select_error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failures and self.select_error is None


def plan_grid(
    path: str | os.PathLike,
    overrides: dict[str, Any] | None = None,
    only: str | None = None,
    force: bool = False,
    best_model: str | os.PathLike | None = None,
    select: bool = True,
) -> GridPlan:
    """Load and expand a grid, preflight its chosen runs and check the model folder; train nothing.

    Args:
        path: the grid file.
        overrides: config values replacing the file's on every run (e.g. ``{"epochs": 5}``).
        only: a glob; only runs whose name matches are chosen (default: all).
        force: plan to retrain the chosen runs from scratch.
        best_model: where to export the best run (default: the grid's ``best_model``, else
            ``models/best_model``).
        select: export the best run afterwards (``False``: ``best_model`` is neither used nor checked).

    Raises:
        FerError: an invalid grid or run config, no run matching ``only``, or a model folder
            that must not be replaced.

    Example:
        >>> plan = plan_grid("grids/demo.json", {"epochs": 1}, only="*_adam_*")  # doctest: +SKIP
        >>> plan.counts()  # doctest: +SKIP
        {'todo': 4, 'done': 0, 'failed': 0, 'interrupted': 0}
    """
    where = os.fspath(path)
    grid = load_grid(path)
    runs = expand_grid(grid, overrides)
    chosen = select_runs(runs, only)
    if not chosen:
        raise FerError(f"{where}: no run matches --only {only!r}")
    problems = preflight(chosen)
    out = None
    if select:
        from fer_keras.training.selection import check_model_out

        out = os.fspath(best_model or grid.get("best_model", BEST_MODEL_DIR))
        # Before any training: a grid must not run for hours and then refuse (or worse, replace) its output.
        check_model_out(out, chosen[0].history_dir, [run.run_dir for run in runs])
    statuses = {run.name: (STATUS_TODO if force else run_status(run)) for run in chosen}
    return GridPlan(where, tuple(runs), tuple(chosen), statuses, problems, force, out)


def run_grid(
    plan: GridPlan,
    workers: int = 1,
    backend: str = "local",
    ray_address: str | None = None,
    quiet: bool = False,
    on_done: Callable[[Outcome], None] | None = None,
    *,
    storage: str | None = None,
    gpus_per_run: float = 0.0,
    scheduler: str = "fifo",
) -> GridResult:
    """Run a planned grid: record blocked runs as failed, train the rest, export the best.

    A failing run never stops the others. Every run of the grid competes for the best
    model, not only the chosen ones: a partial rerun must not replace a better model
    trained earlier.

    Args:
        plan: from :func:`plan_grid`.
        workers: runs trained at once, each in its own process.
        backend: ``local`` (process pool) or ``ray`` (Ray Tune trials).
        ray_address: an existing Ray cluster (default: a local Ray instance).
        quiet: no progress bars or per-epoch lines.
        on_done: called with each trained run's outcome as it finishes (progress display).
        storage: Ray only: where trials persist their checkpoints, a folder or URI every node
            can reach (:mod:`fer_keras.training.ray_backend`).
        gpus_per_run: Ray only: GPUs each trial asks for.
        scheduler: Ray only: ``fifo`` or ``asha`` (Tune's early stopping of unpromising runs).

    Raises:
        FerError: bad arguments, or a failed selection when no run failed.
    """
    check_ray_options(backend, workers, storage, gpus_per_run, scheduler)
    failures: dict[str, str] = {}
    for run in plan.blocked:
        failures[run.name] = "; ".join(plan.problems[run.name])
        record_failure(run, failures[run.name])

    def done(outcome: Outcome) -> None:
        if outcome["status"] == STATUS_FAILED:
            failures[outcome["name"]] = outcome.get("error", "failed")
        if on_done:
            on_done(outcome)

    outcomes: list[Outcome] = []
    todo = plan.todo
    if todo and backend == "ray":
        from fer_keras.training.ray_backend import run_ray

        name = os.path.splitext(os.path.basename(plan.path))[0]
        outcomes = run_ray(todo, workers, plan.force, quiet, done, ray_address, storage, gpus_per_run, scheduler, name)
    elif todo:
        outcomes = run_local(todo, workers, plan.force, quiet, done)
    best = select_error = None
    if plan.best_model is not None:
        from fer_keras.training.selection import export_best

        names = [run.name for run in plan.runs]
        try:
            best = export_best(plan.history_dir, plan.best_model, names, True, f"fer-grid {plan.path}", quiet)
        except FerError as err:
            if not failures:
                raise
            select_error = str(err)
    return GridResult(plan, tuple(outcomes), failures, best, select_error)


def check_ray_options(
    backend: str, workers: int, storage: str | None = None, gpus_per_run: float = 0.0, scheduler: str = "fifo"
) -> None:
    """Validate the backend arguments of :func:`run_grid` (the CLI calls it before planning, for --dry-run).

    Raises:
        FerError: a bad value, or a Ray-only option (``--storage``, ``--gpus-per-run``,
            ``--scheduler asha``) with the local backend.
    """
    from fer_keras.training.ray_backend import SCHEDULERS
    from fer_keras.validation import check_float, describe_path

    check_int("workers", workers, minimum=1)
    check_choice("backend", backend, BACKENDS)
    check_choice("scheduler", scheduler, SCHEDULERS)
    check_float("gpus_per_run", gpus_per_run, 0)
    if gpus_per_run > 1 and gpus_per_run != int(gpus_per_run):
        raise FerError(f"gpus_per_run: must be at most 1 or a whole number (Ray's rule); got {gpus_per_run:g}")
    if storage is not None and (message := describe_path("storage", storage)):
        raise FerError(message)
    ray_only = [flag for flag, used in (("--storage", storage is not None), ("--gpus-per-run", gpus_per_run > 0),
                                        ("--scheduler asha", scheduler != "fifo")) if used]  # fmt: skip
    if backend != "ray" and ray_only:
        raise FerError(f"{', '.join(ray_only)}: only with --backend ray")


def _gpu_count() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    return (
        len([d for d in os.listdir("/dev") if d.startswith("nvidia") and d[6:].isdigit()])
        if os.path.isdir("/dev")
        else 0
    )


def run_one(
    config: TrainConfig, force: bool, quiet: bool, gpu: int | None = None, extra_callbacks: Sequence[Any] = ()
) -> Outcome:
    """Train one run in this process and describe the outcome (never raises, but Ctrl-C).

    ``extra_callbacks`` go to :func:`fer_keras.training.train.train` (the Ray backend's reporter).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    from fer_keras.training.train import train

    try:
        record = train(config, force=force, quiet=quiet, progress=False, extra_callbacks=extra_callbacks)
        return {"name": config.name, "status": record["status"], "val_accuracy": record["best_val_accuracy"]}
    except FerError as err:
        record_failure(config, str(err))
        return {"name": config.name, "status": STATUS_FAILED, "error": str(err)}
    except Exception as err:  # noqa: BLE001 - a failing run must not stop the grid
        detail = "".join(traceback.format_exception_only(type(err), err)).strip()
        record_failure(config, detail)
        return {"name": config.name, "status": STATUS_FAILED, "error": detail}


def record_failure(config: TrainConfig, error: str) -> None:
    """Make sure a failed run has a history file saying why (train() writes one once it started)."""
    path = config.history_file
    if path.exists():
        from fer_keras.training.history import read_history

        try:
            record = read_history(path)
        except FerError:
            record = None
        if record is not None and record.get("status") == STATUS_FAILED:
            return
    record = new_history(config.name, config.to_dict(), [], "")
    record.update(status=STATUS_FAILED, error=error, finished_at=now_iso())
    write_history(path, record)


def run_local(
    runs: list[TrainConfig],
    workers: int = 1,
    force: bool = False,
    quiet: bool = False,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Train ``runs`` with ``workers`` processes at once; returns one outcome per run."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    gpus = _gpu_count()
    cores = os.cpu_count() or 1
    threads = max(1, cores // max(1, workers))
    outcomes: list[Outcome] = []
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, max_tasks_per_child=1) as pool:
        futures = {}
        for i, config in enumerate(runs):
            config = replace(config, threads=config.threads or (threads if workers > 1 else None))
            gpu = i % gpus if gpus > 1 else None
            futures[pool.submit(run_one, config, force, quiet, gpu)] = config
        try:
            for future in as_completed(futures):
                try:
                    outcome = future.result()
                except Exception as err:  # noqa: BLE001 - the worker process died (e.g. killed, OOM)
                    config = futures[future]
                    record_failure(config, f"worker process died: {err}")
                    outcome = {"name": config.name, "status": STATUS_FAILED, "error": f"worker process died: {err}"}
                outcomes.append(outcome)
                if on_done:
                    on_done(outcome)
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            raise
    return outcomes


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
