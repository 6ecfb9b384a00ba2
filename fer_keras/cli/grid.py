"""`fer-grid`: run a hyperparameter grid (resumable, parallel), then export the best model.

fer-grid grids/demo.json [--workers N] [--dry-run] [--force] [--only PATTERN] [--backend local|ray]
fer-grid select [--history history/] [--out models/best_model] [--grid GRID] [--tta flip]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from fer_keras.cli import _common


def build_parser() -> argparse.ArgumentParser:
    p = _common.parser("fer-grid", "Run a hyperparameter grid; `fer-grid select` exports the best run.")
    p.add_argument("grid", help="grid JSON file, e.g. grids/demo.json")
    p.add_argument("--workers", type=int, default=1, help="runs trained at once, each in its own process")
    p.add_argument("--backend", choices=["local", "ray"], default="local")
    p.add_argument("--ray-address", help="address of an existing Ray cluster (default: start one locally)")
    p.add_argument("--dry-run", action="store_true", help="validate everything and list runs with their status")
    p.add_argument("--force", action="store_true", help="retrain selected runs from scratch")
    p.add_argument("--only", metavar="PATTERN", help="only runs whose name matches this glob")
    p.add_argument("--epochs", type=int, help="override epochs for every run")
    p.add_argument("--data", help="override the dataset folder for every run")
    p.add_argument("--mixed-precision", action="store_true", help="bfloat16 compute on CPUs with AMX")
    p.add_argument("--history-dir", help="override the history folder")
    p.add_argument("--runs-dir", help="override the runs folder")
    p.add_argument("--no-select", action="store_true", help="don't export the best model afterwards")
    p.add_argument("--out", default=None, help="best model folder (default models/best_model)")
    return p


def build_select_parser() -> argparse.ArgumentParser:
    from fer_keras.model.model_folder import TTA_CHOICES

    p = _common.parser("fer-grid select", "Export the run with the highest val_accuracy to models/best_model.")
    p.add_argument("--history", help="history folder (default: the grid's, else history/)")
    p.add_argument("--grid", help="only consider this grid's runs")
    p.add_argument("--out", default=None, help="best model folder (default models/best_model)")
    p.add_argument("--no-test", action="store_true", help="skip the one-time test-split evaluation")
    p.add_argument("--run", action="append", metavar="NAME", help="only consider this run (repeatable)")
    p.add_argument(
        "--reproduce", metavar="COMMANDS", help="the commands that reproduce the selected run, kept in metadata.json"
    )
    p.add_argument(
        "--tta",
        action="append",
        choices=TTA_CHOICES,
        help="test-time augmentation recorded for inference (metadata inference.tta) and applied to the "
        "recorded valid/test metrics; flip: mean of the image and its mirror image (default: none)",
    )
    return p


def _overrides(args: argparse.Namespace) -> dict:
    out = {}
    for key in ("epochs", "data", "history_dir", "runs_dir"):
        if getattr(args, key) is not None:
            out[key] = getattr(args, key)
    if args.mixed_precision:
        out["mixed_precision"] = True
    return out


def handle_run(args: argparse.Namespace) -> int:
    from fer_keras.constants import BEST_MODEL_DIR, STATUS_DONE, STATUS_FAILED
    from fer_keras.errors import FerError
    from fer_keras.training.grid import expand_grid, load_grid, preflight, run_status, select_runs
    from fer_keras.training.grid_runner import record_failure
    from fer_keras.validation import check_int

    check_int("--workers", args.workers, minimum=1)
    grid = load_grid(args.grid)
    runs = expand_grid(grid, _overrides(args))
    chosen = select_runs(runs, args.only)
    if not chosen:
        raise FerError(f"{args.grid}: no run matches --only {args.only!r}")
    problems = preflight(chosen)
    out = args.out or grid.get("best_model", BEST_MODEL_DIR)
    if not args.no_select:
        from fer_keras.training.selection import check_model_out

        # Before any training: a grid must not run for hours and then refuse (or worse, replace) its --out.
        check_model_out(out, chosen[0]["history_dir"], [Path(run["runs_dir"]) / run["name"] for run in runs])
    statuses = {run["name"]: ("todo" if args.force else run_status(run)) for run in chosen}
    if args.dry_run:
        width = max(len(run["name"]) for run in chosen)
        for run in chosen:
            line = f"{statuses[run['name']]:<11} {run['name']:<{width}}  epochs={run['epochs']} data={run['data']}"
            print(line)
            for msg in problems[run["name"]]:
                print(f"{'':<11} problem: {msg}")
        counts = {s: list(statuses.values()).count(s) for s in ("todo", "done", "failed", "interrupted")}
        print(f"{len(chosen)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
        bad = sum(bool(p) for p in problems.values())
        if bad:
            print(f"{bad} runs have problems and would be recorded as failed", file=sys.stderr)
        return 1 if bad else 0

    failures: dict[str, str] = {}
    todo = []
    for run in chosen:
        if problems[run["name"]]:
            error = "; ".join(problems[run["name"]])
            record_failure(run, error)
            failures[run["name"]] = error
        elif args.force or statuses[run["name"]] != STATUS_DONE:
            todo.append(run)
    skipped = len(chosen) - len(todo) - len(failures)
    if not args.quiet:
        print(f"{args.grid}: {len(chosen)} runs, {skipped} already done, {len(todo)} to train", file=sys.stderr)

    bar = _common.progress(total=len(todo), quiet=args.quiet, desc="runs", unit="run")

    def on_done(outcome: dict) -> None:
        bar.update(1)
        if outcome["status"] == STATUS_FAILED:
            failures[outcome["name"]] = outcome.get("error", "failed")
            bar.write(f"FAILED {outcome['name']}: {outcome.get('error')}", file=sys.stderr)

    try:
        if todo:
            if args.backend == "ray":
                from fer_keras.training.grid_runner import run_ray

                run_ray(todo, args.workers, args.force, args.quiet, on_done, args.ray_address)
            else:
                from fer_keras.training.grid_runner import run_local

                run_local(todo, args.workers, args.force, args.quiet, on_done)
    finally:
        bar.close()

    if not args.no_select:
        # Every run of the grid competes, not only the --only subset: a partial rerun must not
        # replace a better model trained earlier.
        names = [run["name"] for run in runs]
        history_dir = chosen[0]["history_dir"]
        try:
            _select(history_dir, names, out, True, args.quiet, f"fer-grid {args.grid}")
        except FerError as err:
            if not failures:
                raise
            print(f"error: {err}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} run(s) failed: {', '.join(sorted(failures))}", file=sys.stderr)
        return 1
    return 0


def _select(history_dir, names, out, evaluate_test, quiet, reproduce, tta=()) -> None:
    from fer_keras.training.selection import export_best

    meta = export_best(history_dir, out, names, evaluate_test, reproduce, quiet, tta=tta)
    test = meta["test_metrics"]
    test_txt = f", test accuracy {test['accuracy']:.4f}" if test else ""
    tta_txt = f", tta {'+'.join(tta)}" if tta else ""
    print(
        f"best model: {meta['source_run']} (val_accuracy {meta['valid_metrics']['accuracy']:.4f}{test_txt}{tta_txt})"
        f" -> {out}"
    )


def handle_select(args: argparse.Namespace) -> int:
    from fer_keras.constants import BEST_MODEL_DIR

    names = None
    history, out = args.history or "history", args.out or BEST_MODEL_DIR
    if args.grid:
        from fer_keras.training.grid import expand_grid, load_grid

        grid = load_grid(args.grid)
        runs = expand_grid(grid)
        names = [run["name"] for run in runs]
        history = args.history or runs[0]["history_dir"]
        out = args.out or grid.get("best_model", BEST_MODEL_DIR)
    if args.run:
        names = [n for n in names if n in args.run] if names is not None else list(args.run)
    _select(history, names, out, not args.no_test, args.quiet, args.reproduce or "fer-grid select", args.tta or ())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "select":
        return _common.run(build_select_parser(), handle_select, argv[1:])
    return _common.run(build_parser(), handle_run, argv)


if __name__ == "__main__":
    sys.exit(main())
