import pytest

from fer_keras.errors import FerError
from fer_keras.training.config import config_differences, resolve_config

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
        assert cfg[key] == value


def test_reference_run_name():
    cfg = resolve_config({**BASE, "optimizer": "sgd", "batch_size": 128, "color_mode": "grayscale"})
    assert cfg["name"] == "model_2_best_sgd_grayscale_128_augment"
    cfg = resolve_config({**BASE, "variant": "balanced-2", "name_suffix": "_cw"})
    assert cfg["name"] == "model_2_best_adam_rgb_64_balanced-2_cw"


def test_overrides_kept():
    cfg = resolve_config({**BASE, "optimizer": "sgd", "learning_rate": 0.1, "momentum": 0.5})
    assert (cfg["learning_rate"], cfg["momentum"]) == (0.1, 0.5)


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
    assert cfg["augment"] == {"flip": True, "rotation": 0.0, "shift": 0.0, "shear": 0.2, "zoom": 0.2,
                              "brightness": 0.0, "contrast": 0.0}  # fmt: skip
    assert resolve_config({**BASE, "augment": False})["augment"] is False
    with pytest.raises(FerError, match=r"augment: unknown field 'zoomm'"):
        resolve_config({**BASE, "augment": {"zoomm": 0.1}})


def test_config_differences_ignores_epochs():
    a = resolve_config({**BASE, "epochs": 5})
    b = resolve_config({**BASE, "epochs": 10})
    assert config_differences(a, b) == []
    c = resolve_config({**BASE, "epochs": 5, "learning_rate": 0.1})
    assert config_differences(a, c) == ["learning_rate: 0.001 vs 0.1"]
