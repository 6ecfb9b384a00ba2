"""`fer-report`: the analysis report of a grid of runs and of the shipped model.

fer-report [--history history/] [--out reports/report.html] [--model models/best_model]
           [--data DIR] [--reports DIR] [-q]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from fer_keras.cli import _common
from fer_keras.constants import (
    HISTORY_DIR,
    REPORT_HTML_FILE,
    REPORT_RANKING_FILE,
    REPORT_SUMMARY_FILE,
    REPORTS_DIR,
)
from fer_keras.model.shipped import default_model_dir


def build_parser() -> argparse.ArgumentParser:
    p = _common.parser(
        "fer-report",
        "Write one self-contained HTML report (dataset, ranking, grid plots, best model on the test split, "
        "comparisons, run details) plus summary.json and ranking.csv beside it.",
    )
    p.add_argument(
        "--history", default=HISTORY_DIR, metavar="DIR", help="folder of *_history.json files (default: %(default)s)"
    )
    p.add_argument(
        "--out", default=f"{REPORTS_DIR}/{REPORT_HTML_FILE}", metavar="FILE", help="report file (default: %(default)s)"
    )
    p.add_argument(
        "--model",
        default=str(default_model_dir()),
        metavar="DIR",
        help="model folder evaluated on the test split (default: the shipped model, %(default)s)",
    )
    p.add_argument("--no-model", action="store_true", help="skip the test-split evaluation (no TensorFlow)")
    p.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="dataset whose test split is evaluated (default: the model's training data)",
    )
    p.add_argument(
        "--reports",
        default=None,
        metavar="DIR",
        help="folder holding dataset_stats.json, clean_report.json and eval/*.json (default: the --out folder)",
    )
    p.add_argument("--dry-run", action="store_true", help="list the inputs found and the files to write; draw nothing")
    return p


def handle(args: argparse.Namespace) -> int:
    from fer_keras.extras import require

    for module in ("pandas", "matplotlib", "seaborn"):
        require(module, "train")  # the tables and figures; fer-report is part of the training workflow
    from fer_keras.report import build_report
    from fer_keras.report.build import describe_inputs

    model_dir = None if args.no_model else args.model
    if args.dry_run:
        for line in describe_inputs(args.history, args.out, model_dir, args.data, args.reports):
            print(line)
        return 0
    summary = build_report(
        args.history,
        args.out,
        model_dir=model_dir,
        data_dir=args.data,
        progress=not args.quiet,
        reports_dir=args.reports,
    )
    out = Path(args.out)
    ranking = summary["ranking"]
    best = ranking.get("best")
    line = f"{ranking['n_runs']} runs, {len(summary['runs']['unreadable'])} unreadable"
    if best:
        line += f"; best {best['name']} (max val_accuracy {best['max_val_accuracy']:.4f})"
    evaluation = summary.get("evaluation")
    line += (
        f"; test accuracy {evaluation['accuracy']:.4f}"
        if evaluation
        else f"; no test evaluation ({summary['model']['message']})"
    )
    print(line)
    print(f"report: {out}")
    print(f"summary: {out.parent / REPORT_SUMMARY_FILE}, ranking: {out.parent / REPORT_RANKING_FILE}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return _common.run(build_parser(), handle, argv)


if __name__ == "__main__":
    sys.exit(main())
