"""Grid expansion and status (no training)."""

import json

import pytest

from fer_keras.errors import FerError
from fer_keras.training.grid import expand_grid, load_grid, run_status, select_runs
from fer_keras.training.history import history_path, new_history, write_history
from tests.conftest import ROOT


def test_seed_grid_expands_to_96_reference_runs():
    runs = expand_grid(load_grid(ROOT / "grids" / "seed.json"))
    names = [run["name"] for run in runs]
    assert len(runs) == 96 == len(set(names))
    assert "model_2_best_sgd_rgb_128_augment" in names
    assert "model_4_best_nodropout_nobatchn_rmsprop_grayscale_32_augment" in names
    assert not any(n.endswith("_grayscale_256_augment") for n in names)
    assert {run["epochs"] for run in runs} == {50}
    rgb = [run for run in runs if run["color_mode"] == "rgb"]
    assert len(rgb) == 4 * 3 * 5


def test_demo_grid_has_at_least_8_runs():
    runs = expand_grid(load_grid(ROOT / "grids" / "demo.json"))
    assert len(runs) >= 8
    assert all(run["data"] == "data/demo" for run in runs)


def _grid(tmp_path, **extra):
    grid = {"datasets": {"augment": "data/x"}, "axes": {"arch": ["a/m.json"], "optimizer": ["adam"]}, **extra}
    path = tmp_path / "g.json"
    path.write_text(json.dumps(grid))
    return path


def test_axes_for_class_weights_and_seed_make_unique_names(tmp_path):
    path = _grid(tmp_path, blocks=[{"class_weights": [False, True], "seed": [1, 2]}])
    names = [run["name"] for run in expand_grid(load_grid(path))]
    assert names == [
        "m_adam_rgb_64_augment_seed1",
        "m_adam_rgb_64_augment_seed2",
        "m_adam_rgb_64_augment_cw_seed1",
        "m_adam_rgb_64_augment_cw_seed2",
    ]


def test_overrides_and_variant_datasets(tmp_path):
    path = _grid(
        tmp_path, datasets={"augment": "d/std", "balanced": "d/bal"}, blocks=[{"variant": ["augment", "balanced"]}]
    )
    runs = expand_grid(load_grid(path), {"epochs": 3})
    assert [(r["variant"], r["data"], r["epochs"]) for r in runs] == [("augment", "d/std", 3), ("balanced", "d/bal", 3)]


def test_bad_grid_reports_every_problem(tmp_path):
    path = _grid(tmp_path, axis={}, blocks=[{"optimizer": []}])
    with pytest.raises(FerError) as info:
        load_grid(path)
    assert f"{path}: unknown field 'axis'; did you mean 'axes'?" in info.value.problems
    assert f"{path}: blocks[0]: 'optimizer' must be a non-empty list; got []" in info.value.problems
    path = _grid(tmp_path, blocks=[{"variant": ["balanced"], "batch_size": [0]}])
    with pytest.raises(FerError, match="no dataset folder for variant 'balanced'"):
        expand_grid(load_grid(path))


def test_invalid_json_names_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"axes": {\n  "optimizer": ["adam",]\n}}')
    with pytest.raises(FerError, match=r"bad.json: invalid JSON at line 2, column 24: Expecting value"):
        load_grid(path)


def test_status_from_history(tmp_path):
    path = _grid(tmp_path, defaults={"history_dir": str(tmp_path / "h"), "epochs": 2})
    (run,) = expand_grid(load_grid(path))
    assert run_status(run) == "todo"
    record = new_history(run["name"], run, [], "")
    write_history(history_path(run["history_dir"], run["name"]), record)
    assert run_status(run) == "interrupted"  # "running" with no process behind it
    record.update(status="done", epochs_done=2)
    write_history(history_path(run["history_dir"], run["name"]), record)
    assert run_status(run) == "done"
    assert run_status({**run, "epochs": 5}) == "interrupted"  # more epochs asked: resumes
    record.update(stopped_early=True)  # EarlyStopping ended it before the last epoch: finished
    write_history(history_path(run["history_dir"], run["name"]), record)
    assert run_status({**run, "epochs": 5}) == "done"
    record.update(status="failed")
    write_history(history_path(run["history_dir"], run["name"]), record)
    assert run_status(run) == "failed"


def test_only_pattern():
    runs = expand_grid(load_grid(ROOT / "grids" / "seed.json"))
    assert len(select_runs(runs, "model_1_concept_*")) == 24
    assert len(select_runs(runs, "*_grayscale_*")) == 4 * 3 * 3
