"""``fer-spec``: inspect and validate architecture specs (``architectures/*.json``).

- ``fer-spec show FILE`` builds the model and prints each layer's output shape and
  parameter count, then the totals.
- ``fer-spec check PATH...`` validates files and folders (without TensorFlow: fast) and prints
  each good spec's estimated parameter count and activation memory at 48x48x3, 7 classes.
- ``fer-spec types [TYPE]`` lists the supported layer types, their fields and rules.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fer_keras.cli import _common
from fer_keras.constants import CLASS_NAMES, COLOR_MODES, DEFAULT_IMAGE_SIZE


def build_parser() -> argparse.ArgumentParser:
    p = _common.parser("fer-spec", "Inspect and validate architecture specs (architectures/*.json).")
    subs, common = _common.subcommands(p, metavar="{show,check,types}")  # every subcommand takes --debug/-q too

    show = subs.add_parser(
        "show", parents=common, help="build a spec and print each layer's output shape and parameters"
    )
    show.add_argument("file", help="an architecture JSON file")
    show.add_argument(
        "--input-size",
        nargs=2,
        type=int,
        default=list(DEFAULT_IMAGE_SIZE),
        metavar=("H", "W"),
        help="model input size (default 48 48)",
    )
    show.add_argument("--color-mode", default="rgb", choices=list(COLOR_MODES), help="default: rgb (3 channels)")
    show.add_argument("--num-classes", type=int, default=len(CLASS_NAMES), help="default: %(default)s")
    show.set_defaults(handler=_show)

    check = subs.add_parser("check", parents=common, help="validate spec files and folders (every *.json in a folder)")
    check.add_argument("paths", nargs="+", metavar="PATH", help="spec files or folders")
    check.set_defaults(handler=_check)

    types = subs.add_parser("types", parents=common, help="list the supported layer types and their fields")
    types.add_argument("type", nargs="?", help="one layer type, e.g. Conv2D")
    types.set_defaults(handler=_types)
    return p


def format_rows(rows: list[tuple[str, ...]]) -> list[str]:
    """Text columns: all left-aligned except the last (numbers), right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths)), row[-1].rjust(widths[-1])]) for row in rows]


def _show(args: argparse.Namespace) -> None:
    from fer_keras.model.spec import load_spec
    from fer_keras.validation import MAX_CLASSES, check_count, check_int

    height, width = (check_int("--input-size", v, minimum=1) for v in args.input_size)
    num_classes = check_count("--num-classes", args.num_classes, MAX_CLASSES)
    spec = load_spec(args.file)  # report spec problems before the slow TensorFlow import
    from fer_keras.model.builder import build_model, layer_table, param_counts

    channels = COLOR_MODES[args.color_mode]
    model = build_model(spec, (height, width, channels), num_classes)
    rows: list[tuple[str, ...]] = [("#", "layer", "type", "output shape", "params")]
    for index, (name, kind, shape, params) in enumerate(layer_table(model)):
        # Table row i+1 is spec layer i, numbered as in error messages ("layers[i]"); row 0 is the builder's Rescaling.
        rows.append(("-" if index == 0 else str(index - 1), name, kind, str(shape), f"{params:,}"))
    lines = format_rows(rows)
    total, trainable, frozen = param_counts(model)
    print(f"{spec.name}  ({spec.path})")
    print(f"input {height}x{width}x{channels} ({args.color_mode}), {num_classes} classes, float32 pixels in [0, 255]")
    print(lines[0], "-" * len(lines[0]), *lines[1:], "-" * len(lines[0]), sep="\n")
    print(f"total params: {total:,} ({total * 4 / 2**20:.1f} MiB as float32)")
    print(f"trainable params: {trainable:,}")
    print(f"non-trainable params: {frozen:,}")


def _check(args: argparse.Namespace) -> int:
    from fer_keras.model.spec import ArchitectureSpec, load_paths, spec_estimate

    results = load_paths(args.paths)
    bad = [file for file, result in results.items() if not isinstance(result, ArchitectureSpec)]
    for file, result in results.items():
        if isinstance(result, ArchitectureSpec):
            print(f"ok  {file}  ({spec_estimate(result).describe()})")
            continue
        for line in result:
            print(f"error: {line}", file=sys.stderr)
    if not args.quiet and len(results) > 1:
        print(f"{len(results)} checked: {len(results) - len(bad)} ok, {len(bad)} with problems", file=sys.stderr)
    return _common.EXIT_USER_ERROR if bad else _common.EXIT_OK


def _types(args: argparse.Namespace) -> None:
    from fer_keras.errors import FerError, problem
    from fer_keras.model.spec import ACTIVATIONS, INITIALIZERS, LAYER_TYPES, NUM_CLASSES
    from fer_keras.validation import describe_choice

    if args.type is None:
        for kind, rules in LAYER_TYPES.items():
            fields = [f"{f}*" if f in rules.required else f for f in rules.fields]
            print(f"{kind:<24}{', '.join(fields)}")
        print("\n* required. Details of one type: fer-spec types Conv2D")
        print(f"activations: {', '.join(ACTIVATIONS)}")
        print(f"initializers: {', '.join(INITIALIZERS)}")
        return
    message = describe_choice("type", args.type, LAYER_TYPES)
    if message:
        raise FerError(problem("fer-spec types", message))
    rules = LAYER_TYPES[args.type]
    print(f"{args.type}  (keras.layers.{args.type}; the other fields keep Keras's defaults)")
    for field, rule in rules.fields.items():
        flag = "required" if field in rules.required else "optional"
        print(f"  {field:<24}{flag:<10}{rule.text}")
    if "units" in rules.fields:
        print(f'\n"units": "{NUM_CLASSES}" is replaced by the dataset\'s class count when the model is built.')


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fer-spec``.

    Example:
        $ fer-spec check architectures/
        $ fer-spec show architectures/model_2_best.json --color-mode grayscale
    """
    return _common.run(build_parser(), lambda args: args.handler(args), argv)


if __name__ == "__main__":
    sys.exit(main())
