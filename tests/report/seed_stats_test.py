"""Seed statistics: runs differing only in seed, grouped; mean ± std and t intervals computed from the files."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from fer_keras.report.runs import load_runs
from fer_keras.report.seed_stats import configuration_key, seed_statistics, t_interval
from tests.report.runs_test import write_history

# t quantiles (0.975, df) from a printed table: df=2 → 4.303, df=3 → 3.182.
T975 = {2: 4.302652729911275, 3: 3.182446305284263}


def _write(folder: Path, optimizer: str, seed: int, best: float, **config) -> None:
    name = f"m_{optimizer}_rgb_32_augment_seed{seed}"
    curve = [round(best - 0.1, 4), best, round(best - 0.05, 4)]
    path = write_history(folder, name, "done", curve, optimizer=optimizer, seed=seed, **config)
    record = json.loads(path.read_text())
    record["config"].update(name=name, name_suffix=f"_seed{seed}")  # as fer-grid records them
    path.write_text(json.dumps(record))


def _interval(values: list[float]) -> tuple[float, float]:
    half = T975[len(values) - 1] * statistics.stdev(values) / math.sqrt(len(values))
    return statistics.mean(values) - half, statistics.mean(values) + half


@pytest.fixture
def history(tmp_path) -> Path:
    folder = tmp_path / "history"
    folder.mkdir()
    for seed, best in zip((1, 2, 3), (0.60, 0.64, 0.62)):
        _write(folder, "adam", seed, best)
    for seed, best in zip((1, 2, 3), (0.58, 0.66, 0.59)):  # a higher single best run, a lower mean
        # Fields outside a run's identity (history folder, threads, tracking) don't split a configuration.
        _write(folder, "sgd", seed, best, threads=seed, history_dir=f"h{seed}", mlflow="http://x", grid="g")
    return folder


def test_groups_means_intervals_and_the_overlap_verdict_equal_a_hand_computation(history):
    section = seed_statistics(load_runs(history).runs)
    adam, sgd = section["groups"]
    assert (adam["rank"], adam["label"], sgd["rank"], sgd["label"]) == (1, "optimizer=adam", 2, "optimizer=sgd")
    for group, values in ((adam, [0.60, 0.64, 0.62]), (sgd, [0.58, 0.66, 0.59])):
        assert group["n"] == 3 and group["seeds"] == [1, 2, 3] and group["values"] == values
        assert group["mean"] == pytest.approx(statistics.mean(values))
        assert group["std"] == pytest.approx(statistics.stdev(values))
        assert (group["ci_low"], group["ci_high"]) == pytest.approx(_interval(values))
    # The best single run is an sgd run (0.66), yet adam has the higher mean.
    assert sgd["best_run"] == "m_sgd_rgb_32_augment_seed2"
    assert section["overlap"] == {
        "top": "optimizer=adam",
        "overlapping": ["optimizer=sgd"],
        "compared": ["optimizer=sgd"],
    }
    assert section["verdict"].startswith("The 95% interval of the top configuration (optimizer=adam, [0.5703, 0.6697])")
    assert "cannot tell them apart" in section["verdict"]


def test_separated_intervals_say_so(tmp_path):
    folder = tmp_path / "h"
    folder.mkdir()
    for seed in (1, 2, 3, 4):
        _write(folder, "adam", seed, 0.80 + 0.001 * seed)
        _write(folder, "sgd", seed, 0.50 + 0.001 * seed)
    section = seed_statistics(load_runs(folder).runs)
    assert [g["label"] for g in section["groups"]] == ["optimizer=adam", "optimizer=sgd"]
    assert section["overlap"]["overlapping"] == [] and "overlaps no other configuration" in section["verdict"]


def test_no_seed_axis_no_section(tmp_path):
    folder = tmp_path / "h"
    folder.mkdir()
    _write(folder, "adam", 1, 0.6)
    _write(folder, "sgd", 1, 0.7)
    assert seed_statistics(load_runs(folder).runs)["groups"] == []


def test_the_key_ignores_seed_names_and_non_identity_fields_only():
    a = {"optimizer": "adam", "seed": 1, "name": "x_seed1", "name_suffix": "_seed1", "epochs": 5, "devices": 2}
    b = {"optimizer": "adam", "seed": 2, "name": "x_seed2", "name_suffix": "_seed2", "epochs": 9}
    assert configuration_key(a) == configuration_key(b) != configuration_key({**b, "batch_size": 64})
    assert t_interval(__import__("numpy").array([0.5])) is None


def test_the_report_shows_the_section(history, tmp_path):
    from fer_keras.report.build import build_report

    out = tmp_path / "report" / "report.html"
    summary = build_report(history, out, model_dir=None, progress=False)
    assert [g["label"] for g in summary["seed_stats"]["groups"]] == ["optimizer=adam", "optimizer=sgd"]
    html = out.read_text(encoding="utf-8")
    assert 'id="seeds"' in html and "cannot tell them apart" in html and "[0.5703, 0.6697]" in html
    assert (
        json.loads((out.parent / "summary.json").read_text())["seed_stats"]["verdict"]
        == summary["seed_stats"]["verdict"]
    )
