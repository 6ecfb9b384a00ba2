"""`fer-balance`: build a balanced copy of a dataset from a recipe (the source is never modified).

fer-balance --recipe balancing/balanced.json --data SRC --out DST [--workers N] [--dry-run] [-q]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fer_keras.cli import _common


def build_parser() -> argparse.ArgumentParser:
    p = _common.parser(
        "fer-balance",
        "Balance the train split by augmentation/trimming into a NEW dataset folder "
        "(originals hard-linked, valid/test carried over). Idempotent and resumable.",
    )
    p.add_argument("--recipe", required=True, metavar="FILE", help="recipe JSON, e.g. balancing/balanced.json")
    p.add_argument("--data", required=True, metavar="DIR", help="source dataset root with train/<emotion>/ (only read)")
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output dataset folder (created, or replaced when the recipe changed)",
    )
    p.add_argument("--workers", type=int, default=None, help="processes generating images (default: every core)")
    p.add_argument("--dry-run", action="store_true", help="print current -> target per class and exit")
    return p


def handle(args: argparse.Namespace) -> int:
    from fer_keras.extras import require

    require("albumentations", "train")  # recipes are albumentations pipelines
    from fer_keras.data.balance import balance, describe_plan, plan_balance
    from fer_keras.data.recipe import load_recipe
    from fer_keras.validation import MAX_THREADS, check_count

    if args.workers is not None:
        check_count("workers", args.workers, MAX_THREADS, where="--workers")
    recipe = load_recipe(args.recipe)
    if args.dry_run:
        print(describe_plan(plan_balance(recipe, args.data, args.out)))
        return 0
    result = balance(
        recipe,
        args.data,
        args.out,
        workers=args.workers,
        progress=lambda **kw: _common.progress(quiet=args.quiet, **kw),
    )
    if not args.quiet:
        total = sum(result.counts_after.values())
        if result.status == "up-to-date":
            print(f"{result.out}: already up to date ({total} train images); nothing to do")
        else:
            how = "resumed and finished" if result.resumed else "built"
            print(
                f"{result.out}: {how} in {result.seconds:.1f}s: {total} train images, {result.generated} generated now"
            )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return _common.run(build_parser(), handle, argv)


if __name__ == "__main__":
    sys.exit(main())
