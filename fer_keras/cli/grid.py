"""`fer-grid`: run a hyperparameter grid (resumable, parallel), then export the best model.

fer-grid [run] GRID.json [--workers N] [--dry-run] [--force] [--only PATTERN] [--backend local|ray]
         [--ray-address ADDR] [--storage URI] [--gpus-per-run F] [--scheduler fifo|asha]
fer-grid select [--history DIR] [--out DIR] [--grid GRID] [--run NAME] [--tta flip] [--dry-run]

``run`` is the default subcommand: ``fer-grid GRID.json`` is ``fer-grid run GRID.json``.
The work is the library's (:func:`fer_keras.training.grid_runner.plan_grid`,
:func:`~fer_keras.training.grid_runner.run_grid`, :func:`fer_keras.training.selection.export_best`);
this module parses, calls and prints.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from fer_keras.cli import _common
from fer_keras.cli.train import add_config_flags, config_values

if TYPE_CHECKING:
    from fer_keras.training.grid_runner import GridPlan

SUBCOMMANDS = ("run", "select")
DEFAULT_SUBCOMMAND = "run"
# fer-train flags that override the grid file for every run (same names, same meaning), with their help.
OVERRIDES = {
    "epochs": "epochs of every run (overrides the grid file)",
    "data": "dataset folder of every run (overrides the grid file and its datasets)",
    "history_dir": "history folder of every run (overrides the grid file)",
    "runs_dir": "runs folder of every run (overrides the grid file)",
    "mixed_precision": "mixed precision for every run, as fer-train's: float16 compute where a GPU is visible, "
    "else bfloat16 (CPUs)",
    "devices": "train every run data-parallel on N devices or all (as fer-train's --devices; the batch size "
    "stays the global batch)",
    "tensorboard": "log every run to TensorBoard in DIR/<run name>",
    "mlflow": "track every run in MLflow at URI: one MLflow experiment named after the grid, one MLflow run per run",
}


def build_parser() -> argparse.ArgumentParser:
    from fer_keras.model.model_folder import TTA_CHOICES

    p = _common.parser(
        "fer-grid",
        "Run a hyperparameter grid, then export its best run (`fer-grid GRID.json` is `fer-grid run GRID.json`); "
        "`fer-grid select` exports the best run again.",
    )
    subs, parents = _common.subcommands(p, metavar="{run,select}")

    run = subs.add_parser("run", parents=parents, help="run a grid's runs, then export the best (the default)")
    run.add_argument("grid", metavar="GRID", help="grid JSON file, e.g. grids/demo.json")
    run.add_argument(
        "--workers", type=int, default=1, metavar="N", help="runs trained at once, each in its own process (default 1)"
    )
    run.add_argument("--backend", choices=["local", "ray"], default="local", help="local process pool or Ray Tune")
    run.add_argument(
        "--ray-address", metavar="ADDR", help="address of an existing Ray cluster (default: start one locally)"
    )
    run.add_argument(
        "--storage",
        metavar="URI",
        help="Ray: where trials persist their checkpoints, a folder or URI every node can reach, e.g. "
        "s3://bucket/grids or a shared mount (default: RUNS_DIR/ray_results on this machine)",
    )
    run.add_argument(
        "--gpus-per-run", type=float, default=0.0, metavar="F", help="Ray: GPUs each run asks for (default 0)"
    )
    run.add_argument(
        "--scheduler",
        choices=["fifo", "asha"],
        default="fifo",
        help="Ray: fifo trains every run to the end; asha stops unpromising runs early (default fifo)",
    )
    run.add_argument("--dry-run", action="store_true", help="validate everything and list runs with their status")
    run.add_argument("--force", action="store_true", help="retrain the chosen runs from scratch")
    run.add_argument("--only", metavar="PATTERN", help="only runs whose name matches this glob")
    add_config_flags(run, list(OVERRIDES), helps=OVERRIDES)
    run.add_argument("--no-select", action="store_true", help="don't export the best model afterwards")
    run.add_argument(
        "--out", metavar="DIR", help="best model folder (default: the grid's best_model, else models/best_model)"
    )
    run.set_defaults(handler=handle_run)

    select = subs.add_parser(
        "select", parents=parents, help="export the run with the highest val_accuracy to a model folder"
    )
    select.add_argument("--history", metavar="DIR", help="history folder (default: the grid's, else history)")
    select.add_argument("--grid", metavar="GRID", help="only consider this grid's runs")
    select.add_argument(
        "--out", metavar="DIR", help="best model folder (default: the grid's best_model, else models/best_model)"
    )
    select.add_argument("--no-test", action="store_true", help="skip the one-time test-split evaluation")
    select.add_argument("--run", action="append", metavar="NAME", help="only consider this run (repeatable)")
    select.add_argument(
        "--reproduce", metavar="COMMANDS", help="the commands that reproduce the selected run, kept in metadata.json"
    )
    select.add_argument(
        "--tta",
        action="append",
        choices=TTA_CHOICES,
        help="test-time augmentation recorded for inference (metadata inference.tta) and applied to the "
        "recorded valid/test metrics; flip: mean of the image and its mirror image (default: none)",
    )
    select.add_argument(
        "--class-prior",
        metavar="auto|TAU",
        help="class-prior correction (logit adjustment) recorded for inference: 'auto' chooses tau in 0..1 "
        "on valid (mean of accuracy and macro-F1), or give tau; off by default",
    )
    select.add_argument("--dry-run", action="store_true", help="name the run that would be exported; load no model")
    select.set_defaults(handler=handle_select)
    return p


def handle_run(args: argparse.Namespace) -> int:
    from fer_keras.constants import STATUS_FAILED
    from fer_keras.training.grid_runner import check_ray_options, plan_grid, run_grid
    from fer_keras.validation import check_int

    # run_grid checks them too; here so --dry-run does.
    check_int("--workers", args.workers, minimum=1)
    check_ray_options(args.backend, args.workers, args.storage, args.gpus_per_run, args.scheduler)
    overrides = config_values(args, list(OVERRIDES))
    plan = plan_grid(args.grid, overrides, args.only, args.force, args.out, select=not args.no_select)
    if args.dry_run:
        return _print_plan(plan)
    from fer_keras.extras import require

    # Checked here, once: otherwise every run's worker process would fail on its own.
    require("tensorflow", "train")
    if args.backend == "ray":
        require("ray", "ray")
    if not args.quiet:
        counts = f"{len(plan.chosen)} runs, {plan.skipped} already done, {len(plan.todo)} to train"
        print(f"{args.grid}: {counts}", file=sys.stderr)
    bar = _common.progress(total=len(plan.todo), quiet=args.quiet, desc="runs", unit="run")

    def on_done(outcome: dict) -> None:
        bar.update(1)
        if outcome["status"] == STATUS_FAILED:
            bar.write(f"FAILED {outcome['name']}: {outcome.get('error')}", file=sys.stderr)

    try:
        result = run_grid(
            plan,
            args.workers,
            args.backend,
            args.ray_address,
            args.quiet,
            on_done,
            storage=args.storage,
            gpus_per_run=args.gpus_per_run,
            scheduler=args.scheduler,
        )
    finally:
        bar.close()
    if result.best is not None:
        _print_selected(result.best, plan.best_model)
    if result.select_error:
        print(f"error: {result.select_error}", file=sys.stderr)
    if result.failures:
        print(f"{len(result.failures)} run(s) failed: {', '.join(sorted(result.failures))}", file=sys.stderr)
        return 1
    return 0


def _print_plan(plan: GridPlan) -> int:
    """The --dry-run listing: one line per chosen run (status, name, epochs, data) and its problems."""
    width = max(len(run.name) for run in plan.chosen)
    for run in plan.chosen:
        print(f"{plan.statuses[run.name]:<11} {run.name:<{width}}  epochs={run.epochs} data={run.data}")
        for msg in plan.problems[run.name]:
            print(f"{'':<11} problem: {msg}")
    print(f"{len(plan.chosen)} runs: " + ", ".join(f"{n} {s}" for s, n in plan.counts().items()))
    if plan.blocked:
        print(f"{len(plan.blocked)} runs have problems and would be recorded as failed", file=sys.stderr)
        return 1
    return 0


def _print_selected(meta: dict, out) -> None:
    test = meta["test_metrics"]
    test_txt = f", test accuracy {test['accuracy']:.4f}" if test else ""
    tta = meta.get("inference", {}).get("tta") or ()
    tta_txt = f", tta {'+'.join(tta)}" if tta else ""
    accuracy = meta["valid_metrics"]["accuracy"]
    prior = meta.get("class_prior")
    prior_txt = f", class-prior tau {prior['tau']:g}" if prior else ""
    print(f"best model: {meta['source_run']} (val_accuracy {accuracy:.4f}{test_txt}{tta_txt}{prior_txt}) -> {out}")


def handle_select(args: argparse.Namespace) -> int:
    from fer_keras.constants import BEST_MODEL_DIR, HISTORY_DIR

    names = None
    history, out = args.history or HISTORY_DIR, args.out or BEST_MODEL_DIR
    if args.grid:
        from fer_keras.training.grid import expand_grid, load_grid

        grid = load_grid(args.grid)
        runs = expand_grid(grid)
        names = [run.name for run in runs]
        history = args.history or runs[0].history_dir
        out = args.out or grid.get("best_model", BEST_MODEL_DIR)
    if args.run:
        names = [n for n in names if n in args.run] if names is not None else list(args.run)
    if args.dry_run:
        from fer_keras.training.selection import choose_export

        record, _ = choose_export(history, out, names)
        print(f"would export {record['name']} (best val_accuracy {record['best_val_accuracy']:.4f}) -> {out}")
        return 0
    from fer_keras.extras import require
    from fer_keras.model.class_prior import class_prior_from_text

    class_prior = class_prior_from_text(args.class_prior)  # a bad value fails before TensorFlow loads
    require("keras", "train")
    from fer_keras.training.selection import export_best

    reproduce = args.reproduce or "fer-grid select"
    meta = export_best(
        history, out, names, not args.no_test, reproduce, args.quiet, tta=args.tta or (), class_prior=class_prior
    )
    _print_selected(meta, out)
    return 0


def _with_default_subcommand(argv: list[str]) -> list[str]:
    """``fer-grid [--debug] [-q] GRID.json ...`` → ``fer-grid run ...``: ``run`` is the default subcommand."""
    top_level = {"--debug", "-q", "--quiet", "-h", "--help"}
    for arg in argv:
        if arg in top_level:
            continue
        return argv if arg in SUBCOMMANDS else [DEFAULT_SUBCOMMAND, *argv]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    argv = _with_default_subcommand(list(sys.argv[1:] if argv is None else argv))
    return _common.run(build_parser(), lambda args: args.handler(args), argv)


if __name__ == "__main__":
    sys.exit(main())
