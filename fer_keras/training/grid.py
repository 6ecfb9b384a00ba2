"""Hyperparameter grids: expansion, status, and a resumable, parallel runner.

A grid file is plain JSON::

    {
      "name": "seed",
      "datasets": {"augment": "data/fer2013", "balanced": "data/fer2013-balanced"},
      "defaults": {"epochs": 50},
      "axes": {"arch": ["architectures/model_2_best.json"], "optimizer": ["adam", "sgd"]},
      "blocks": [{"color_mode": ["rgb"], "batch_size": [32, 64]},
                 {"color_mode": ["grayscale"], "batch_size": [32]}],
      "best_model": "models/best_model"
    }

Runs are the product of ``axes`` with each block of ``blocks`` (unioned), every
value a :class:`~fer_keras.training.config.TrainConfig` field. ``variant`` picks the dataset
folder from ``datasets``. Non-default ``class_weights`` and multi-valued ``seed``
axes add ``_cw`` / ``_seed<N>`` to the reference run name, so names stay unique.

A grid may hold at most :data:`~fer_keras.validation.MAX_GRID_RUNS` runs, counted from
the axis sizes before anything is expanded.
"""

from __future__ import annotations

import fnmatch
import itertools
import os
from pathlib import Path
from typing import Any

from fer_keras.constants import STATUS_DONE, STATUS_FAILED, STATUS_INTERRUPTED, STATUS_RUNNING, VARIANTS
from fer_keras.errors import FerError, did_you_mean, problem
from fer_keras.training.config import TrainConfig, resolve_config
from fer_keras.training.history import is_finished, read_history
from fer_keras.validation import (
    MAX_GRID_RUNS,
    describe_limit,
    describe_path,
    describe_string,
    must,
    read_json_file,
    shown,
    unknown_fields,
)

GRID_KEYS = ("name", "description", "datasets", "defaults", "axes", "blocks", "best_model")
STATUS_TODO = "todo"


def load_grid(path: str | os.PathLike) -> dict[str, Any]:
    """Read a grid file and check its shape and size (all problems at once).

    Raises:
        FerError: an unreadable file, unknown or malformed fields, or more than
            :data:`~fer_keras.validation.MAX_GRID_RUNS` runs; each line names the file.
    """
    path = Path(path)
    where = str(path)
    grid = read_json_file(path, "grid")
    if not isinstance(grid, dict):
        raise FerError(problem(where, must("grid", "a JSON object", grid)))
    problems = unknown_fields(where, grid, GRID_KEYS)
    for key in ("datasets", "defaults", "axes"):
        if not isinstance(grid.get(key, {}), dict):
            problems.append(problem(where, must(key, "an object", grid[key])))
    blocks = grid.get("blocks", [{}])
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        problems.append(problem(where, must("blocks", "a list of objects", blocks)))
        blocks = []
    for section, axes in [("axes", grid.get("axes", {}))] + [(f"blocks[{i}]", b) for i, b in enumerate(blocks)]:
        for key, values in axes.items() if isinstance(axes, dict) else []:
            if not isinstance(values, list) or not values:
                problems.append(problem(where, f"{section}: {must(key, 'a non-empty list', values)}"))
    messages = [describe_string(key, grid[key]) for key in ("name", "description") if key in grid]
    if "best_model" in grid:
        messages.append(describe_path("best_model", grid["best_model"]))
    datasets = grid.get("datasets", {})
    for variant, folder in datasets.items() if isinstance(datasets, dict) else []:
        if variant in VARIANTS:
            messages.append(describe_path(f"datasets.{variant}", folder))
        else:
            hint = did_you_mean(variant, VARIANTS) or f"; allowed: {', '.join(VARIANTS)}"
            messages.append(f"datasets: unknown variant {shown(variant)}{hint}")
    problems += [problem(where, message) for message in messages if message]
    if not problems and (message := describe_runs(grid)):
        problems.append(problem(where, message))
    if problems:
        raise FerError(problems)
    grid.setdefault("name", path.stem)
    grid["_path"] = where
    return grid


_COUNT_CAP = MAX_GRID_RUNS * 10**6


def count_runs(grid: dict[str, Any]) -> int:
    """How many runs a well-formed grid expands to, from its axis sizes (nothing is expanded).

    Counting stops just above ``MAX_GRID_RUNS * 10**6``, so that a grid of 10**1000 runs
    costs no more to count than one of 10**11.
    """
    cap = _COUNT_CAP
    total = 0
    for block in grid.get("blocks") or [{}]:
        runs = 1
        for values in {**grid.get("axes", {}), **block}.values():
            runs = min(runs * (len(values) if isinstance(values, list) else 1), cap + 1)
        total = min(total + runs, cap + 1)
    return total


def describe_runs(grid: dict[str, Any]) -> str | None:
    """``runs: got X; limit 10,000`` when a well-formed grid has too many runs, else ``None``."""
    count = count_runs(grid)
    if count > _COUNT_CAP:
        return f"runs: got more than {_COUNT_CAP:,}; limit {MAX_GRID_RUNS:,}"
    return describe_limit("runs", count, MAX_GRID_RUNS)


def expand_grid(grid: dict[str, Any], overrides: dict[str, Any] | None = None) -> list[TrainConfig]:
    """All runs of a grid as resolved configs, in file order.

    ``overrides`` (from command-line flags) replace file values on every run.

    Raises:
        FerError: an invalid run config, an unknown variant, or duplicate names.

    Example:
        >>> runs = expand_grid(load_grid("grids/seed.json"))  # doctest: +SKIP
        >>> len(runs)  # doctest: +SKIP
        96
    """
    where = grid.get("_path", "grid")
    if message := describe_runs(grid):
        raise FerError(problem(where, message))
    axes = grid.get("axes", {})
    blocks = grid.get("blocks") or [{}]
    datasets = grid.get("datasets", {})
    overrides = overrides or {}
    problems: list[str] = []
    runs: list[TrainConfig] = []
    seen: dict[str, int] = {}
    for block in blocks:
        merged = {**axes, **block}
        keys = list(merged)
        for combo in itertools.product(*(merged[k] for k in keys)):
            values = {**grid.get("defaults", {}), **dict(zip(keys, combo)), **overrides}
            variant = values.get("variant", "augment")
            if "data" not in values and variant in VARIANTS:  # another variant is reported by resolve_config
                if variant not in datasets:
                    problems.append(problem(where, f"no dataset folder for variant {variant!r} in 'datasets'"))
                    continue
                values["data"] = datasets[variant]
            suffix = ""
            if values.get("class_weights"):
                suffix += "_cw"
            if len(merged.get("seed", [])) > 1:
                suffix += f"_seed{values.get('seed')}"
            values.setdefault("name_suffix", suffix)
            values.setdefault("grid", grid.get("name"))  # names the MLflow experiment of --mlflow
            try:
                config = resolve_config(values, where=f"{where}: run {len(runs) + 1}")
            except FerError as err:
                problems.extend(err.problems)
                continue
            if config.name in seen:
                problems.append(problem(where, f"two runs share the name {config.name!r}"))
            seen[config.name] = len(runs)
            runs.append(config)
    if problems:
        raise FerError(sorted(set(problems), key=problems.index))
    return runs


def run_status(config: TrainConfig) -> str:
    """todo / done / failed / interrupted, from the run's history file.

    A history still marked ``running`` belongs to a process that died (or is
    running elsewhere); it resumes like an interrupted one.
    """
    path = config.history_file
    if not path.exists():
        return STATUS_TODO
    try:
        record = read_history(path)
    except FerError:
        return STATUS_FAILED
    status = record.get("status")
    if is_finished(record, config.epochs):
        return STATUS_DONE
    if status == STATUS_FAILED:
        return STATUS_FAILED
    return STATUS_INTERRUPTED if status in (STATUS_RUNNING, STATUS_INTERRUPTED, STATUS_DONE) else STATUS_TODO


def select_runs(runs: list[TrainConfig], only: str | None) -> list[TrainConfig]:
    """Runs whose name matches the glob ``only`` (all when None)."""
    if not only:
        return runs
    return [run for run in runs if fnmatch.fnmatchcase(run.name, only)]


def preflight(runs: list[TrainConfig]) -> dict[str, list[str]]:
    """Validate every distinct spec and data folder once; map run name → problems."""
    from fer_keras.data.folders import dataset_classes, scan_split
    from fer_keras.model.spec import load_spec

    spec_problems: dict[str, list[str]] = {}
    data_problems: dict[str, list[str]] = {}
    for arch in sorted({run.arch for run in runs}):
        try:
            load_spec(arch)
            spec_problems[arch] = []
        except FerError as err:
            spec_problems[arch] = err.problems
    for data in sorted({run.data for run in runs}):
        try:
            classes = dataset_classes(data)
            for split in ("train", "valid"):
                scan_split(data, split, classes)
            data_problems[data] = []
        except FerError as err:
            data_problems[data] = err.problems
    return {run.name: spec_problems[run.arch] + data_problems[run.data] for run in runs}
