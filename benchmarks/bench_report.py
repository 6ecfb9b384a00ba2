"""Benchmark `fer-report`: wall time of the whole command on a 96-run grid, and its parts.

Inputs are generated into a temporary folder: 96 synthetic histories of 50 epochs
(the seed grid's names, three dataset variants, one failed-before-start, one failed
and one interrupted run, one garbled file), the optional JSON inputs of the other
tools, a 7-class demo dataset (15 test images per class) and a tiny Keras model, so
section 4 runs the real load-model / decode / predict path.

Measured, each repeated and reported as the median:

- ``fer-report`` end to end in a fresh process (Python start-up, imports, TensorFlow
  for section 4, every figure, writing the files) for 1 run and for 96 runs;
- the per-section times ``build_report`` records in summary.json;
- per-run curves: this report's SVG sparklines against the baseline of one
  matplotlib PNG figure per run (what the reference notebooks drew), same runs.

    .venv/bin/python benchmarks/bench_report.py --quick   # for CI: one 8-run x 10-epoch report, 1 repeat
    .venv/bin/python benchmarks/bench_report.py           # 96 runs x 50 epochs, 3 repeats → results/report.md
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import ROOT, command_line, header, load_average, load_note, results_path, write_results

RESULTS = results_path("report")
BUDGET_S = 30.0


def make_inputs(scratch: Path, n_runs: int, epochs: int) -> dict[str, Path]:
    from fer_keras.constants import CLASS_NAMES
    from fer_keras.data.demo import make_demo_dataset
    from fer_keras.report.synthetic import dump, write_brightness_model, write_synthetic_histories

    data = scratch / "data"
    if not data.exists():
        make_demo_dataset(data, {"test": 15}, seed=0)
        write_brightness_model(scratch / "model", CLASS_NAMES, metadata={"config": {"data": str(data)}})
        dump(scratch / "reports" / "dataset_stats.json", {"counts": {"test": dict.fromkeys(CLASS_NAMES, 15)}})
        dump(scratch / "reports" / "eval" / "demo.json", {"dataset": "demo", "accuracy": 0.3, "macro_f1": 0.2})
    history = scratch / f"history_{n_runs}"
    variants = ("augment", "balanced", "balanced-2") if n_runs > 1 else ("augment",)
    special = n_runs >= 8
    write_synthetic_histories(
        history,
        n_runs,
        epochs,
        variants=variants,
        failed=2 if special else 0,
        interrupted=1 if special else 0,
        garbled=1 if special else 0,
        data=str(data),
    )
    return {"history": history, "model": scratch / "model", "data": data, "reports": scratch / "reports"}


def time_cli(inputs: dict[str, Path], out: Path) -> tuple[float, float, dict[str, float]]:
    """Wall and CPU seconds of ``python -m fer_keras.cli.report`` in a fresh process, and its section timings.

    CPU time (user + system, the command and its prediction worker) does not depend on
    what else runs on the machine: on an idle 2-core machine the wall time is about the
    CPU time minus what the worker overlaps.
    """
    cmd = [
        sys.executable,
        "-m",
        "fer_keras.cli.report",
        "--history",
        str(inputs["history"]),
        "--out",
        str(out),
        "--model",
        str(inputs["model"]),
        "--reports",
        str(inputs["reports"]),
        "-q",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"fer-report failed:\n{done.stderr}")
    summary = json.loads((out.parent / "summary.json").read_text())
    if not summary["model"]["available"]:
        raise SystemExit(f"section 4 did not run: {summary['model']['message']}")
    return wall, cpu, summary["timings_s"]


def time_curves(history: Path) -> tuple[float, float]:
    """Seconds to draw every run's curves: SVG sparklines vs one matplotlib PNG per run (baseline)."""
    from fer_keras.report import figures
    from fer_keras.report.runs import load_runs

    runs = load_runs(history).runs
    figures.training_curves(runs[0].curves, "warm-up")  # imports and font cache outside the timing
    start = time.perf_counter()
    for run in runs:
        figures.training_curves(run.curves, run.name)
    baseline = time.perf_counter() - start
    start = time.perf_counter()
    for run in runs:
        c = run.curves
        figures.sparkline_svg({"accuracy": c["accuracy"], "val_accuracy": c["val_accuracy"]})
        figures.sparkline_svg({"loss": c["loss"], "val_loss": c["val_loss"]})
    return baseline, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 runs x 10 epochs, one repeat, no results file")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per measurement (default 3, quick 1)")
    args = parser.parse_args(argv)
    n_runs, epochs = (8, 10) if args.quick else (96, 50)
    repeats = args.repeats or (1 if args.quick else 3)

    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench_report_") as tmp:
        scratch = Path(tmp)
        sizes = [n_runs] if args.quick else [1, n_runs]  # quick: one fer-report process only
        inputs = {n: make_inputs(scratch, n, epochs) for n in sizes}
        walls: dict[int, list[float]] = {n: [] for n in sizes}
        cpus: dict[int, list[float]] = {n: [] for n in sizes}
        sections: list[dict[str, float]] = []
        for _ in range(repeats):
            for n in sizes:
                wall, cpu, timings = time_cli(inputs[n], scratch / f"out_{n}" / "report.html")
                walls[n].append(wall)
                cpus[n].append(cpu)
                if n == n_runs:
                    sections.append(timings)
        curves = [time_curves(inputs[n_runs]["history"]) for _ in range(repeats)]
        html_kb = (scratch / f"out_{n_runs}" / "report.html").stat().st_size / 1024

    load_after = load_average()
    med = {n: statistics.median(v) for n, v in walls.items()}
    cpu_med = {n: statistics.median(v) for n, v in cpus.items()}
    section_med = {k: statistics.median(t[k] for t in sections) for k in sections[0]}
    base_curves = statistics.median(c[0] for c in curves)
    svg_curves = statistics.median(c[1] for c in curves)
    rows = [
        ("fer-report, 1 run (fixed cost)", f"{med[1]:.1f} s", f"{cpu_med[1]:.1f} s", "1.00x (baseline)")
        if 1 in med
        else None,
        (
            f"fer-report, {n_runs} runs x {epochs} epochs",
            f"{med[n_runs]:.1f} s",
            f"{cpu_med[n_runs]:.1f} s",
            f"{med[n_runs] / med[1]:.2f}x the 1-run wall time" if 1 in med else "",
        ),
        (
            f"per-run curves, matplotlib PNG per run ({n_runs} figures, baseline)",
            f"{base_curves:.2f} s",
            "",
            "1.00x (baseline)",
        ),
        (
            f"per-run curves, SVG sparklines ({2 * n_runs})",
            f"{svg_curves:.3f} s",
            "",
            f"{base_curves / max(svg_curves, 1e-9):.0f}x faster",
        ),
    ]
    lines = [
        f"| measurement ({repeats} repeats, median) | wall time | CPU time (user+sys) | ratio |",
        "|---|---|---|---|",
        *["| " + " | ".join(row) + " |" for row in filter(None, rows)],
        "",
        f"Sections of the {n_runs}-run report (seconds, median, from summary.json `timings_s`):",
        "",
        "| " + " | ".join(section_med) + " |",
        "|" + "---|" * len(section_med),
        "| " + " | ".join(f"{v:.2f}" for v in section_med.values()) + " |",
        "",
        f"{load_note(load_before, load_after)}. "
        "CPU time (the command plus its prediction worker) does not grow with that load; the report does "
        "little I/O, so on an idle machine its wall time is at most about its CPU time "
        f"({cpu_med[n_runs]:.1f} s for {n_runs} runs), less what the worker overlaps.",
        "",
        f"Report size: {html_kb:.0f} KiB (self-contained HTML). "
        + (
            "Quick mode: no budget check."
            if args.quick
            else f"Budget: {BUDGET_S:.0f} s wall for 96 runs → "
            + ("within budget." if med[n_runs] < BUDGET_S else "over budget at this load; see the CPU time.")
        ),
    ]
    table = "\n".join(lines)
    print(table)
    if not args.quick:
        intro = [
            *header("fer-report benchmark", command_line(__file__, argv)),
            "Each `fer-report` time is a fresh process (`python -m fer_keras.cli.report ... -q`) including Python "
            "start-up, imports, loading the TensorFlow model and predicting the 105-image test split of a generated "
            "7-class dataset. The machine may be shared with other jobs (see the load average below), so treat "
            "single numbers as upper bounds.",
            "",
        ]
        write_results(RESULTS, [*intro, table])
    return 0 if med[n_runs] < BUDGET_S or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
