"""fer-data: make, inspect, clean and import datasets (no TensorFlow).

Examples:
    fer-data demo data/demo --train 60 --valid 15 --test 15
    fer-data stats data/fer2013
    fer-data clean data/fer2013 --near-duplicates
    fer-data clean data/fer2013 --apply --kinds blank,duplicate,conflict,leak
    fer-data restore data/fer2013
    fer-data import-csv fer2013.csv data/fer2013
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fer_keras.cli import _common
from fer_keras.constants import CLEAN_REPORT_FILE, DATASET_STATS_FILE
from fer_keras.data.clean import (
    DEFAULT_BLANK_STD,
    DEFAULT_MIN_SIZE,
    DEFAULT_NEAR_DISTANCE,
    MAX_NEAR_DISTANCE,
    REMOVABLE_KINDS,
)
from fer_keras.data.demo import DEFAULT_SPLIT_SIZES


def build_parser() -> argparse.ArgumentParser:
    p = _common.parser("fer-data", "Make, inspect, clean and import facial expression datasets.")
    sub, common = _common.subcommands(p)  # every subcommand takes --debug/-q too

    demo = sub.add_parser("demo", parents=common, help="write the synthetic demo dataset")
    demo.add_argument("out", metavar="OUT", help="dataset folder to write")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    for split, n in DEFAULT_SPLIT_SIZES.items():
        demo.add_argument(f"--{split}", type=int, default=n, metavar="N", help=f"images per class (default {n})")

    stats = sub.add_parser("stats", parents=common, help="counts, colour modes and image sizes")
    stats.add_argument("root", metavar="DIR", help="dataset folder ({train,valid,test}/<emotion>/)")
    stats.add_argument(
        "--out", default=DATASET_STATS_FILE, metavar="FILE", help=f"where to write the JSON ({DATASET_STATS_FILE})"
    )
    _common.add_deprecated_alias(stats, "--json", "--out")  # --json is fer-predict's output format switch

    clean = sub.add_parser("clean", parents=common, help="find (and quarantine) bad, duplicate and leaked images")
    clean.add_argument("root", metavar="DIR", help="dataset folder")
    clean.add_argument(
        "--min-size",
        type=int,
        default=DEFAULT_MIN_SIZE,
        metavar="PX",
        help=f"narrower/shorter images are 'small' ({DEFAULT_MIN_SIZE})",
    )
    clean.add_argument(
        "--blank-std",
        type=float,
        default=DEFAULT_BLANK_STD,
        metavar="STD",
        help=f"pixel std below this is 'blank' ({DEFAULT_BLANK_STD})",
    )
    clean.add_argument("--near-duplicates", action="store_true", help="also report perceptual (pHash) near-duplicates")
    clean.add_argument(
        "--near-distance",
        type=int,
        default=DEFAULT_NEAR_DISTANCE,
        metavar="BITS",
        help=f"pHash bits of 64 that may differ, 0-{MAX_NEAR_DISTANCE} ({DEFAULT_NEAR_DISTANCE})",
    )
    clean.add_argument(
        "--report",
        default=CLEAN_REPORT_FILE,
        metavar="OUT",
        help=f"JSON with every file per finding ({CLEAN_REPORT_FILE})",
    )
    clean.add_argument("--workers", type=int, default=None, help="decoding processes (default: one per CPU)")
    clean.add_argument("--apply", action="store_true", help="move the files to remove into the quarantine")
    clean.add_argument(
        "--kinds",
        metavar="K,K",
        help=f"with --apply: reasons to act on, from {','.join(REMOVABLE_KINDS)} (default all)",
    )
    clean.add_argument("--quarantine", metavar="PATH", help="quarantine folder (default DIR.quarantine)")
    clean.add_argument("--dry-run", action="store_true", help="with --apply: list the moves, move nothing")

    restore = sub.add_parser("restore", parents=common, help="put quarantined files back")
    restore.add_argument("root", metavar="DIR", help="dataset folder")
    restore.add_argument("--quarantine", metavar="PATH", help="quarantine folder (default DIR.quarantine)")
    restore.add_argument("--dry-run", action="store_true", help="check, restore nothing")

    imp = sub.add_parser("import-csv", parents=common, help="convert the FER2013 CSV to image folders")
    imp.add_argument("csv", metavar="CSV", help="fer2013.csv (emotion,pixels,Usage)")
    imp.add_argument("out", metavar="OUT", help="dataset folder to write")
    imp.add_argument("--skip-bad", action="store_true", help="skip and report bad rows instead of failing")
    imp.add_argument("--force", action="store_true", help="write into split folders that already hold files")
    for name, sub_parser in sub.choices.items():
        sub_parser.set_defaults(handler=HANDLERS[name])
    return p


def handle_demo(args: argparse.Namespace) -> None:
    from fer_keras.data.demo import make_demo_dataset

    counts = make_demo_dataset(args.out, {"train": args.train, "valid": args.valid, "test": args.test}, args.seed)
    per_split = ", ".join(f"{s} {sum(c.values())}" for s, c in counts.items())
    print(f"wrote the demo dataset to {args.out} ({per_split} images)")


def handle_stats(args: argparse.Namespace) -> None:
    from fer_keras.atomic import write_json_atomic
    from fer_keras.data.stats import dataset_stats, format_stats

    with _common.progress(quiet=args.quiet, unit="img", desc="headers", leave=False) as bar:
        stats = dataset_stats(args.root, progress=bar)
    print(format_stats(stats))
    write_json_atomic(args.out, stats)
    print(f"wrote {args.out}")


def handle_clean(args: argparse.Namespace) -> None:
    from fer_keras.atomic import write_json_atomic
    from fer_keras.data.clean import find_problems, format_report, removal_plan
    from fer_keras.data.quarantine import apply_quarantine, check_quarantine, default_quarantine, plan_quarantine
    from fer_keras.validation import check_choice

    kinds = REMOVABLE_KINDS if args.kinds is None else [k.strip() for k in args.kinds.split(",") if k.strip()]
    for kind in kinds:
        check_choice("--kinds", kind, REMOVABLE_KINDS)
    if args.apply:
        check_quarantine(args.root, args.quarantine)  # before the scan: an unusable folder fails in a second
    with _common.progress(quiet=args.quiet, unit="img", desc="decode", leave=False) as bar:
        report = find_problems(
            args.root,
            min_size=args.min_size,
            blank_std=args.blank_std,
            near_duplicates=args.near_duplicates,
            near_distance=args.near_distance,
            workers=args.workers,
            progress=bar,
        )
    plan = removal_plan(report, kinds)
    # Every check of the moves before anything is written: a refused --apply leaves no report behind.
    moves = plan_quarantine(args.root, plan, args.quarantine) if args.apply else None
    print(format_report(report))
    write_json_atomic(args.report, report)
    print(f"wrote {args.report} (every file per finding)")
    if moves is None:
        if plan:
            qdir = args.quarantine or default_quarantine(args.root)
            print(f"run with --apply to move these {len(plan)} file(s) into {qdir} (undo: fer-data restore)")
        return
    if args.dry_run:
        for rel, reason in plan:
            print(f"would move {rel} ({reason})")
        done = moves.summary()
    else:
        with _common.progress(total=len(plan), quiet=args.quiet, unit="file", desc="quarantine", leave=False) as bar:
            done = apply_quarantine(moves, progress=bar)
    verb = "would move" if args.dry_run else "moved"
    reasons = ", ".join(f"{k} {n}" for k, n in done["by_reason"].items()) or "nothing to move"
    print(f"{verb} {done['moved']} file(s) to {done['quarantine']} ({reasons})")
    if done["moved"] and not args.dry_run:
        print(
            f"undo with: fer-data restore {args.root}" + (f" --quarantine {args.quarantine}" if args.quarantine else "")
        )


def handle_restore(args: argparse.Namespace) -> None:
    from fer_keras.data.quarantine import check_quarantine, restore_files

    check_quarantine(args.root, args.quarantine, restoring=True)  # refuse before a progress bar appears
    with _common.progress(quiet=args.quiet, unit="file", desc="restore", leave=False) as bar:
        done = restore_files(args.root, args.quarantine, dry_run=args.dry_run, progress=bar)
    verb = "would restore" if args.dry_run else "restored"
    print(f"{verb} {done['restored']} file(s) from {done['quarantine']} ({done['already_in_place']} already in place)")


def handle_import_csv(args: argparse.Namespace) -> None:
    from fer_keras.data.csv_import import MAX_LISTED, import_csv

    with _common.progress(quiet=args.quiet, unit="row", desc="import", leave=False) as bar:
        result = import_csv(args.csv, args.out, skip_bad=args.skip_bad, force=args.force, progress=bar)
    for line in result.skipped[:MAX_LISTED]:
        print(f"warning: {line}; skipped", file=sys.stderr)
    if len(result.skipped) > MAX_LISTED:
        print(f"warning: ... and {len(result.skipped) - MAX_LISTED} more bad rows skipped", file=sys.stderr)
    per_split = ", ".join(f"{s} {sum(c.values())}" for s, c in result.counts.items())
    print(f"wrote {result.written} PNG images to {result.out} ({per_split}); {len(result.skipped)} bad row(s) skipped")


HANDLERS = {
    "demo": handle_demo,
    "stats": handle_stats,
    "clean": handle_clean,
    "restore": handle_restore,
    "import-csv": handle_import_csv,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fer-data``; returns the exit code (0 ok, 1 user error)."""
    return _common.run(build_parser(), lambda args: args.handler(args), argv)


if __name__ == "__main__":
    sys.exit(main())
