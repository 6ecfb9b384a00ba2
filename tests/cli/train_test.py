"""fer-train's flags are made from TrainConfig's fields: none missing, choices from the config's constants."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields

import pytest

from fer_keras.cli.train import CONFIG_FILE_ONLY, FLAGS, build_parser, config_from_args, flag_for, main
from fer_keras.training.config import FIELD_CHOICES, OMITTED_WHEN_UNSET, TrainConfig, resolve_config

FIELDS = [f.name for f in fields(TrainConfig)]


def _options() -> dict[str, argparse.Action]:
    return {flag: action for action in build_parser()._actions for flag in action.option_strings}


@pytest.mark.parametrize("field", FIELDS)
def test_every_field_has_a_flag_or_is_deliberately_config_file_only(field):
    options = _options()
    if field in CONFIG_FILE_ONLY:
        assert CONFIG_FILE_ONLY[field] and flag_for(field) not in options
    elif field == "augment":
        assert {"--no-augment", "--augment-json"} <= set(options)
    else:
        action = options[flag_for(field)]
        assert action.dest == field and action.help
        assert tuple(action.choices or ()) == FIELD_CHOICES.get(field, ())


def test_the_flag_table_lists_exactly_the_fields():
    assert set(FLAGS) | set(CONFIG_FILE_ONLY) == set(FIELDS) and not set(FLAGS) & set(CONFIG_FILE_ONLY)


def test_every_flag_reaches_the_config():
    argv = ["--arch", "a/m.json", "--data", "d", "--optimizer", "sgd", "--learning-rate", "0.05", "--momentum", "0.8",
            "--no-nesterov", "--weight-decay", "0.01", "--batch-size", "32", "--color-mode", "grayscale",
            "--image-size", "40", "44", "--epochs", "3", "--seed", "7", "--variant", "balanced",
            "--augment-json", '{"zoom": 0.1}', "--class-weights", "--label-smoothing", "0.1", "--lr-schedule", "cosine",
            "--warmup-epochs", "1", "--early-stopping", "5", "--reduce-lr", "2", "--mixed-precision",
            "--precise-bn", "0", "--name", "run1", "--history", "h", "--runs-dir", "r", "--threads", "2",
            "--devices", "2", "--tensorboard", "tb", "--mlflow", "http://127.0.0.1:5000"]  # fmt: skip
    cfg = resolve_config(config_from_args(build_parser().parse_args(argv)))
    expected = {"arch": "a/m.json", "data": "d", "optimizer": "sgd", "learning_rate": 0.05, "momentum": 0.8,
                "nesterov": False, "weight_decay": 0.01, "batch_size": 32, "color_mode": "grayscale",
                "image_size": (40, 44), "epochs": 3, "seed": 7, "variant": "balanced", "class_weights": True,
                "label_smoothing": 0.1, "lr_schedule": "cosine", "warmup_epochs": 1, "early_stopping": 5,
                "reduce_lr": 2, "mixed_precision": True, "precise_bn": 0, "name": "run1", "history_dir": "h",
                "runs_dir": "r", "threads": 2, "devices": 2, "tensorboard": "tb",
                "mlflow": "http://127.0.0.1:5000"}  # fmt: skip
    assert {key: getattr(cfg, key) for key in expected} == expected
    assert cfg.augment.zoom == 0.1 and set(expected) | {"augment"} | set(CONFIG_FILE_ONLY) == set(FIELDS)


def test_flags_override_the_config_file_and_unset_flags_do_not(tmp_path, capsys):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"arch": "a/m.json", "data": "d", "epochs": 9, "class_weights": True}))
    assert main(["--config", str(config), "--epochs", "2", "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["epochs"] == 2 and printed["class_weights"] is True and printed["augment"]["flip"] is True
    assert list(printed) == [f for f in FIELDS if f not in OMITTED_WHEN_UNSET]  # unset: not recorded


def test_history_dir_still_works_for_one_release(capsys):
    assert main(["--arch", "a/m.json", "--data", "d", "--history-dir", "old", "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["history_dir"] == "old"
    assert (
        captured.err == "warning: --history-dir is deprecated and will be removed in the next release; use --history\n"
    )
