import json
import math

import pytest

from fer_keras.errors import FerError
from fer_keras.training.config import config_differences, load_config, resolve_config

BASE = {"arch": "architectures/model_2_best.json", "data": "data/demo"}


@pytest.mark.parametrize(
    ("optimizer", "expected"),
    [
        ("adam", {"learning_rate": 1e-3, "momentum": None}),
        ("rmsprop", {"learning_rate": 1e-3, "momentum": None}),
        ("sgd", {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True}),
        ("adamw", {"learning_rate": 1e-3, "weight_decay": 1e-4}),
    ],
)
def test_optimizer_defaults(optimizer, expected):
    cfg = resolve_config({**BASE, "optimizer": optimizer})
    for key, value in expected.items():
        assert getattr(cfg, key) == value


def test_reference_run_name():
    cfg = resolve_config({**BASE, "optimizer": "sgd", "batch_size": 128, "color_mode": "grayscale"})
    assert cfg.name == "model_2_best_sgd_grayscale_128_augment"
    cfg = resolve_config({**BASE, "variant": "balanced-2", "name_suffix": "_cw"})
    assert cfg.name == "model_2_best_adam_rgb_64_balanced-2_cw"


def test_overrides_kept():
    cfg = resolve_config({**BASE, "optimizer": "sgd", "learning_rate": 0.1, "momentum": 0.5})
    assert (cfg.learning_rate, cfg.momentum) == (0.1, 0.5)


def test_all_problems_reported_at_once():
    with pytest.raises(FerError) as info:
        resolve_config({**BASE, "optimizer": "adma", "batch_size": 0, "epoch": 3, "label_smoothing": 1.5})
    problems = info.value.problems
    assert "config: unknown field 'epoch'; did you mean 'epochs'?" in problems
    with pytest.raises(FerError) as info:
        resolve_config({**BASE, "optimizer": "adma", "batch_size": 0, "label_smoothing": 1.5})
    problems = info.value.problems
    assert (
        "config: 'optimizer' must be one of 'adam', 'adamw', 'rmsprop', 'sgd'; got 'adma'; did you mean 'adam'?"
        in problems
    )
    assert "config: 'batch_size' must be >= 1; got 0" in problems
    assert "config: 'label_smoothing' must be in [0, 1); got 1.5" in problems


def test_augment_validation():
    cfg = resolve_config({**BASE, "augment": True})
    assert cfg.to_dict()["augment"] == {"flip": True, "rotation": 0.0, "shift": 0.0, "shear": 0.2, "zoom": 0.2,
                              "brightness": 0.0, "contrast": 0.0, "blur": 0.0, "noise": 0.0, "gamma": 0.0,
                              "erase": 0.0}  # fmt: skip
    assert resolve_config({**BASE, "augment": False}).augment is None
    assert resolve_config({**BASE, "augment": False}).to_dict()["augment"] is False
    with pytest.raises(FerError, match=r"augment: unknown field 'zoomm'"):
        resolve_config({**BASE, "augment": {"zoomm": 0.1}})


def test_config_differences_ignores_epochs():
    a = resolve_config({**BASE, "epochs": 5})
    b = resolve_config({**BASE, "epochs": 10})
    assert config_differences(a, b) == []
    c = resolve_config({**BASE, "epochs": 5, "learning_rate": 0.1})
    assert config_differences(a, c) == ["learning_rate: 0.001 vs 0.1"]


# --- runaway input (issue 16): every number finite and in range, safe names and folders ---


def _problem(**values) -> str:
    with pytest.raises(FerError) as info:
        resolve_config({**BASE, **values})
    [line] = info.value.problems
    assert "\n" not in line
    return line


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"learning_rate": math.nan}, "config: 'learning_rate' must be a finite number; got nan"),
        ({"learning_rate": math.inf}, "config: 'learning_rate' must be a finite number; got inf"),
        ({"learning_rate": -1e-3}, "config: 'learning_rate' must be in (0, 10]; got -0.001"),
        ({"learning_rate": 100.0}, "config: 'learning_rate' must be in (0, 10]; got 100.0"),
        ({"learning_rate": True}, "config: 'learning_rate' must be a number; got True"),
        ({"learning_rate": 10**400}, "config: 'learning_rate' must be a finite number; got 1000"),
        ({"weight_decay": math.nan}, "config: 'weight_decay' must be a finite number; got nan"),
        ({"momentum": -math.inf}, "config: 'momentum' must be a finite number; got -inf"),
        ({"label_smoothing": math.nan}, "config: 'label_smoothing' must be a finite number; got nan"),
        ({"epochs": 10_001}, "config: epochs: got 10,001; limit 10,000"),
        ({"epochs": 10**100}, "config: epochs: got 10,000,000,000"),
        ({"warmup_epochs": 10**6}, "config: warmup_epochs: got 1,000,000; limit 10,000"),
        ({"early_stopping": 10**6}, "config: early_stopping: got 1,000,000; limit 10,000"),
        ({"threads": 10**6}, "config: threads: got 1,000,000; limit 1,024"),
        ({"precise_bn": 10**9}, "config: precise_bn: got 1,000,000,000; limit 1,000,000"),
        ({"seed": 2**32}, "config: 'seed' must be <= 4294967295; got 4294967296"),
        ({"augment": {"zoom": math.nan}}, "config: augment: 'zoom' must be a finite number; got nan"),
        ({"augment": {"rotation": math.inf}}, "config: augment: 'rotation' must be a finite number; got inf"),
        ({"augment": {"flip": 1}}, "config: augment: 'flip' must be true or false; got 1"),
    ],
)
def test_numbers_must_be_finite_and_in_range(values, expected):
    assert _problem(**values).startswith(expected)


@pytest.mark.parametrize("name", ["", "../escape", "a/b", "a\\b", ".hidden", "a..b", "two words", "x\n", 7, "n" * 201])
def test_name_is_a_safe_file_name_stem(name):
    line = _problem(name=name)
    if isinstance(name, str) and len(name) > 200:
        assert line == "config: name: got 201 characters; limit 200 characters"
    else:
        assert line.startswith("config: 'name' must be a file-name stem (letters, digits, '_', '-', '+', '.'; ")


def test_generated_name_must_be_safe_too():
    line = _problem(arch="architectures/my model.json")
    assert line.startswith("config: the run name made from 'arch' is not valid: 'name' must be a file-name stem")
    assert line.endswith("got 'my model_adam_rgb_64_augment'; set 'name', or rename the architecture file")
    assert resolve_config({**BASE, "arch": "architectures/my model.json", "name": "mine"}).name == "mine"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"history_dir": ""}, "config: 'history_dir' must be a non-empty path; got ''"),
        ({"runs_dir": None}, "config: 'runs_dir' must be a non-empty path; got None"),
        ({"runs_dir": "r\0x"}, "config: 'runs_dir' must be a path without NUL characters; got 'r\\x00x'"),
        ({"data": "d" * 5000}, "config: data: got 5,000 characters; limit 4,096 characters"),
        (
            {"name_suffix": "/x"},
            "config: 'name_suffix' must be letters, digits, '_', '-', '+' or '.' (no '..'); got '/x'",
        ),
    ],
)
def test_folders_and_paths_are_validated(values, expected):
    assert _problem(**values) == expected


@pytest.mark.parametrize(
    ("runs_dir", "history_dir"),
    [("out", "out"), ("out", "out/history"), ("out/runs", "out"), ("./out/", "out"), ("out", "out/../out")],
)
def test_runs_and_history_folders_must_not_overlap(runs_dir, history_dir):
    line = _problem(runs_dir=runs_dir, history_dir=history_dir)
    assert line == (
        "config: 'runs_dir' and 'history_dir' must be separate folders, neither inside the other; "
        f"got {runs_dir!r} and {history_dir!r}"
    )
    assert resolve_config({**BASE, "runs_dir": "out/runs", "history_dir": "out/history"}).runs_dir == "out/runs"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"arch": "a.json", "data": "d", "learning_rate": NaN}', "{p}: 'learning_rate' must be a number; got NaN"),
        ('{"arch": "a.json", "data": "d", "epochs": 1e999}', "{p}: 'epochs' must be an integer; got inf"),
        ("[" * 5000 + "]" * 5000, "{p}: nesting depth: got 5,000; limit 64"),
        ('{"epochs": ' + "1" * 4500 + "}", "{p}: line 1, column 12: integer: got 4,500 digits; limit 4,300 digits"),
        ("\ufeff[]", "{p}: 'config' must be a JSON object; got []"),
    ],
    ids=["NaN", "1e999", "deep", "long-integer", "array"],
)
def test_config_files_report_one_line_naming_the_file(tmp_path, text, expected):
    path = tmp_path / "c.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FerError) as info:
        load_config(path)
    assert info.value.problems == [expected.format(p=path)]


def test_fer_train_refuses_nan_learning_rate_and_names_the_config_file(tmp_path, capsys):
    from fer_keras.cli.train import main

    argv = ["--arch", "a.json", "--data", "d", "--dry-run"]
    assert main([*argv, "--learning-rate", "nan"]) == 1
    assert capsys.readouterr().err == "error: fer-train: 'learning_rate' must be a finite number; got nan\n"
    assert main([*argv, "--learning-rate", "-0.1"]) == 1
    assert capsys.readouterr().err == "error: fer-train: 'learning_rate' must be in (0, 10]; got -0.1\n"
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"arch": "a.json", "data": "d", "epochs": 20_000}))
    assert main(["--config", str(config), "--dry-run"]) == 1
    assert capsys.readouterr().err == f"error: {config}: epochs: got 20,000; limit 10,000\n"
    config.write_bytes(b"\x00\xff binary")
    assert main(["--config", str(config), "--dry-run"]) == 1
    assert capsys.readouterr().err == f"error: {config}: is not UTF-8 text\n"


# --- one config object (issue 14): TrainConfig is frozen, resolved once, recorded as before ---


def test_train_config_is_frozen_and_resolving_it_again_returns_it():
    import dataclasses

    from fer_keras.training.config import TrainConfig

    cfg = resolve_config(BASE)
    assert isinstance(cfg, TrainConfig) and resolve_config(cfg) is cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3
    assert cfg.run_dir.as_posix() == "runs/model_2_best_adam_rgb_64_augment"
    assert cfg.history_file.as_posix() == "history/model_2_best_adam_rgb_64_augment_history.json"


def test_to_dict_is_the_recorded_format_and_from_dict_reads_it_back():
    from fer_keras.training.config import FIELD_NAMES, OMITTED_WHEN_UNSET, TrainConfig

    cfg = resolve_config({**BASE, "optimizer": "sgd", "image_size": [64, 56], "augment": {"zoom": 0.1}})
    recorded = json.loads(json.dumps(cfg.to_dict()))
    assert list(recorded) == [name for name in FIELD_NAMES if name not in OMITTED_WHEN_UNSET]
    assert recorded["image_size"] == [64, 56] and recorded["augment"]["zoom"] == 0.1
    assert recorded["nesterov"] is True and recorded["weight_decay"] is None
    assert TrainConfig.from_dict(recorded) == cfg and TrainConfig.from_dict(recorded).to_dict() == recorded
    with pytest.raises(FerError, match=r"^h.json: config: 'epochs' must be an integer; got 'x'$"):
        TrainConfig.from_dict({**recorded, "epochs": "x"}, where="h.json: config")


def test_every_history_and_run_config_on_disk_reads_back_unchanged(tmp_path):
    """The history of the training running in the background (and any run's config.json) must stay readable."""
    from fer_keras.training.config import TrainConfig
    from fer_keras.training.history import list_histories, read_history
    from tests.conftest import ROOT

    records = [read_history(path)["config"] for path in list_histories(ROOT / "history")]
    records += [
        {k: v for k, v in json.loads(path.read_text()).items() if k != "class_names"}
        for path in (ROOT / "runs").glob("*/config.json")
    ]
    for recorded in records:
        assert TrainConfig.from_dict(recorded).to_dict() == recorded


def test_load_config_returns_the_config_object():
    from fer_keras.training.config import TrainConfig
    from tests.conftest import ROOT

    cfg = load_config(ROOT / "configs" / "fer_vgg_fer2013.json")
    assert isinstance(cfg, TrainConfig) and cfg.optimizer == "adamw" and cfg.image_size == (48, 48)


# One bad value per TrainConfig field; the test below fails when a field is added without a rule.
BAD_VALUES = {
    "arch": "",
    "data": "d\0",
    "optimizer": "adma",
    "learning_rate": 0.0,
    "momentum": 1.0,
    "nesterov": "yes",
    "weight_decay": -0.1,
    "batch_size": 0,
    "color_mode": "rgba",
    "image_size": [48],
    "epochs": 0,
    "seed": -1,
    "variant": "balanced-3",
    "augment": {"flip": 1},
    "class_weights": "balanced",
    "label_smoothing": 1.0,
    "lr_schedule": "step",
    "warmup_epochs": -1,
    "early_stopping": 0,
    "reduce_lr": 1.5,
    "mixed_precision": 1,
    "precise_bn": -5,
    "name": "a/b",
    "name_suffix": "/x",
    "history_dir": "",
    "runs_dir": 7,
    "threads": 0,
    "devices": "some",
    "tensorboard": "",
    "mlflow": 5,
    "grid": ["seed"],
}


def test_every_field_has_a_validation_rule():
    from fer_keras.training.config import FIELD_NAMES, FIELD_RULES

    assert set(FIELD_RULES) == set(FIELD_NAMES) == set(BAD_VALUES)


@pytest.mark.parametrize("field", list(BAD_VALUES))
def test_each_field_rejects_a_bad_value(field):
    with pytest.raises(FerError) as info:
        resolve_config({**BASE, field: BAD_VALUES[field]})
    assert len(info.value.problems) >= 1
    for line in info.value.problems:
        assert line.startswith("config: ") and field in line and "\n" not in line, line


@pytest.mark.parametrize(("devices", "expected"), [(None, None), (2, 2), ("2", 2), ("all", "all"), (1, 1)])
def test_devices_is_a_count_or_all_and_a_command_line_count_records_as_a_number(devices, expected):
    config = resolve_config({**BASE, "devices": devices})
    assert config.devices == expected and config.to_dict().get("devices") == expected


@pytest.mark.parametrize("devices", [0, -1, "0", "two", "ALL", 1.5, True, 10**6, "9" * 40])
def test_devices_rejects_anything_else(devices):
    with pytest.raises(FerError, match=r"^config: 'devices' must be a device count in \[1, 1024\] or 'all'; got "):
        resolve_config({**BASE, "devices": devices})


def test_tracking_and_devices_are_not_part_of_a_runs_identity():
    # A run may resume on another number of devices, or with tracking switched on or off.
    plain = resolve_config({**BASE, "epochs": 5})
    tracked = resolve_config(
        {**BASE, "epochs": 5, "devices": "all", "tensorboard": "tb", "mlflow": "http://127.0.0.1:5000", "grid": "g"}
    )
    assert config_differences(plain, tracked) == []
    recorded_before_these_fields = {k: v for k, v in plain.to_dict().items() if k not in ("devices", "grid")}
    assert config_differences(recorded_before_these_fields, tracked) == []
    assert tracked.to_dict()["mlflow"] == "http://127.0.0.1:5000" and tracked.tensorboard == "tb"
