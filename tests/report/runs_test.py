"""History files → runs → ranking: numbers must equal those computed straight from the files."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import pytest

from fer_keras.errors import FerError
from fer_keras.report.ranking import BOTTOM_N, TOP_N, rank_runs, ranking_stats
from fer_keras.report.runs import load_runs, runs_frame
from fer_keras.report.synthetic import write_synthetic_histories

NAN = float("nan")


def write_history(folder: Path, name: str, status: str, val_acc: list, error: str | None = None, **config) -> Path:
    n = len(val_acc)
    record = {
        "format_version": 1,
        "name": name,
        "status": status,
        "error": error,
        "config": {
            "arch": f"architectures/{name.split('_')[0]}.json",
            "optimizer": "adam",
            "batch_size": 32,
            "color_mode": "rgb",
            "variant": "augment",
            "data": "data/demo",
        }
        | config,
        "history": {
            "loss": [1.5 - 0.1 * i for i in range(n)],
            "accuracy": [0.3 + 0.02 * i for i in range(n)],
            "val_loss": [1.6 - 0.05 * i for i in range(n)],
            "val_accuracy": val_acc,
            "lr": [0.001] * n,
            "epoch_seconds": [2.0] * n,
        },
        "epochs_done": n,
        "wall_time_s": 2.0 * n,
    }
    path = folder / f"{name}_history.json"
    path.write_text(json.dumps(record), encoding="utf-8")  # NaN is written as the JSON token NaN, like Keras logs
    return path


@pytest.fixture
def history(tmp_path) -> Path:
    folder = tmp_path / "history"
    folder.mkdir()
    rng = __import__("random").Random(3)
    for i in range(17):
        curve = [round(rng.uniform(0.2, 0.7), 4) for _ in range(6)]
        write_history(
            folder, f"m{i % 3}_adam_rgb_{32 * (1 + i % 4)}_augment_{i}", "done", curve, batch_size=32 * (1 + i % 4)
        )
    write_history(folder, "diverged_adam_rgb_32_augment", "done", [0.31, NAN, 0.33, NAN])
    write_history(folder, "failed_early_sgd_rgb_32_augment", "failed", [], error="ResourceExhaustedError: OOM")
    write_history(folder, "failed_late_sgd_rgb_64_augment", "failed", [0.2, 0.25], error="ValueError: boom")
    write_history(folder, "stopped_sgd_grayscale_32_augment", "interrupted", [0.4, 0.45, 0.41], color_mode="grayscale")
    (folder / "garbled_history.json").write_text('{"name": "x", "status": "do', encoding="utf-8")
    (folder / "notarun_history.json").write_text('{"hello": 1}', encoding="utf-8")
    (folder / "README.txt").write_text("not a history file", encoding="utf-8")
    return folder


def direct_max_val_accuracy(folder: Path) -> dict[str, float]:
    """Max finite val_accuracy per run, read with nothing but json."""
    out = {}
    for path in folder.glob("*_history.json"):
        try:
            record = json.loads(path.read_text())
            values = [v for v in record["history"]["val_accuracy"] if math.isfinite(v)]
        except (json.JSONDecodeError, KeyError):
            continue
        out[record["name"]] = max(values) if values else None
    return out


def test_load_runs_keeps_every_file(history):
    runs = load_runs(history)
    assert len(runs.runs) == 21
    assert sorted(u.path.name for u in runs.unreadable) == ["garbled_history.json", "notarun_history.json"]
    assert "invalid JSON" in next(u.message for u in runs.unreadable if u.path.name == "garbled_history.json")
    statuses = {r.name: r.status for r in runs.runs}
    assert statuses["failed_early_sgd_rgb_32_augment"] == "failed"
    assert statuses["stopped_sgd_grayscale_32_augment"] == "interrupted"


def test_frame_values_match_history_files(history):
    frame = runs_frame(load_runs(history).runs).set_index("name")
    expected = direct_max_val_accuracy(history)
    for name, value in expected.items():
        got = frame.loc[name, "max_val_accuracy"]
        assert (value is None and math.isnan(got)) or got == pytest.approx(value, abs=0)
    row = frame.loc["diverged_adam_rgb_32_augment"]
    assert row["best_epoch"] == 3 and row["epochs_done"] == 4
    assert row["model"] == "diverged" and row["optimizer"] == "adam" and row["batch_size"] == 32
    assert frame.loc["stopped_sgd_grayscale_32_augment", "color_mode"] == "grayscale"
    assert frame.loc["failed_late_sgd_rgb_64_augment", "error"] == "ValueError: boom"


def test_ranking_and_statistics_match_direct_computation(history):
    expected = direct_max_val_accuracy(history)
    ranked_values = sorted(((v, n) for n, v in expected.items() if v is not None), key=lambda t: (-t[0], t[1]))
    values = [v for v, _ in ranked_values]

    ranked = rank_runs(runs_frame(load_runs(history).runs))
    stats = ranking_stats(ranked)

    assert ranked["name"].tolist()[: len(values)] == [n for _, n in ranked_values]
    assert ranked["rank"].tolist()[: len(values)] == list(range(1, len(values) + 1))
    assert ranked["name"].iloc[-1] == "failed_early_sgd_rgb_32_augment" and ranked["rank"].isna().iloc[-1]
    assert stats["n_runs"] == 21 and stats["n_ranked"] == len(values) == 20
    assert stats["mean_max_val_accuracy"] == pytest.approx(statistics.fmean(values), rel=1e-12)
    assert stats["median_max_val_accuracy"] == pytest.approx(statistics.median(values), rel=1e-12)
    assert stats["std_max_val_accuracy"] == pytest.approx(statistics.stdev(values), rel=1e-12)
    assert stats["top"] == [n for _, n in ranked_values[:TOP_N]]
    assert stats["bottom"] == [n for _, n in ranked_values[-BOTTOM_N:]]
    assert stats["by_status"] == {"done": 18, "failed": 2, "interrupted": 1}
    best = stats["best"]
    assert best["name"] == ranked_values[0][1] and best["rank"] == 1
    assert best["minus_mean"] == pytest.approx(values[0] - statistics.fmean(values), rel=1e-12)


def test_best_run_from_model_metadata(history):
    ranked = rank_runs(runs_frame(load_runs(history).runs))
    stats = ranking_stats(ranked, best_run="stopped_sgd_grayscale_32_augment")
    assert stats["best"]["name"] == "stopped_sgd_grayscale_32_augment"
    assert stats["best"]["max_val_accuracy"] == 0.45
    assert stats["best"]["source"] == "model metadata source_run"
    assert ranking_stats(ranked, best_run="not_a_run")["best"]["rank"] == 1


def test_marks_do_not_overlap_for_small_grids(tmp_path):
    for n in (1, 12):
        folder = tmp_path / f"h{n}"
        folder.mkdir()
        for i in range(n):
            write_history(folder, f"m_adam_rgb_32_augment_{i}", "done", [0.1 + i / 100])
        stats = ranking_stats(rank_runs(runs_frame(load_runs(folder).runs)))
        assert len(stats["top"]) == min(n, TOP_N)
        assert len(stats["bottom"]) == max(0, min(BOTTOM_N, n - TOP_N))
        assert not set(stats["top"]) & set(stats["bottom"])


def test_ranking_csv_and_summary_written_by_build_report(history, tmp_path):
    from fer_keras.report import build_report

    out = tmp_path / "reports" / "report.html"
    summary = build_report(history, out, progress=False)
    rows = list(csv.DictReader((out.parent / "ranking.csv").open()))
    expected = direct_max_val_accuracy(history)
    assert len(rows) == 21
    for row in rows:
        value = expected[row["name"]]
        assert (value is None and row["max_val_accuracy"] == "") or float(row["max_val_accuracy"]) == value
    assert [r["mark"] for r in rows[:TOP_N]] == ["top"] * TOP_N
    assert rows[0]["rank"] == "1" and rows[0]["best_epoch"].isdigit()
    on_disk = json.loads((out.parent / "summary.json").read_text())
    assert on_disk["ranking"] == summary["ranking"]
    assert on_disk["ranking"]["median_max_val_accuracy"] == pytest.approx(
        statistics.median([v for v in expected.values() if v is not None])
    )
    assert len(on_disk["runs"]["unreadable"]) == 2
    assert on_disk["model"]["available"] is False
    html = out.read_text()
    for name in expected:
        assert name in html
    assert "garbled_history.json" in html and "ValueError: boom" in html


@pytest.mark.parametrize("case", ["single", "failed_only", "empty"])
def test_small_and_failed_only_grids_do_not_crash(tmp_path, case):
    from fer_keras.report import build_report

    folder = tmp_path / "history"
    folder.mkdir()
    if case == "single":
        write_synthetic_histories(folder, n_runs=1, epochs=3, failed=0, interrupted=0)
    elif case == "failed_only":
        write_history(folder, "a_adam_rgb_32_augment", "failed", [], error="OOM")
        write_history(folder, "b_adam_rgb_32_augment", "interrupted", [])
    summary = build_report(folder, tmp_path / "out" / "report.html", progress=False)
    expected_runs = {"single": 1, "failed_only": 2, "empty": 0}[case]
    assert summary["ranking"]["n_runs"] == expected_runs
    assert (summary["ranking"]["best"] is None) == (case != "single")
    assert (tmp_path / "out" / "report.html").stat().st_size > 1000


def test_missing_history_folder_is_a_user_error(tmp_path):
    with pytest.raises(FerError, match="history folder not found"):
        load_runs(tmp_path / "nope")
