"""Benchmark fer-grid throughput (runs per hour) for one fixed small grid: local backend vs Ray.

The grid: ``architectures/demo_small.json`` × {adam, sgd} × batch {16, 32} (4 runs) on a
generated demo dataset, no augmentation. Each mode trains it from scratch with
``fer-grid GRID --no-select -q`` in its own process, as a user would:

- ``local --workers 1`` and ``local --workers 2`` (process pool);
- ``ray``: a 2-node Ray cluster on this machine (``ray start --head`` and a second
  ``ray start`` node, 1 CPU each, so 2 trials at once as with ``--workers 2``), driven with
  ``--backend ray --ray-address ... --storage ...`` (every epoch's checkpoint goes through
  Tune's storage and back to the driver's folders). Starting the cluster is timed apart.

Ray's overhead per trial = (Ray's wall time − local ``--workers 2``'s) × 2 / runs, against a
trial's time (local ``--workers 2`` wall × 2 / runs). The target is under 10% for trials of a
minute or more: the full run picks epochs so a trial lasts about that long.

    .venv/bin/python benchmarks/bench_grid.py --quick     # CI: 2 runs x 1 epoch, local --workers 2 only
    .venv/bin/python benchmarks/bench_grid.py             # all modes → benchmarks/results/grid.md
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import ROOT, background_jobs, command_line, header, load_average, load_note, results_path, write_results

from fer_keras.errors import FerError
from fer_keras.training.ray_nodes import free_port, start_node, stop_node

RESULTS = results_path("grid")
ARCH = ROOT / "architectures" / "demo_small.json"


def make_grid(scratch: Path, data: Path, mode: str, epochs: int, runs: int) -> Path:
    optimizers, batches = (["adam", "sgd"], [16, 32]) if runs == 4 else (["adam", "sgd"][:runs], [16])
    grid = {
        "datasets": {"augment": str(data)},
        "defaults": {"epochs": epochs, "augment": False, "precise_bn": 0,
                     "history_dir": str(scratch / mode / "history"), "runs_dir": str(scratch / mode / "runs")},
        "axes": {"arch": [str(ARCH)], "optimizer": optimizers},
        "blocks": [{"batch_size": batches}],
    }  # fmt: skip
    path = scratch / f"{mode}.json"
    path.write_text(json.dumps(grid))
    return path


def run_mode(grid: Path, extra: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one ``fer-grid`` process training the whole grid."""
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "fer_keras.cli.grid", str(grid), "--no-select", "-q", *extra]
    done = subprocess.run(cmd, env=env, cwd=grid.parent, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def train_seconds(history_dir: Path) -> float:
    """Seconds inside Keras fit (the epochs) summed over the runs, from their histories."""
    total = 0.0
    for path in history_dir.glob("*_history.json"):
        total += sum(json.loads(path.read_text())["history"]["epoch_seconds"])
    return total


def measure(scratch: Path, data: Path, label: str, extra: list[str], workers: int, epochs: int, runs: int,
            env: dict[str, str]) -> tuple[str, int, float, float]:  # fmt: skip
    """Train the grid from scratch in one mode: (label, runs at once, wall seconds, seconds inside epochs)."""
    key = label.split(",")[0].replace(" ", "_").replace("-", "")
    grid = make_grid(scratch, data, key, epochs, runs)
    wall = run_mode(grid, extra, env)
    fit = train_seconds(scratch / key / "history")
    print(f"{label}: {runs} runs x {epochs} epochs in {wall:.1f} s = {runs * 3600 / wall:.1f} runs/h "
          f"(epochs {fit:.1f} s in total)", flush=True)  # fmt: skip
    return label, workers, wall, fit


def ray_mode(scratch: Path, data: Path, epochs: int, runs: int, env: dict[str, str], rows: list) -> tuple:
    """Start a 2-node cluster (1 CPU each), train the grid on it, stop it: (start seconds, error or None)."""
    address = f"127.0.0.1:{free_port()}"
    env = {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    common = ["--node-ip-address", "127.0.0.1", "--disable-usage-stats", "--num-cpus", "1"]
    head_args = ["--head", "--port", address.split(":")[1], "--include-dashboard=false"]
    nodes = []
    start = time.perf_counter()
    try:
        nodes.append(start_node([*head_args, "--temp-dir", str(scratch / "head"), *common], scratch / "head.log", env))
        nodes.append(start_node(["--address", address, "--temp-dir", str(scratch / "worker"), *common],
                                scratch / "worker.log", env))  # fmt: skip
        cluster_start = time.perf_counter() - start
        extra = ["--backend", "ray", "--workers", "2", "--ray-address", address, "--storage", str(scratch / "storage")]
        rows.append(measure(scratch, data, "ray, 2-node cluster", extra, 2, epochs, runs, env))
        return cluster_start, None
    except (
        SystemExit,
        FerError,
    ) as err:  # no cluster (or a failed grid): say so in the results rather than lose the others
        print(err, file=sys.stderr)
        return time.perf_counter() - start, str(err).splitlines()[0]
    finally:
        for node in reversed(nodes):
            stop_node(node)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 runs x 1 epoch, local --workers 2 only, no results file")
    p.add_argument("--epochs", type=int, help="epochs per run (default 48: a trial of over a minute on 2 idle cores)")
    p.add_argument("--images", type=int, default=96, help="training images per class (default 96)")
    p.add_argument("--no-ray", action="store_true", help="skip the Ray cluster")
    p.add_argument("--results", default=str(RESULTS), help="Markdown results file (full mode)")
    args = p.parse_args(argv)
    runs, epochs = (2, 1) if args.quick else (4, args.epochs or 48)
    images = 8 if args.quick else args.images
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    modes = [("local --workers 1", ["--workers", "1"], 1), ("local --workers 2", ["--workers", "2"], 2)]
    modes = modes[1:] if args.quick else modes
    use_ray = not (args.quick or args.no_ray)
    rows, cluster_start, cluster_error = [], None, None
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench_grid_", dir="/tmp") as tmp:
        scratch = Path(tmp)
        from fer_keras.data.demo import make_demo_dataset

        data = scratch / "data"
        make_demo_dataset(data, {"train": images, "valid": max(4, images // 4), "test": 4}, seed=1)
        for label, extra, workers in modes:
            rows.append(measure(scratch, data, label, extra, workers, epochs, runs, env))
        if use_ray:
            cluster_start, cluster_error = ray_mode(scratch, data, epochs, runs, env, rows)
    if args.quick:
        return 0
    local2 = next(r for r in rows if r[0] == "local --workers 2")
    trial = local2[2] * 2 / runs
    lines = [
        *header("fer-grid throughput: local backend vs Ray on a 2-node cluster", command_line(__file__, argv)),
        "",
        f"Grid: {runs} runs (demo_small × adam/sgd × batch 16/32) × {epochs} epochs, demo data with {images} "
        f"training images per class, no augmentation, no selection. Each mode is one `fer-grid` process, "
        f"from scratch. {load_note(load_before, load_average())}. "
        f"Other jobs running during the measurement: {background_jobs('bench_grid')}.",
        "",
        "| mode | runs at once | wall (s) | runs per hour | seconds per run (wall × runs at once / runs) "
        "| time inside epochs (s, all runs) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, workers, wall, fit in rows:
        per_run = wall * workers / runs
        lines.append(f"| {label} | {workers} | {wall:.1f} | {runs * 3600 / wall:.1f} | {per_run:.1f} | {fit:.1f} |")
    ray_row = next((r for r in rows if r[0].startswith("ray")), None)
    if cluster_error:
        lines += ["", f"Ray: not measured, after {cluster_start:.0f} s (3 attempts to start each node): "
                      f"`{cluster_error}`."]  # fmt: skip
    if ray_row:
        overhead = (ray_row[2] - local2[2]) * 2 / runs
        lines += [
            "",
            f"Ray's overhead per trial: {overhead:.1f} s against a {trial:.1f} s trial (local `--workers 2`), "
            f"{100 * overhead / trial:.1f}% (target: under 10% for trials of a minute or more). "
            f"Starting the 2-node cluster (not counted): {cluster_start:.1f} s.",
        ]
    write_results(args.results, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
