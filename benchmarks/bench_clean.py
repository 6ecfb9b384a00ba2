"""Benchmark `fer-data clean` (and `stats`) on FER2013, or on generated data with --quick.

Full mode times, on ../shared/datasets/fer2013 (read only, nothing is written
there), the median of --repeats runs of:

- stats: header-only scan (``dataset_stats``);
- clean, 1 process: the serial baseline;
- clean, N processes: the default pool (one process per CPU);
- clean + near-duplicates, N processes.

Speeds are ratios against the serial clean measured in the same run, and the
findings table of the last run is included. ``--quick`` does one run of each on a
small generated dataset (seconds; for CI).

Usage:
    python benchmarks/bench_clean.py --quick
    python benchmarks/bench_clean.py --out benchmarks/results/clean.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from _bench import FER2013, Clock, command_line, header, load_average, load_note, skip, write_results

from fer_keras.data.clean import find_problems, format_report
from fer_keras.data.demo import make_demo_dataset
from fer_keras.data.stats import dataset_stats


def run(root: Path, repeats: int, workers: int) -> tuple[str, int]:
    cases = {
        "stats (headers only)": lambda: dataset_stats(root),
        "clean, 1 process (baseline)": lambda: find_problems(root, workers=1),
        f"clean, {workers} processes": lambda: find_problems(root, workers=workers),
        f"clean --near-duplicates, {workers} processes": lambda: find_problems(
            root, workers=workers, near_duplicates=True
        ),
    }
    walls: dict[str, list[float]] = {name: [] for name in cases}
    cpus: dict[str, list[float]] = {name: [] for name in cases}
    report = None
    # Round-robin, not case after case: on a shared machine the load drifts, and this spreads it evenly.
    for _ in range(repeats):
        for name, fn in cases.items():
            with Clock() as clock:  # CPU time includes the pool workers'
                result = fn()
            walls[name].append(clock.wall)
            cpus[name].append(clock.cpu)
            if "near" in name:
                report = result
            print(f"{name}: {walls[name][-1]:.2f} s wall, {cpus[name][-1]:.2f} s CPU", file=sys.stderr)
    baseline = statistics.median(walls["clean, 1 process (baseline)"])
    files = report["files_scanned"]
    lines = [
        "| case | median wall s | runs (s) | median CPU s | files/s | speed vs 1 process |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name in cases:
        median = statistics.median(walls[name])
        runs = ", ".join(f"{t:.1f}" for t in walls[name])
        cpu = statistics.median(cpus[name])
        lines.append(
            f"| {name} | {median:.2f} | {runs} | {cpu:.1f} | {files / median:,.0f} | {baseline / median:.2f}x |"
        )
    return "\n".join(lines) + "\n\nFindings (last run):\n\n```\n" + format_report(report) + "\n```\n", files


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one run on a small generated dataset (seconds)")
    p.add_argument("--data", type=Path, default=FER2013, help=f"dataset to scan (default {FER2013})")
    p.add_argument("--repeats", type=int, default=3, help="runs per case; the median is reported (default 3)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="pool size (default: CPUs)")
    p.add_argument("--out", type=Path, help="also write the Markdown result here")
    args = p.parse_args(argv)
    load_start = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        if args.quick:
            root = Path(tmp) / "data"
            make_demo_dataset(root, {"train": 30, "valid": 5, "test": 5}, seed=0)
            repeats = 1
        else:
            root = args.data
            if not (root / "train").is_dir():
                return skip(f"{root}: dataset not found (use --quick for generated data)")
            repeats = args.repeats
        table, files = run(root, repeats, args.workers)
    lines = [
        *header("fer-data clean benchmark", command_line(__file__, argv)),
        f"{load_note(load_start, load_average())}.",
        f"Data: {'generated demo data' if args.quick else root.name} ({files} files); median of {repeats} run(s).",
        "",
        table,
    ]
    print("\n".join(lines))
    if args.out:
        write_results(args.out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
