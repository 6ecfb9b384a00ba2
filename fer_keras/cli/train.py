"""`fer-train`: one training run from a JSON architecture and a dataset folder.

The flags are made from :class:`~fer_keras.training.config.TrainConfig`'s fields: the
value type from the field's type, the choices from
:data:`~fer_keras.training.config.FIELD_CHOICES`, and only the help text from
:data:`FLAGS` here. A test checks that every field has a flag or is listed in
:data:`CONFIG_FILE_ONLY`, so a new field cannot be forgotten.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from collections.abc import Sequence
from dataclasses import fields

from fer_keras.cli import _common
from fer_keras.training.config import FIELD_CHOICES, OPTIMIZER_DEFAULTS, TrainConfig

# Field → (metavar or None, help). The flag is --<field with '-' for '_'>, except FLAG_NAMES.
FLAGS: dict[str, tuple[str | None, str]] = {
    "arch": ("FILE", "architecture JSON, e.g. architectures/model_2_best.json"),
    "data": ("DIR", "dataset root with train/ and valid/ folders"),
    "optimizer": (None, "default adam"),
    "learning_rate": ("LR", "default: the optimizer's (sgd 0.01, others 1e-3)"),
    "momentum": (None, f"sgd momentum (default {OPTIMIZER_DEFAULTS['sgd']['momentum']})"),
    "nesterov": (None, "sgd Nesterov momentum (default on)"),
    "weight_decay": (None, f"adamw weight decay (default {OPTIMIZER_DEFAULTS['adamw']['weight_decay']})"),
    "batch_size": ("N", f"default {TrainConfig.batch_size}"),
    "color_mode": (None, "model input colour (default rgb)"),
    "image_size": (None, "model input size (default 48 48)"),
    "epochs": ("N", f"default {TrainConfig.epochs}"),
    "seed": ("N", f"seeds Python, NumPy, TensorFlow and the data pipeline (default {TrainConfig.seed})"),
    "variant": (None, "dataset variant, used in the run name (default augment)"),
    "augment": (None, "on-the-fly augmentation (default: the reference recipe)"),
    "class_weights": (None, "balanced class weights in the loss"),
    "label_smoothing": ("F", "label smoothing of the cross-entropy (default 0)"),
    "lr_schedule": (None, "per-epoch learning rate after the warm-up (default constant)"),
    "warmup_epochs": ("N", "epochs of linear learning-rate warm-up (default 0)"),
    "early_stopping": ("PATIENCE", "stop when val_accuracy has not improved for PATIENCE epochs (default off)"),
    "reduce_lr": ("PATIENCE", "ReduceLROnPlateau on val_loss, factor 0.5 (default off)"),
    "mixed_precision": (
        None,
        "mixed precision: float16 compute where a GPU is visible (with loss scaling), else bfloat16 (CPUs); "
        "float32 weights and output layer",
    ),
    "precise_bn": (
        "N",
        "re-estimate BatchNorm statistics on N un-augmented train images before each validation "
        f"(default {TrainConfig.precise_bn}; 0 disables)",
    ),
    "name": (None, "run name (default: the reference naming)"),
    "history_dir": ("DIR", f"history folder (default {TrainConfig.history_dir})"),
    "runs_dir": ("DIR", f"runs folder: checkpoints and config.json (default {TrainConfig.runs_dir})"),
    "threads": ("N", "TensorFlow intra-op threads"),
    "devices": (
        "N|all",
        "train data-parallel on N devices (GPUs, else CPU) or all of them (tf.distribute.MirroredStrategy); "
        "--batch-size stays the global batch, split across them (default: TensorFlow's default device)",
    ),
    "tensorboard": ("DIR", "also log to TensorBoard in DIR/<run name>: per-epoch scalars, learning rate, graph"),
    "mlflow": ("URI", "also track the run in MLflow at URI (a tracking server or folder; needs fer_keras[track])"),
}
# Fields only a --config file (or a grid) sets, and why.
CONFIG_FILE_ONLY = {
    "name_suffix": "grids add it (_cw, _seed<N>); give --name instead",
    "grid": "fer-grid sets it to the grid's name (an MLflow tag)",
}
# Flags not spelled --<field>: one name per concept across commands (fer-report, fer-grid select: --history).
FLAG_NAMES = {"history_dir": "--history"}
DEPRECATED_FLAGS = {"--history-dir": "--history"}  # old name → new name, accepted for one release


def flag_for(field_name: str) -> str:
    """The option string that sets a TrainConfig field."""
    return FLAG_NAMES.get(field_name, "--" + field_name.replace("_", "-"))


def _value_type(field_name: str) -> type:
    """int, float, str or bool: the field's type without ``| None``."""
    hint = typing.get_type_hints(TrainConfig)[field_name]
    if isinstance(hint, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


def add_config_flags(p: argparse.ArgumentParser, names: Sequence[str], helps: dict[str, str] | None = None) -> None:
    """Add the flags of TrainConfig fields ``names`` to ``p``; unset flags parse as None.

    ``helps`` replaces the help text of some fields (fer-grid: they override the grid file).
    """
    for name in names:
        metavar, text = FLAGS[name]
        flag, text = flag_for(name), (helps or {}).get(name, text)
        choices = FIELD_CHOICES.get(name)
        if name == "augment":
            p.add_argument("--no-augment", action="store_true", help="disable on-the-fly augmentation")
            p.add_argument(
                "--augment-json", metavar="JSON", help='augmentation as JSON, e.g. \'{"flip": true, "zoom": 0.1}\''
            )
        elif name == "image_size":
            p.add_argument(flag, dest=name, type=int, nargs=2, metavar=("H", "W"), help=text)
        elif _value_type(name) is bool and TrainConfig.__dataclass_fields__[name].default is None:
            p.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif _value_type(name) is bool:
            p.add_argument(flag, dest=name, action="store_true", default=None, help=text)
        else:
            value_type = None if _value_type(name) is str else _value_type(name)  # argparse's default: a string
            p.add_argument(flag, dest=name, type=value_type, choices=choices, metavar=metavar, help=text)
    for old, new in DEPRECATED_FLAGS.items():
        if new in p._option_string_actions:  # noqa: SLF001 - argparse has no public lookup by option string
            _common.add_deprecated_alias(p, old, new)


def config_values(args: argparse.Namespace, names: Sequence[str]) -> dict:
    """The config values the flags of ``names`` set (flags not given are left out)."""
    from fer_keras.errors import FerError

    values: dict = {}
    for name in names:
        if name == "augment":
            if args.no_augment:
                values["augment"] = False
            elif args.augment_json:
                try:
                    values["augment"] = json.loads(args.augment_json)
                except json.JSONDecodeError as err:
                    raise FerError(f"--augment-json: invalid JSON ({err.msg})") from err
                except (ValueError, RecursionError):  # an integer too long to convert, or nesting too deep
                    raise FerError("--augment-json: must be an object of augmentation fields") from None
        elif getattr(args, name) is not None:
            values[name] = list(args.image_size) if name == "image_size" else getattr(args, name)
    return values


FLAG_FIELDS = tuple(f.name for f in fields(TrainConfig) if f.name not in CONFIG_FILE_ONLY)


def build_parser() -> argparse.ArgumentParser:
    p = _common.parser("fer-train", "Train one model on a dataset folder; resumes an interrupted run.")
    p.add_argument("--config", metavar="FILE", help="JSON file of config values (flags override it)")
    add_config_flags(p, FLAG_FIELDS)
    p.add_argument("--force", action="store_true", help="restart the run from scratch")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    return p


def config_from_args(args: argparse.Namespace) -> dict:
    """The raw config values: the --config file's, overridden by the flags given."""
    from fer_keras.training.config import read_config_file

    values: dict = read_config_file(args.config) if args.config else {}
    return {**values, **config_values(args, FLAG_FIELDS)}


def handle(args: argparse.Namespace) -> int:
    from fer_keras.training.config import resolve_config

    # Resolved once, here; problems name the config file when there is one (flags override its values).
    config = resolve_config(config_from_args(args), where=args.config or "fer-train")
    if args.dry_run:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    from fer_keras.extras import require

    require("tensorflow", "train")  # one line naming the extra, not a traceback from deep in training
    from fer_keras.training.train import train

    record = train(config, force=args.force, quiet=args.quiet)
    if not args.quiet:
        print(
            f"{record['name']}: {record['status']}, best val_accuracy {record['best_val_accuracy']:.4f} "
            f"at epoch {record['best_epoch']}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return _common.run(build_parser(), handle, argv)


if __name__ == "__main__":
    sys.exit(main())
