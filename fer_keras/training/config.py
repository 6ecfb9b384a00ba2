"""The training-run configuration: one frozen, validated, resolved record (:class:`TrainConfig`).

:func:`resolve_config` is the single validation path for everything `fer-train` and
`fer-grid` accept; commands call it once, at their boundary, and pass the resulting
:class:`TrainConfig` down. :meth:`TrainConfig.to_dict` is what a run records beside its
results (history ``config``, ``runs/<name>/config.json``, the model's metadata ``config``),
and :meth:`TrainConfig.from_dict` reads such a record back through the same validation.

Every field has one rule in :data:`FIELD_RULES`: every number must be finite and within
its range (limits in :mod:`fer_keras.validation`), ``name`` must be a safe file-name stem,
and (across fields) ``runs_dir`` and ``history_dir`` must not be the same folder or one
inside the other.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from fer_keras.constants import COLOR_MODES, DEFAULT_IMAGE_SIZE, VARIANTS
from fer_keras.data.pipeline import AugmentConfig
from fer_keras.errors import FerError, problem
from fer_keras.training.history import history_path
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
    describe_string,
    must,
    paths_overlap,
    read_json_file,
    shown,
    unknown_fields,
)

# Optimizer defaults of the reference project (and Keras's for adamw).
OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "adam": {"learning_rate": 1e-3},
    "adamw": {"learning_rate": 1e-3, "weight_decay": 1e-4},
    "rmsprop": {"learning_rate": 1e-3},
    "sgd": {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True},
}
OPTIMIZERS = tuple(OPTIMIZER_DEFAULTS)
LR_SCHEDULES = ("constant", "cosine")
# The fields with a fixed set of values: validation and fer-train's --help both read them here.
FIELD_CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": OPTIMIZERS,
    "color_mode": tuple(COLOR_MODES),
    "variant": tuple(VARIANTS),
    "lr_schedule": LR_SCHEDULES,
}
MAX_BATCH_SIZE = 65_536
MAX_DEVICES = 1_024  # devices of one data-parallel run (a count; or "all")
ALL_DEVICES = "all"
IMAGE_SIDE = (8, 1024)  # smallest and largest height or width of the model input


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run, resolved: every default filled in.

    Build one with :func:`resolve_config` (or :meth:`from_dict`), never directly: only that
    path validates. ``learning_rate`` is always set once resolved; ``momentum``,
    ``nesterov`` and ``weight_decay`` only for the optimizers that use them. ``augment`` is
    ``None`` when augmentation is off. ``early_stopping``, ``reduce_lr`` and ``threads``
    are ``None`` when off (or left to TensorFlow). ``devices`` (``None``: TensorFlow's default
    device) is a device count or ``"all"`` for data-parallel training; ``tensorboard`` and
    ``mlflow`` (``None``: off) are where the run is also tracked; ``grid`` is the grid a run
    belongs to (set by ``fer-grid``, tags the MLflow run).
    """

    arch: str
    data: str
    optimizer: str = "adam"
    learning_rate: float | None = None
    momentum: float | None = None
    nesterov: bool | None = None
    weight_decay: float | None = None
    batch_size: int = 64
    color_mode: str = "rgb"
    image_size: tuple[int, int] = tuple(DEFAULT_IMAGE_SIZE)
    epochs: int = 50
    seed: int = 42
    variant: str = "augment"
    augment: AugmentConfig | None = AugmentConfig()
    class_weights: bool = False
    label_smoothing: float = 0.0
    lr_schedule: str = "constant"
    warmup_epochs: int = 0
    early_stopping: int | None = None
    reduce_lr: int | None = None
    mixed_precision: bool = False
    precise_bn: int = 2048
    name: str = ""
    name_suffix: str = ""
    history_dir: str = "history"
    runs_dir: str = "runs"
    threads: int | None = None
    devices: str | int | None = None
    tensorboard: str | None = None
    mlflow: str | None = None
    grid: str | None = None

    @property
    def run_dir(self) -> Path:
        """``<runs_dir>/<name>``: the run's checkpoints and ``config.json``."""
        return Path(self.runs_dir) / self.name

    @property
    def history_file(self) -> Path:
        """``<history_dir>/<name>_history.json``."""
        return history_path(self.history_dir, self.name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form runs record (field order; ``image_size`` a list, no augmentation ``false``).

        The fields of :data:`OMITTED_WHEN_UNSET` are left out while ``None``: records of runs
        without them read back unchanged, whichever version wrote them.

        Example:
            >>> resolve_config({"arch": "a/m.json", "data": "d", "augment": False}).to_dict()["augment"]
            False
        """
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["image_size"] = list(self.image_size)
        out["augment"] = self.augment.to_dict() if self.augment else False
        for key in OMITTED_WHEN_UNSET:
            if out[key] is None:
                del out[key]
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "config") -> TrainConfig:
        """Read a recorded config (``to_dict`` output) back, through :func:`resolve_config`.

        Raises:
            FerError: the record is not a valid config; each line starts with ``where``.
        """
        return resolve_config(values, where=where)


def run_name(model: str, optimizer: str, color_mode: str, batch_size: int, variant: str, suffix: str = "") -> str:
    """The reference naming: ``{model}_{optimizer}_{rgb|grayscale}_{batch}_{variant}`` (+ suffix)."""
    return f"{model}_{optimizer}_{color_mode}_{batch_size}_{variant}{suffix}"


Rule = Callable[[str, Any], list[str]]


def _rule(describe: Callable[..., str | None], *args: Any, optional: bool = False, **kwargs: Any) -> Rule:
    """A field rule from a ``describe_*`` function; ``optional``: ``None`` (default/off) passes."""

    def check(name: str, value: Any) -> list[str]:
        if optional and value is None:
            return []
        message = describe(name, value, *args, **kwargs)
        return [message] if message else []

    return check


def _check_image_size(name: str, value: Any) -> list[str]:
    low, high = IMAGE_SIDE
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(describe_int("", v, low, high) is None for v in value)
    ):
        return []
    return [must(name, f"[height, width] with integers in [{low}, {high}]", value)]


def _check_devices(name: str, value: Any) -> list[str]:
    if value is None or value == ALL_DEVICES:
        return []
    count = int(value) if isinstance(value, str) and value.isdigit() and len(value) < 6 else value
    if describe_count("", count, MAX_DEVICES) is None:
        return []
    return [must(name, f"a device count in [1, {MAX_DEVICES}] or {ALL_DEVICES!r}", value)]


def _check_augment(name: str, value: Any) -> list[str]:
    try:
        AugmentConfig.from_value(value, where=name)
    except FerError as err:
        return err.problems
    return []


# One rule per TrainConfig field (a test checks that none is missing and that each rejects a bad value).
FIELD_RULES: dict[str, Rule] = {
    "arch": _rule(describe_path),
    "data": _rule(describe_path),
    "optimizer": _rule(describe_choice, OPTIMIZERS),
    "learning_rate": _rule(describe_float, 0, MAX_LEARNING_RATE, low_inclusive=False, optional=True),
    "momentum": _rule(describe_float, 0, 1, high_inclusive=False, optional=True),
    "nesterov": _rule(describe_bool, optional=True),
    "weight_decay": _rule(describe_float, 0, 1, low_inclusive=False, optional=True),
    "batch_size": _rule(describe_int, 1, MAX_BATCH_SIZE),
    "color_mode": _rule(describe_choice, FIELD_CHOICES["color_mode"]),
    "image_size": _check_image_size,
    "epochs": _rule(describe_count, MAX_EPOCHS),
    "seed": _rule(describe_int, 0, MAX_SEED),
    "variant": _rule(describe_choice, FIELD_CHOICES["variant"]),
    "augment": _check_augment,
    "class_weights": _rule(describe_bool),
    "label_smoothing": _rule(describe_float, 0, 1, high_inclusive=False),
    "lr_schedule": _rule(describe_choice, LR_SCHEDULES),
    "warmup_epochs": _rule(describe_count, MAX_EPOCHS, minimum=0),
    "early_stopping": _rule(describe_count, MAX_EPOCHS, optional=True),
    "reduce_lr": _rule(describe_count, MAX_EPOCHS, optional=True),
    "mixed_precision": _rule(describe_bool),
    "precise_bn": _rule(describe_count, MAX_IMAGES, minimum=0),
    "name": _rule(describe_stem, optional=True),  # None: made from the architecture (run_name)
    "name_suffix": _rule(describe_stem, suffix=True),
    "history_dir": _rule(describe_path),
    "runs_dir": _rule(describe_path),
    "threads": _rule(describe_count, MAX_THREADS, optional=True),
    "devices": _check_devices,
    "tensorboard": _rule(describe_path, optional=True),
    "mlflow": _rule(describe_path, optional=True),  # a tracking URI or a local folder: a non-empty string
    "grid": _rule(describe_string, optional=True),
}
FIELD_NAMES = tuple(f.name for f in fields(TrainConfig))
# Fields added after runs were first recorded, written only when set (see TrainConfig.to_dict).
OMITTED_WHEN_UNSET = ("devices", "tensorboard", "mlflow", "grid")
# Fields that may differ between the run on disk and a rerun without changing what is trained.
# devices: the same global batch trains the same model on any number of devices (synchronized BatchNorm).
NON_IDENTITY_FIELDS = (
    "epochs",
    "history_dir",
    "runs_dir",
    "threads",
    "early_stopping",
    "devices",
    "tensorboard",
    "mlflow",
    "grid",
)


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The raw values of a JSON config file (validate them with :func:`resolve_config`).

    Raises:
        FerError: an unreadable or invalid file, or one that is not a JSON object.
    """
    values = read_json_file(path, "config")
    if not isinstance(values, dict):
        raise FerError(problem(os.fspath(path), must("config", "a JSON object", values)))
    return values


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Read and resolve a JSON config file; problems name the file.

    Example:
        >>> load_config("configs/fer_vgg_fer2013.json").optimizer  # doctest: +SKIP
        'adamw'
    """
    return resolve_config(read_config_file(path), where=os.fspath(path))


def resolve_config(values: Mapping[str, Any] | TrainConfig, where: str = "config") -> TrainConfig:
    """Validate ``values`` (all problems at once) and fill every default.

    ``values`` are the JSON form: a config file, a grid run, flags, or a recorded config.
    A :class:`TrainConfig` is already resolved and is returned as is.

    Raises:
        FerError: unknown keys (with "did you mean") or invalid values; each line starts with ``where``.

    Example:
        >>> cfg = resolve_config({"arch": "architectures/model_2_best.json", "data": "data/demo",
        ...                       "optimizer": "sgd"})
        >>> cfg.learning_rate, cfg.momentum, cfg.name
        (0.01, 0.9, 'model_2_best_sgd_rgb_64_augment')
    """
    if isinstance(values, TrainConfig):
        return values
    if not isinstance(values, Mapping):
        raise FerError(problem(where, must("config", "an object", values)))
    problems = unknown_fields(where, values, FIELD_NAMES)
    for key in ("arch", "data"):
        if not isinstance(values.get(key), str) or not values.get(key):
            problems.append(problem(where, f"'{key}' is required (a path); got {shown(values.get(key))}"))
    if problems:
        raise FerError(problems)
    for key in FIELD_NAMES:
        if key in values:
            problems += [problem(where, message) for message in FIELD_RULES[key](key, values[key])]
    folders = {key: values.get(key, getattr(TrainConfig, key)) for key in ("runs_dir", "history_dir")}
    folders_valid = not any(FIELD_RULES[key](key, folder) for key, folder in folders.items())
    if folders_valid and paths_overlap(folders["runs_dir"], folders["history_dir"]):
        problems.append(
            problem(
                where,
                "'runs_dir' and 'history_dir' must be separate folders, neither inside the other; "
                f"got {shown(folders['runs_dir'])} and {shown(folders['history_dir'])}",
            )
        )
    if problems:
        raise FerError(problems)
    return _resolved(dict(values), where)


def _resolved(values: dict[str, Any], where: str) -> TrainConfig:
    """A TrainConfig from validated values: the optimizer's defaults, typed fields, the run name."""
    optimizer = values.get("optimizer", TrainConfig.optimizer)
    for key, default in OPTIMIZER_DEFAULTS[optimizer].items():
        if values.get(key) is None:
            values[key] = default
    if "image_size" in values:
        values["image_size"] = tuple(int(v) for v in values["image_size"])
    if "augment" in values:
        values["augment"] = AugmentConfig.from_value(values["augment"])
    values["arch"], values["data"] = os.fspath(values["arch"]), os.fspath(values["data"])
    if isinstance(values.get("devices"), str) and values["devices"].isdigit():
        values["devices"] = int(values["devices"])  # "2" from the command line records as 2
    if values.get("name") is None:
        values.pop("name", None)
        cfg = TrainConfig(**values)
        name = run_name(
            Path(cfg.arch).stem, cfg.optimizer, cfg.color_mode, cfg.batch_size, cfg.variant, cfg.name_suffix
        )
        if message := describe_stem("name", name):
            rule = "; set 'name', or rename the architecture file"
            raise FerError(problem(where, f"the run name made from 'arch' is not valid: {message}{rule}"))
        values["name"] = name
    return TrainConfig(**values)


def config_differences(old: Mapping[str, Any] | TrainConfig, new: Mapping[str, Any] | TrainConfig) -> list[str]:
    """Fields whose recorded values differ, ignoring those that don't change a run's identity.

    ``old`` is usually a history's recorded ``config`` (the JSON form), compared as recorded.
    """
    old, new = (cfg.to_dict() if isinstance(cfg, TrainConfig) else dict(cfg) for cfg in (old, new))
    keys = sorted(set(old) | set(new))
    return [
        f"{key}: {old.get(key)!r} vs {new.get(key)!r}"
        for key in keys
        if key not in NON_IDENTITY_FIELDS and old.get(key) != new.get(key)
    ]
