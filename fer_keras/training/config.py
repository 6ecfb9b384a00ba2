"""The training-run configuration: one validated, resolved, JSON-serialisable record.

``resolve_config`` is the single validation path for everything `fer-train` and
`fer-grid` accept; the resolved dict is what a run records beside its results. Every
number must be finite and within its range (limits in :mod:`fer_keras.validation`),
``name`` must be a safe file-name stem, and ``runs_dir`` and ``history_dir`` must not
be the same folder or one inside the other.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from fer_keras.constants import COLOR_MODES, DEFAULT_IMAGE_SIZE, VARIANTS
from fer_keras.data.pipeline import AugmentConfig
from fer_keras.errors import FerError, did_you_mean, problem
from fer_keras.validation import (
    MAX_EPOCHS,
    MAX_IMAGES,
    MAX_LEARNING_RATE,
    MAX_SEED,
    MAX_THREADS,
    describe_bool,
    describe_choice,
    describe_count,
    describe_float,
    describe_int,
    describe_path,
    describe_stem,
    must,
    paths_overlap,
    read_json_file,
    shown,
)

# Optimizer defaults of the reference project (and Keras's for adamw).
OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "adam": {"learning_rate": 1e-3},
    "adamw": {"learning_rate": 1e-3, "weight_decay": 1e-4},
    "rmsprop": {"learning_rate": 1e-3},
    "sgd": {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True},
}
LR_SCHEDULES = ("constant", "cosine")


@dataclass
class TrainConfig:
    """Everything that defines a training run. See ``resolve_config`` for validation."""

    arch: str
    data: str
    optimizer: str = "adam"
    learning_rate: float | None = None
    momentum: float | None = None
    nesterov: bool | None = None
    weight_decay: float | None = None
    batch_size: int = 64
    color_mode: str = "rgb"
    image_size: list[int] = field(default_factory=lambda: list(DEFAULT_IMAGE_SIZE))
    epochs: int = 50
    seed: int = 42
    variant: str = "augment"
    augment: Any = True
    class_weights: bool = False
    label_smoothing: float = 0.0
    lr_schedule: str = "constant"
    warmup_epochs: int = 0
    early_stopping: int | None = None
    reduce_lr: int | None = None
    mixed_precision: bool = False
    precise_bn: int = 2048
    name: str | None = None
    name_suffix: str = ""
    history_dir: str = "history"
    runs_dir: str = "runs"
    threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_name(model: str, optimizer: str, color_mode: str, batch_size: int, variant: str, suffix: str = "") -> str:
    """The reference naming: ``{model}_{optimizer}_{rgb|grayscale}_{batch}_{variant}`` (+ suffix)."""
    return f"{model}_{optimizer}_{color_mode}_{batch_size}_{variant}{suffix}"


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The raw values of a JSON config file (validate them with :func:`resolve_config`).

    Raises:
        FerError: an unreadable or invalid file, or one that is not a JSON object.
    """
    values = read_json_file(path, "config")
    if not isinstance(values, dict):
        raise FerError(problem(os.fspath(path), must("config", "a JSON object", values)))
    return values


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read and resolve a JSON config file; problems name the file.

    Example:
        >>> load_config("configs/fer_vgg_fer2013.json")["optimizer"]  # doctest: +SKIP
        'adamw'
    """
    return resolve_config(read_config_file(path), where=os.fspath(path))


def resolve_config(values: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """Validate ``values`` (all problems at once) and fill every default.

    Returns:
        The resolved config as a plain dict (what runs record as ``config``).

    Raises:
        FerError: unknown keys (with "did you mean") or invalid values.

    Example:
        >>> cfg = resolve_config({"arch": "architectures/model_2_best.json", "data": "data/demo",
        ...                       "optimizer": "sgd"})
        >>> cfg["learning_rate"], cfg["momentum"], cfg["name"]
        (0.01, 0.9, 'model_2_best_sgd_rgb_64_augment')
    """
    if not isinstance(values, dict):
        raise FerError(problem(where, must("config", "an object", values)))
    known = [f.name for f in fields(TrainConfig)]
    problems = [
        problem(where, f"unknown field {key!r}{did_you_mean(key, known)}") for key in values if key not in known
    ]
    for key in ("arch", "data"):
        if not isinstance(values.get(key), str) or not values.get(key):
            problems.append(problem(where, f"'{key}' is required (a path); got {shown(values.get(key))}"))
    if problems:
        raise FerError(problems)
    cfg = TrainConfig(**values)
    problems = [problem(where, msg) for msg in _describe_fields(cfg) if msg]
    try:
        augment = AugmentConfig.from_value(cfg.augment, where=f"{where}: augment")
    except FerError as err:
        problems.extend(err.problems)
        augment = None
    if problems:
        raise FerError(problems)

    defaults = OPTIMIZER_DEFAULTS[cfg.optimizer]
    for key in ("learning_rate", "momentum", "nesterov", "weight_decay"):
        if getattr(cfg, key) is None and key in defaults:
            setattr(cfg, key, defaults[key])
    cfg.image_size = [int(v) for v in cfg.image_size]
    cfg.augment = augment.to_dict() if augment else False
    if cfg.name is None:
        model = Path(cfg.arch).stem
        cfg.name = run_name(model, cfg.optimizer, cfg.color_mode, cfg.batch_size, cfg.variant, cfg.name_suffix)
        if message := describe_stem("name", cfg.name):
            rule = "; set 'name', or rename the architecture file"
            raise FerError(problem(where, f"the run name made from 'arch' is not valid: {message}{rule}"))
    cfg.arch = os.fspath(cfg.arch)
    cfg.data = os.fspath(cfg.data)
    return cfg.to_dict()


def _describe_fields(cfg: TrainConfig) -> list[str | None]:
    """One message (or None) per rule of a config's fields."""
    checks = [
        describe_path("arch", cfg.arch),
        describe_path("data", cfg.data),
        describe_choice("optimizer", cfg.optimizer, OPTIMIZER_DEFAULTS),
        describe_choice("color_mode", cfg.color_mode, COLOR_MODES),
        describe_choice("variant", cfg.variant, VARIANTS),
        describe_choice("lr_schedule", cfg.lr_schedule, LR_SCHEDULES),
        describe_int("batch_size", cfg.batch_size, 1, 65536),
        describe_count("epochs", cfg.epochs, MAX_EPOCHS),
        describe_int("seed", cfg.seed, 0, MAX_SEED),
        describe_count("warmup_epochs", cfg.warmup_epochs, MAX_EPOCHS, minimum=0),
        describe_count("precise_bn", cfg.precise_bn, MAX_IMAGES, minimum=0),
        describe_bool("class_weights", cfg.class_weights),
        describe_bool("mixed_precision", cfg.mixed_precision),
        describe_float("label_smoothing", cfg.label_smoothing, 0, 1, high_inclusive=False),
        describe_stem("name_suffix", cfg.name_suffix, suffix=True),
        describe_path("history_dir", cfg.history_dir),
        describe_path("runs_dir", cfg.runs_dir),
    ]
    if cfg.learning_rate is not None:
        checks.append(describe_float("learning_rate", cfg.learning_rate, 0, MAX_LEARNING_RATE, low_inclusive=False))
    if cfg.weight_decay is not None:
        checks.append(describe_float("weight_decay", cfg.weight_decay, 0, 1, low_inclusive=False))
    if cfg.momentum is not None:
        checks.append(describe_float("momentum", cfg.momentum, 0, 1, high_inclusive=False))
    if cfg.nesterov is not None:
        checks.append(describe_bool("nesterov", cfg.nesterov))
    for key, limit in (("early_stopping", MAX_EPOCHS), ("reduce_lr", MAX_EPOCHS), ("threads", MAX_THREADS)):
        if getattr(cfg, key) is not None:
            checks.append(describe_count(key, getattr(cfg, key), limit))
    if cfg.name is not None:
        checks.append(describe_stem("name", cfg.name))
    size = cfg.image_size
    if not (
        isinstance(size, (list, tuple)) and len(size) == 2 and all(describe_int("", v, 8, 1024) is None for v in size)
    ):
        checks.append(must("image_size", "[height, width] with integers in [8, 1024]", size))
    if not any(describe_path(key, getattr(cfg, key)) for key in ("runs_dir", "history_dir")) and paths_overlap(
        cfg.runs_dir, cfg.history_dir
    ):
        checks.append(
            f"'runs_dir' and 'history_dir' must be separate folders, neither inside the other; "
            f"got {shown(cfg.runs_dir)} and {shown(cfg.history_dir)}"
        )
    return checks


# Fields that may differ between the run on disk and a rerun without changing what is trained.
NON_IDENTITY_FIELDS = ("epochs", "history_dir", "runs_dir", "threads", "early_stopping")


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Fields whose values differ, ignoring those that don't change a run's identity."""
    keys = sorted(set(old) | set(new))
    return [
        f"{key}: {old.get(key)!r} vs {new.get(key)!r}"
        for key in keys
        if key not in NON_IDENTITY_FIELDS and old.get(key) != new.get(key)
    ]
