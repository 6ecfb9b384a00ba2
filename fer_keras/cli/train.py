"""`fer-train`: one training run from a JSON architecture and a dataset folder."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from fer_keras.cli import _common

# Flags whose value maps 1:1 onto a TrainConfig field.
_FIELDS = (
    "arch", "data", "optimizer", "learning_rate", "momentum", "weight_decay", "batch_size", "color_mode",
    "epochs", "seed", "variant", "label_smoothing", "lr_schedule", "warmup_epochs", "early_stopping",
    "reduce_lr", "name", "history_dir", "runs_dir", "threads", "precise_bn",
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = _common.parser("fer-train", "Train one model on a dataset folder; resumes an interrupted run.")
    p.add_argument("--config", help="JSON file of config values (flags override it)")
    p.add_argument("--arch", help="architecture JSON, e.g. architectures/model_2_best.json")
    p.add_argument("--data", help="dataset root with train/ and valid/ folders")
    p.add_argument("--optimizer", choices=["adam", "adamw", "rmsprop", "sgd"])
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--momentum", type=float, help="sgd momentum (default 0.9)")
    p.add_argument("--weight-decay", type=float, help="adamw weight decay (default 1e-4)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--color-mode", choices=["rgb", "grayscale"])
    p.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"))
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--variant", choices=["augment", "balanced", "balanced-2"], help="dataset variant (run name)")
    p.add_argument("--no-augment", action="store_true", help="disable on-the-fly augmentation")
    p.add_argument("--augment-json", help='augmentation as JSON, e.g. \'{"flip": true, "zoom": 0.1}\'')
    p.add_argument("--class-weights", action="store_true", help="balanced class weights in the loss")
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--lr-schedule", choices=["constant", "cosine"])
    p.add_argument("--warmup-epochs", type=int)
    p.add_argument("--early-stopping", type=int, metavar="PATIENCE")
    p.add_argument("--reduce-lr", type=int, metavar="PATIENCE", help="ReduceLROnPlateau on val_loss")
    p.add_argument(
        "--precise-bn",
        type=int,
        metavar="N",
        help="re-estimate BatchNorm statistics on N un-augmented train images before each validation "
        "(default 2048; 0 disables)",
    )
    p.add_argument("--mixed-precision", action="store_true", help="bfloat16 compute (CPUs with AMX)")
    p.add_argument("--name", help="run name (default: the reference naming)")
    p.add_argument("--history-dir")
    p.add_argument("--runs-dir")
    p.add_argument("--threads", type=int, help="TensorFlow intra-op threads")
    p.add_argument("--force", action="store_true", help="restart the run from scratch")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    return p


def config_from_args(args: argparse.Namespace) -> dict:
    from fer_keras.errors import FerError
    from fer_keras.training.config import read_config_file

    values: dict = read_config_file(args.config) if args.config else {}
    for key in _FIELDS:
        value = getattr(args, key)
        if value is not None:
            values[key] = value
    if args.image_size:
        values["image_size"] = list(args.image_size)
    if args.class_weights:
        values["class_weights"] = True
    if args.mixed_precision:
        values["mixed_precision"] = True
    if args.no_augment:
        values["augment"] = False
    elif args.augment_json:
        try:
            values["augment"] = json.loads(args.augment_json)
        except json.JSONDecodeError as err:
            raise FerError(f"--augment-json: invalid JSON ({err.msg})") from err
        except (ValueError, RecursionError):  # an integer too long to convert, or nesting too deep
            raise FerError("--augment-json: must be an object of augmentation fields") from None
    return values


def handle(args: argparse.Namespace) -> int:
    from fer_keras.training.config import resolve_config

    # Problems name the config file when there is one (flags override its values).
    config = resolve_config(config_from_args(args), where=args.config or "fer-train")
    if args.dry_run:
        print(json.dumps(config, indent=2))
        return 0
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
