"""Grid expansion and status (no training)."""

import json
from dataclasses import replace

import pytest

from fer_keras.errors import FerError
from fer_keras.training.grid import expand_grid, load_grid, run_status, select_runs
from fer_keras.training.history import history_path, new_history, write_history
from tests.conftest import ROOT


def test_seed_grid_expands_to_96_reference_runs():
    runs = expand_grid(load_grid(ROOT / "grids" / "seed.json"))
    names = [run.name for run in runs]
    assert len(runs) == 96 == len(set(names))
    assert "model_2_best_sgd_rgb_128_augment" in names
    assert "model_4_best_nodropout_nobatchn_rmsprop_grayscale_32_augment" in names
    assert not any(n.endswith("_grayscale_256_augment") for n in names)
    assert {run.epochs for run in runs} == {50}
    rgb = [run for run in runs if run.color_mode == "rgb"]
    assert len(rgb) == 4 * 3 * 5


def test_demo_grid_has_at_least_8_runs():
    runs = expand_grid(load_grid(ROOT / "grids" / "demo.json"))
    assert len(runs) >= 8
    assert all(run.data == "data/demo" for run in runs)


def _grid(tmp_path, **extra):
    grid = {"datasets": {"augment": "data/x"}, "axes": {"arch": ["a/m.json"], "optimizer": ["adam"]}, **extra}
    path = tmp_path / "g.json"
    path.write_text(json.dumps(grid))
    return path


def test_axes_for_class_weights_and_seed_make_unique_names(tmp_path):
    path = _grid(tmp_path, blocks=[{"class_weights": [False, True], "seed": [1, 2]}])
    names = [run.name for run in expand_grid(load_grid(path))]
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
    assert [(r.variant, r.data, r.epochs) for r in runs] == [("augment", "d/std", 3), ("balanced", "d/bal", 3)]


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
    record = new_history(run.name, run.to_dict(), [], "")
    write_history(history_path(run.history_dir, run.name), record)
    assert run_status(run) == "interrupted"  # "running" with no process behind it
    record.update(status="done", epochs_done=2)
    write_history(history_path(run.history_dir, run.name), record)
    assert run_status(run) == "done"
    assert run_status(replace(run, epochs=5)) == "interrupted"  # more epochs asked: resumes
    record.update(stopped_early=True)  # EarlyStopping ended it before the last epoch: finished
    write_history(history_path(run.history_dir, run.name), record)
    assert run_status(replace(run, epochs=5)) == "done"
    record.update(status="failed")
    write_history(history_path(run.history_dir, run.name), record)
    assert run_status(run) == "failed"


def test_only_pattern():
    runs = expand_grid(load_grid(ROOT / "grids" / "seed.json"))
    assert len(select_runs(runs, "model_1_concept_*")) == 24
    assert len(select_runs(runs, "*_grayscale_*")) == 4 * 3 * 3


# --- runaway input (issue 16) ---


def _write(tmp_path, grid, name="g.json"):
    path = tmp_path / name
    path.write_text(json.dumps(grid) if not isinstance(grid, str) else grid)
    return path


def test_a_grid_of_millions_of_runs_is_refused_from_its_axis_sizes(tmp_path, capsys):
    """It used to expand 2,000,000 configs (3 GB) and list them all with exit 0 on --dry-run."""
    import time
    import tracemalloc

    from fer_keras.cli.grid import main

    axes = {"arch": ["a/m.json"], "seed": list(range(1000)), "batch_size": list(range(1, 1001))}
    path = _write(tmp_path, {"datasets": {"augment": "d"}, "axes": axes, "blocks": [{}, {"optimizer": ["adam"]}]})
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(FerError) as info:
        load_grid(path)
    seconds, (_, peak) = time.perf_counter() - start, tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert info.value.problems == [f"{path}: runs: got 2,000,000; limit 10,000"]
    assert seconds < 2 and peak < 20 * 2**20
    assert main([str(path), "--dry-run"]) == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"error: {path}: runs: got 2,000,000; limit 10,000\n")
    # A grid dict that never went through load_grid is refused the same way, and 10**300 runs cost nothing.
    many = {"_path": "inline", "axes": {f"k{i}": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] for i in range(300)}}
    with pytest.raises(FerError, match=r"^inline: runs: got more than 10,000,000,000; limit 10,000$"):
        expand_grid(many)


def test_the_limit_itself_is_allowed(tmp_path):
    grid = {"datasets": {"augment": "d"}, "axes": {"arch": ["a/m.json"], "seed": list(range(100))}}
    grid["blocks"] = [{"batch_size": list(range(1, 101))}]
    assert len(expand_grid(load_grid(_write(tmp_path, grid)))) == 10_000


@pytest.mark.parametrize(
    ("defaults", "expected"),
    [
        ({"learning_rate": float("nan")}, "{p}: run 1: 'learning_rate' must be a number; got NaN"),
        ({"learning_rate": -0.1}, "{p}: run 1: 'learning_rate' must be in (0, 10]; got -0.1"),
        ({"epochs": 10**6}, "{p}: run 1: epochs: got 1,000,000; limit 10,000"),
        ({"name": "../escape"}, "{p}: run 1: 'name' must be a file-name stem"),
        ({"runs_dir": "out", "history_dir": "out/history"}, "{p}: run 1: 'runs_dir' and 'history_dir' must be"),
    ],
)
def test_run_values_are_validated_with_the_grid_file_named(tmp_path, defaults, expected):
    path = _grid(tmp_path, defaults=defaults)
    with pytest.raises(FerError) as info:
        expand_grid(load_grid(path))
    [line] = info.value.problems
    assert line.startswith(expected.format(p=path))


def test_grid_level_fields_are_validated(tmp_path):
    path = _grid(tmp_path, datasets={"augmnet": "d", "balanced": ""}, name=3, best_model="")
    with pytest.raises(FerError) as info:
        load_grid(path)
    assert info.value.problems == [
        f"{path}: 'name' must be a string; got 3",
        f"{path}: 'best_model' must be a non-empty path; got ''",
        f"{path}: datasets: unknown variant 'augmnet'; did you mean 'augment'?",
        f"{path}: 'datasets.balanced' must be a non-empty path; got ''",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"axes": ' * 10_000 + "1" + "}" * 10_000, "{p}: nesting depth: got 10,000; limit 64"),
        ('{"defaults": {"epochs": ' + "7" * 5000 + "}}", "{p}: line 1, column 25: integer: got 5,000 digits"),
        (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "{p}: is not UTF-8 text"),
        ("[1, 2]", "{p}: 'grid' must be a JSON object; got [1, 2]"),
    ],
    ids=["deep", "long-integer", "binary", "array"],
)
def test_unreadable_grid_files_are_one_line_naming_the_file(tmp_path, text, expected):
    path = tmp_path / "g.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(FerError) as info:
        load_grid(path)
    [line] = info.value.problems
    assert line.startswith(expected.format(p=path))


# --- the grid as a library call (issue 14): plan_grid / run_grid; the CLI only parses and prints ---


def test_plan_and_run_a_grid_whose_runs_all_have_problems(tmp_path):
    from fer_keras.training.grid_runner import plan_grid, run_grid

    path = _grid(tmp_path, defaults={"history_dir": str(tmp_path / "h"), "runs_dir": str(tmp_path / "r")},
                 blocks=[{"batch_size": [16, 32]}])  # fmt: skip
    plan = plan_grid(path, {"epochs": 3}, only="*_16_*", select=False)
    assert [run.name for run in plan.runs] == ["m_adam_rgb_16_augment", "m_adam_rgb_32_augment"]
    assert [run.name for run in plan.chosen] == ["m_adam_rgb_16_augment"] and plan.chosen[0].epochs == 3
    assert plan.best_model is None and plan.todo == [] and plan.skipped == 0
    assert plan.counts() == {"todo": 1, "done": 0, "failed": 0, "interrupted": 0}
    problems = plan.problems["m_adam_rgb_16_augment"]
    assert "a/m.json" in problems[0] and "data/x" in problems[1] and plan.blocked == list(plan.chosen)
    result = run_grid(plan, workers=2)
    assert not result.ok and result.outcomes == () and result.best is None
    assert result.failures == {"m_adam_rgb_16_augment": "; ".join(problems)}
    assert run_status(plan.chosen[0]) == "failed"
    with pytest.raises(FerError, match=r"'workers' must be >= 1; got 0"):
        run_grid(plan, workers=0)
    with pytest.raises(FerError, match=r"g.json: no run matches --only 'x\*'"):
        plan_grid(path, only="x*")


def test_fer_grid_run_is_the_default_subcommand(tmp_path, capsys):
    from fer_keras.cli.grid import main

    path = _grid(tmp_path, defaults={"history_dir": str(tmp_path / "h"), "runs_dir": str(tmp_path / "r")})
    outputs = []
    for argv in ([str(path)], ["run", str(path)], ["-q", str(path)], ["--debug", "run", str(path)]):
        assert main([*argv, "--dry-run", "--no-select"]) == 1  # a/m.json does not exist: a problem, exit 1
        outputs.append(capsys.readouterr().out)
    assert len(set(outputs)) == 1 and "todo        m_adam_rgb_64_augment  epochs=50 data=data/x" in outputs[0]
